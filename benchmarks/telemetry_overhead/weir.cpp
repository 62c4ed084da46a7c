// Competitors "weir_no_telemetry", "weir", "weir_page_open" and "weir_full": the same pipeline, with no
// telemetry, with the Prometheus collector attached (its exposition rendered once at the end so it is
// real), with the collector and a TelemetryServer whose live page is open (a thread GETs /ui/state and
// /ui/history of stage "work" once a second, starting at once, as the page does), and with everything
// attached at default settings: metrics, the tracer (default sampling, spans to a JSON-lines file), events (a
// bounded sink in front of a JSON-lines file) and JSON logs at info level (to a file).
#include <curl/curl.h>
#include <spdlog/sinks/basic_file_sink.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include <chrono>
#include <filesystem>
#include <memory>
#include <ranges>
#include <string>
#include <thread>
#include <weir/telemetry/events.hpp>
#include <weir/telemetry/http_server.hpp>
#include <weir/telemetry/logging_collector.hpp>
#include <weir/telemetry/logs.hpp>
#include <weir/telemetry/metrics.hpp>
#include <weir/telemetry/prometheus.hpp>
#include <weir/telemetry/tracing.hpp>
#include <weir/weir.hpp>

#include "common/bench.hpp"
#include "telemetry_overhead/overhead.hpp"

namespace {

std::size_t discard(char*, std::size_t size, std::size_t n, void*) {
  return size * n;
}

/// GETs the live page's update requests once a second until destroyed, on a thread of its own.
class PagePoller {
 public:
  explicit PagePoller(std::string url) : url_(std::move(url)), thread_([this] { loop(); }) {}
  ~PagePoller() {
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  PagePoller(const PagePoller&) = delete;
  PagePoller& operator=(const PagePoller&) = delete;

 private:
  void get(const std::string& path) const {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return;
    const std::string url = url_ + path;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &discard);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_perform(curl);
    curl_easy_cleanup(curl);
  }
  void loop() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      lock.unlock();
      get("/ui/state");
      get("/ui/history?pipeline=telemetry_overhead&stage=work");
      lock.lock();
      wake_.wait_for(lock, std::chrono::seconds{1}, [this] { return stop_; });
    }
  }
  std::string url_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

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
  std::unique_ptr<weir::telemetry::TelemetryServer> server;
  std::unique_ptr<PagePoller> poller;
  if (telemetry == Telemetry::page) {
    server = std::make_unique<weir::telemetry::TelemetryServer>(prom);
    poller = std::make_unique<PagePoller>(server->url());
  }
  weir::bench::Stopwatch watch;
  (void)p.run();
  const double s = watch.seconds();
  poller.reset();
  server.reset();
  if (tracer) (void)tracer->shutdown(std::chrono::seconds(2));
  if (events) events->stop(true);
  if (prom) {
    const auto text = prom->render();
    weir::bench::do_not_optimize(text);
  }
  return {n, s, sum};
}
