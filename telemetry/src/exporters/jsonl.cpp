#include "weir/telemetry/exporters/jsonl.hpp"

#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "weir/telemetry/exporters/otlp.hpp"  // append_otlp_json

namespace weir::telemetry {

struct JsonLinesFileExporter::Impl {
  std::mutex mutex;
  std::ofstream out;  // guarded by mutex
  std::string line;   ///< reused for each export; guarded by mutex
  Resource resource;
};

JsonLinesFileExporter::JsonLinesFileExporter(std::filesystem::path path, Resource resource, bool append)
    : impl_(std::make_unique<Impl>()) {
  impl_->resource = std::move(resource);
  impl_->out.open(path, append ? std::ios::app : std::ios::trunc);
  if (!impl_->out) throw std::runtime_error("cannot open trace file " + path.string());
}

JsonLinesFileExporter::~JsonLinesFileExporter() = default;

ExportResult JsonLinesFileExporter::export_spans(std::span<const SpanData> spans) noexcept {
  if (spans.empty()) return ExportResult::success;
  try {
    const std::lock_guard lock(impl_->mutex);
    std::string& line = impl_->line;
    line.clear();
    append_otlp_json(line, spans, impl_->resource);
    line += '\n';
    impl_->out.write(line.data(), static_cast<std::streamsize>(line.size()));
    impl_->out.flush();
    return impl_->out ? ExportResult::success : ExportResult::failure;
  } catch (...) {
    return ExportResult::failure;
  }
}

}  // namespace weir::telemetry
