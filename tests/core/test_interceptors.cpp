// Tests of the interceptor chain: lifecycle hooks, per-batch hooks and their order, operator
// events, per-stage registration, and the built-in counting with telemetry on and off.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using weir_test::eventually;
using weir_test::with_batch;

using namespace std::chrono_literals;

using weir_test::iota;

/// Sums of what after_batch reported for one stage.
struct Sums {
  std::uint64_t calls = 0;
  std::uint64_t before_calls = 0;
  std::uint64_t before_items = 0;
  std::uint64_t items_in = 0;
  std::uint64_t items_out = 0;
  std::uint64_t filtered = 0;
  std::uint64_t errors = 0;
  std::uint64_t skipped = 0;
  std::uint64_t dead_lettered = 0;
  std::chrono::nanoseconds duration{0};
};

/// An event as recorded: the stage it came from and the event itself (strings copied).
struct Recorded {
  std::string stage;
  std::string kind;
  int attempt = 0;
  std::chrono::nanoseconds duration{0};
  std::string error_type;
  std::string message;
  std::string action;
  std::size_t count = 0;  ///< branches or inputs
  std::size_t items = 0;
};

/// Records every hook call; thread-safe.
class Recorder : public weir::Interceptor {
 public:
  explicit Recorder(std::string tag = "", std::shared_ptr<std::vector<std::string>> log = nullptr)
      : tag_(std::move(tag)), log_(std::move(log)) {}

  void on_run_start(const weir::RunInfo& info) override {
    const std::lock_guard lock(mutex_);
    ++run_starts;
    run_id = info.run_id;
    pipeline = info.pipeline;
  }
  void on_run_stop(const weir::RunInfo& info, const weir::RunReport& r) override {
    const std::lock_guard lock(mutex_);
    ++run_stops;
    stop_status = r.status;
    stop_run_id = info.run_id;
    stop_stages = r.stages.size();
  }
  void on_stage_start(const weir::StageInfo& s) override {
    const std::lock_guard lock(mutex_);
    ++stage_starts[s.name];
    infos[s.name] = s;
  }
  void on_stage_stop(const weir::StageInfo& s, const weir::StageReport& r) override {
    const std::lock_guard lock(mutex_);
    ++stage_stops[s.name];
    stop_reports[s.name] = r;
  }
  void before_batch(const weir::StageInfo& s, std::size_t items_in) override {
    const std::lock_guard lock(mutex_);
    auto& x = sums[s.name];
    ++x.before_calls;
    x.before_items += items_in;
    if (log_) log_->push_back(tag_ + " before " + s.name);
  }
  void after_batch(const weir::StageInfo& s, const weir::BatchStats& b) override {
    const std::lock_guard lock(mutex_);
    auto& x = sums[s.name];
    ++x.calls;
    x.items_in += b.items_in;
    x.items_out += b.items_out;
    x.filtered += b.filtered;
    x.errors += b.errors;
    x.skipped += b.skipped;
    x.dead_lettered += b.dead_lettered;
    x.duration += b.duration;
    durations[s.name].push_back(b.duration);
    if (log_) log_->push_back(tag_ + " after " + s.name);
  }
  void on_event(const weir::StageInfo& s, const weir::Event& e) override {
    Recorded r;
    r.stage = s.name;
    if (const auto* a = std::get_if<weir::events::RetryAttempt>(&e)) {
      r.kind = "retry";
      r.attempt = a->attempt;
      r.duration = a->backoff;
      r.error_type = a->error_type;
      r.message = a->message;
    } else if (const auto* f = std::get_if<weir::events::ItemFailed>(&e)) {
      r.kind = "failed";
      r.error_type = f->error_type;
      r.message = f->message;
      r.action = f->action;
    } else if (const auto* d = std::get_if<weir::events::DeadLetterSent>(&e)) {
      r.kind = "dead_letter";
      r.error_type = d->error_type;
      r.attempt = d->attempts;
    } else if (const auto* h = std::get_if<weir::events::DeadLetterHandlerError>(&e)) {
      r.kind = "dead_letter_handler_error";
      r.error_type = h->error_type;
      r.message = h->message;
    } else if (const auto* b = std::get_if<weir::events::Backpressure>(&e)) {
      r.kind = "backpressure";
      r.duration = b->blocked;
    } else if (const auto* o = std::get_if<weir::events::FanOut>(&e)) {
      r.kind = "fan_out";
      r.count = o->branches;
      r.items = o->items;
    } else {
      std::visit(
          [&](const auto& ev) {
            if constexpr (std::is_same_v<std::decay_t<decltype(ev)>, weir::events::FanIn>) {
              r.kind = "fan_in";
              r.count = ev.inputs;
              r.items = ev.items;
            }
          },
          e);
    }
    const std::lock_guard lock(mutex_);
    events.push_back(std::move(r));
  }

