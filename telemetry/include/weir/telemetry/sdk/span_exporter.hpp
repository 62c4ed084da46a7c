#pragma once
/// \file SpanExporter, the interface a span processor hands finished spans to, and ExportResult. Part
/// of the tracing SDK; the exporters themselves are in exporters/.

#include <span>

#include "weir/telemetry/span_data.hpp"

namespace weir::telemetry {

/// What an exporter did with a batch.
enum class ExportResult { success, failure };

/// Sends finished spans somewhere. The processor calls `export_spans` from its one export thread;
/// `shutdown` may be called from another thread to cut retries short.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  virtual ExportResult export_spans(std::span<const SpanData> spans) noexcept = 0;
  /// Stops waiting (backoffs) and refuses further exports.
  virtual void shutdown() noexcept {}
};

}  // namespace weir::telemetry
