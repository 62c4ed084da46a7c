#pragma once
/// \file JsonLinesFileExporter: each export as one OTLP JSON request body on a line of a file.

#include <filesystem>
#include <memory>
#include <span>

#include "weir/telemetry/sdk/resource.hpp"
#include "weir/telemetry/sdk/span_exporter.hpp"

namespace weir::telemetry {

/// Writes each export as one OTLP JSON request body on a line of a file (JSON lines). Thread-safe.
class JsonLinesFileExporter final : public SpanExporter {
 public:
  /// Opens (creates or truncates, or with `append` appends to) `path`; throws std::runtime_error
  /// when it cannot.
  explicit JsonLinesFileExporter(std::filesystem::path path, Resource resource = {}, bool append = false);
  ~JsonLinesFileExporter() override;
  ExportResult export_spans(std::span<const SpanData> spans) noexcept override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir::telemetry