  /// The recorded events of one kind.
  std::vector<Recorded> of(const std::string& kind) const {
    const std::lock_guard lock(mutex_);
    std::vector<Recorded> out;
    for (const auto& e : events)
      if (e.kind == kind) out.push_back(e);
    return out;
  }

  mutable std::mutex mutex_;
  int run_starts = 0;
  int run_stops = 0;
  std::string run_id, stop_run_id, pipeline;
  weir::RunStatus stop_status = weir::RunStatus::failed;
  std::size_t stop_stages = 0;
  std::map<std::string, int> stage_starts, stage_stops;
  std::map<std::string, weir::StageInfo> infos;
  std::map<std::string, weir::StageReport> stop_reports;
  std::map<std::string, Sums> sums;
  std::map<std::string, std::vector<std::chrono::nanoseconds>> durations;
  std::vector<Recorded> events;

 private:
  std::string tag_;
  std::shared_ptr<std::vector<std::string>> log_;
};

}  // namespace

TEST_CASE("a pipeline interceptor sees the run once and every stage once" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("lifecycle", with_batch(10));
  auto rec = std::make_shared<Recorder>();
  p.intercept(rec);
  std::vector<int> got;
  p.source(iota(0, 100))
      .map([](int x) { return x + 1; })
      .filter([](int x) { return x % 3 != 0; })
      .parallelism(1)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(rec->run_starts == 1);
  CHECK(rec->run_stops == 1);
  CHECK(rec->pipeline == "lifecycle");
  CHECK(rec->run_id == r.run_id);
  CHECK(rec->stop_run_id == r.run_id);
  CHECK_FALSE(r.run_id.empty());
  CHECK(rec->stop_status == weir::RunStatus::completed);
  CHECK(rec->stop_stages == 4);
  for (const auto& s : r.stages) {
    CAPTURE(s.name);
    CHECK(rec->stage_starts[s.name] == 1);
    CHECK(rec->stage_stops[s.name] == 1);
    CHECK(rec->stop_reports[s.name].items_in == s.items_in);
    CHECK(rec->stop_reports[s.name].items_out == s.items_out);
    const auto& info = rec->infos[s.name];
    CHECK(info.pipeline == "lifecycle");
    CHECK(info.kind == s.kind);
    CHECK(info.node == s.node);
    CHECK(info.parallelism == s.parallelism);
  }
  CHECK(rec->infos["range#0"].index == 0);
  CHECK(rec->infos["filter#2"].index == 2);
  CHECK(rec->stage_starts.size() == 4);
}

TEST_CASE("after_batch sums equal the report's per-stage counts" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("sums", with_batch(16));
  auto rec = std::make_shared<Recorder>();
  p.intercept(rec);
  std::vector<std::string> got;
  std::vector<int> letters;
  std::mutex mutex;
  p.source(iota(0, 1000))
      .map([](int x) {
        if (x % 50 == 7) throw std::runtime_error("7 mod 50");
        return x;
      })
      .parallelism(2)
      .on_error(weir::on_error::skip())
      .filter([](int x) { return x % 4 != 0; })
      .parallelism(2)
      .flat_map([](int x) { return std::vector<int>(static_cast<std::size_t>(x % 3), x); })
      .parallelism(2)
      .map([](int x) {
        if (x % 100 == 11) throw std::runtime_error("11 mod 100");
        return std::to_string(x);
      })
      .parallelism(2)
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) {
        const std::lock_guard lock(mutex);
        letters.push_back(d.item);
      }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  REQUIRE(r.stages.size() == 6);
  for (const auto& s : r.stages) {
    CAPTURE(s.name);
    const auto& x = rec->sums[s.name];
    CHECK(x.calls == s.batches);
    CHECK(x.items_in == s.items_in);
    CHECK(x.items_out == s.items_out);
    CHECK(x.filtered == s.filtered);
    CHECK(x.errors == s.errors);
    CHECK(x.skipped == s.skipped);
    CHECK(x.dead_lettered == s.dead_lettered);
  }
  CHECK(r.stage("map#1").skipped == 20);
  CHECK(r.stage("map#4").dead_lettered == letters.size());
  CHECK_FALSE(letters.empty());
  CHECK(r.stage("collect#5").items_in == got.size());
}

