#pragma once
/// \file retry: calls a failing stage function again, with exponential backoff, jitter and a
/// retryable-error predicate, before the stage's error policy applies.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>

namespace weir {

/// How a stage retries a failed call (set with `.retry(policy)`). A plain value; the stage copies it.
///
/// Attempt k+1 waits `initial_backoff * multiplier^(k-1)`, capped at `max_backoff`; with a `jitter`
/// fraction j the wait is drawn uniformly from [w * (1 - j), w], so it never exceeds the cap. The draws
/// come from a generator seeded with `seed`, one per wait in the stage, so a serial stage waits the
/// same on every run. Errors for which `retryable` returns false skip straight to the error policy.
struct RetryPolicy {
  int max_attempts = 3;  ///< calls in all, the first included
  std::chrono::nanoseconds initial_backoff{std::chrono::milliseconds{100}};  ///< wait before the 2nd call
  double multiplier = 2.0;                                         ///< growth of the wait per attempt
  std::chrono::nanoseconds max_backoff{std::chrono::seconds{30}};  ///< no wait is longer than this
  double jitter = 0.0;  ///< fraction of each wait that is random, in [0, 1]
  /// Decides whether an error is worth another call; null: every error but weir::CircuitOpenError
  /// (a call the stage's open circuit breaker rejected). A predicate that throws means "no".
  std::function<bool(const std::exception_ptr&)> retryable;
  std::uint64_t seed = 0x5eed;  ///< seed of the jitter draws

  /// The wait before retry number `retry` (1 = the second call) for a draw `u` in [0, 1).
  [[nodiscard]] std::chrono::nanoseconds backoff(int retry, double u = 0.0) const noexcept {
    const double cap = static_cast<double>(max_backoff.count());
    double w = static_cast<double>(initial_backoff.count());
    for (int i = 1; i < retry && w < cap; ++i) w *= multiplier;
    w = std::min(w, cap);
    w *= 1.0 - jitter * u;
    return std::chrono::nanoseconds{static_cast<std::int64_t>(w)};
  }
};

/// A `RetryPolicy::retryable` predicate that retries only exceptions of the types `E...` (or derived
/// from them): `policy.retryable = weir::retry_on<std::system_error, weir::TimeoutError>();`.
template <class... E>
[[nodiscard]] std::function<bool(const std::exception_ptr&)> retry_on() {
  static_assert(sizeof...(E) > 0, "weir::retry_on needs at least one exception type");
  return [](const std::exception_ptr& e) {
    bool match = false;
    try {
      std::rethrow_exception(e);
    } catch (...) {
      auto is = [&]<class X>() {
        try {
          throw;
        } catch (const X&) {
          return true;
        } catch (...) {
          return false;
        }
      };
      match = (is.template operator()<E>() || ...);
    }
    return match;
  };
}

namespace detail {

/// Checks a RetryPolicy; throws std::invalid_argument naming `where` when a field is out of range.
inline void check_retry_policy(const RetryPolicy& p, const char* where) {
  auto bad = [where](const char* what) { throw std::invalid_argument(std::string(where) + ": " + what); };
  if (p.max_attempts < 1) bad("max_attempts must be at least 1");
  if (p.initial_backoff.count() < 0 || p.max_backoff.count() < 0) bad("backoffs cannot be negative");
  if (!(p.multiplier >= 1.0)) bad("multiplier must be at least 1");
  if (!(p.jitter >= 0.0 && p.jitter <= 1.0)) bad("jitter must be in [0, 1]");
}

/// Draw number `n` of a seeded stream, uniform in [0, 1) (splitmix64: one multiply-xor chain, no state
/// but the counter, so threads share a stream through one atomic counter).
[[nodiscard]] inline double jitter_draw(std::uint64_t seed, std::uint64_t n) noexcept {
  std::uint64_t z = seed + (n + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  z ^= z >> 31U;
  return static_cast<double>(z >> 11U) * 0x1.0p-53;
}

}  // namespace detail
}  // namespace weir
