#include "weir/telemetry/exporters/memory.hpp"

namespace weir::telemetry {

ExportResult InMemoryExporter::export_spans(std::span<const SpanData> spans) noexcept {
  try {
    const std::lock_guard lock(mutex_);
    spans_.insert(spans_.end(), spans.begin(), spans.end());
    ++calls_;
    return ExportResult::success;
  } catch (...) {
    return ExportResult::failure;
  }
}

std::vector<SpanData> InMemoryExporter::spans() const {
  const std::lock_guard lock(mutex_);
  return spans_;
}

std::size_t InMemoryExporter::export_calls() const {
  const std::lock_guard lock(mutex_);
  return calls_;
}

void InMemoryExporter::clear() {
  const std::lock_guard lock(mutex_);
  spans_.clear();
  calls_ = 0;
}

}  // namespace weir::telemetry
