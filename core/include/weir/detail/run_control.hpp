#pragma once
/// \file Run-wide control shared by every stage of one run. Not API.

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "weir/clock.hpp"
#include "weir/detail/runtime.hpp"
#include "weir/error.hpp"
#include "weir/report.hpp"

namespace weir::detail {

class TicketPool;

/// Stop flag, final status and error summaries of one run. Thread-safe.
class RunControl {
 public:
  [[nodiscard]] bool stopping() const noexcept { return stop_.load(std::memory_order_acquire); }
  /// Stops the sources; a failure outranks a cancellation.
  void request_stop(RunStatus why) noexcept;
  [[nodiscard]] RunStatus status() const noexcept { return static_cast<RunStatus>(status_.load()); }
  void record_error(const std::string& stage, const std::string& type, const std::string& message,
                    bool retryable, const Clock& clock);
  [[nodiscard]] std::vector<ErrorSummary> errors() const;
  /// What to wake when the run stops (at once when it is stopping already). Sources are watched
  /// from the moment the run is set up, so a cancel right after start reaches them.
  void watch(TicketPool* pool);
  void watch(SourceBase* source);
  /// Notified when the run starts stopping (cuts retry backoffs short).
  [[nodiscard]] Notification& stop_signal() noexcept { return stop_signal_; }
  /// Notifies `n` when the run stops (at once if it is stopping already), until `unwatch_stop(n)`:
  /// how a stage waiting for a timed call hears of a cancel.
  void watch_stop(Notification& n);
  void unwatch_stop(Notification& n) noexcept;

 private:
  std::atomic<bool> stop_{false};
  Notification stop_signal_;
  std::atomic<int> status_{static_cast<int>(RunStatus::completed)};
  mutable std::mutex mutex_;
  std::vector<ErrorSummary> errors_;
  std::vector<TicketPool*> pools_;
  std::vector<SourceBase*> sources_;
  std::vector<Notification*> stop_watchers_;
};

}  // namespace weir::detail
