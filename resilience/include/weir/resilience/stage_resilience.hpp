#pragma once
/// \file A stage's resilience settings, as the builder records them and the engine applies them when
/// a run starts. Not API.

#include <optional>

#include "weir/detail/stage_policy.hpp"
#include "weir/resilience/circuit_breaker.hpp"
#include "weir/resilience/retry.hpp"
#include "weir/resilience/timeout.hpp"

namespace weir::detail {

/// `.retry()`, `.timeout()` and `.circuit_breaker()` of one stage (on_error::retry is read from the
/// stage's error policy). Built single-threaded; equip() is const and may run on any thread.
class StageResilience final : public ResilienceSpec {
 public:
  std::optional<RetryPolicy> retry;
  std::optional<TimeoutOptions> timeout;
  std::optional<CircuitBreakerOptions> breaker;

  /// Gives `st` its retries (from `retry`, or from an on_error::retry policy, after which the policy
  /// that follows the retries becomes the stage's) and a StageGuard for a timeout or breaker.
  void equip(Stage& st) const override;
};

}  // namespace weir::detail
