// Weir's tracer: the cost of one span on the recording thread, and the JSON-lines exporter's speed.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>
#include <weir/telemetry/tracing.hpp>

#include "span/span.hpp"

namespace wt = weir::telemetry;

namespace {
/// Counts what it is given and drops it.
class NullExporter final : public wt::SpanExporter {
 public:
  wt::ExportResult export_spans(std::span<const wt::SpanData>) noexcept override {
    return wt::ExportResult::success;
  }
};

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

SpanResult run_weir_spans(std::uint64_t n) {
  wt::BatchSpanProcessorOptions po;
  po.max_queue_size = 1 << 16;
  po.max_export_batch_size = 4096;
  auto processor = std::make_shared<wt::BatchSpanProcessor>(std::make_shared<NullExporter>(), po);
  wt::Tracer tracer(processor);
  const auto parent = weir::TraceContext::root();
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    auto span = tracer.start_span("batch parse", parent);
    span.set_attribute("weir.stage", "parse");
    span.set_attribute("weir.batch.items", static_cast<std::int64_t>(i & 255U));
    span.set_attribute("weir.batch.errors", std::int64_t{0});
    span.end();
  }
  const double s = since(t0);
  tracer.shutdown(std::chrono::seconds{30});
  const auto st = tracer.stats();
  return SpanResult{n, s, st.exported, st.dropped()};
}

SpanResult run_weir_file_export(std::uint64_t n) {
  // Spans like the tracing interceptor's batch spans: six attributes, no events.
  std::vector<wt::SpanData> spans(std::min<std::uint64_t>(n, 512));
  const auto parent = weir::TraceContext::root();
  for (auto& d : spans) {
    d.trace_id = parent.trace_id;
    d.span_id = weir::SpanId::random();
    d.parent_span_id = parent.span_id;
    d.name = "batch parse";
    d.start_unix_nano = 1'700'000'000'000'000'000;
    d.end_unix_nano = d.start_unix_nano + 25'000;
    d.attributes = {
        {"weir.pipeline", std::string("flights_etl")}, {"weir.stage", std::string("parse")},
        {"weir.batch.items_in", std::int64_t{256}},    {"weir.batch.items_out", std::int64_t{250}},
        {"weir.batch.errors", std::int64_t{0}},        {"weir.batch.filtered", std::int64_t{6}}};
  }
  const auto path =
      std::filesystem::temp_directory_path() / ("weir_bench_spans_" + std::to_string(::getpid()) + ".jsonl");
  SpanResult r;
  {
    wt::JsonLinesFileExporter file(path);
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t done = 0; done < n;) {
      const auto k = std::min<std::uint64_t>(spans.size(), n - done);
      if (file.export_spans(std::span<const wt::SpanData>(spans.data(), k)) == wt::ExportResult::success) {
        r.exported += k;
      } else {
        r.dropped += k;
      }
      done += k;
    }
    r.seconds = since(t0);
  }
  std::filesystem::remove(path);
  r.spans = n;
  return r;
}
