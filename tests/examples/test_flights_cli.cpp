// Tests of the flights_etl command line (flights::parse_command_line): the command lines the
// example's README documents, the defaults, and the values and combinations it refuses, each with
// CLI11's exit code and a message naming the flag.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cli.hpp"

namespace {

/// parse_command_line on `flights_etl` followed by `args`.
flights::ParsedCommandLine parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"flights_etl"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  return flights::parse_command_line(static_cast<int>(argv.size() - 1), argv.data());
}

/// The settings of `args`, which must be accepted.
flights::CommandLine accepted(const std::vector<std::string>& args) {
  const auto parsed = parse(args);
  INFO(parsed.err);
  REQUIRE(parsed.settings.has_value());
  CHECK(parsed.exit_code == 0);
  CHECK(parsed.out.empty());
  CHECK(parsed.err.empty());
  return *parsed.settings;
}

constexpr std::string_view run_with_help = "Run with --help for more information.\n";

/// Checks that `args` is refused with CLI11's exit code `code` and a message on stderr that starts
/// with `message`.
void check_refused(const std::vector<std::string>& args, int code, const std::string& message) {
  const auto parsed = parse(args);
  INFO(parsed.err);
  CHECK_FALSE(parsed.settings.has_value());
  CHECK(parsed.exit_code == code);
  CHECK(parsed.out.empty());
  CHECK(parsed.err.starts_with(message));
  CHECK(parsed.err.ends_with(run_with_help));
}

constexpr int validation_error = 105;  // CLI::ExitCodes::ValidationError

}  // namespace

TEST_CASE("flights_etl's command line without flags has the defaults its README gives") {
  const flights::CommandLine c = accepted({});
  CHECK(c.etl.flights_path == "data/flights-20k.json");
  CHECK(c.etl.airports_path == "data/airports.csv");
  CHECK(c.out_dir == "out/flights");
  CHECK(c.etl.window_seconds == 86400);
  CHECK(c.etl.repeat == 1);
  CHECK(c.etl.parallelism == 1);
  CHECK(c.metrics_port == -1);
  CHECK_FALSE(c.keep_serving);
  CHECK(c.events_file.empty());
  CHECK(c.log_format.empty());
  CHECK(c.log_level.empty());
  CHECK(c.trace_file.empty());
  CHECK(c.otlp_endpoint.empty());
  CHECK(c.trace_sample == 1.0);
}

TEST_CASE("flights_etl's command line accepts the command lines its README and docs give") {
  {
    const auto c = accepted(
        {"--flights", "data/flights-20k.json", "--airports", "data/airports.csv", "--out", "out/flights"});
    CHECK(c.etl.flights_path == "data/flights-20k.json");
    CHECK(c.etl.airports_path == "data/airports.csv");
    CHECK(c.out_dir == "out/flights");
  }
  {
    const auto c = accepted({"--window", "6h", "--parallelism", "2"});
    CHECK(c.etl.window_seconds == 6 * 3600);
    CHECK(c.etl.parallelism == 2);
  }
  {
    const auto c = accepted({"--flights", "tests/examples/data/bad_flights.json", "--out", "out/bad"});
    CHECK(c.etl.flights_path == "tests/examples/data/bad_flights.json");
    CHECK(c.out_dir == "out/bad");
  }
  {
    const auto c = accepted({"--repeat", "500", "--out", "out/load"});
    CHECK(c.etl.repeat == 500);
  }
  {
    const auto c = accepted({"--events-file", "events.jsonl", "--log-format", "json", "--log-level", "info"});
    CHECK(c.events_file == "events.jsonl");
    CHECK(c.log_format == "json");
    CHECK(c.log_level == "info");
  }
  {
    const auto c = accepted(
        {"--metrics-port", "0", "--keep-serving", "--trace-file", "spans.jsonl", "--trace-sample", "0.25"});
    CHECK(c.metrics_port == 0);
    CHECK(c.keep_serving);
    CHECK(c.trace_file == "spans.jsonl");
    CHECK(c.trace_sample == 0.25);
  }
  {
    const auto c = accepted({"--otlp-endpoint=http://127.0.0.1:4318", "--window=90m", "--trace-sample=0"});
    CHECK(c.otlp_endpoint == "http://127.0.0.1:4318");
    CHECK(c.etl.window_seconds == 5400);
    CHECK(c.trace_sample == 0.0);
  }
  {  // the ends of every range
    const auto c = accepted({"--repeat", "1000000", "--parallelism", "256", "--metrics-port", "65535",
                             "--window", "3650d", "--trace-sample", "1"});
    CHECK(c.etl.repeat == 1'000'000);
    CHECK(c.etl.parallelism == 256);
    CHECK(c.metrics_port == 65535);
    CHECK(c.etl.window_seconds == std::int64_t{3650} * 86400);
  }
}

