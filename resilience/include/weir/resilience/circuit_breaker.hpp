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
#include <vector>

#include "weir/clock.hpp"
#include "weir/interceptor.hpp"

namespace weir {

/// What a call does when the circuit breaker does not let it through (see CircuitBreakerOptions).
enum class OnCircuitOpen {
  reject,  ///< fail at once with weir::CircuitOpenError, without calling the function (the default)
  wait,    ///< wait until the circuit lets calls through again, for at most `open_for`
};

/// Settings of `.circuit_breaker(...)`. A plain value.
///
/// Closed: calls go through; `failure_threshold` failures in a row open the circuit. Open: no call is
/// made for `open_for` on the pipeline's clock. Then half-open: the next `half_open_trials` calls go
/// through; if all of them succeed the circuit closes, if one fails it opens again. A call the circuit
/// does not let through (open, or half-open with its trials taken) is rejected with
/// weir::CircuitOpenError, or with `on_open = OnCircuitOpen::wait` waits until the circuit lets it
/// through: the stage slows down instead of failing items. A waiting call gives up (and is rejected)
/// after `open_for`, or at once when the run stops.
struct CircuitBreakerOptions {
  int failure_threshold = 5;  ///< consecutive failures that open the circuit
  std::chrono::nanoseconds open_for{std::chrono::seconds{30}};  ///< how long the circuit stays open
  int half_open_trials = 1;  ///< calls let through when half-open; all must succeed to close
  OnCircuitOpen on_open = OnCircuitOpen::reject;  ///< reject the calls it does not let through, or wait
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
    return admit_locked(clock, change);
  }

  /// The same; when the call is not admitted, `wake` is notified at the breaker's next change of
  /// state, until `unwatch(wake)` (which must come before `wake` is destroyed).
  Permit admit_or_watch(const Clock& clock, std::optional<Change>& change, Notification& wake) {
    const std::lock_guard lock(mutex_);
    const Permit p = admit_locked(clock, change);
    if (!p.allowed) waiters_.push_back(&wake);
    return p;
  }
  void unwatch(Notification& wake) {
    const std::lock_guard lock(mutex_);
    std::erase(waiters_, &wake);
  }
  /// When an open circuit turns half-open.
  [[nodiscard]] std::chrono::steady_clock::time_point open_until() {
    const std::lock_guard lock(mutex_);
    return opened_at_ + options_.open_for;
  }

 private:
  Permit admit_locked(const Clock& clock, std::optional<Change>& change) {
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

 public:
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
    for (auto* w : waiters_) w->notify();
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
  std::vector<Notification*> waiters_;  ///< calls waiting for a change of state (OnCircuitOpen::wait)
};

}  // namespace detail
}  // namespace weir
