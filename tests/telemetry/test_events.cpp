// Tests of telemetry events: the events a run sends (order, ids, data), every documented type
// produced by the operator that causes it, wide events against the run report, the bounded,
// file and fan-out sinks, and docs/events.md against the code.
#include <doctest/doctest.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <weir/telemetry/events.hpp>
#include <weir/weir.hpp>

#include "weir_test.hpp"

#ifndef WEIR_DOCS_DIR
#error "WEIR_DOCS_DIR must name the docs/ folder"
#endif

namespace {

using namespace std::chrono_literals;
using weir::telemetry::TelemetryEvent;
using weir_test::eventually;
using weir_test::iota;
using json = nlohmann::json;

/// 2026-11-24T08:00:00Z.
const std::chrono::system_clock::time_point wall_start{std::chrono::seconds{1795507200}};

/// Keeps every event. Thread-safe.
class MemorySink final : public weir::telemetry::EventSink {
 public:
  void emit(const TelemetryEvent& e) override {
    const std::lock_guard lock(mutex_);
    events_.push_back(e);
  }
  bool try_emit(const TelemetryEvent& e) override {
    if (refuse_) return false;
    emit(e);
    return true;
  }
  void flush() override { ++flushes_; }
  std::vector<TelemetryEvent> events() const {
    const std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<TelemetryEvent> of(const std::string& type) const {
    std::vector<TelemetryEvent> out;
    for (auto& e : events())
      if (e.type == type) out.push_back(e);
    return out;
  }
  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const auto& e : events()) out.push_back(e.type);
    return out;
  }
  std::atomic<bool> refuse_{false};
  std::atomic<int> flushes_{0};

 private:
  mutable std::mutex mutex_;
  std::vector<TelemetryEvent> events_;
};

/// Records the RunInfo and StageInfos a run hands its interceptors.
class Ids final : public weir::Interceptor {
 public:
  void on_run_start(const weir::RunInfo& r) override { run = r; }
  void on_stage_start(const weir::StageInfo& s) override {
    const std::lock_guard lock(mutex);
    stages[s.name] = s;
  }
  weir::RunInfo run;
  std::mutex mutex;
  std::map<std::string, weir::StageInfo> stages;
};

/// An inner sink whose emit waits for `gate` (so that a BoundedSink's queue fills up), recording
/// the `n` field of each event's data.
class GatedSink final : public weir::telemetry::EventSink {
 public:
  void emit(const TelemetryEvent& e) override {
    entered.notify();
    gate.wait();
    const std::lock_guard lock(mutex);
    got.push_back(e.data.at("n").get<int>());
  }
  bool try_emit(const TelemetryEvent& e) override {
    emit(e);
    return true;
  }
  weir::Notification entered, gate;
  std::mutex mutex;
  std::vector<int> got;
};

TelemetryEvent numbered(int n) {
  TelemetryEvent e;
  e.type = "test.event";
  e.data = json{{"n", n}};
  return e;
}

weir::PipelineOptions manual_options(std::shared_ptr<weir::ManualClock>& clock, std::size_t batch) {
  clock = std::make_shared<weir::ManualClock>(wall_start);
  weir::PipelineOptions o;
  o.batch_size = batch;
  o.clock = clock;
  return o;
}

/// The event types of docs/events.md's table, in its order.
std::vector<std::string> documented_types() {
  std::ifstream in(std::filesystem::path(WEIR_DOCS_DIR) / "events.md");
  REQUIRE(in.good());
  std::vector<std::string> out;
  // Rows of the table under "## Types": | `type` | stage | data | when |
  bool in_types = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) in_types = line == "## Types";
    if (!in_types || line.rfind("| `", 0) != 0) continue;
    const auto end = line.find('`', 3);
    REQUIRE(end != std::string::npos);
    out.push_back(line.substr(3, end - 3));
  }
  return out;
}

