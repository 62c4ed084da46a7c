#pragma once
// A source's in-flight slots (TicketPool, Ticket) and how a waiting source runs the pipeline's tasks
// (HelpingWait). Private to weir_core: batches only carry a shared_ptr<detail::Ticket>.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "weir/clock.hpp"

namespace weir::detail {

/// How a source thread waits for a slot by running the pipeline's tasks instead of sleeping (the
/// engine's arena wait). arm() starts a wait, wait() runs tasks until disarm() has been called once
/// after arm(). Any thread may call disarm().
class HelpingWait {
 public:
  virtual ~HelpingWait() = default;
  virtual void arm() = 0;
  virtual void wait() = 0;
  virtual void disarm() noexcept = 0;
};

/// Bounds the batches a source has in flight; a batch holds a Ticket until it and everything made from
/// it are gone. A waiting source is woken only once half the slots are free again, so a source at
/// full speed sleeps and wakes once per half pool, not once per batch. With a HelpingWait, the source
/// runs the pipeline's tasks while it waits, so a source held back by its downstream lends its core
/// to it. Thread-safe.
class TicketPool {
 public:
  explicit TicketPool(std::ptrdiff_t slots) : free_(slots), wake_at_(slots > 1 ? slots / 2 : 1) {}
  /// Makes the source's waits run tasks through `w` (set before the source starts; not owned).
  void help_with(HelpingWait* w) noexcept { helper_ = w; }
  /// Takes a slot, waiting while none is free. Returns the time spent waiting.
  std::chrono::nanoseconds acquire(const Clock& clock) {
    if (free_.fetch_sub(1) > 0) return std::chrono::nanoseconds{0};
    free_.fetch_add(1);
    const auto t0 = clock.steady_now();
    if (helper_ != nullptr) {
      helper_->arm();
      waiting_.store(true);
      // A release between the first check and `waiting_` did not see the waiter: check again.
      if (ready()) wake();
      helper_->wait();
    } else {
      std::unique_lock lock(mutex_);
      waiting_.store(true);
      cv_.wait(lock, [this] { return ready(); });
      waiting_.store(false);
    }
    free_.fetch_sub(1);
    return clock.steady_now() - t0;
  }
  void release() noexcept {
    if (free_.fetch_add(1) + 1 >= wake_at_ && waiting_.load()) wake();
  }
  /// Lets a waiting source go for good (the run is stopping).
  void open_wide() noexcept {
    open_.store(true);
    wake();
  }

 private:
  [[nodiscard]] bool ready() const noexcept { return open_.load() || free_.load() >= wake_at_; }
  void wake() noexcept {
    if (helper_ != nullptr) {
      // Exactly one waker ends an armed wait.
      if (waiting_.exchange(false)) helper_->disarm();
      return;
    }
    const std::lock_guard lock(mutex_);
    cv_.notify_all();
  }

  std::atomic<std::ptrdiff_t> free_;
  const std::ptrdiff_t wake_at_;
  std::atomic<bool> waiting_{false};
  std::atomic<bool> open_{false};
  HelpingWait* helper_ = nullptr;
  std::mutex mutex_;
  std::condition_variable cv_;
};

class Ticket {
 public:
  explicit Ticket(TicketPool& pool) noexcept : pool_(&pool) {}
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  ~Ticket() { pool_->release(); }

 private:
  TicketPool* pool_;
};

}  // namespace weir::detail