TEST_CASE("flights_etl's command line refuses a value out of its range with a message naming the flag") {
  struct Bad {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Bad> cases{
      {{"--window", "5x"}, "--window: invalid duration '5x': unknown unit 'x'"},
      {{"--window", "0d"}, "--window: invalid duration '0d': must be greater than zero"},
      {{"--window", "3651d"}, "--window: a window of at most 3650 days\n"},
      {{"--window", "99999999999999999999s"}, "--window: invalid duration"},
      {{"--repeat", "0"}, "--repeat: Value 0 not in range 1 to 1000000\n"},
      {{"--repeat", "1000001"}, "--repeat: Value 1000001 not in range 1 to 1000000\n"},
      {{"--repeat", "-1"}, "--repeat: Value -1 not in range"},
      {{"--repeat", "many"}, "--repeat: Value many not in range"},
      {{"--parallelism", "0"}, "--parallelism: Value 0 not in range 1 to 256\n"},
      {{"--parallelism", "257"}, "--parallelism: Value 257 not in range 1 to 256\n"},
      {{"--parallelism", "4294967297"}, "--parallelism: Value 4294967297 not in range"},
      {{"--metrics-port", "-1"}, "--metrics-port: Value -1 not in range 0 to 65535\n"},
      {{"--metrics-port", "65536"}, "--metrics-port: Value 65536 not in range 0 to 65535\n"},
      {{"--log-format", "xml"}, "--log-format: xml not in {text,json}"},
      {{"--log-level", "loud"}, "--log-level: loud not in {trace,debug,info,warn,error,off}"},
      {{"--trace-sample", "nan"}, "--trace-sample: a number from 0 to 1, not nan\n"},
      {{"--trace-sample", "inf"}, "--trace-sample: a number from 0 to 1, not inf\n"},
      {{"--trace-sample", "-0.5"}, "--trace-sample: a number from 0 to 1, not -0.5\n"},
      {{"--trace-sample", "1.5"}, "--trace-sample: a number from 0 to 1, not 1.5\n"},
      {{"--trace-sample=0.5x"}, "--trace-sample: a number from 0 to 1, not 0.5x\n"},
      {{"--otlp-endpoint", "file:///tmp/spans"},
       "--otlp-endpoint: \"file:///tmp/spans\" has the scheme file"},
      {{"--otlp-endpoint", "http:///v1"}, "--otlp-endpoint: \"http:///v1\" has no host\n"},
      {{"--otlp-endpoint", "http://a?b"}, "--otlp-endpoint: \"http://a?b\" has a query"},
      {{"--otlp-endpoint", "127.0.0.1:4318"}, "--otlp-endpoint: \"127.0.0.1:4318\" is not a URL"},
  };
  for (const Bad& bad : cases) {
    CAPTURE(bad.message);
    check_refused(bad.args, validation_error, bad.message);
  }
}

TEST_CASE(
    "flights_etl's command line refuses flags that need, exclude or repeat each other, and unknown ones") {
  check_refused({"--keep-serving"}, 107, "--keep-serving requires --metrics-port\n");
  check_refused({"--otlp-endpoint", "http://127.0.0.1:4318", "--trace-file", "spans.jsonl"}, 108,
                "--trace-file excludes --otlp-endpoint\n");
  check_refused({"--repeat", "2", "--repeat", "3"}, 114, "--repeat: At Most 1 required but received 2\n");
  check_refused({"--flights"}, 114, "--flights: 1 required TEXT missing\n");
  check_refused({"--bogus"}, 109, "The following argument was not expected: --bogus\n");
  check_refused({"--", "--flights", "x"}, 109, "The following arguments were not expected:");
}

TEST_CASE("flights_etl's command line gives the help, on stdout with exit code 0, for --help or -h") {
  for (const char* help : {"--help", "-h"}) {
    CAPTURE(help);
    const auto parsed = parse({"--window", "6h", help});
    CHECK_FALSE(parsed.settings.has_value());
    CHECK(parsed.exit_code == 0);
    CHECK(parsed.err.empty());
    CHECK(parsed.out.starts_with("Flights ETL: "));
    for (const char* flag : {"--flights", "--airports", "--out", "--window", "--repeat", "--parallelism",
                             "--metrics-port", "--keep-serving", "--events-file", "--log-format",
                             "--log-level", "--trace-file", "--otlp-endpoint", "--trace-sample"}) {
      CAPTURE(flag);
      CHECK(parsed.out.find(flag) != std::string::npos);
    }
  }
}
