// Tests of structured logs: JSON lines with the run's ids from the logging collector and the run
// logger, the report table, levels, and the error summaries logs share with events.
#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <weir/telemetry/events.hpp>
#include <weir/telemetry/logging_collector.hpp>
#include <weir/telemetry/logs.hpp>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using json = nlohmann::json;
using weir::telemetry::LogFormat;
using weir::telemetry::LogLevel;
using weir_test::iota;

/// A logger made by make_logger that writes to a string stream.
struct Captured {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  Captured(LogFormat format, LogLevel level) {
    weir::telemetry::LogOptions o;
    o.format = format;
    o.level = level;
    o.name = "weir_test";
    o.sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    logger = weir::telemetry::make_logger(o);
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> v;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) v.push_back(line);
    return v;
  }
};

/// A pipeline whose map skips one failing item.
weir::RunReport run_with_skip(weir::Pipeline& p) {
  p.source(iota(0, 100))
      .map([](int x) {
        if (x == 42) throw std::runtime_error("forty-two");
        return x;
      })
      .name("m")
      .on_error(weir::on_error::skip())
      .sink([](int) {})
      .name("out");
  return p.run();
}

}  // namespace

TEST_CASE("JSON log lines of the logging collector carry the run id, pipeline, stage and trace id") {
  Captured cap(LogFormat::json, LogLevel::debug);
  weir::Pipeline p("logged", weir_test::with_batch(10));
  weir::telemetry::attach(p,
                          std::make_shared<weir::telemetry::LoggingCollector>(cap.logger, LogFormat::json));
  const auto r = run_with_skip(p);
  const auto lines = cap.lines();
  REQUIRE(lines.size() >= 8);
  CHECK(lines.size() < 30);  // per stage and event, not per item or batch at debug
  int stage_lines = 0;
  bool saw_failure = false;
  bool saw_summary = false;
  for (const auto& line : lines) {
    CAPTURE(line);
    const json j = json::parse(line);
    CHECK(j.at("run_id") == r.run_id);
    CHECK(j.at("pipeline") == "logged");
    CHECK(j.at("trace_id") == r.trace.trace_id.hex());
    CHECK(j.at("span_id").get<std::string>().size() == 16);
    CHECK(j.at("time").get<std::string>().back() == 'Z');
    CHECK(j.contains("level"));
    CHECK(j.contains("message"));
    if (j.contains("stage")) {
      ++stage_lines;
      CHECK((j.at("stage") == "m" || j.at("stage") == "out" || j.at("stage") == "range#0"));
    } else {
      CHECK(j.at("span_id") == r.trace.span_id.hex());
    }
    if (j.at("level") == "warn" && j.value("stage", "") == "m") saw_failure = true;
    if (j.contains("error")) {
      saw_summary = true;
      REQUIRE(r.errors.size() == 1);
      CHECK(j.at("error") == weir::telemetry::to_json(r.errors[0]));  // the summary events carry
    }
  }
  CHECK(stage_lines >= 6);  // started and completed for three stages
  CHECK(saw_failure);
  CHECK(saw_summary);
}

TEST_CASE("the logging collector formats nothing below its logger's level") {
  Captured cap(LogFormat::json, LogLevel::error);
  weir::Pipeline p("quiet", weir_test::with_batch(10));
  weir::telemetry::attach(p,
                          std::make_shared<weir::telemetry::LoggingCollector>(cap.logger, LogFormat::json));
  (void)run_with_skip(p);
  CHECK(cap.out.str().empty());  // a skipped item is a warning, the run completed: nothing at error
}