/// Runs 60 items from a source that may have two batches in flight into a sink that lets each item
/// go only once the source has handed over the next two, so the source waits for a slot again and
/// again. Every wait is an event (interval 0).
weir::RunReport run_held_back(const std::shared_ptr<weir::telemetry::EventSink>& sink) {
  constexpr int total = 60;
  weir::PipelineOptions o;
  o.batch_size = 1;
  o.max_in_flight = 2;
  o.linger = 10s;
  // One arena thread, so the source waits on its own thread: with more, a waiting source runs the
  // pipeline's tasks, and a sink task it picked up would wait for the source itself.
  o.threads = 1;
  weir::Pipeline p("held_back", o);
  weir::telemetry::EventOptions eo;
  eo.backpressure_interval = 0ms;
  weir::telemetry::emit_events(p, sink, eo);
  // Counts the batches the source handed over (after_batch runs just before it takes a slot).
  struct Handed final : weir::Interceptor {
    std::atomic<int> n{0};
    void after_batch(const weir::StageInfo& s, const weir::BatchStats&) override {
      if (s.kind == "source") n.fetch_add(1);
    }
  };
  auto handed = std::make_shared<Handed>();
  p.intercept(handed);
  std::atomic<int> done{0};
  std::atomic<bool> gave_up{false};
  p.source(iota(0, total))
      .name("fast")
      .sink([&](int) {
        const int k = done.fetch_add(1);
        if (!eventually([&] { return handed->n.load() >= std::min(k + 3, total); })) gave_up = true;
      })
      .parallelism(2)
      .name("slow");
  auto r = p.run();
  CHECK_FALSE(gave_up.load());
  return r;
}

void check_common(const TelemetryEvent& e, const weir::RunReport& r) {
  CAPTURE(e.type);
  CHECK(e.run_id == r.run_id);
  CHECK(e.pipeline == r.pipeline);
  CHECK(e.trace_id == r.trace.trace_id.hex());
  CHECK(e.span_id.size() == 16);
  const json j = e.to_json();
  for (const char* key : {"type", "time", "run_id", "pipeline", "trace_id", "span_id", "data"})
    CHECK(j.contains(key));
  CHECK(j.contains("stage") == !e.stage.empty());
  CHECK(json::parse(e.to_json_line()) == j);
}

}  // namespace

TEST_CASE("format_rfc3339 writes UTC with microseconds") {
  CHECK(weir::telemetry::format_rfc3339(wall_start) == "2026-11-24T08:00:00.000000Z");
  CHECK(weir::telemetry::format_rfc3339(wall_start + 123456789ns) == "2026-11-24T08:00:00.123456Z");
  CHECK(weir::telemetry::format_rfc3339(std::chrono::system_clock::time_point{}) ==
        "1970-01-01T00:00:00.000000Z");
  CHECK(weir::telemetry::format_rfc3339(std::chrono::system_clock::time_point{} - 1us) ==
        "1969-12-31T23:59:59.999999Z");
}

TEST_CASE("a small run sends its lifecycle events in order with the run's and the stages' ids") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("small", manual_options(clock, 4));
  auto sink = std::make_shared<MemorySink>();
  auto ids = std::make_shared<Ids>();
  p.intercept(ids);
  REQUIRE(weir::telemetry::emit_events(p, sink) != nullptr);
  std::vector<int> got;
  p.source(iota(0, 10))
      .map([](int x) { return x * 2; })
      .name("double")
      .sink(weir::collect_into(got))
      .name("out");
  const auto parent = weir::TraceContext::root();
  const auto r = p.run(parent);
  CHECK(got.size() == 10);
  CHECK(sink->types() == std::vector<std::string>{"pipeline.started", "stage.started", "stage.started",
                                                  "stage.started", "stage.completed", "stage.wide",
                                                  "stage.completed", "stage.wide", "stage.completed",
                                                  "stage.wide", "pipeline.wide", "pipeline.completed"});
  CHECK(sink->flushes_ == 1);
  const auto events = sink->events();
  for (const auto& e : events) {
    check_common(e, r);
    CHECK(weir::telemetry::format_rfc3339(e.time) == "2026-11-24T08:00:00.000000Z");  // the clock never moved
    CHECK(e.trace_id == parent.trace_id.hex());
    if (e.type.rfind("stage.", 0) == 0) {
      REQUIRE(ids->stages.count(e.stage) == 1);
      CHECK(e.span_id == ids->stages.at(e.stage).span_id.hex());
    } else {
      CHECK(e.stage.empty());
      CHECK(e.span_id == ids->run.trace.span_id.hex());
    }
  }
  CHECK(events.front().data.at("parent_span_id") == parent.span_id.hex());
  CHECK(events.front().data.at("sampled") == true);
  // Stages start and end in the pipeline's order.
  CHECK(events[1].stage == "range#0");
  CHECK(events[2].stage == "double");
  CHECK(events[3].stage == "out");
  CHECK(events[2].data == json{{"kind", "map"}, {"index", 1}, {"node", 0}, {"parallelism", 1}});
  CHECK(events[4].stage == "range#0");
  CHECK(events[6].stage == "double");
  CHECK(events[8].stage == "out");
  CHECK(events[6].data.at("items_in") == 10);
  CHECK(events[6].data.at("items_out") == 10);
  CHECK(events[6].data.at("error_summaries") == json::array());
  CHECK(events.back().data.at("status") == "completed");
  CHECK(events.back().data.at("duration_ns") == r.wall.count());
}

