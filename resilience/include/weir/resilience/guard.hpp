#pragma once
/// \file StageGuard: a stage's circuit breaker and timeout, behind core's CallGuard interface
/// (weir/detail/call_guard.hpp, where operators call through it). Not API.

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "weir/detail/call_guard.hpp"
#include "weir/detail/runtime.hpp"
#include "weir/resilience/circuit_breaker.hpp"
#include "weir/resilience/timeout.hpp"

namespace weir::detail {

/// Circuit breaker and timeout of one stage, shared by every thread running it. Thread-safe.
/// StageResilience::equip gives one to a stage with `.timeout(...)` or `.circuit_breaker(...)`.
class StageGuard final : public CallGuard {
 public:
  StageGuard(Stage& stage, std::optional<TimeoutOptions> timeout,
             std::optional<CircuitBreakerOptions> breaker)
      : stage_(&stage) {
    if (timeout) {
      limit_ = timeout->limit;
      const int threads = timeout->threads > 0 ? timeout->threads : stage.info.parallelism + 2;
      executor_ = std::make_unique<TimeoutExecutor>(threads);
    }
    if (breaker) breaker_ = std::make_unique<CircuitBreaker>(*breaker);
  }

  /// guarded_call() through this guard (for tests and direct use).
  template <class F, class T>
  auto call(F& fn, const T& item, BatchTally& tally) {
    return guarded_call(*this, fn, item, tally);
  }

  Permit admit(BatchTally& tally) override {
    if (!breaker_) return {};
    const auto p = admit_or_throw(tally);
    return Permit{p.trial, p.generation};
  }
  void succeeded(const Permit& p, BatchTally& tally) override {
    if (!breaker_) return;
    ++tally.circuit_successes;
    if (auto c = breaker_->succeeded(CircuitBreaker::Permit{true, p.trial, p.generation})) changed(*c);
  }
  void failed(const Permit& p, BatchTally& tally) override {
    if (!breaker_) return;
    ++tally.circuit_failures;
    if (auto c = breaker_->failed(CircuitBreaker::Permit{true, p.trial, p.generation}, *stage_->clock))
      changed(*c);
  }
  [[nodiscard]] bool timed() const noexcept override { return executor_ != nullptr; }
  void run_timed(const std::shared_ptr<TimedTaskBase>& task, BatchTally& tally) override {
    const Clock& clock = *stage_->clock;
    const auto start = clock.steady_now();
    if (!executor_->submit(task)) timed_out(std::chrono::nanoseconds{0}, true, tally);
    bool notified = false;
    {
      // The run stopping (cancel, a failure elsewhere) notifies `done` too, so the wait ends at once.
      const StopWatch watch(*stage_, task->done);
      notified = const_cast<Clock&>(clock).wait_until(task->done, start + limit_);
    }
    if (!notified || !task->returned()) {
      task->abandon();
      const auto waited = clock.steady_now() - start;
      if (notified) throw TimeoutError(stage_->info.name, limit_, waited, TimeoutError::Cause::stopped);
      timed_out(waited, false, tally);
    }
  }

  /// The breaker's current state, or nothing when the stage has no breaker.
  [[nodiscard]] std::optional<CircuitState> circuit_state() const noexcept override {
    if (!breaker_) return std::nullopt;
    return breaker_->state();
  }
  [[nodiscard]] const TimeoutExecutor* executor() const noexcept { return executor_.get(); }

 private:
  /// Lets a call through the circuit breaker or throws CircuitOpenError. With OnCircuitOpen::wait a
  /// call the breaker does not let through waits for its next change of state or the end of its
  /// pause, and tries again; it gives up after `open_for` in all, or when the run stops.
  CircuitBreaker::Permit admit_or_throw(BatchTally& tally) {
    auto& clock = const_cast<Clock&>(*stage_->clock);
    const bool wait = breaker_->options().on_open == OnCircuitOpen::wait;
    std::optional<std::chrono::steady_clock::time_point> give_up;
    for (;;) {
      std::optional<CircuitBreaker::Change> change;
      Notification wake;
      const auto permit =
          wait ? breaker_->admit_or_watch(clock, change, wake) : breaker_->admit(clock, change);
      if (change) changed(*change);
      if (permit.allowed) return permit;
      if (wait) {
        const auto now = clock.steady_now();
        if (!give_up) give_up = now + breaker_->options().open_for;
        if (now < *give_up && !stage_->stopping()) {
          // Open: until its pause ends; half-open with its trials taken: until they end.
          const auto until = permit.trial ? *give_up : std::min(*give_up, breaker_->open_until());
          {
            const StopWatch watch(*stage_, wake);
            (void)clock.wait_until(wake, until);
          }
          breaker_->unwatch(wake);
          continue;
        }
        breaker_->unwatch(wake);
      }
      ++tally.circuit_rejected;
      throw CircuitOpenError(stage_->info.name);
    }
  }

  /// Has the run's stop notify a timed call's `done` while the stage waits for it.
  class StopWatch {
   public:
    StopWatch(Stage& st, Notification& n) : st_(st), n_(n) { st_.watch_stop(n_); }
    ~StopWatch() { st_.unwatch_stop(n_); }
    StopWatch(const StopWatch&) = delete;
    StopWatch& operator=(const StopWatch&) = delete;

   private:
    Stage& st_;
    Notification& n_;
  };

  [[noreturn]] void timed_out(std::chrono::nanoseconds actual, bool no_thread, BatchTally& tally) {
    ++tally.timeouts;
    if (stage_->listens()) stage_->emit(events::TimeoutOccurred{limit_, actual});
    throw TimeoutError(stage_->info.name, limit_, actual, no_thread);
  }
  void changed(const CircuitBreaker::Change& c) {
    if (stage_->listens()) stage_->emit(events::CircuitStateChanged{c.from, c.to});
  }

  Stage* stage_;
  std::chrono::nanoseconds limit_{0};
  std::unique_ptr<TimeoutExecutor> executor_;
  std::unique_ptr<CircuitBreaker> breaker_;
};

}  // namespace weir::detail