TEST_CASE("the run logger logs the report table at the end of a run, in text and in JSON") {
  SUBCASE("text") {
    Captured cap(LogFormat::text, LogLevel::info);
    weir::Pipeline p("table", weir_test::with_batch(10));
    REQUIRE(weir::telemetry::log_runs(p, weir::telemetry::StructuredLogger(cap.logger)) != nullptr);
    const auto r = run_with_skip(p);
    std::string table = r.to_string();
    table.pop_back();
    const std::string text = cap.out.str();
    CHECK(weir_test::contains(text, "[info] " + table));
    CHECK(weir_test::contains(text, "p50 batch"));
    CHECK(weir_test::contains(text, "blocked%"));
    CHECK(weir_test::contains(text, "error: stage 'm' std::runtime_error: forty-two (1 time)"));
  }
  SUBCASE("json") {
    Captured cap(LogFormat::json, LogLevel::info);
    weir::Pipeline p("table", weir_test::with_batch(10));
    weir::telemetry::log_runs(p, weir::telemetry::StructuredLogger(cap.logger, LogFormat::json));
    const auto r = run_with_skip(p);
    const auto lines = cap.lines();
    REQUIRE(lines.size() == 1);
    const json j = json::parse(lines[0]);
    std::string table = r.to_string();
    table.pop_back();
    CHECK(j.at("report") == table);
    CHECK(j.at("level") == "info");
    CHECK(j.at("status") == "completed");
    CHECK(j.at("duration_ns") == r.wall.count());
    CHECK(j.at("run_id") == r.run_id);
    CHECK(j.at("trace_id") == r.trace.trace_id.hex());
    CHECK(j.at("errors") == json::array({weir::telemetry::to_json(r.errors.at(0))}));
  }
}

TEST_CASE("a failed run is logged at error") {
  Captured cap(LogFormat::json, LogLevel::error);
  weir::Pipeline p("broken", weir_test::with_batch(10));
  weir::telemetry::log_runs(p, weir::telemetry::StructuredLogger(cap.logger, LogFormat::json));
  p.source(iota(0, 10)).map([](int) -> int { throw std::logic_error("never"); }).sink([](int) {});
  CHECK_THROWS_AS((void)p.run(), weir::PipelineError);
  const auto lines = cap.lines();
  REQUIRE(lines.size() == 1);
  const json j = json::parse(lines[0]);
  CHECK(j.at("level") == "error");
  CHECK(j.at("status") == "failed");
  CHECK(j.at("errors").at(0).at("type") == "std::logic_error");
}

TEST_CASE("structured lines put extra fields after the message in text and beside it in JSON") {
  Captured text(LogFormat::text, LogLevel::trace);
  Captured js(LogFormat::json, LogLevel::trace);
  const weir::telemetry::LogContext c{"r1", "p", "s", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"};
  weir::telemetry::StructuredLogger(text.logger)
      .log(LogLevel::warn, c, "hello", json{{"n", 3}, {"who", "x"}});
  weir::telemetry::StructuredLogger(js.logger, LogFormat::json)
      .log(LogLevel::warn, c, "hello", json{{"n", 3}});
  CHECK(weir_test::contains(text.out.str(), "[warning] hello n=3 who=x"));
  const json j = json::parse(js.lines().at(0));
  CHECK(j.at("message") == "hello");
  CHECK(j.at("level") == "warn");
  CHECK(j.at("n") == 3);
  CHECK(j.at("run_id") == "r1");
  CHECK(j.at("stage") == "s");
  CHECK(j.at("trace_id") == "0af7651916cd43dd8448eb211c80319c");
}

TEST_CASE("log levels and formats parse from their names") {
  using weir::telemetry::parse_log_format;
  using weir::telemetry::parse_log_level;
  CHECK(parse_log_level("debug") == LogLevel::debug);
  CHECK(parse_log_level("warning") == LogLevel::warn);
  CHECK(parse_log_level("off") == LogLevel::off);
  CHECK_FALSE(parse_log_level("loud").has_value());
  CHECK(parse_log_format("json") == LogFormat::json);
  CHECK(parse_log_format("text") == LogFormat::text);
  CHECK_FALSE(parse_log_format("xml").has_value());
}

TEST_CASE("a logging event sink writes each event as one JSON line") {
  Captured cap(LogFormat::json, LogLevel::info);
  weir::telemetry::LoggingSink sink(cap.logger);
  weir::telemetry::TelemetryEvent e;
  e.type = "stage.started";
  e.run_id = "r";
  e.pipeline = "p";
  e.stage = "s";
  CHECK(sink.try_emit(e));
  weir::telemetry::LoggingSink debug_only(cap.logger, LogLevel::debug);
  debug_only.emit(e);  // filtered out
  const auto lines = cap.lines();
  REQUIRE(lines.size() == 1);
  CHECK(json::parse(lines[0]) == e.to_json());
}
