#pragma once
/// \file timeout: runs a stage's calls on threads of the stage's own and gives up on a call that
/// takes longer than a limit, so a hung call does not hold the pipeline.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "weir/clock.hpp"
#include "weir/detail/call_guard.hpp"

namespace weir {

/// Settings of `.timeout(...)`. A plain value.
struct TimeoutOptions {
  std::chrono::nanoseconds limit{0};  ///< a call still running after this long fails with TimeoutError
  /// Threads of the stage's executor, hung calls included; 0 = the stage's parallelism + 2. When every
  /// thread is busy (calls that timed out but have not returned yet), a call fails at once with
  /// TimeoutError without being made.
  int threads = 0;
};

/// The error a call fails with when it did not finish within its stage's timeout (or could not start
/// because every thread of the stage was still busy with calls that had timed out, or was given up
/// because the run stopped while it ran). Immutable.
class TimeoutError : public std::runtime_error {
 public:
  /// Why the call failed.
  enum class Cause {
    limit,      ///< it ran longer than the stage's timeout
    no_thread,  ///< every thread of the stage was busy: it was not made
    stopped,    ///< the run stopped (cancel, a failure elsewhere) before it returned
  };
  TimeoutError(const std::string& stage, std::chrono::nanoseconds configured, std::chrono::nanoseconds actual,
               Cause cause)
      : std::runtime_error(message(stage, configured, actual, cause)),
        configured_(configured),
        actual_(actual),
        cause_(cause) {}
  TimeoutError(const std::string& stage, std::chrono::nanoseconds configured, std::chrono::nanoseconds actual,
               bool no_thread = false)
      : TimeoutError(stage, configured, actual, no_thread ? Cause::no_thread : Cause::limit) {}
  [[nodiscard]] std::chrono::nanoseconds configured() const noexcept { return configured_; }
  /// How long the stage waited (0 when no thread was free).
  [[nodiscard]] std::chrono::nanoseconds actual() const noexcept { return actual_; }
  [[nodiscard]] Cause cause() const noexcept { return cause_; }

  /// `d` in the largest unit that divides it: "250ms", "3s", "1500us".
  [[nodiscard]] static std::string text(std::chrono::nanoseconds d) {
    const auto n = d.count();
    if (n != 0 && n % 1'000'000'000 == 0) return std::to_string(n / 1'000'000'000) + "s";
    if (n != 0 && n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "ms";
    if (n != 0 && n % 1'000 == 0) return std::to_string(n / 1'000) + "us";
    return std::to_string(n) + "ns";
  }

 private:
  static std::string message(const std::string& stage, std::chrono::nanoseconds configured,
                             std::chrono::nanoseconds actual, Cause cause) {
    switch (cause) {
      case Cause::no_thread:
        return "stage '" + stage + "': every timeout thread is busy with a call that timed out";
      case Cause::stopped:
        return "stage '" + stage + "': call abandoned after " +
               text(std::chrono::duration_cast<std::chrono::microseconds>(actual)) +
               " because the run stopped";
      case Cause::limit:
        break;
    }
    return "stage '" + stage + "': call did not finish within " + text(configured);
  }

  std::chrono::nanoseconds configured_;
  std::chrono::nanoseconds actual_;
  Cause cause_;
};

namespace detail {

/// A small pool of plain threads (not oneTBB's) that run one stage's calls with a timeout. Threads
/// start on demand, up to `max_threads`; a submission when all are busy is refused rather than
/// queued, so neither the threads nor the queue grow without bound. Thread-safe.
///
/// On destruction idle threads are joined; threads still inside a call (one that timed out and has not
/// returned) are detached and end when the call returns: everything they touch is shared with them.
class TimeoutExecutor {
 public:
  explicit TimeoutExecutor(int max_threads)
      : state_(std::make_shared<State>()), max_(max_threads < 1 ? 1 : max_threads) {}
  TimeoutExecutor(const TimeoutExecutor&) = delete;
  TimeoutExecutor& operator=(const TimeoutExecutor&) = delete;
  ~TimeoutExecutor() {
    std::vector<char> busy;
    {
      const std::lock_guard lock(state_->mutex);
      state_->shutdown = true;
      busy = state_->busy;
    }
    state_->cv.notify_all();
    for (std::size_t i = 0; i < threads_.size(); ++i) {
      if (busy[i] != 0) {
        threads_[i].detach();
      } else {
        threads_[i].join();
      }
    }
  }

  /// Hands `task` to an idle thread, or to a new one while there are fewer than the maximum;
  /// false when every thread is busy.
  bool submit(std::shared_ptr<TimedTaskBase> task) {
    const std::lock_guard lock(state_->mutex);
    if (state_->idle > 0) {
      --state_->idle;  // reserved for this task: the queue never holds more than the idle threads
      state_->queue.push_back(std::move(task));
      state_->cv.notify_one();
      return true;
    }
    if (static_cast<int>(threads_.size()) >= max_) return false;
    const std::size_t index = threads_.size();
    state_->busy.push_back(1);
    try {
      threads_.emplace_back(&TimeoutExecutor::work, state_, index, std::move(task));
    } catch (...) {
      state_->busy.pop_back();
      throw;
    }
    return true;
  }
  [[nodiscard]] int max_threads() const noexcept { return max_; }
  /// Threads started so far.
  [[nodiscard]] int threads() const {
    const std::lock_guard lock(state_->mutex);
    return static_cast<int>(threads_.size());
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::shared_ptr<TimedTaskBase>> queue;
    std::vector<char> busy;  ///< per thread: inside (or about to enter) a call
    int idle = 0;            ///< threads waiting for a task and not reserved
    bool shutdown = false;
  };

  static void work(std::shared_ptr<State> s, std::size_t index, std::shared_ptr<TimedTaskBase> task) {
    for (;;) {
      if (task->try_start()) task->run_call();
      {
        // Counted idle before the waiter is told, so that its next call finds this thread free.
        const std::lock_guard lock(s->mutex);
        s->busy[index] = 0;
        ++s->idle;
      }
      task->done.notify();
      task.reset();
      std::unique_lock lock(s->mutex);
      s->cv.wait(lock, [&] { return s->shutdown || !s->queue.empty(); });
      if (s->shutdown) return;
      task = std::move(s->queue.front());
      s->queue.pop_front();
      s->busy[index] = 1;
    }
  }

  std::shared_ptr<State> state_;
  std::vector<std::thread> threads_;  // guarded by state_->mutex
  int max_;
};

}  // namespace detail
}  // namespace weir
