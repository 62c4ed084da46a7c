// A stage's retries, timeout and circuit breaker at run time: StageResilience::equip and the
// StagePolicy the engine asks when a call fails.
#include "weir/resilience/stage_resilience.hpp"

#include <atomic>
#include <memory>
#include <utility>

#include "weir/detail/runtime.hpp"
#include "weir/resilience/guard.hpp"

namespace weir::detail {

namespace {

/// Retries (when the stage has a retry policy) and the breaker's state (when it has a guard).
class Policy final : public StagePolicy {
 public:
  Policy(std::shared_ptr<const RetryPolicy> retry, std::shared_ptr<CallGuard> guard)
      : retry_(std::move(retry)), guard_(std::move(guard)) {}

  [[nodiscard]] int max_attempts() const noexcept override { return retry_ ? retry_->max_attempts : 1; }

  [[nodiscard]] bool retryable(const std::exception_ptr& err) const noexcept override {
    if (retry_ == nullptr) return false;
    try {
      if (retry_->retryable) return retry_->retryable(err);
      std::rethrow_exception(err);
    } catch (const CircuitOpenError&) {
      return false;  // the breaker is there to stop calling: no retry unless the predicate asks for it
    } catch (...) {
      // any other error is retryable by default; a throwing predicate lands here with "no"
      return !retry_->retryable;
    }
  }

  [[nodiscard]] std::chrono::nanoseconds next_backoff(int retry_number) noexcept override {
    double u = 0.0;
    if (retry_->jitter > 0.0) u = jitter_draw(retry_->seed, draws_.fetch_add(1, std::memory_order_relaxed));
    return retry_->backoff(retry_number, u);
  }

  [[nodiscard]] bool cut_by_stop(const std::exception_ptr& err) const noexcept override {
    try {
      std::rethrow_exception(err);
    } catch (const TimeoutError& e) {
      return e.cause() == TimeoutError::Cause::stopped;
    } catch (...) {
      return false;
    }
  }

  [[nodiscard]] std::optional<CircuitState> circuit_state() const noexcept override {
    return guard_ != nullptr ? guard_->circuit_state() : std::nullopt;
  }

 private:
  std::shared_ptr<const RetryPolicy> retry_;
  std::shared_ptr<CallGuard> guard_;
  std::atomic<std::uint64_t> draws_{0};  ///< jitter draws so far
};

}  // namespace

void StageResilience::equip(Stage& st) const {
  std::shared_ptr<const RetryPolicy> r;
  if (st.policy.kind == ErrorPolicy::Kind::retry) {
    // on_error::retry(n, backoff, then): the same machinery, without jitter or cap.
    RetryPolicy p;
    p.max_attempts = st.policy.max_attempts;
    p.initial_backoff = st.policy.backoff;
    p.multiplier = st.policy.multiplier;
    p.max_backoff = std::chrono::nanoseconds::max();
    r = std::make_shared<const RetryPolicy>(std::move(p));
    st.policy.kind = st.policy.exhausted;
  } else if (retry) {
    r = std::make_shared<const RetryPolicy>(*retry);
  }
  if (timeout || breaker) st.guard = std::make_shared<StageGuard>(st, timeout, breaker);
  if (r || st.guard) st.resilience = std::make_shared<Policy>(std::move(r), st.guard);
}

}  // namespace weir::detail
