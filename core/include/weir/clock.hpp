#pragma once
/// \file Injected time: every duration and timestamp in Weir comes from a Clock.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace weir {

/// A one-shot flag that threads wait on: `notify()` sets it for good and wakes every waiter.
/// Thread-safe. Clocks use it for waits that must end early (a finished call, a cancelled run).
class Notification {
 public:
  /// Sets the flag and wakes every waiter.
  void notify() {
    const std::lock_guard lock(mutex_);
    set_.store(true, std::memory_order_release);
    cv_.notify_all();
  }
  [[nodiscard]] bool notified() const noexcept { return set_.load(std::memory_order_acquire); }
  /// Waits until notified.
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return notified(); });
  }
  /// Waits in real time until notified or until `deadline`; true when notified.
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [this] { return notified(); });
  }
  /// Waits until notified or until `give_up()` holds; `give_up` is checked under the flag's lock
  /// at first and again after every `poke()` (and, when `recheck` is positive, at least that often in
  /// real time). True when notified.
  template <class GiveUp>
  bool wait_or(GiveUp&& give_up, std::chrono::nanoseconds recheck = std::chrono::nanoseconds{0}) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (notified()) return true;
      if (give_up()) return false;
      if (recheck.count() > 0) {
        cv_.wait_for(lock, recheck);
      } else {
        cv_.wait(lock);
      }
    }
  }
  /// Wakes the waiters of `wait_or` so that they check their give-up condition again.
  void poke() {
    const std::lock_guard lock(mutex_);
    cv_.notify_all();
  }

 private:
  std::atomic<bool> set_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
};

/// Source of monotonic and wall-clock time, injected into a pipeline so tests can control time.
/// Implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Monotonic time, for durations.
  [[nodiscard]] virtual std::chrono::steady_clock::time_point steady_now() const noexcept = 0;
  /// Wall-clock time, for timestamps that leave the process.
  [[nodiscard]] virtual std::chrono::system_clock::time_point system_now() const noexcept = 0;
  /// Waits for `d` (retry backoff). A manual clock advances itself instead of sleeping.
  virtual void sleep_for(std::chrono::nanoseconds d) = 0;
  /// Waits for `d` unless `stop` is notified first (a backoff that a cancelled run cuts short);
  /// false when it was. The default sleeps the whole `d`; SystemClock wakes at once.
  virtual bool sleep_unless(std::chrono::nanoseconds d, Notification& stop) {
    sleep_for(d);
    return !stop.notified();
  }
  /// Waits until `done` is notified or this clock reaches `deadline` (a call with a timeout); true
  /// when notified. The default reads the clock again every millisecond of real time.
  virtual bool wait_until(Notification& done, std::chrono::steady_clock::time_point deadline) {
    return done.wait_or([&] { return steady_now() >= deadline; }, std::chrono::milliseconds{1});
  }
};

/// The real clocks of the machine. Thread-safe and stateless.
class SystemClock final : public Clock {
 public:
  [[nodiscard]] std::chrono::steady_clock::time_point steady_now() const noexcept override {
    return std::chrono::steady_clock::now();
  }
  [[nodiscard]] std::chrono::system_clock::time_point system_now() const noexcept override {
    return std::chrono::system_clock::now();
  }
  void sleep_for(std::chrono::nanoseconds d) override { std::this_thread::sleep_for(d); }
  bool sleep_unless(std::chrono::nanoseconds d, Notification& stop) override {
    return !stop.wait_until(std::chrono::steady_clock::now() + d);
  }
  bool wait_until(Notification& done, std::chrono::steady_clock::time_point deadline) override {
    return done.wait_until(deadline);
  }
};

/// The shared SystemClock instance used when a pipeline is given no clock.
[[nodiscard]] inline std::shared_ptr<Clock> system_clock() {
  static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

/// A clock that only moves when told to, for deterministic tests; `sleep_for` advances it.
/// `wait_until` waits (in real time) until the awaited call finishes or another thread advances the
/// clock past the deadline, so a call that finishes without moving the clock is always seen and one
/// that moves the clock past its deadline and then hangs always times out.
/// Thread-safe: time is held in atomics.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(
      std::chrono::system_clock::time_point wall_start = std::chrono::system_clock::time_point{})
      : wall_offset_ns_(wall_start.time_since_epoch().count()) {}

  [[nodiscard]] std::chrono::steady_clock::time_point steady_now() const noexcept override {
    return std::chrono::steady_clock::time_point{
        std::chrono::nanoseconds{now_ns_.load(std::memory_order_acquire)}};
  }
  [[nodiscard]] std::chrono::system_clock::time_point system_now() const noexcept override {
    const auto ns = std::chrono::nanoseconds{now_ns_.load(std::memory_order_acquire)};
    return std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::system_clock::duration{wall_offset_ns_} + ns)};
  }
  void sleep_for(std::chrono::nanoseconds d) override { advance(d); }
  bool sleep_unless(std::chrono::nanoseconds d, Notification& stop) override {
    advance(d);
    return !stop.notified();
  }
  bool wait_until(Notification& done, std::chrono::steady_clock::time_point deadline) override {
    {
      const std::lock_guard lock(waiters_mutex_);
      waiters_.push_back(&done);
    }
    const bool ok = done.wait_or([&] { return steady_now() >= deadline; });
    const std::lock_guard lock(waiters_mutex_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &done));
    return ok;
  }
  /// Moves both clocks forward by `d` and wakes the threads waiting in `wait_until`.
  void advance(std::chrono::nanoseconds d) noexcept {
    now_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
    const std::lock_guard lock(waiters_mutex_);
    for (auto* w : waiters_) w->poke();
  }

 private:
  std::atomic<std::int64_t> now_ns_{0};
  std::mutex waiters_mutex_;
  std::vector<Notification*> waiters_;  // threads in wait_until, woken by advance
  std::chrono::system_clock::rep wall_offset_ns_;
};

}  // namespace weir
