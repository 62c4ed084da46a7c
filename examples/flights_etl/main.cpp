// flights_etl: reads US flight records and airports, validates every flight, adds the states of its
// airports with a lookup join, and writes per event-time window and origin state figures
// (state_windows.jsonl), per route figures computed with map-reduce (routes.jsonl), and every record
// it could not use with the reason (dead_letters.jsonl). Prints the run report at the end.
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

#include "cli.hpp"
#include "etl.hpp"
#include "flights.hpp"

int main(int argc, char** argv) {
  auto parsed = flights::parse_command_line(argc, argv);
  if (!parsed.settings) {
    std::cout << parsed.out << std::flush;
    std::cerr << parsed.err << std::flush;
    return parsed.exit_code;
  }
  flights::CommandLine& cl = *parsed.settings;
  flights::EtlOptions& options = cl.etl;
  const std::filesystem::path& out_dir = cl.out_dir;
  const int metrics_port = cl.metrics_port;
  const bool keep_serving = cl.keep_serving;
  const std::filesystem::path& events_file = cl.events_file;
  const std::string& log_format = cl.log_format;
  const std::string& log_level = cl.log_level;
  const std::string& trace_file = cl.trace_file;
  const std::string& otlp_endpoint = cl.otlp_endpoint;
  const double trace_sample = cl.trace_sample;
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
