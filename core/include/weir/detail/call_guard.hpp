#pragma once
/// \file How operators call a user's function when its stage has a timeout or a circuit breaker: the
/// CallGuard interface (implemented by the resilience layer's StageGuard) and guarded_call(). Not API.
///
/// A stage with `.timeout(...)` or `.circuit_breaker(...)` gets a guard; operators reach it through
/// `OpCtx::guard`, which is null for every other stage, and call the user's function through
/// guarded_call() instead of directly. Stages without a guard pay nothing: guarded stages make the
/// fused loop keep its items (`Stage::keeps_failed_items`), and operators only look at the guard in
/// that instantiation of the loop. A guarded call makes a few virtual calls, which is nothing next to
/// a lock of the breaker or a hand-over to another thread.

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "weir/clock.hpp"
#include "weir/detail/runtime.hpp"
#include "weir/user_metrics.hpp"

namespace weir::detail {

/// One call handed to a guard's threads (the resilience layer's TimeoutExecutor). Shared by the waiting stage and the executing thread, so
/// whatever the call uses (the item's copy, the function) lives until both are done with it.
class TimedTaskBase {
 public:
  virtual ~TimedTaskBase() = default;
  TimedTaskBase() = default;
  TimedTaskBase(const TimedTaskBase&) = delete;
  TimedTaskBase& operator=(const TimedTaskBase&) = delete;
  /// Makes the call, keeping its result or exception; never throws.
  virtual void run() noexcept = 0;
  /// True when the call may start (its waiter has not given up).
  bool try_start() noexcept {
    int expected = queued;
    return state_.compare_exchange_strong(expected, running, std::memory_order_acq_rel);
  }
  /// The waiter gives up: a call not started yet never starts; a running one's result is dropped.
  void abandon() noexcept { state_.store(abandoned, std::memory_order_release); }
  /// Makes the call and records that it returned (its result or error is then set).
  void run_call() noexcept {
    run();
    returned_.store(true, std::memory_order_release);
  }
  /// True once the call has returned; `done` may also be notified by the run stopping before that.
  [[nodiscard]] bool returned() const noexcept { return returned_.load(std::memory_order_acquire); }
  Notification done;  ///< notified when the call has returned (or was skipped), or when the run stops

 private:
  static constexpr int queued = 0, running = 1, abandoned = 2;
  std::atomic<int> state_{queued};
  std::atomic<bool> returned_{false};
};

/// A call of `F` on a copy of an item of type `T`, returning `R` (maybe void).
template <class F, class T, class R>
class TimedTask final : public TimedTaskBase {
 public:
  TimedTask(std::shared_ptr<F> fn, const T& item) : fn_(std::move(fn)), item_(item) {}
  void run() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        detail::invoke_user(*fn_, none_, arg());
      } else {
        result.emplace(detail::invoke_user(*fn_, none_, arg()));
      }
    } catch (...) {
      error = std::current_exception();
    }
  }
  struct Nothing {};
  std::optional<std::conditional_t<std::is_void_v<R>, Nothing, R>> result;  ///< set before `done`
  std::exception_ptr error;                                                 ///< set before `done`

 private:
  decltype(auto) arg() {
    if constexpr (detail::user_invocable<F&, const T&>) {
      return static_cast<const T&>(item_);
    } else {
      return std::move(item_);  // the function takes an rvalue; the copy is the task's own
    }
  }
  std::shared_ptr<F> fn_;
  T item_;
  StageContext none_;  ///< what a function taking a context records into here: nothing
};

/// Circuit breaker and timeout around one stage's calls, shared by every thread running the stage.
/// Thread-safe.
class CallGuard {
 public:
  /// A call the circuit breaker let through, to hand back with its outcome.
  struct Permit {
    bool trial = false;  ///< admitted as a half-open trial
    std::uint64_t generation = 0;
  };
  CallGuard() = default;
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;
  virtual ~CallGuard() = default;

  /// Lets a call through the breaker (perhaps after waiting for it), or throws weir::CircuitOpenError;
  /// counts a rejection in `tally`. Without a breaker every call goes through.
  virtual Permit admit(BatchTally& tally) = 0;
  /// The outcome of a call admit() let through.
  virtual void succeeded(const Permit& p, BatchTally& tally) = 0;
  virtual void failed(const Permit& p, BatchTally& tally) = 0;
  /// Whether calls run on the guard's own threads with a time limit.
  [[nodiscard]] virtual bool timed() const noexcept = 0;
  /// Runs `task` on one of the guard's threads and waits for it to return; throws weir::TimeoutError
  /// (and abandons the task) when it takes longer than the limit, no thread is free, or the run stops.
  /// On return the task has returned: its result or its error is set.
  virtual void run_timed(const std::shared_ptr<TimedTaskBase>& task, BatchTally& tally) = 0;
  /// The breaker's current state, or nothing when the stage has no breaker.
  [[nodiscard]] virtual std::optional<CircuitState> circuit_state() const noexcept = 0;

  /// The copy of the stage's function that its timed calls share, made before the first call. A call
  /// that timed out keeps it alive until it returns, even after the pipeline is gone.
  template <class F>
  std::shared_ptr<F> shared_fn(F& fn) {
    std::call_once(fn_once_, [&] { fn_copy_ = std::make_shared<F>(fn); });
    return std::static_pointer_cast<F>(fn_copy_);
  }

 private:
  std::once_flag fn_once_;
  std::shared_ptr<void> fn_copy_;
};

/// Calls `fn` on `item` under the guard's breaker and timeout; returns what `fn` returns (by value) or
/// throws what it threw, weir::CircuitOpenError or weir::TimeoutError. Counts the outcome in `tally`.
/// A function that takes a StageContext records into `user` when it runs on the calling thread, and
/// nowhere when it runs on one of the guard's threads.
template <class F, class T>
auto guarded_call(CallGuard& guard, F& fn, const T& item, BatchTally& tally, StageContext& user) {
  using Raw = decltype(invoke_user(fn, user, pass_kept(fn, item)));
  using R = std::conditional_t<std::is_void_v<Raw>, void, std::remove_cvref_t<Raw>>;
  auto invoke = [&]() -> R {
    if (!guard.timed()) return invoke_user(fn, user, pass_kept(fn, item));
    auto task = std::make_shared<TimedTask<F, T, R>>(guard.shared_fn(fn), item);
    guard.run_timed(task, tally);
    if (task->error) std::rethrow_exception(task->error);
    if constexpr (!std::is_void_v<R>) return std::move(*task->result);
  };
  const CallGuard::Permit permit = guard.admit(tally);
  if constexpr (std::is_void_v<R>) {
    try {
      invoke();
    } catch (...) {
      guard.failed(permit, tally);
      throw;
    }
    guard.succeeded(permit, tally);
  } else {
    std::optional<R> r;
    try {
      r.emplace(invoke());
    } catch (...) {
      guard.failed(permit, tally);
      throw;
    }
    guard.succeeded(permit, tally);
    return std::move(*r);
  }
}

/// The same for a call that records nothing through a StageContext.
template <class F, class T>
auto guarded_call(CallGuard& guard, F& fn, const T& item, BatchTally& tally) {
  StageContext none;
  return guarded_call(guard, fn, item, tally, none);
}

}  // namespace weir::detail