TEST_CASE("wide events carry every total of the run report") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("wide", manual_options(clock, 8));
  auto sink = std::make_shared<MemorySink>();
  weir::telemetry::emit_events(p, sink);
  std::vector<int> got;
  p.source(iota(0, 100))
      .map([clock](int x) {
        if (x % 10 == 3) {
          clock->advance(1s);
          throw std::runtime_error("three");
        }
        return x;
      })
      .name("skipper")
      .on_error(weir::on_error::skip())
      .filter([](int x) { return x % 2 == 0; })
      .name("even")
      .sink(weir::collect_into(got))
      .name("out");
  const auto r = p.run();
  const auto wides = sink->of("stage.wide");
  REQUIRE(wides.size() == r.stages.size());
  for (std::size_t i = 0; i < wides.size(); ++i) {
    const auto& s = r.stages[i];
    const auto& d = wides[i].data;
    CAPTURE(s.name);
    CHECK(wides[i].stage == s.name);
    CHECK(d.at("kind") == s.kind);
    CHECK(d.at("node") == s.node);
    CHECK(d.at("parallelism") == s.parallelism);
    CHECK(d.at("items_in") == s.items_in);
    CHECK(d.at("items_out") == s.items_out);
    CHECK(d.at("filtered") == s.filtered);
    CHECK(d.at("errors") == s.errors);
    CHECK(d.at("skipped") == s.skipped);
    CHECK(d.at("dead_lettered") == s.dead_lettered);
    CHECK(d.at("dead_letter_failures") == s.dead_letter_failures);
    CHECK(d.at("retries") == s.retries);
    CHECK(d.at("timeouts") == s.timeouts);
    CHECK(d.at("late") == s.late);
    CHECK(d.at("batches") == s.batches);
    CHECK(d.at("busy_ns") == s.busy.count());
    CHECK(d.at("blocked_ns") == s.blocked.count());
    CHECK(d.at("wall_ns") == s.wall.count());
    CHECK(d.at("batch_p50_ns") == s.batch_p50.count());
    CHECK(d.at("batch_p99_ns") == s.batch_p99.count());
    CHECK(d.at("circuit").is_null());
  }
  CHECK(r.stage("skipper").skipped == 10);
  CHECK(wides[1].data.at("error_summaries").size() == 1);
  CHECK(wides[2].data.at("error_summaries").empty());
  const auto run = sink->of("pipeline.wide");
  REQUIRE(run.size() == 1);
  const auto& d = run[0].data;
  CHECK(d.at("status") == "completed");
  CHECK(d.at("duration_ns") == r.wall.count());
  CHECK(d.at("stages") == 4);
  CHECK(d.at("items_read") == 100);
  CHECK(d.at("errors") == 10);
  CHECK(d.at("skipped") == 10);
  CHECK(d.at("filtered") == r.stage("even").filtered);
  std::uint64_t batches = 0;
  for (const auto& s : r.stages) batches += s.batches;
  CHECK(d.at("batches") == batches);
  REQUIRE(r.errors.size() == 1);
  // The summary counts all ten errors, seen first at 1 s and last at 10 s on the pipeline's clock.
  const auto& e = r.errors[0];
  CHECK(e.count == 10);
  CHECK(e.first_seen == wall_start + 1s);
  CHECK(e.last_seen == wall_start + 10s);
  const json summary = weir::telemetry::to_json(e);
  CHECK(summary == json{{"stage", "skipper"},
                        {"type", "std::runtime_error"},
                        {"message", "three"},
                        {"retryable", false},
                        {"count", 10},
                        {"first_seen", "2026-11-24T08:00:01.000000Z"},
                        {"last_seen", "2026-11-24T08:00:10.000000Z"}});
  CHECK(d.at("error_summaries") == json::array({summary}));
}