TEST_CASE(
    "before_batch runs in priority then registration order and after_batch in reverse" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("order");
  auto log = std::make_shared<std::vector<std::string>>();
  auto a = std::make_shared<Recorder>("A", log);
  auto b = std::make_shared<Recorder>("B", log);
  auto c = std::make_shared<Recorder>("C", log);
  auto d = std::make_shared<Recorder>("D", log);
  p.intercept(a, 5);
  p.intercept(b, -1);
  p.intercept(c, 5);
  std::vector<int> got;
  p.source(std::vector<int>{1})
      .map([](int x) { return x; })
      .name("m")
      .intercept(d, 0)
      .sink(weir::collect_into(got));
  (void)p.run();
  std::vector<std::string> for_m;
  for (const auto& line : *log)
    if (line.size() > 2 && line.compare(line.size() - 2, 2, " m") == 0) for_m.push_back(line);
  CHECK(for_m == std::vector<std::string>{"B before m", "D before m", "A before m", "C before m", "C after m",
                                          "A after m", "D after m", "B after m"});
}

TEST_CASE("an interceptor registered on one stage sees only that stage" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("one_stage", with_batch(4));
  auto everywhere = std::make_shared<Recorder>();
  auto only = std::make_shared<Recorder>();
  p.intercept(everywhere);
  std::vector<int> got;
  p.source(iota(0, 20))
      .map([](int x) {
        if (x == 3) throw std::runtime_error("three");
        return x;
      })
      .on_error(weir::on_error::skip())
      .filter([](int x) {
        if (x == 5) throw std::runtime_error("five");
        return true;
      })
      .name("watched")
      .on_error(weir::on_error::skip())
      .intercept(only)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(only->run_starts == 1);
  CHECK(only->run_stops == 1);
  CHECK(only->stage_starts.size() == 1);
  CHECK(only->stage_starts["watched"] == 1);
  CHECK(only->stage_stops.size() == 1);
  CHECK(only->sums.size() == 1);
  CHECK(only->sums["watched"].items_in == r.stage("watched").items_in);
  REQUIRE(only->events.size() == 1);
  CHECK(only->events[0].stage == "watched");
  CHECK(only->events[0].message == "five");
  CHECK(everywhere->stage_starts.size() == 4);
  CHECK(everywhere->of("failed").size() == 2);
}

TEST_CASE("retries, failed items and dead letters are reported as events" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  o.batch_size = 4;
  weir::Pipeline p("events", o);
  auto rec = std::make_shared<Recorder>();
  p.intercept(rec);
  std::map<int, int> calls;
  std::vector<int> letters;
  std::vector<int> got;
  p.source(iota(0, 10))
      .map([&calls](int x) {
        const int n = ++calls[x];
        if (x == 2 && n <= 2) throw std::runtime_error("flaky two");
        if (x == 6) throw std::invalid_argument("six is bad");
        return x;
      })
      .name("work")
      .on_error(weir::on_error::retry(
          3, 10ms, weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d.item); })))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, 7, 8, 9});
  CHECK(letters == std::vector<int>{6});

  const auto retries = rec->of("retry");
  REQUIRE(retries.size() == 4);  // two for item 2 (then it succeeds), two for item 6
  CHECK(retries[0].attempt == 2);
  CHECK(retries[0].duration == 10ms);
  CHECK(retries[0].error_type == "std::runtime_error");
  CHECK(retries[0].message == "flaky two");
  CHECK(retries[1].attempt == 3);
  CHECK(retries[1].duration == 20ms);
  CHECK(retries[2].attempt == 2);
  CHECK(retries[2].error_type == "std::invalid_argument");
  CHECK(retries[3].attempt == 3);
  for (const auto& e : retries) CHECK(e.stage == "work");

  const auto failed = rec->of("failed");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].action == "dead_letter");
  CHECK(failed[0].error_type == "std::invalid_argument");
  CHECK(failed[0].message == "six is bad");

  const auto sent = rec->of("dead_letter");
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].attempt == 3);
  CHECK(sent[0].error_type == "std::invalid_argument");
  CHECK(r.stage("work").retries == 4);
  CHECK(clock->steady_now().time_since_epoch() == 2 * (10ms + 20ms));
}

