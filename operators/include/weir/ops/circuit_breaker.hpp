#pragma once
/// \file circuit_breaker: stops calling a stage's function after repeated failures, then tries again
/// with a few trial calls once a pause has passed.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "weir/clock.hpp"
#include "weir/interceptor.hpp"

namespace weir {

/// Settings of `.circuit_breaker(...)`. A plain value.
///
/// Closed: calls go through; `failure_threshold` failures in a row open the circuit. Open: every call
/// is rejected with weir::CircuitOpenError without being made, for `open_for` on the pipeline's clock.
/// Then half-open: the next `half_open_trials` calls go through (the others are rejected); if all of
/// them succeed the circuit closes, if one fails it opens again.
struct CircuitBreakerOptions {
  int failure_threshold = 5;  ///< consecutive failures that open the circuit
  std::chrono::nanoseconds open_for{std::chrono::seconds{30}};  ///< how long the circuit stays open
  int half_open_trials = 1;  ///< calls let through when half-open; all must succeed to close
};

/// The error of a call the stage's open circuit breaker rejected (the function was not called).
/// It goes to the stage's error policy like any failure; retry does not retry it unless its
/// `retryable` predicate says so. Immutable.
class CircuitOpenError : public std::runtime_error {
 public:
  explicit CircuitOpenError(const std::string& stage)
      : std::runtime_error("stage '" + stage + "': circuit breaker is open, call rejected") {}
};

namespace detail {

/// Checks CircuitBreakerOptions; throws std::invalid_argument naming `where` when a field is out of range.
inline void check_circuit_options(const CircuitBreakerOptions& o, const std::string& where) {
  if (o.failure_threshold < 1) throw std::invalid_argument(where + ": failure_threshold must be at least 1");
  if (o.half_open_trials < 1) throw std::invalid_argument(where + ": half_open_trials must be at least 1");
  if (o.open_for.count() < 0) throw std::invalid_argument(where + ": open_for cannot be negative");
}

/// The state machine of one stage's circuit breaker, shared by the threads running the stage.
/// Thread-safe: transitions under a mutex (these stages wrap slow calls); `state()` is a lock-free read.
class CircuitBreaker {
 public:
  /// A call's admission: whether it may go ahead, and in which generation of the state it was let in
  /// (the outcome of a call admitted before the latest change does not move the state again).
  struct Permit {
    bool allowed = false;
    bool trial = false;  ///< admitted as a half-open trial
    std::uint64_t generation = 0;
  };
  /// A state change to report.
  struct Change {
    CircuitState from;
    CircuitState to;
  };

  explicit CircuitBreaker(CircuitBreakerOptions o) : options_(o) {}

  /// Admits or rejects one call; an open circuit whose pause is over turns half-open here (`change`).
  Permit admit(const Clock& clock, std::optional<Change>& change) {
    const std::lock_guard lock(mutex_);
    if (state_.load(std::memory_order_relaxed) == CircuitState::open) {
      if (clock.steady_now() - opened_at_ < options_.open_for) return Permit{false, false, generation_};
      change = move_to(CircuitState::half_open);
      trials_admitted_ = 0;
      trials_passed_ = 0;
    }
    if (state_.load(std::memory_order_relaxed) == CircuitState::half_open) {
      if (trials_admitted_ >= options_.half_open_trials) return Permit{false, true, generation_};
      ++trials_admitted_;
      return Permit{true, true, generation_};
    }
    return Permit{true, false, generation_};
  }

  /// Records a successful call; a half-open circuit closes after its last successful trial.
  std::optional<Change> succeeded(const Permit& p) {
    const std::lock_guard lock(mutex_);
    if (p.generation != generation_) return std::nullopt;
    if (p.trial) {
      if (++trials_passed_ < options_.half_open_trials) return std::nullopt;
      failures_ = 0;
      return move_to(CircuitState::closed);
    }
    failures_ = 0;
    return std::nullopt;
  }

  /// Records a failed call: opens the circuit after `failure_threshold` failures in a row, or at once
  /// when a half-open trial fails.
  std::optional<Change> failed(const Permit& p, const Clock& clock) {
    const std::lock_guard lock(mutex_);
    if (p.generation != generation_) return std::nullopt;
    if (!p.trial && ++failures_ < options_.failure_threshold) return std::nullopt;
    opened_at_ = clock.steady_now();
    failures_ = 0;
    return move_to(CircuitState::open);
  }

  [[nodiscard]] CircuitState state() const noexcept { return state_.load(std::memory_order_acquire); }
  [[nodiscard]] const CircuitBreakerOptions& options() const noexcept { return options_; }

 private:
  Change move_to(CircuitState to) {
    const Change c{state_.load(std::memory_order_relaxed), to};
    state_.store(to, std::memory_order_release);
    ++generation_;
    return c;
  }

  const CircuitBreakerOptions options_;
  std::mutex mutex_;
  std::atomic<CircuitState> state_{CircuitState::closed};
  std::uint64_t generation_ = 0;
  int failures_ = 0;  ///< consecutive failures while closed
  int trials_admitted_ = 0;
  int trials_passed_ = 0;
  std::chrono::steady_clock::time_point opened_at_{};
};

}  // namespace detail
}  // namespace weir