TEST_CASE(
    "a failed run sends stage.failed and pipeline.failed with the error summaries PipelineError carries") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("fails", manual_options(clock, 4));
  auto sink = std::make_shared<MemorySink>();
  weir::telemetry::emit_events(p, sink);
  p.source(iota(0, 20))
      .map([](int x) {
        if (x == 5) throw std::invalid_argument("five");
        return x;
      })
      .name("picky")
      .sink([](int) {})
      .name("out");
  std::optional<weir::PipelineError> error;
  try {
    (void)p.run();
  } catch (const weir::PipelineError& e) {
    error = e;
  }
  REQUIRE(error.has_value());
  REQUIRE(error->errors().size() == 1);
  const auto& summary = error->errors()[0];
  CHECK(summary.stage == "picky");
  CHECK(summary.type == "std::invalid_argument");
  CHECK(summary.message == "five");
  CHECK_FALSE(summary.retryable);
  CHECK(summary.count == 1);
  CHECK(summary.first_seen == wall_start);  // read from the pipeline's clock
  CHECK(summary.last_seen == wall_start);
  CHECK(error->report().errors.size() == 1);
  CHECK(error->report().status == weir::RunStatus::failed);

  const auto failed = sink->of("stage.failed");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].stage == "picky");
  const json expected = json::array({weir::telemetry::to_json(summary)});
  CHECK(failed[0].data.at("error_summaries") == expected);
  CHECK(expected[0].at("first_seen") == "2026-11-24T08:00:00.000000Z");
  CHECK(sink->of("stage.completed").size() == 2);  // the source and the sink did not fail
  const auto end = sink->events().back();
  CHECK(end.type == "pipeline.failed");
  CHECK(end.data.at("status") == "failed");
  CHECK(end.data.at("error_summaries") == expected);
  CHECK(sink->of("pipeline.wide").at(0).data.at("error_summaries") == expected);
  const auto item = sink->of("item.failed");
  REQUIRE(item.size() == 1);
  CHECK(item[0].data ==
        json{{"error_type", "std::invalid_argument"}, {"message", "five"}, {"action", "fail"}});
}

TEST_CASE("a stage whose source throws is reported failed though no item failed") {
  weir::Pipeline p("source_throws", weir_test::with_batch(2));
  auto sink = std::make_shared<MemorySink>();
  weir::telemetry::emit_events(p, sink);
  int n = 0;
  p.source(weir::from_generator{[&]() -> std::optional<int> {
     if (n == 3) throw std::runtime_error("disk gone");
     return n++;
   }})
      .name("reader")
      .sink([](int) {})
      .parallelism(2);
  CHECK_THROWS_AS((void)p.run(), weir::PipelineError);
  const auto failed = sink->of("stage.failed");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].stage == "reader");
  CHECK(failed[0].data.at("error_summaries").at(0).at("message") == "disk gone");
}

