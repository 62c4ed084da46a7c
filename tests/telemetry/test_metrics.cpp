// Tests of the metrics API: attach, the metrics interceptor, StatsCollector, MultiCollector,
// LoggingCollector and the engine's live snapshot.
#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <weir/telemetry/logging_collector.hpp>
#include <weir/telemetry/metrics.hpp>
#include <weir/telemetry/stats_collector.hpp>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using weir_test::with_batch;
using namespace std::chrono_literals;

using weir_test::iota;

/// Records the order in which collectors see events, for MultiCollector.
class OrderCollector final : public weir::telemetry::MetricsCollector {
 public:
  OrderCollector(std::string tag, std::shared_ptr<std::vector<std::string>> log)
      : tag_(std::move(tag)), log_(std::move(log)) {}
  void on_pipeline_started(const weir::RunInfo&) override { push("started"); }
  void on_pipeline_completed(const weir::RunInfo&, const weir::RunReport&) override { push("completed"); }
  void on_window_emitted(const weir::StageInfo&, std::size_t items) override {
    push("window " + std::to_string(items));
  }

 private:
  void push(const std::string& what) {
    const std::lock_guard lock(mutex_);
    log_->push_back(tag_ + " " + what);
  }
  std::string tag_;
  std::shared_ptr<std::vector<std::string>> log_;
  std::mutex mutex_;
};

}  // namespace

TEST_CASE("a collector attached with one call sees every batch that the report counts" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("stats", with_batch(10));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  REQUIRE(weir::telemetry::attach(p, stats) != nullptr);
  std::vector<int> got;
  p.source(iota(0, 95))
      .map([](int x) { return x * 2; })
      .name("double")
      .filter([](int x) { return x % 3 != 0; })
      .name("not_three")
      .sink(weir::collect_into(got))
      .name("out");
  const auto r = p.run();
  for (const auto& s : r.stages) {
    CAPTURE(s.name);
    CHECK(stats->value("stats", s.name, "batches") == static_cast<double>(s.batches));
    CHECK(stats->value("stats", s.name, "items_in") == static_cast<double>(s.items_in));
    CHECK(stats->value("stats", s.name, "items_out") == static_cast<double>(s.items_out));
    CHECK(stats->value("stats", s.name, "stage_started") == 1);
    CHECK(stats->value("stats", s.name, "stage_completed") == 1);
    CHECK(stats->value("stats", s.name, "concurrency") == 1);
  }
  CHECK(r.stage("out").batches == 10);
  CHECK(stats->value("stats", "not_three", "filter_passed") == static_cast<double>(got.size()));
  CHECK(stats->value("stats", "not_three", "filter_dropped") == static_cast<double>(95 - got.size()));
  CHECK(stats->value("stats", "double", "map_processed") == 95);
  CHECK(stats->value("stats", "", "runs_started") == 1);
  CHECK(stats->value("stats", "", "runs_ended") == 1);
  CHECK(stats->value("stats", "", "runs_completed") == 1);
  CHECK(stats->value("stats", "", "runs_failed") == 0);
}

TEST_CASE(
    "retries, skipped items, dead letters and handler errors reach the collector as "
    "events" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o = with_batch(4);
  o.clock = clock;
  weir::Pipeline p("failures", o);
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  std::vector<int> letters;
  p.source(iota(0, 20))
      .map([](int x) {
        if (x % 5 == 1) throw std::runtime_error("bad");
        return x;
      })
      .name("skipper")
      .on_error(weir::on_error::skip())
      .map([](int x) {
        if (x == 8) throw std::invalid_argument("eight");
        return x;
      })
      .name("retrier")
      .on_error(weir::on_error::retry(
          3, 1ms, weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d.item); })))
      .map([](int x) {
        if (x == 12) throw std::runtime_error("twelve");
        return x;
      })
      .name("handler_fails")
      .on_error(weir::on_error::dead_letter([](weir::DeadLetter<int>) { throw std::runtime_error("dlq"); }))
      .sink([](int) {});
  const auto r = p.run();
  CHECK(stats->value("failures", "skipper", "items_skipped") == 4);
  CHECK(stats->value("failures", "skipper", "errors_sent_skip") == 4);
  CHECK(stats->value("failures", "retrier", "retries") == 2);
  CHECK(stats->value("failures", "retrier", "dead_letters") == 1);
  CHECK(stats->value("failures", "retrier", "errors_sent_dead_letter") == 1);
  CHECK(stats->value("failures", "handler_fails", "dead_letter_handler_errors") == 1);
  CHECK(letters == std::vector<int>{8});
  CHECK(r.stage("retrier").retries == 2);
}