TEST_CASE(
    "the action of a failed item is skip, fail or dead_letter as the policy says" WEIR_NEEDS_TELEMETRY) {
  auto thrower = [](int x) {
    if (x == 1) throw std::runtime_error("one");
    return x;
  };
  {
    weir::Pipeline p("skip_event");
    auto rec = std::make_shared<Recorder>();
    p.intercept(rec);
    p.source(std::vector<int>{0, 1, 2}).map(thrower).on_error(weir::on_error::skip()).sink([](int) {});
    (void)p.run();
    const auto failed = rec->of("failed");
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].action == "skip");
    CHECK(failed[0].stage == "map#1");
  }
  {
    weir::Pipeline p("fail_event");
    auto rec = std::make_shared<Recorder>();
    p.intercept(rec);
    p.source(std::vector<int>{0, 1, 2}).map(thrower).sink([](int) {});
    CHECK_THROWS_AS((void)p.run(), weir::PipelineError);
    const auto failed = rec->of("failed");
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].action == "fail");
    CHECK(rec->run_stops == 1);
    CHECK(rec->stop_status == weir::RunStatus::failed);
  }
}

TEST_CASE("a throwing dead-letter handler is reported as an event" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("handler_event");
  auto rec = std::make_shared<Recorder>();
  p.intercept(rec);
  p.source(std::vector<int>{0, 1, 2})
      .map([](int x) {
        if (x == 1) throw std::runtime_error("one");
        return x;
      })
      .on_error(
          weir::on_error::dead_letter([](weir::DeadLetter<int>) { throw std::overflow_error("dlq down"); }))
      .sink([](int) {});
  const auto r = p.run();
  const auto errors = rec->of("dead_letter_handler_error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].error_type == "std::overflow_error");
  CHECK(errors[0].message == "dlq down");
  CHECK(rec->of("dead_letter").empty());
  CHECK(r.stage("map#1").dead_letter_failures == 1);
}

TEST_CASE("fan_out and merge report the batches they pass on as events" WEIR_NEEDS_TELEMETRY) {
  weir::Pipeline p("fan_events", with_batch(8));
  auto rec = std::make_shared<Recorder>();
  p.intercept(rec);
  std::vector<int> got;
  auto branches = p.source(iota(0, 100)).fan_out(3);
  auto evens = branches[0].filter([](int x) { return x % 2 == 0; });
  auto odds = branches[1].filter([](int x) { return x % 2 == 1; });
  auto tens = branches[2].filter([](int x) { return x % 10 == 0; });
  evens.merge(odds, tens).sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got.size() == 110);
  const auto outs = rec->of("fan_out");
  CHECK(outs.size() == r.stage("fan_out#1").batches);
  std::size_t fanned = 0;
  for (const auto& e : outs) {
    CHECK(e.count == 3);
    CHECK(e.stage == "fan_out#1");
    fanned += e.items;
  }
  CHECK(fanned == 100);
  const auto ins = rec->of("fan_in");
  CHECK(ins.size() == r.stage("merge#5").batches);
  std::size_t merged = 0;
  for (const auto& e : ins) {
    CHECK(e.count == 3);
    CHECK(e.stage == "merge#5");
    merged += e.items;
  }
  CHECK(merged == 110);
}

TEST_CASE("a source held back by a full pipeline reports backpressure events" WEIR_NEEDS_TELEMETRY) {
  weir::PipelineOptions o;
  o.batch_size = 4;
  o.max_in_flight = 1;
  o.linger = 10s;
  weir::Pipeline p("backpressure_events", o);
  auto rec = std::make_shared<Recorder>();
  p.intercept(rec);
  std::atomic<bool> open{false};
  std::atomic<int> produced{0};
  int n = 0;
  p.source(weir::from_generator{[&]() -> std::optional<int> {
     if (n == 40) return std::nullopt;
     produced.fetch_add(1);
     return n++;
   }})
      .sink([&](int) {
        while (!open.load()) std::this_thread::sleep_for(100us);
      })
      .parallelism(2);
  p.start();
  CHECK(eventually([&] { return produced.load() >= 8; }));
  std::this_thread::sleep_for(20ms);  // unavoidable: the source must be waiting for its slot
  open = true;
  const auto r = p.wait();
  const auto events = rec->of("backpressure");
  REQUIRE_FALSE(events.empty());
  std::chrono::nanoseconds total{0};
  for (const auto& e : events) {
    CHECK(e.stage == "generator#0");
    CHECK(e.duration > 0ns);
    total += e.duration;
  }
  CHECK(total == r.stage("generator#0").blocked);
}

