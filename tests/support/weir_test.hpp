#pragma once
// Helpers shared by the engine tests.

#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

/// Marks a doctest case that needs the telemetry hooks (interceptors, batch times, collectors fed
/// by the metrics interceptor): `TEST_CASE("..." WEIR_NEEDS_TELEMETRY)`. Such cases are compiled
/// but skipped in a `-DWEIR_TELEMETRY=OFF` build.
#define WEIR_NEEDS_TELEMETRY *doctest::skip(!weir_test::telemetry_compiled)

namespace weir_test {

/// Whether the telemetry hooks are compiled in (see WEIR_NEEDS_TELEMETRY).
#if defined(WEIR_TELEMETRY) && WEIR_TELEMETRY
inline constexpr bool telemetry_compiled = true;
#else
inline constexpr bool telemetry_compiled = false;
#endif

/// True when `part` occurs in `text`.
inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Polls `pred` until it holds or `limit` has passed; true when it held. For the few tests that
/// must wait on other threads with a real clock.
template <class Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds{100});
  }
  return true;
}

/// Calls `fn` when it goes out of scope (releases what a test holds, even when a REQUIRE fails).
template <class F>
class OnExit {
 public:
  explicit OnExit(F fn) : fn_(std::move(fn)) {}
  ~OnExit() { fn_(); }
  OnExit(const OnExit&) = delete;
  OnExit& operator=(const OnExit&) = delete;

 private:
  F fn_;
};

/// The integers [from, to).
inline std::vector<int> iota(int from, int to) {
  std::vector<int> v(static_cast<std::size_t>(to - from));
  for (int i = from; i < to; ++i) v[static_cast<std::size_t>(i - from)] = i;
  return v;
}

/// Default options but the batch size.
inline weir::PipelineOptions with_batch(std::size_t batch_size) {
  weir::PipelineOptions o;
  o.batch_size = batch_size;
  return o;
}

}  // namespace weir_test
