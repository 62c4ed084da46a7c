#pragma once
/// \file InMemoryExporter: keeps exported spans in memory, for tests.

#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

#include "weir/telemetry/sdk/span_exporter.hpp"

namespace weir::telemetry {

/// Keeps every exported span in memory, for tests. Thread-safe.
class InMemoryExporter final : public SpanExporter {
 public:
  ExportResult export_spans(std::span<const SpanData> spans) noexcept override;
  /// A copy of the spans exported so far, in export order.
  [[nodiscard]] std::vector<SpanData> spans() const;
  /// Export calls so far.
  [[nodiscard]] std::size_t export_calls() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::vector<SpanData> spans_;
  std::size_t calls_ = 0;
};

}  // namespace weir::telemetry
