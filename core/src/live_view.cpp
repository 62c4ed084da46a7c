// LiveView: a pipeline's counters, readable from any thread while it runs and after.
#include <mutex>

#include "execution.hpp"

namespace weir {

std::string_view to_string(RunPhase p) noexcept {
  switch (p) {
    case RunPhase::idle:
      return "idle";
    case RunPhase::running:
      return "running";
    case RunPhase::finished:
      return "finished";
  }
  return "unknown";
}

Snapshot LiveView::snapshot() const {
  const std::lock_guard lock(mutex_);
  if (exec_ == nullptr) return last_;
  return exec_->snapshot();
}

void LiveView::bind(const detail::Execution* e) {
  const std::lock_guard lock(mutex_);
  exec_ = e;
}

void LiveView::unbind() {
  const std::lock_guard lock(mutex_);
  if (exec_ != nullptr) last_ = exec_->snapshot();
  exec_ = nullptr;
}

}  // namespace weir