TEST_CASE("a stage that fails the run is reported as a stage error and a failed run" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("failing");
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  p.source(iota(0, 10))
      .map([](int x) {
        if (x == 3) throw std::runtime_error("three");
        return x;
      })
      .name("boom")
      .sink([](int) {});
  CHECK_THROWS_AS((void)p.run(), weir::PipelineError);
  CHECK(stats->value("failing", "boom", "stage_errors") == 1);
  CHECK(stats->value("failing", "", "runs_failed") == 1);
}

TEST_CASE("fan-out and merge batches reach the collector as fan-out and fan-in events" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("fans", with_batch(10));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  std::vector<int> got;
  auto b = p.source(iota(0, 50)).fan_out(2);
  b[0].merge(b[1]).name("join").sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got.size() == 100);
  CHECK(stats->value("fans", "fan_out#1", "fan_out_started") ==
        static_cast<double>(r.stage("fan_out#1").batches));
  CHECK(stats->value("fans", "fan_out#1", "fan_out_branches") == 2);
  CHECK(stats->value("fans", "fan_out#1", "fan_out_items") == 50);
  CHECK(stats->value("fans", "join", "fan_in_items") == 100);
  CHECK(stats->value("fans", "join", "fan_in_inputs") == 2);
}

TEST_CASE("item durations are sampled once per N batches of a stage" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("samples", with_batch(1));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::MetricsOptions mo;
  mo.item_sample_every = 4;
  weir::telemetry::attach(p, stats, mo);
  p.source(iota(0, 40)).map([](int x) { return x; }).name("m").sink([](int) {});
  (void)p.run();
  // Parallelism 1: every batch of "m" runs on the source's thread, so 40 batches give 10 samples.
  CHECK(stats->value("samples", "m", "batches") == 40);
  CHECK(stats->value("samples", "m", "item_samples") == 10);
}

TEST_CASE("each attached collector samples item durations on its own count" WEIR_NEEDS_TELEMETRY) {
  // Two collectors (as Prometheus and a LoggingCollector side by side): each one's interceptor counts
  // its own batches, so both get the same samples, whatever N and the order they were attached in.
  for (const std::uint32_t every : {2U, 4U, 16U}) {
    CAPTURE(every);
    weir::Pipeline p("two_collectors", with_batch(1));
    auto first = std::make_shared<weir::telemetry::StatsCollector>();
    auto second = std::make_shared<weir::telemetry::StatsCollector>();
    weir::telemetry::MetricsOptions mo;
    mo.item_sample_every = every;
    weir::telemetry::attach(p, first, mo);
    weir::telemetry::attach(p, second, mo);
    p.source(iota(0, 64)).map([](int x) { return x; }).name("m").sink([](int) {});
    (void)p.run();
    CHECK(first->value("two_collectors", "m", "batches") == 64);
    CHECK(second->value("two_collectors", "m", "batches") == 64);
    CHECK(first->value("two_collectors", "m", "item_samples") == 64 / every);
    CHECK(second->value("two_collectors", "m", "item_samples") == 64 / every);
  }
}

TEST_CASE("circuit states are numbered 0 closed, 1 half-open, 2 open for the circuit_state gauge") {
  using weir::CircuitState;
  using weir::telemetry::circuit_state_value;
  static_assert(circuit_state_value(CircuitState::closed) == 0);
  static_assert(circuit_state_value(CircuitState::half_open) == 1);
  static_assert(circuit_state_value(CircuitState::open) == 2);
  weir::telemetry::StatsCollector stats;
  const weir::StageInfo s{"p", "call", "map", 1, 1, 1, {}};
  stats.on_circuit_state_changed(s, CircuitState::closed, CircuitState::open);
  CHECK(stats.value("p", "call", "circuit_state") == 2);
  stats.on_circuit_state_changed(s, CircuitState::open, CircuitState::half_open);
  CHECK(stats.value("p", "call", "circuit_state") == 1);
  stats.on_circuit_state_changed(s, CircuitState::half_open, CircuitState::closed);
  CHECK(stats.value("p", "call", "circuit_state") == 0);
  CHECK(stats.value("p", "call", "circuit_state_changes") == 3);
}