TEST_CASE("every documented event type is produced by an operator that causes it") {
  std::set<std::string> seen;
  {
    std::shared_ptr<weir::ManualClock> clock;
    weir::Pipeline p("failures", manual_options(clock, 4));
    auto local = std::make_shared<MemorySink>();
    weir::telemetry::emit_events(p, local);
    std::vector<int> letters;
    p.source(iota(0, 20))
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
    const auto retries = local->of("retry.attempt");
    REQUIRE(retries.size() == 2);
    CHECK(retries[0].stage == "retrier");
    CHECK(retries[0].data == json{{"attempt", 2},
                                  {"backoff_ns", 1'000'000},
                                  {"error_type", "std::invalid_argument"},
                                  {"message", "eight"}});
    CHECK(retries[1].data.at("backoff_ns") == 2'000'000);
    const auto dlq = local->of("dlq.item");
    REQUIRE(dlq.size() == 1);
    CHECK(dlq[0].data == json{{"error_type", "std::invalid_argument"}, {"attempts", 3}});
    const auto dlq_failed = local->of("dlq.failed");
    REQUIRE(dlq_failed.size() == 1);
    CHECK(dlq_failed[0].stage == "handler_fails");
    CHECK(dlq_failed[0].data == json{{"error_type", "std::runtime_error"}, {"message", "dlq"}});
    CHECK(local->of("item.failed").size() == 2);
    CHECK(local->of("stage.failed").empty());  // errors the policy handled do not fail a stage
    CHECK(r.stage("retrier").retries == 2);
    for (const auto& t : local->types()) seen.insert(t);
  }
  {
    // A breaker that opens after two failures and stays open: the rest is rejected.
    weir::Pipeline p("breaker", weir_test::with_batch(2));
    auto local = std::make_shared<MemorySink>();
    weir::telemetry::emit_events(p, local);
    p.source(iota(0, 6))
        .map([](int x) -> int { throw std::runtime_error("down " + std::to_string(x)); })
        .name("call")
        .circuit_breaker(weir::CircuitBreakerOptions{2, 1h, 1})
        .on_error(weir::on_error::skip())
        .sink([](int) {});
    const auto r = p.run();
    const auto changes = local->of("circuit.state_changed");
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].stage == "call");
    CHECK(changes[0].data == json{{"from", "closed"}, {"to", "open"}});
    std::uint64_t rejected = 0;
    for (const auto& e : local->of("circuit.rejected")) rejected += e.data.at("count").get<std::uint64_t>();
    CHECK(rejected == 4);
    CHECK(local->of("stage.wide").at(1).data.at("circuit") == "open");
    CHECK(r.stage("call").skipped == 6);
    for (const auto& t : local->types()) seen.insert(t);
  }
  {
    // A call that moves the clock past its limit and then hangs until the run is over.
    std::shared_ptr<weir::ManualClock> clock;
    weir::Pipeline p("timeout", manual_options(clock, 4));
    auto local = std::make_shared<MemorySink>();
    weir::telemetry::emit_events(p, local);
    auto gate = std::make_shared<weir::Notification>();
    auto done = std::make_shared<weir::Notification>();
    p.source(iota(0, 4))
        .map([clock, gate, done](int x) {
          if (x == 1) {
            clock->advance(150ms);
            gate->wait();
            done->notify();
          }
          return x;
        })
        .name("slow")
        .timeout(100ms)
        .on_error(weir::on_error::skip())
        .sink([](int) {});
    const auto r = p.run();
    gate->notify();
    done->wait();
    const auto timeouts = local->of("stage.timeout");
    REQUIRE(timeouts.size() == 1);
    CHECK(timeouts[0].stage == "slow");
    CHECK(timeouts[0].data == json{{"configured_ns", 100'000'000}, {"actual_ns", 150'000'000}});
    CHECK(r.stage("slow").timeouts == 1);
    for (const auto& t : local->types()) seen.insert(t);
  }
  {
    // Event-time windows of 10 s: 3 and 9 arrive after the watermark passed their window.
    struct Ev {
      std::string key;
      std::int64_t t_sec = 0;
    };
    std::vector<Ev> in{{"a", 0}, {"a", 15}, {"a", 3}, {"b", 9}, {"a", 16}};
    std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
    weir::Pipeline p("windows", weir_test::with_batch(8));
    auto local = std::make_shared<MemorySink>();
    weir::telemetry::emit_events(p, local);
    p.source(in)
        .key_by([](const Ev& e) { return e.key; })
        .window(weir::tumbling{10s})
        .event_time(
            [](const Ev& e) { return std::chrono::system_clock::time_point{std::chrono::seconds{e.t_sec}}; })
        .count()
        .name("per_key")
        .sink(weir::collect_into(out));
    const auto r = p.run();
    const auto emitted = local->of("window.emitted");
    REQUIRE(emitted.size() == 2);
    CHECK(emitted[0].stage == "per_key");
    CHECK(emitted[0].data == json{{"keys", 1},
                                  {"items", 1},
                                  {"start", "1970-01-01T00:00:00.000000Z"},
                                  {"end", "1970-01-01T00:00:10.000000Z"}});
    CHECK(emitted[1].data.at("items") == 2);
    std::uint64_t late = 0;
    for (const auto& e : local->of("window.late_item")) {
      late += e.data.at("count").get<std::uint64_t>();
      CHECK(e.data.at("side_output") == false);
    }
    CHECK(late == 2);
    CHECK(late == r.stage("per_key").late);
    for (const auto& t : local->types()) seen.insert(t);
  }
  {
    weir::Pipeline p("routes", weir_test::with_batch(4));
    auto local = std::make_shared<MemorySink>();
    weir::telemetry::emit_events(p, local);
    std::vector<int> big;
    p.source(iota(0, 10))
        .route(weir::RouteOptions{}, weir::when{"big", [](int x) { return x >= 7; }})
        .name("router")["big"]
        .sink(weir::collect_into(big));
    (void)p.run();
    std::uint64_t dropped = 0;
    for (const auto& e : local->of("route.no_match")) {
      CHECK(e.stage == "router");
      dropped += e.data.at("items").get<std::uint64_t>();
    }
    CHECK(dropped == 7);
    for (const auto& t : local->types()) seen.insert(t);
  }
  {
    weir::Pipeline p("cancelled", weir_test::with_batch(4));
    auto local = std::make_shared<MemorySink>();
    weir::telemetry::emit_events(p, local);
    int n = 0;
    p.source(weir::from_generator{[&]() -> std::optional<int> {
       if (n == 10) p.cancel();
       return n++;
     }}).sink([](int) {});
    p.start();
    const auto r = p.wait();
    CHECK(r.status == weir::RunStatus::cancelled);
    CHECK(local->events().back().type == "pipeline.cancelled");
    CHECK(local->of("stage.failed").empty());
    for (const auto& t : local->types()) seen.insert(t);
  }
  {
    weir::Pipeline p("fails", weir_test::with_batch(1));
    auto local = std::make_shared<MemorySink>();
    weir::telemetry::emit_events(p, local);
    p.source(iota(0, 3)).map([](int) -> int { throw std::runtime_error("no"); }).sink([](int) {});
    CHECK_THROWS_AS((void)p.run(), weir::PipelineError);
    CHECK(local->of("stage.failed").size() == 1);
    CHECK(local->events().back().type == "pipeline.failed");
    for (const auto& t : local->types()) seen.insert(t);
  }
  {
    auto local = std::make_shared<MemorySink>();
    const auto r = run_held_back(local);
    CHECK_FALSE(local->of("stream.backpressure").empty());
    for (const auto& t : local->types()) seen.insert(t);
  }
  const auto& code = weir::telemetry::event_types();
  const std::set<std::string> listed(code.begin(), code.end());
  CHECK(listed.size() == code.size());
  seen.erase("test.event");
  CHECK(seen == listed);
}