TEST_CASE("an async sink with a full queue reports backpressure events" WEIR_NEEDS_TELEMETRY) {
  weir::PipelineOptions o;
  o.batch_size = 2;
  o.max_in_flight = 8;
  weir::Pipeline p("async_backpressure_events", o);
  auto rec = std::make_shared<Recorder>();
  std::atomic<bool> open{false};
  std::atomic<int> produced{0};
  int n = 0;
  p.source(weir::from_generator{[&]() -> std::optional<int> {
     if (n == 40) return std::nullopt;
     produced.fetch_add(1);
     return n++;
   }})
      .sink(weir::async_sink{[&](int) {
                               while (!open.load()) std::this_thread::sleep_for(100us);
                             },
                             1})
      .intercept(rec);
  p.start();
  CHECK(eventually([&] { return produced.load() >= 6; }));
  std::this_thread::sleep_for(20ms);  // unavoidable: the async sink must be waiting for room
  open = true;
  const auto r = p.wait();
  const auto events = rec->of("backpressure");
  REQUIRE_FALSE(events.empty());
  std::chrono::nanoseconds total{0};
  for (const auto& e : events) {
    CHECK(e.stage == "async_sink#1");
    total += e.duration;
  }
  CHECK(total > 0ns);
  CHECK(total == r.stage("async_sink#1").blocked);
}

// Interceptors that pair hooks (spans, in-flight gauges) need one before_batch per after_batch,
// on sources and async sinks too, and each batch counted once.
TEST_CASE("every after_batch is preceded by a before_batch and batches are counted once") {
  weir::Pipeline p("paired", with_batch(10));
  auto rec = std::make_shared<Recorder>();
  p.intercept(rec);
  p.source(iota(0, 95)).map([](int x) { return x; }).parallelism(2).sink(weir::async_sink{[](int) {}});
  const auto r = p.run();
  for (const auto& s : r.stages) {
    CAPTURE(s.name);
    const auto& x = rec->sums[s.name];
    CHECK(x.before_calls == x.calls);
    CHECK(s.batches == 10);  // 95 items in batches of 10
  }
}

TEST_CASE("without telemetry and interceptors the report counts items but no time") {
  weir::PipelineOptions o;
  o.telemetry = false;
  o.batch_size = 8;
  weir::Pipeline p("quiet", o);
  std::vector<int> got;
  p.source(iota(0, 200))
      .map([](int x) {
        volatile int spin = 0;
        for (int i = 0; i < 100; ++i) spin = spin + i;
        return x;
      })
      .parallelism(2)
      .filter([](int x) { return x % 2 == 0; })
      .parallelism(2)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got.size() == 100);
  CHECK(r.stage("range#0").items_out == 200);
  CHECK(r.stage("map#1").items_in == 200);
  CHECK(r.stage("filter#2").filtered == 100);
  CHECK(r.stage("collect#3").items_in == 100);
  for (const auto& s : r.stages) {
    CAPTURE(s.name);
    CHECK(s.busy == 0ns);
    CHECK(s.wall == 0ns);
    CHECK(s.batch_p50 == 0ns);
    CHECK(s.batch_p99 == 0ns);
    CHECK(s.batches > 0);
  }
}

TEST_CASE(
    "with telemetry and a manual clock, durations are what the manual clock says" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  o.batch_size = 5;
  o.threads = 1;  // one worker: batches of the parallel stage run one after another
  weir::Pipeline p("timed", o);
  auto rec = std::make_shared<Recorder>();
  std::vector<int> got;
  p.source(iota(0, 20))
      .map([&clock](int x) {
        clock->advance(1ms);  // each item "takes" 1 ms
        return x;
      })
      .name("slow")
      .parallelism(2)  // a node of its own
      .intercept(rec)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got.size() == 20);
  const auto& slow = r.stage("slow");
  CHECK(slow.busy == 20ms);
  CHECK(slow.batches == 4);
  CHECK(slow.wall == 20ms);
  CHECK(slow.batch_p50 >= 5ms);
  CHECK(slow.batch_p50 < 10ms);
  CHECK(slow.batch_p99 == slow.batch_p50);
  REQUIRE(rec->durations["slow"].size() == 4);
  for (const auto d : rec->durations["slow"]) CHECK(d == 5ms);
  CHECK(r.stage("collect#2").busy == 0ns);  // runs on the same single worker, between the map's batches
  CHECK(r.wall == 20ms);
}

TEST_CASE("with telemetry and a manual clock that never moves, every duration is zero" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  o.batch_size = 3;
  weir::Pipeline p("frozen", o);
  auto rec = std::make_shared<Recorder>();
  p.intercept(rec);
  std::vector<int> got;
  p.source(iota(0, 10)).map([](int x) { return x * 2; }).parallelism(2).sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got.size() == 10);
  CHECK(r.wall == 0ns);
  for (const auto& s : r.stages) {
    CAPTURE(s.name);
    CHECK(s.busy == 0ns);
    CHECK(s.blocked == 0ns);
    CHECK(rec->sums[s.name].duration == 0ns);
    CHECK(rec->sums[s.name].calls > 0);
  }
}
