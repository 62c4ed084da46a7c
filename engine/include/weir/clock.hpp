#pragma once
/// \file Injected time: every duration and timestamp in Weir comes from a Clock.

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

namespace weir {

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
};

/// The shared SystemClock instance used when a pipeline is given no clock.
[[nodiscard]] inline std::shared_ptr<Clock> system_clock() {
  static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

/// A clock that only moves when told to, for deterministic tests; `sleep_for` advances it.
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
  /// Moves both clocks forward by `d`.
  void advance(std::chrono::nanoseconds d) noexcept {
    now_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
  }

 private:
  std::atomic<std::int64_t> now_ns_{0};
  std::chrono::system_clock::rep wall_offset_ns_;
};

}  // namespace weir
