// A run's stop flag, final status and error summaries (RunControl).
#include "weir/detail/run_control.hpp"

#include "ticket_pool.hpp"

#include <algorithm>
#include <mutex>

namespace weir::detail {

void RunControl::request_stop(RunStatus why) noexcept {
  int expected = static_cast<int>(RunStatus::completed);
  if (!status_.compare_exchange_strong(expected, static_cast<int>(why)) && why == RunStatus::failed) {
    status_.store(static_cast<int>(RunStatus::failed));
  }
  stop_.store(true, std::memory_order_release);
  stop_signal_.notify();
  const std::lock_guard lock(mutex_);
  for (auto* p : pools_) p->open_wide();
  for (auto* s : sources_) s->wake();
  for (auto* n : stop_watchers_) n->notify();
}

void RunControl::watch_stop(Notification& n) {
  const std::lock_guard lock(mutex_);
  stop_watchers_.push_back(&n);
  if (stopping()) n.notify();
}

void RunControl::unwatch_stop(Notification& n) noexcept {
  const std::lock_guard lock(mutex_);
  const auto it = std::find(stop_watchers_.begin(), stop_watchers_.end(), &n);
  if (it != stop_watchers_.end()) stop_watchers_.erase(it);
}

void RunControl::record_error(const std::string& stage, const std::string& type, const std::string& message,
                              bool retryable, const Clock& clock) {
  const auto now = clock.system_now();
  const std::lock_guard lock(mutex_);
  for (auto& e : errors_) {
    if (e.stage == stage && e.type == type) {
      ++e.count;
      e.last_seen = now;
      e.retryable = e.retryable || retryable;
      return;
    }
  }
  errors_.push_back(ErrorSummary{stage, type, message, retryable, 1, now, now});
}

std::vector<ErrorSummary> RunControl::errors() const {
  const std::lock_guard lock(mutex_);
  return errors_;
}

void RunControl::watch(TicketPool* pool) {
  const std::lock_guard lock(mutex_);
  pools_.push_back(pool);
  if (stopping()) pool->open_wide();
}

void RunControl::watch(SourceBase* source) {
  const std::lock_guard lock(mutex_);
  sources_.push_back(source);
  if (stopping()) source->wake();
}
}  // namespace weir::detail
