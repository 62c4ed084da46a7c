#pragma once
/// \file How the engine reaches a stage's resilience policies (retry, timeout, circuit breaker), which
/// the resilience layer implements (weir/resilience/). Not API.

#include <chrono>
#include <exception>
#include <optional>

#include "weir/interceptor.hpp"

namespace weir::detail {

class Stage;

/// A stage's retries and circuit breaker as the engine sees them: what it asks when a call has failed
/// for the stage's error policy, and what it reports. Only failed calls reach it (the slow path).
/// Shared by every thread running the stage; thread-safe.
class StagePolicy {
 public:
  virtual ~StagePolicy() = default;
  /// Calls in all, the first included (1: no retry).
  [[nodiscard]] virtual int max_attempts() const noexcept = 0;
  /// Whether another call is worth making after `err`.
  [[nodiscard]] virtual bool retryable(const std::exception_ptr& err) const noexcept = 0;
  /// The wait before retry number `retry_number` (1 = the second call).
  [[nodiscard]] virtual std::chrono::nanoseconds next_backoff(int retry_number) noexcept = 0;
  /// Whether `err` is a call given up because the run is stopping (not a failure of its own).
  [[nodiscard]] virtual bool cut_by_stop(const std::exception_ptr& err) const noexcept = 0;
  /// The state of the stage's circuit breaker, or nothing without one.
  [[nodiscard]] virtual std::optional<CircuitState> circuit_state() const noexcept = 0;
};

/// A stage's resilience settings as the builder recorded them. When a run starts, equip() gives the
/// stage its StagePolicy and its CallGuard (a StageGuard), and turns an on_error::retry policy into retries
/// followed by the policy after them.
class ResilienceSpec {
 public:
  virtual ~ResilienceSpec() = default;
  virtual void equip(Stage& st) const = 0;
};

}  // namespace weir::detail