TEST_CASE("a MultiCollector passes every event to each collector in order" WEIR_NEEDS_TELEMETRY) {
  auto log = std::make_shared<std::vector<std::string>>();
  auto a = std::make_shared<OrderCollector>("a", log);
  auto b = std::make_shared<OrderCollector>("b", log);
  weir::telemetry::MultiCollector multi({a, b});
  multi.on_window_emitted(weir::StageInfo{"p", "w", "window", 0, 0, 1, {}}, 7);
  CHECK(*log == std::vector<std::string>{"a window 7", "b window 7"});
  CHECK_THROWS_AS(weir::telemetry::MultiCollector({a, nullptr}), std::invalid_argument);

  log->clear();
  weir::Pipeline p("multi");
  weir::telemetry::attach(p, std::make_shared<weir::telemetry::MultiCollector>(
                                 std::vector<std::shared_ptr<weir::telemetry::MetricsCollector>>{a, b}));
  p.source(iota(0, 3)).sink([](int) {});
  (void)p.run();
  CHECK(*log == std::vector<std::string>{"a started", "b started", "a completed", "b completed"});
}

TEST_CASE("attach rejects a null collector and a pipeline that has already run" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("attach_checks");
  CHECK_THROWS_AS(weir::telemetry::attach(p, nullptr), std::invalid_argument);
  p.source(iota(0, 3)).sink([](int) {});
  (void)p.run();
  CHECK_THROWS_AS(weir::telemetry::attach(p, std::make_shared<weir::telemetry::NoopCollector>()),
                  std::logic_error);
}

TEST_CASE(
    "the logging collector writes one line per batch and event, never one per item" WEIR_NEEDS_TELEMETRY) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto logger = std::make_shared<spdlog::logger>("weir_test", sink);
  logger->set_level(spdlog::level::trace);
  logger->set_pattern("%l %v");
  weir::Pipeline p("logged", with_batch(50));
  weir::telemetry::attach(p, std::make_shared<weir::telemetry::LoggingCollector>(logger));
  p.source(iota(0, 1000))
      .map([](int x) {
        if (x == 500) throw std::runtime_error("five hundred");
        return x;
      })
      .name("m")
      .on_error(weir::on_error::skip())
      .sink([](int) {});
  (void)p.run();
  const std::string text = out.str();
  std::size_t lines = 0;
  std::size_t batch_lines = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    ++lines;
    if (weir_test::contains(line, " batch: ")) ++batch_lines;
  }
  CHECK(batch_lines == 3 * 20);  // source, map and sink; 20 batches each
  CHECK(lines < 100);            // 1000 items: nothing is logged per item
  CHECK(weir_test::contains(text, "info pipeline logged run "));
  CHECK(weir_test::contains(text,
                            "warning pipeline logged stage m item failed with std::runtime_error (skip)"));
  CHECK(weir_test::contains(text, "stage m completed: in 1000 out 999"));
}

TEST_CASE("a snapshot taken while the pipeline runs shows the batches finished so far") {
  weir::Pipeline p("live", with_batch(10));
  weir::Snapshot seen;
  CHECK(p.snapshot().phase == weir::RunPhase::idle);
  CHECK(p.snapshot().report.stages.empty());
  p.source(iota(0, 100))
      .map([](int x) { return x; })
      .name("m")
      .sink([&](int x) {
        if (x == 55) seen = p.snapshot();  // on the source's thread: batches 0..4 are counted
      })
      .name("out");
  const auto r = p.run();
  CHECK(seen.phase == weir::RunPhase::running);
  REQUIRE(seen.report.stages.size() == 3);
  CHECK(seen.report.stage("out").items_in == 50);
  CHECK(seen.report.stage("m").items_out == 50);
  CHECK(seen.report.stage("out").batches == 5);
  CHECK(seen.inputs == std::vector<std::vector<int>>{{}, {0}, {1}});
  REQUIRE(seen.batch_histogram.size() == 3);
  std::uint64_t batches = 0;
  for (auto n : seen.batch_histogram[2]) batches += n;
  CHECK(batches == (weir_test::telemetry_compiled ? 5U : 0U));  // batches are timed only with telemetry

  const auto after = p.snapshot();
  CHECK(after.phase == weir::RunPhase::finished);
  CHECK(after.report.stage("out").items_in == 100);
  CHECK(after.report.wall == r.wall);
}

TEST_CASE("a live view outlives its pipeline and keeps the last snapshot") {
  std::shared_ptr<const weir::LiveView> view;
  {
    weir::Pipeline p("gone", with_batch(8));
    view = p.live();
    p.source(iota(0, 30)).sink([](int) {}).name("out");
    (void)p.run();
  }
  const auto s = view->snapshot();
  CHECK(view->pipeline() == "gone");
  CHECK(s.phase == weir::RunPhase::finished);
  CHECK(s.report.stage("out").items_in == 30);
}
