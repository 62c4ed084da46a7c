#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <weir/telemetry/otlp_endpoint.hpp>

#include "flights.hpp"

namespace flights {

ParsedCommandLine parse_command_line(int argc, const char* const* argv) {
  CLI::App app{"Flights ETL: per-state windows, routes and dead letters of US flight records, with Weir"};
  CommandLine cl;
  EtlOptions& options = cl.etl;
  std::string window = "1d";
  app.add_option("--flights", options.flights_path, "flight records: a JSON array or JSON lines")
      ->capture_default_str();
  app.add_option("--airports", options.airports_path,
                 "airports CSV (iata,name,city,state,country,latitude,longitude)")
      ->capture_default_str();
  app.add_option("--out", cl.out_dir, "output directory")->capture_default_str();
  app.add_option("--window", window, "event-time tumbling window: a number and s, m, h, d or w (90m, 6h, 1d)")
      ->check([](const std::string& text) -> std::string {
        try {
          if (parse_duration(text) > std::int64_t{3650} * 86400) return "a window of at most 3650 days";
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
  auto* port_opt = app.add_option("--metrics-port", cl.metrics_port,
                                  "serve /metrics, /health, /ready, /live and /dag on 127.0.0.1:P "
                                  "(0: a free port; off when absent)")
                       ->check(CLI::Range(0, 65535));
  app.add_flag("--keep-serving", cl.keep_serving,
               "keep the endpoints up after the run until SIGINT or SIGTERM, then exit")
      ->needs(port_opt);
  app.add_option("--events-file", cl.events_file,
                 "write the run's events as JSON lines (see docs/events.md)");
  app.add_option("--log-format", cl.log_format,
                 "log to stderr as text or json (off unless this or --log-level)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", cl.log_level, "trace, debug, info (default), warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  // Tracing: --trace-file (OTLP JSON lines) or --otlp-endpoint (OTLP/HTTP JSON); --trace-sample of runs.
  auto* trace_file_opt =
      app.add_option("--trace-file", cl.trace_file, "write spans to F, one OTLP JSON request per line");
  app.add_option("--otlp-endpoint", cl.otlp_endpoint,
                 "send spans to an OTLP/HTTP collector (POST URL/v1/traces; an http or https URL)")
      ->check([](const std::string& url) { return weir::telemetry::otlp_endpoint_error(url); })
      ->excludes(trace_file_opt);
  app.add_option("--trace-sample", cl.trace_sample, "fraction of runs traced (by trace id)")
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            // Written so that NaN, which fails every comparison, is refused too.
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size() || !(value >= 0.0 && value <= 1.0))
              return "a number from 0 to 1, not " + one_line(text);
            return {};
          },
          "FRACTION"))
      ->capture_default_str();

  ParsedCommandLine parsed;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out;
    std::ostringstream err;
    parsed.exit_code = app.exit(e, out, err);
    parsed.out = std::move(out).str();
    parsed.err = std::move(err).str();
    return parsed;
  }
  options.window_seconds = parse_duration(window);
  parsed.settings = std::move(cl);
  return parsed;
}

}  // namespace flights