TEST_CASE("docs/events.md lists exactly the event types the code sends, in the same order") {
  const auto docs = documented_types();
  const auto& code = weir::telemetry::event_types();
  CHECK(docs == std::vector<std::string>(code.begin(), code.end()));
}

TEST_CASE("a source held back by a slow stage sends stream.backpressure with the time it waited") {
  auto sink = std::make_shared<MemorySink>();
  const auto r = run_held_back(sink);
  const auto waits = sink->of("stream.backpressure");
  REQUIRE_FALSE(waits.empty());
  std::int64_t blocked = 0;
  std::uint64_t count = 0;
  for (const auto& e : waits) {
    CHECK(e.stage == "fast");
    blocked += e.data.at("blocked_ns").get<std::int64_t>();
    count += e.data.at("waits").get<std::uint64_t>();
  }
  CHECK(count == waits.size());
  CHECK(blocked == r.stage("fast").blocked.count());
  CHECK(blocked > 0);
}

TEST_CASE(
    "stream.backpressure is sent at most once per stage and interval with the time summed since the last") {
  auto clock = std::make_shared<weir::ManualClock>(wall_start);
  auto sink = std::make_shared<MemorySink>();
  weir::telemetry::EventOptions o;
  o.clock = clock;
  o.backpressure_interval = 1000ms;
  weir::telemetry::EventsInterceptor events(sink, o);
  weir::StageInfo a;
  a.pipeline = "p";
  a.name = "a";
  a.index = 0;
  weir::StageInfo b = a;
  b.name = "b";
  b.index = 1;
  events.on_run_start(weir::RunInfo{"p", "run1", weir::TraceContext::root(), {}});
  events.on_stage_start(a);
  events.on_stage_start(b);
  events.on_event(a, weir::events::Backpressure{2ms});  // the first is sent at once
  events.on_event(a, weir::events::Backpressure{3ms});
  events.on_event(b, weir::events::Backpressure{7ms});  // another stage has its own interval
  clock->advance(999ms);
  events.on_event(a, weir::events::Backpressure{4ms});
  clock->advance(1ms);
  events.on_event(a, weir::events::Backpressure{5ms});  // one interval after the first: 3 + 4 + 5
  events.on_event(a, weir::events::Backpressure{6ms});
  const auto sent = sink->of("stream.backpressure");
  REQUIRE(sent.size() == 3);
  CHECK(sent[0].stage == "a");
  CHECK(sent[0].data == json{{"blocked_ns", 2'000'000}, {"waits", 1}, {"interval_ns", 1'000'000'000}});
  CHECK(sent[1].stage == "b");
  CHECK(sent[1].data.at("blocked_ns") == 7'000'000);
  CHECK(sent[2].stage == "a");
  CHECK(sent[2].data.at("blocked_ns") == 12'000'000);
  CHECK(sent[2].data.at("waits") == 3);
  CHECK(weir::telemetry::format_rfc3339(sent[2].time) == "2026-11-24T08:00:01.000000Z");
  CHECK(sent[2].run_id == "run1");
}

TEST_CASE("operator events the sink refuses are counted and lifecycle events still go through emit") {
  weir::Pipeline p("refused", weir_test::with_batch(2));
  auto sink = std::make_shared<MemorySink>();
  sink->refuse_ = true;
  auto events = weir::telemetry::emit_events(p, sink);
  p.source(iota(0, 6))
      .map([](int x) -> int {
        if (x % 2 == 0) throw std::runtime_error("even");
        return x;
      })
      .on_error(weir::on_error::skip())
      .sink([](int) {});
  (void)p.run();
  CHECK(events->refused() == 3);
  CHECK(sink->of("item.failed").empty());
  CHECK(sink->of("pipeline.completed").size() == 1);
}

TEST_CASE("a bounded sink that drops the newest counts what it dropped and delivers the rest in order") {
  auto inner = std::make_shared<GatedSink>();
  weir::telemetry::BoundedSinkOptions o;
  o.capacity = 4;
  weir::telemetry::BoundedSink sink(inner, o);
  sink.emit(numbered(0));
  inner->entered.wait();  // 0 is being delivered: the queue is empty again
  for (int i = 1; i <= 4; ++i) CHECK(sink.try_emit(numbered(i)));
  CHECK(sink.size() == 5);
  CHECK_FALSE(sink.try_emit(numbered(5)));
  sink.emit(numbered(6));  // emit does not wait under drop_newest either
  auto s = sink.stats();
  CHECK(s.emitted == 7);
  CHECK(s.dropped == 2);
  CHECK(s.delivered == 0);
  inner->gate.notify();
  sink.stop(true);
  s = sink.stats();
  CHECK(s.delivered == 5);
  CHECK(s.dropped == 2);
  CHECK(s.drop_rate() == doctest::Approx(2.0 / 7.0));
  CHECK(inner->got == std::vector<int>{0, 1, 2, 3, 4});
  // After stop, everything is dropped.
  CHECK_FALSE(sink.try_emit(numbered(7)));
  CHECK(sink.stats().dropped == 3);
}

TEST_CASE("a bounded sink delivers events from several threads in the order they happened") {
  auto inner = std::make_shared<GatedSink>();
  weir::telemetry::BoundedSinkOptions o;
  o.capacity = 512;
  weir::telemetry::BoundedSink sink(inner, o);
  sink.emit(numbered(0));
  inner->entered.wait();  // everything below queues up behind the held event
  // Two threads take turns: each event happens after the previous one, on the other thread.
  std::atomic<int> turn{1};
  auto take_turns = [&](int parity) {
    for (int i = parity; i <= 200; i += 2) {
      while (turn.load() != i) std::this_thread::yield();
      sink.emit(numbered(i));
      turn.store(i + 1);
    }
  };
  std::thread odd(take_turns, 1);
  std::thread even(take_turns, 2);
  odd.join();
  even.join();
  inner->gate.notify();
  sink.flush();
  std::vector<int> expected(201);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(inner->got == expected);
}

TEST_CASE("a bounded sink that drops the oldest keeps the newest events") {
  auto inner = std::make_shared<GatedSink>();
  weir::telemetry::BoundedSinkOptions o;
  o.capacity = 3;
  o.policy = weir::telemetry::OverflowPolicy::drop_oldest;
  weir::telemetry::BoundedSink sink(inner, o);
  sink.emit(numbered(0));
  inner->entered.wait();
  for (int i = 1; i <= 6; ++i) CHECK(sink.try_emit(numbered(i)));
  CHECK(sink.stats().dropped == 3);
  inner->gate.notify();
  sink.flush();
  CHECK(inner->got == std::vector<int>{0, 4, 5, 6});
  CHECK(sink.stats().delivered == 4);
  CHECK(sink.stats().emitted == 7);
}

TEST_CASE("a blocking bounded sink waits in emit up to its timeout and refuses at once in try_emit") {
  auto inner = std::make_shared<GatedSink>();
  weir::telemetry::BoundedSinkOptions o;
  o.capacity = 1;
  o.policy = weir::telemetry::OverflowPolicy::block;
  o.block_timeout = 1ms;
  weir::telemetry::BoundedSink sink(inner, o);
  sink.emit(numbered(0));
  inner->entered.wait();
  sink.emit(numbered(1));
  CHECK_FALSE(sink.try_emit(numbered(2)));
  sink.emit(numbered(3));  // waits 1 ms for room, then drops
  CHECK(sink.stats().dropped == 2);
  inner->gate.notify();
  sink.stop(true);
  CHECK(inner->got == std::vector<int>{0, 1});
}

TEST_CASE("stop with drain delivers every queued event; the destructor drains too") {
  auto inner = std::make_shared<GatedSink>();
  {
    weir::telemetry::BoundedSinkOptions o;
    o.capacity = 8;
    weir::telemetry::BoundedSink sink(inner, o);
    sink.emit(numbered(0));
    inner->entered.wait();
    for (int i = 1; i < 8; ++i) sink.emit(numbered(i));
    inner->gate.notify();
  }
  CHECK(inner->got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("stop without drain drops what is queued and counts it") {
  auto inner = std::make_shared<GatedSink>();
  weir::telemetry::BoundedSink sink(inner);
  sink.emit(numbered(0));
  inner->entered.wait();
  for (int i = 1; i <= 3; ++i) sink.emit(numbered(i));
  std::thread stopper([&] { sink.stop(false); });  // waits for the delivery of 0 to end
  while (!sink.stopping()) std::this_thread::yield();
  inner->gate.notify();  // the delivery of 0 ends once the sink is stopping
  stopper.join();
  CHECK(inner->got == std::vector<int>{0});
  const auto s = sink.stats();
  CHECK(s.emitted == 4);
  CHECK(s.delivered == 1);
  CHECK(s.dropped == 3);
  sink.stop(false);  // idempotent
  CHECK_FALSE(sink.try_emit(numbered(4)));
  CHECK(sink.stats().dropped == 4);
}

TEST_CASE("a run's events written through a bounded sink to a JSON-lines file parse line by line") {
  const auto path =
      std::filesystem::temp_directory_path() / ("weir_test_events_" + std::to_string(::getpid()) + ".jsonl");
  weir::RunReport r;
  {
    auto file = std::make_shared<weir::telemetry::JsonLinesFileSink>(path);
    auto bounded = std::make_shared<weir::telemetry::BoundedSink>(file);
    weir::Pipeline p("to_file", weir_test::with_batch(3));
    weir::telemetry::emit_events(p, bounded);
    p.source(iota(0, 10)).map([](int x) { return x + 1; }).sink([](int) {});
    r = p.run();
    // The run's end flushed the bounded sink and the file: every line is there already.
    std::ifstream in(path);
    std::vector<json> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
    REQUIRE(lines.size() == 12);
    CHECK(lines.front().at("type") == "pipeline.started");
    CHECK(lines.back().at("type") == "pipeline.completed");
    for (const auto& j : lines) {
      CHECK(j.at("run_id") == r.run_id);
      CHECK(j.at("trace_id") == r.trace.trace_id.hex());
      CHECK(j.at("time").get<std::string>().size() == 27);
    }
    CHECK(bounded->stats().delivered == 12);
    CHECK(bounded->stats().dropped == 0);
    CHECK(file->write_errors() == 0);
  }
  std::filesystem::remove(path);
}

TEST_CASE("a fan-out sink hands every event to each of its sinks") {
  auto a = std::make_shared<MemorySink>();
  auto b = std::make_shared<MemorySink>();
  weir::telemetry::FanOutSink fan({a, b});
  fan.emit(numbered(1));
  CHECK(fan.try_emit(numbered(2)));
  b->refuse_ = true;
  CHECK_FALSE(fan.try_emit(numbered(3)));
  fan.flush();
  CHECK(a->events().size() == 3);
  CHECK(b->events().size() == 2);
  CHECK(a->flushes_ == 1);
  CHECK(b->flushes_ == 1);
  CHECK_THROWS_AS(weir::telemetry::FanOutSink({a, nullptr}), std::invalid_argument);
  weir::telemetry::NoopSink noop;
  CHECK(noop.try_emit(numbered(4)));
}

TEST_CASE("a file sink that cannot open its file throws") {
  CHECK_THROWS_AS(weir::telemetry::JsonLinesFileSink("/nonexistent/dir/events.jsonl"), std::runtime_error);
}
