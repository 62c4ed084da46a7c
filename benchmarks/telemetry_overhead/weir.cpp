// Competitors "weir_no_telemetry", "weir" and "weir_full": the same pipeline, with no telemetry,
// with the Prometheus collector attached (its exposition rendered once at the end so it is real),
// and with everything attached at default settings: metrics, the tracer (default sampling, spans to
// a JSON-lines file), events (a bounded sink in front of a JSON-lines file) and JSON logs at info
// level (to a file).
#include <spdlog/sinks/basic_file_sink.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <ranges>
#include <string>
#include <thread>
#include <weir/telemetry/events.hpp>
#include <weir/telemetry/logging_collector.hpp>
#include <weir/telemetry/logs.hpp>
#include <weir/telemetry/metrics.hpp>
#include <weir/telemetry/prometheus.hpp>
#include <weir/telemetry/tracing.hpp>
#include <weir/weir.hpp>

#include "common/bench.hpp"
#include "telemetry_overhead/overhead.hpp"

OverheadResult run_weir(std::uint64_t n, Telemetry telemetry) {
  weir::PipelineOptions opts;
  opts.telemetry = telemetry != Telemetry::none;
  weir::Pipeline p("telemetry_overhead", opts);
  std::uint64_t sum = 0;
  p.source(std::views::iota(std::uint64_t{0}, n))
      .map([](std::uint64_t x) { return overhead_work(x); })
      .name("work")
      .parallelism(static_cast<int>(std::thread::hardware_concurrency()))
      .filter([](std::uint64_t x) { return overhead_keep(x); })
      .name("keep")
      .sink([&sum](std::uint64_t x) { sum += x; })
      .name("sum");
  std::shared_ptr<weir::telemetry::PrometheusCollector> prom;
  if (telemetry != Telemetry::none) {
    prom = std::make_shared<weir::telemetry::PrometheusCollector>();
    weir::telemetry::attach(p, prom);
  }
  namespace wt = weir::telemetry;
  const auto dir = std::filesystem::temp_directory_path();
  std::shared_ptr<wt::Tracer> tracer;
  std::shared_ptr<wt::BoundedSink> events;
  if (telemetry == Telemetry::full) {
    tracer = std::make_shared<wt::Tracer>(std::make_shared<wt::BatchSpanProcessor>(
        std::make_shared<wt::JsonLinesFileExporter>(dir / "weir_bench_spans.jsonl")));
    wt::trace(p, tracer);
    prom->watch(tracer);
    events = std::make_shared<wt::BoundedSink>(
        std::make_shared<wt::JsonLinesFileSink>(dir / "weir_bench_events.jsonl"));
    wt::emit_events(p, events);
    wt::LogOptions lo;
    lo.format = wt::LogFormat::json;
    lo.level = wt::LogLevel::info;
    lo.sink =
        std::make_shared<spdlog::sinks::basic_file_sink_mt>((dir / "weir_bench_log.jsonl").string(), true);
    const auto logger = wt::make_logger(lo);
    wt::attach(p, std::make_shared<wt::LoggingCollector>(logger, wt::LogFormat::json));
    wt::log_runs(p, wt::StructuredLogger(logger, wt::LogFormat::json));
  }
  weir::bench::Stopwatch watch;
  (void)p.run();
  const double s = watch.seconds();
  if (tracer) (void)tracer->shutdown(std::chrono::seconds(2));
  if (events) events->stop(true);
  if (prom) {
    const auto text = prom->render();
    weir::bench::do_not_optimize(text);
  }
  return {n, s, sum};
}
