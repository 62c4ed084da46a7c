// flights_etl: reads US flight records and airports, validates every flight, adds the states of its
// airports with a lookup join, and writes per event-time window and origin state figures
// (state_windows.jsonl), per route figures computed with map-reduce (routes.jsonl), and every record
// it could not use with the reason (dead_letters.jsonl). Prints the run report at the end.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <string>
#include <weir/telemetry/events.hpp>
#include <weir/telemetry/http_server.hpp>
#include <weir/telemetry/logging_collector.hpp>
#include <weir/telemetry/logs.hpp>
#include <weir/telemetry/tracing.hpp>
#include <weir/weir.hpp>

#include "etl.hpp"
#include "flights.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Flights ETL: per-state windows, routes and dead letters of US flight records, with Weir"};
  flights::EtlOptions options;
  std::filesystem::path out_dir = "out/flights";
  std::string window = "1d";
  app.add_option("--flights", options.flights_path, "flight records: a JSON array or JSON lines")
      ->capture_default_str();
  app.add_option("--airports", options.airports_path,
                 "airports CSV (iata,name,city,state,country,latitude,longitude)")
      ->capture_default_str();
  app.add_option("--out", out_dir, "output directory")->capture_default_str();
  app.add_option("--window", window, "event-time tumbling window: a number and s, m, h, d or w (90m, 6h, 1d)")
      ->check([](const std::string& text) -> std::string {
        try {
          if (flights::parse_duration(text) > std::int64_t{3650} * 86400)
            return "a window of at most 3650 days";
          return {};
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      })
      ->capture_default_str();
  app.add_option("--repeat", options.repeat,
                 "replay the input N times, copy k moved k times the days the input spans (load tests)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--parallelism", options.parallelism, "partitions of the window and map-reduce stages")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  int metrics_port = -1;
  bool keep_serving = false;
  auto* port_opt = app.add_option("--metrics-port", metrics_port,
                                  "serve /metrics, /health, /ready, /live and /dag on 127.0.0.1:P "
                                  "(0: a free port; off when absent)")
                       ->check(CLI::Range(0, 65535));
  app.add_flag("--keep-serving", keep_serving,
               "keep the endpoints up after the run until SIGINT or SIGTERM, then exit")
      ->needs(port_opt);
  std::filesystem::path events_file;
  std::string log_format;
  std::string log_level;
  app.add_option("--events-file", events_file, "write the run's events as JSON lines (see docs/events.md)");
  app.add_option("--log-format", log_format, "log to stderr as text or json (off unless this or --log-level)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", log_level, "trace, debug, info (default), warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  // Tracing: --trace-file (OTLP JSON lines) or --otlp-endpoint (OTLP/HTTP JSON); --trace-sample of runs.
  std::string trace_file, otlp_endpoint;
  double trace_sample = 1.0;
  auto* trace_file_opt =
      app.add_option("--trace-file", trace_file, "write spans to F, one OTLP JSON request per line");
  app.add_option("--otlp-endpoint", otlp_endpoint,
                 "send spans to an OTLP/HTTP collector (POST URL/v1/traces; an http or https URL)")
      ->check([](const std::string& url) { return weir::telemetry::otlp_endpoint_error(url); })
      ->excludes(trace_file_opt);
  app.add_option("--trace-sample", trace_sample, "fraction of runs traced (by trace id)")
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            // Written so that NaN, which fails every comparison, is refused too.
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size() || !(value >= 0.0 && value <= 1.0))
              return "a number from 0 to 1, not " + flights::one_line(text);
            return {};
          },
          "FRACTION"))
      ->capture_default_str();
  auto setup_tracing = [&](flights::EtlOptions& o,
                           const std::shared_ptr<weir::telemetry::PrometheusCollector>& m,
                           const weir::telemetry::StructuredLogger& log) {
    namespace wt = weir::telemetry;
    if (trace_file.empty() && otlp_endpoint.empty()) return std::shared_ptr<wt::Tracer>{};
    wt::Resource res{"flights_etl", {}, {}};
    std::shared_ptr<wt::SpanExporter> exporter;
    if (!otlp_endpoint.empty()) {
      wt::OtlpHttpOptions oo;
      oo.endpoint = otlp_endpoint;
      oo.resource = res;
      oo.logger = log;
      exporter = std::make_shared<wt::OtlpHttpExporter>(oo);
    } else {
      exporter = std::make_shared<wt::JsonLinesFileExporter>(trace_file, res);
    }
    wt::TracerOptions to;
    to.sampler = wt::parent_based_sampler(wt::ratio_sampler(trace_sample));
    wt::BatchSpanProcessorOptions po;
    po.logger = log;
    auto tracer = std::make_shared<wt::Tracer>(std::make_shared<wt::BatchSpanProcessor>(exporter, po), to);
    if (m) m->watch(tracer);
    o.configure = [before = o.configure, tracer](weir::Pipeline& p) {
      if (before) before(p);
      wt::trace(p, tracer);
    };
    return tracer;
  };
  CLI11_PARSE(app, argc, argv);
  options.window_seconds = flights::parse_duration(window);

  // Blocked before any thread starts, so that only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (keep_serving) pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    // The configured logger (--log-format, --log-level) also takes the server's and the tracer's
    // lines; without one they go to stderr as text.
    std::shared_ptr<spdlog::logger> logger;
    const auto format =
        weir::telemetry::parse_log_format(log_format).value_or(weir::telemetry::LogFormat::text);
    if (!log_format.empty() || !log_level.empty())
      logger = weir::telemetry::make_logger(
          format, weir::telemetry::parse_log_level(log_level).value_or(weir::telemetry::LogLevel::info));
    const weir::telemetry::StructuredLogger diagnostics(logger ? logger : weir::telemetry::stderr_logger(),
                                                        format);
    std::shared_ptr<weir::telemetry::PrometheusCollector> metrics;
    std::unique_ptr<weir::telemetry::TelemetryServer> server;
    if (metrics_port >= 0) {
      metrics = std::make_shared<weir::telemetry::PrometheusCollector>();
      weir::telemetry::ServerOptions so;
      so.port = metrics_port;
      so.logger = diagnostics;
      server = std::make_unique<weir::telemetry::TelemetryServer>(metrics, so);
      std::cerr << "flights_etl: metrics at " << server->url() << "/metrics\n";
      std::cerr << "flights_etl: live page at " << server->url() << "/\n";
      options.configure = [metrics](weir::Pipeline& p) { weir::telemetry::attach(p, metrics); };
    }
    // Events behind a bounded queue written by a thread of their own, and structured logs.
    std::shared_ptr<weir::telemetry::BoundedSink> events;
    if (!events_file.empty())
      events = std::make_shared<weir::telemetry::BoundedSink>(
          std::make_shared<weir::telemetry::JsonLinesFileSink>(events_file));
    options.configure = [before = options.configure, events, logger, format](weir::Pipeline& p) {
      if (before) before(p);
      if (events) weir::telemetry::emit_events(p, events);
      if (!logger) return;
      weir::telemetry::attach(p, std::make_shared<weir::telemetry::LoggingCollector>(logger, format));
      weir::telemetry::log_runs(p, weir::telemetry::StructuredLogger(logger, format));
    };
    const auto tracer =
        setup_tracing(options, metrics, diagnostics);  // flushes at each run's end and at exit
    const flights::EtlInput input = flights::load_input(options);
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec)
      throw flights::InputError("cannot create " + flights::one_line(out_dir.string(), std::string::npos) +
                                ": " + ec.message());

    const flights::EtlResult result = flights::run_etl(input, options);
    flights::write_outputs(input, result, out_dir);
    std::cout << result.report.to_string();

    std::uint64_t windowed = 0;
    for (const auto& w : result.windows) windowed += w.stats.flights;
    std::uint64_t routed = 0;
    for (const auto& r : result.routes) routed += r.stats.flights;
    const std::uint64_t records = input.total();
    const std::uint64_t dead = result.dead_letters.size();
    std::cout << "records " << records << ", in windows " << windowed << " (" << result.windows.size()
              << " lines), in routes " << routed << " (" << result.routes.size() << " lines), dead letters "
              << dead << " (late " << result.late << ") -> " << out_dir.string() << "\n";
    // Every record is in a window or a dead letter; a late flight is in routes and a dead letter.
    int code = 0;
    if (windowed + dead != records || routed + dead - result.late != records) {
      std::cerr << "flights_etl: records unaccounted for: " << records << " records, " << windowed
                << " in windows, " << routed << " in routes, " << dead << " dead letters of which "
                << result.late << " late\n";
      code = 1;
    }
    if (keep_serving) {
      std::cerr << "flights_etl: serving " << server->url() << " until SIGINT or SIGTERM\n";
      int sig = 0;
      sigwait(&stop_signals, &sig);
      server->stop();
    }
    return code;
  } catch (const flights::InputError& e) {
    std::cerr << "flights_etl: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {  // weir::PipelineError, or an output that cannot be written
    std::cerr << "flights_etl: " << e.what() << "\n";
    return 1;
  }
}
