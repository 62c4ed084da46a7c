#pragma once
/// \file The per-stage slow path around a user call: circuit breaker and timeout. Not API.
///
/// A stage with `.timeout(...)` or `.circuit_breaker(...)` gets a StageGuard; operators reach it
/// through `OpCtx::guard`, which is null for every other stage, and call the user's function through
/// `StageGuard::call` instead of directly. Stages without a guard pay nothing: guarded stages make the
/// fused loop keep its items (`Stage::keeps_failed_items`), and operators only look at the
/// guard in that instantiation of the loop.

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "weir/detail/runtime.hpp"
#include "weir/resilience/circuit_breaker.hpp"
#include "weir/resilience/timeout.hpp"

namespace weir::detail {

/// Circuit breaker and timeout of one stage, shared by every thread running it. Thread-safe.
class StageGuard {
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

  /// Calls `fn` on `item` under the breaker and the timeout; returns what `fn` returns (by value) or
  /// throws what it threw, weir::CircuitOpenError or weir::TimeoutError. Counts the outcome in `tally`.
  /// A function that takes a StageContext records into `user` when it runs on the calling thread,
  /// and nowhere when it runs on a timeout thread.
  template <class F, class T>
  auto call(F& fn, const T& item, BatchTally& tally, StageContext& user) {
    using Raw = decltype(invoke_user(fn, user, pass_kept(fn, item)));
    using R = std::conditional_t<std::is_void_v<Raw>, void, std::remove_cvref_t<Raw>>;
    CircuitBreaker::Permit permit{true, false, 0};
    if (breaker_) permit = admit(tally);
    if constexpr (std::is_void_v<R>) {
      try {
        invoke<R>(fn, item, tally, user);
      } catch (...) {
        failed(permit, tally);
        throw;
      }
      succeeded(permit, tally);
    } else {
      std::optional<R> r;
      try {
        r.emplace(invoke<R>(fn, item, tally, user));
      } catch (...) {
        failed(permit, tally);
        throw;
      }
      succeeded(permit, tally);
      return std::move(*r);
    }
  }

  /// The same for a call that records nothing through a StageContext.
  template <class F, class T>
  auto call(F& fn, const T& item, BatchTally& tally) {
    StageContext none;
    return call(fn, item, tally, none);
  }

  /// The breaker's current state, or nothing when the stage has no breaker.
  [[nodiscard]] std::optional<CircuitState> circuit_state() const noexcept {
    if (!breaker_) return std::nullopt;
    return breaker_->state();
  }
  [[nodiscard]] const TimeoutExecutor* executor() const noexcept { return executor_.get(); }

 private:
  template <class R, class F, class T>
  R invoke(F& fn, const T& item, BatchTally& tally, StageContext& user) {
    if (!executor_) return invoke_user(fn, user, pass_kept(fn, item));
    auto task = std::make_shared<TimedTask<F, T, R>>(shared_fn(fn), item);
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
    if (task->error) std::rethrow_exception(task->error);
    if constexpr (!std::is_void_v<R>) return std::move(*task->result);
  }

  /// Lets a call through the circuit breaker or throws CircuitOpenError. With OnCircuitOpen::wait a
  /// call the breaker does not let through waits for its next change of state or the end of its
  /// pause, and tries again; it gives up after `open_for` in all, or when the run stops.
  CircuitBreaker::Permit admit(BatchTally& tally) {
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

  /// The copy of the stage's function that its timed calls share, made before the first call. A call
  /// that timed out keeps it alive until it returns, even after the pipeline is gone.
  template <class F>
  std::shared_ptr<F> shared_fn(F& fn) {
    std::call_once(fn_once_, [&] { fn_copy_ = std::make_shared<F>(fn); });
    return std::static_pointer_cast<F>(fn_copy_);
  }

  [[noreturn]] void timed_out(std::chrono::nanoseconds actual, bool no_thread, BatchTally& tally) {
    ++tally.timeouts;
    if (stage_->listens()) stage_->emit(events::TimeoutOccurred{limit_, actual});
    throw TimeoutError(stage_->info.name, limit_, actual, no_thread);
  }
  void succeeded(const CircuitBreaker::Permit& p, BatchTally& tally) {
    if (!breaker_) return;
    ++tally.circuit_successes;
    if (auto c = breaker_->succeeded(p)) changed(*c);
  }
  void failed(const CircuitBreaker::Permit& p, BatchTally& tally) {
    if (!breaker_) return;
    ++tally.circuit_failures;
    if (auto c = breaker_->failed(p, *stage_->clock)) changed(*c);
  }
  void changed(const CircuitBreaker::Change& c) {
    if (stage_->listens()) stage_->emit(events::CircuitStateChanged{c.from, c.to});
  }

  Stage* stage_;
  std::chrono::nanoseconds limit_{0};
  std::unique_ptr<TimeoutExecutor> executor_;
  std::unique_ptr<CircuitBreaker> breaker_;
  std::once_flag fn_once_;
  std::shared_ptr<void> fn_copy_;
};

}  // namespace weir::detail
