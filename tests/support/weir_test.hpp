#pragma once
// Helpers shared by the engine tests.

#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <weir/weir.hpp>

namespace weir_test {

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

/// Default options but the batch size.
inline weir::PipelineOptions with_batch(std::size_t batch_size) {
  weir::PipelineOptions o;
  o.batch_size = batch_size;
  return o;
}

}  // namespace weir_test
