// Tests of the metrics and events user code records from inside stages (weir/user_metrics.hpp):
// attribution to the right stage (fused loops, parallel stages, stateful stages, sources, async
// sinks), the collectors and the Prometheus exposition, name checks, and a build without telemetry.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <weir/telemetry/prometheus.hpp>
#include <weir/telemetry/stats_collector.hpp>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using weir_test::contains;
using weir_test::iota;
using weir_test::with_batch;

/// Records, per stage, the order of batch hooks and custom events.
class OrderLog final : public weir::Interceptor {
 public:
  void before_batch(const weir::StageInfo& s, std::size_t) override { push(s.name + " before"); }
  void after_batch(const weir::StageInfo& s, const weir::BatchStats&) override { push(s.name + " after"); }
  void on_event(const weir::StageInfo& s, const weir::Event& e) override {
    if (const auto* m = std::get_if<weir::events::CustomMetric>(&e))
      push(s.name + " metric " + std::string(m->name) + "=" + std::to_string(static_cast<int>(m->value)));
    if (const auto* c = std::get_if<weir::events::CustomEvent>(&e))
      push(s.name + " event " + std::string(c->name) + ":" + std::string(c->detail));
  }
  std::vector<std::string> lines() const {
    const std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  void push(std::string line) {
    const std::lock_guard lock(mutex_);
    lines_.push_back(std::move(line));
  }
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace

#if WEIR_TELEMETRY

namespace {

/// The value of the sample `series` (name plus labels exactly as exposed), or -1.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

}  // namespace

TEST_CASE("a map and a sink record counters, gauges and events that reach the collector under their stage") {
  weir::Pipeline p("user", with_batch(10));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  p.source(iota(0, 95))
      .map([](int x) {
        weir::metric::add("seen");
        weir::metric::set("last_seen", x);
        return x * 2;
      })
      .name("double")
      // Fused into one loop with the map: its own records go through its context.
      .sink([](int x, weir::StageContext& ctx) {
        ctx.add("written", 2);
        if (x > 180) ctx.emit_event("big", std::to_string(x));
      })
      .name("out");
  REQUIRE(weir_test::contains(p.explain(), "double (map) -> out (sink)"));
  const auto r = p.run();
  CHECK(r.stage("out").items_out == 95);
  CHECK(stats->value("user", "double", "user_seen") == 95);
  CHECK(stats->value("user", "double", "user_last_seen") == 94);
  CHECK(stats->value("user", "out", "user_written") == 190);
  // Nothing leaks into the neighbouring stages.
  CHECK(stats->value("user", "double", "user_written") == 0);
  CHECK(stats->value("user", "out", "user_seen") == 0);
  CHECK(stats->value("user", "numbers", "user_seen") == 0);
  const std::vector<std::string> want{"out: big: 182", "out: big: 184", "out: big: 186", "out: big: 188"};
  CHECK(stats->custom_events() == want);
}

TEST_CASE("each stage of a fused loop records into its own stage through its context") {
  weir::Pipeline p("fused", with_batch(16));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  std::vector<int> got;
  p.source(iota(0, 100))
      .map([](int x, weir::StageContext& ctx) {
        ctx.add("hits", 1);
        return x;
      })
      .name("a")
      .filter([](const int& x, weir::StageContext& ctx) {
        ctx.add("hits", 2);
        return x % 2 == 0;
      })
      .name("b")
      // A lazy range: its transform runs while the items it made are passed on to the next stage,
      // and the context it keeps stays valid for that long.
      .flat_map([](int x, weir::StageContext& ctx) {
        return std::views::iota(0, 2) | std::views::transform([x, &ctx](int i) {
                 ctx.add("hits", 4);
                 return x + i;
               });
      })
      .name("c")
      .map([](int x, weir::StageContext& ctx) {
        ctx.add("hits", 8);
        ctx.set("last", x);
        return x;
      })
      .name("d")
      .sink(weir::collect_into(got))
      .name("out");
  REQUIRE(weir_test::contains(p.explain(), "a (map) -> b (filter) -> c (flat_map) -> d (map)"));
  p.run();
  CHECK(got.size() == 100);
  CHECK(stats->value("fused", "a", "user_hits") == 100);
  CHECK(stats->value("fused", "b", "user_hits") == 200);
  CHECK(stats->value("fused", "c", "user_hits") == 400);
  CHECK(stats->value("fused", "d", "user_hits") == 800);
  CHECK(stats->value("fused", "d", "user_last") == 99);
}

TEST_CASE("free calls from any stage of a fused loop count under the loop's first watched stage") {
  weir::Pipeline p("free", with_batch(16));
  auto log = std::make_shared<OrderLog>();
  std::vector<int> got;
  p.source(iota(0, 10))
      .map([](int x) { return x; })
      .name("a")
      .map([](int x) {
        weir::metric::add("hits");
        return x;
      })
      .name("b")
      .intercept(log)
      .map([](int x, weir::StageContext& ctx) {
        weir::metric::add("hits", 10);  // a free call: counts under `b`, the first watched stage
        ctx.add("own");                 // through the context: `c`, which nothing watches
        return x;
      })
      .name("c")
      .sink(weir::collect_into(got));
  REQUIRE(weir_test::contains(p.explain(), "a (map) -> b (map) -> c (map)"));
  p.run();
  CHECK(got.size() == 10);
  const std::vector<std::string> want{"b before", "b metric hits=110", "b after"};
  CHECK(log->lines() == want);
}

TEST_CASE(
    "a context records on the stage's thread under a circuit breaker and a dead-letter policy, not on a "
    "timeout's threads") {
  weir::Pipeline p("guarded", with_batch(8));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  std::vector<int> dead;
  std::vector<int> got;
  weir::CircuitBreakerOptions lenient;
  lenient.failure_threshold = 100;
  p.source(iota(0, 20))
      .map([](int x, weir::StageContext& ctx) {
        ctx.add("tried");
        if (x % 5 == 0) throw std::runtime_error("bad");
        return x;
      })
      .name("breaker")
      .circuit_breaker(lenient)
      .on_error(weir::on_error::dead_letter([&](const weir::DeadLetter<int>& d) { dead.push_back(d.item); }))
      .map([](int x, weir::StageContext& ctx) {
        ctx.add("timed");
        return x;
      })
      .name("timed")
      .timeout(std::chrono::seconds(10))
      .sink(weir::collect_into(got))
      .name("out");
  p.run();
  CHECK(got.size() == 16);
  CHECK(dead.size() == 4);
  CHECK(stats->value("guarded", "breaker", "user_tried") == 20);
  CHECK(stats->value("guarded", "timed", "user_timed") == 0);
  CHECK(stats->value("guarded", "timed", "items_in") == 16);
}

TEST_CASE("names built at run time are told apart by their characters") {
  weir::Pipeline p("dynamic", with_batch(7));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  p.source(iota(0, 30))
      .sink([](int x) {
        const std::string name = "shard_" + std::to_string(x % 3);  // same buffer, other characters
        weir::metric::add(name);
        weir::metric::set("gauge_" + std::to_string(x % 2), x);
      })
      .name("out");
  p.run();
  CHECK(stats->value("dynamic", "out", "user_shard_0") == 10);
  CHECK(stats->value("dynamic", "out", "user_shard_1") == 10);
  CHECK(stats->value("dynamic", "out", "user_shard_2") == 10);
  CHECK(stats->value("dynamic", "out", "user_gauge_0") == 28);
  CHECK(stats->value("dynamic", "out", "user_gauge_1") == 29);
}

TEST_CASE("a parallel stage sums what its threads record and Prometheus shows it under weir_user_") {
  weir::PipelineOptions o = with_batch(8);
  o.threads = 4;
  weir::Pipeline p("parallel", o);
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::attach(p,
                          std::make_shared<weir::telemetry::MultiCollector>(
                              std::vector<std::shared_ptr<weir::telemetry::MetricsCollector>>{stats, prom}));
  std::atomic<long> sum{0};
  p.source(iota(0, 1000))
      .map([](int x) {
        weir::metric::add("rows");
        weir::metric::add("weight", x % 3);
        weir::metric::set("queue_size", 7);
        return x;
      })
      .name("parse")
      .parallelism(4)
      .sink([&](int x) {
        sum += x;
        weir::metric::add("rows_total");  // already ends in _total: exposed once, not twice
      })
      .name("out");
  p.run();
  CHECK(sum == 999 * 1000 / 2);
  long weight = 0;
  for (int x = 0; x < 1000; ++x) weight += x % 3;
  CHECK(stats->value("parallel", "parse", "user_rows") == 1000);
  CHECK(stats->value("parallel", "parse", "user_weight") == static_cast<double>(weight));
  const std::string text = prom->render();
  CHECK(sample(text, "weir_user_rows_total{pipeline=\"parallel\",stage=\"parse\"}") == 1000);
  CHECK(sample(text, "weir_user_weight_total{pipeline=\"parallel\",stage=\"parse\"}") ==
        static_cast<double>(weight));
  CHECK(sample(text, "weir_user_queue_size{pipeline=\"parallel\",stage=\"parse\"}") == 7);
  CHECK(sample(text, "weir_user_rows_total{pipeline=\"parallel\",stage=\"out\"}") == 1000);
  CHECK(contains(text, "# TYPE weir_user_rows_total counter"));
  CHECK(contains(text, "# TYPE weir_user_queue_size gauge"));
  CHECK_FALSE(contains(text, "_total_total"));
}

TEST_CASE("generators, window reduces, map-reduce and async sinks record into their own stages") {
  weir::Pipeline p("stateful", with_batch(10));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  int next = 0;
  auto src = p.source(weir::from_generator{[&next]() -> std::optional<int> {
                weir::metric::add("generated");
                if (next == 60) return std::nullopt;
                return next++;
              }}).name("gen");
  auto both = src.fan_out(2);
  both[0]
      .key_by([](int x) {
        weir::metric::add("keyed");
        return x % 2;
      })
      .window(weir::tumbling_count{5})
      .reduce([](int a, int b) {
        weir::metric::add("merged");
        return a + b;
      })
      .name("sums")
      .sink(weir::async_sink{[](const weir::WindowResult<int, int>&) { weir::metric::add("stored"); }})
      .name("store");
  both[1]
      .map_reduce(
          [](int x) {
            weir::metric::add("mapped");
            return std::pair<int, int>{x % 3, 1};
          },
          [](int a, int b) { return a + b; })
      .name("groups")
      .sink([](const std::pair<int, int>&) {})
      .name("groups_out");
  p.run();
  CHECK(stats->value("stateful", "gen", "user_generated") == 61);
  // 60 items, 2 keys, windows of 5: 12 windows of 4 merges each.
  CHECK(stats->value("stateful", "sums", "user_keyed") == 60);
  CHECK(stats->value("stateful", "sums", "user_merged") == 48);
  CHECK(stats->value("stateful", "store", "user_stored") == 12);
  CHECK(stats->value("stateful", "groups", "user_mapped") == 60);
  CHECK(stats->value("stateful", "gen", "user_merged") == 0);
  CHECK(stats->value("stateful", "gen", "user_keyed") == 0);
}

TEST_CASE("custom metrics and events reach the interceptors of their stage inside its batch") {
  weir::Pipeline p("order", with_batch(4));
  auto log = std::make_shared<OrderLog>();
  p.source(iota(0, 4))
      .map([](int x) {
        weir::metric::add("a");
        weir::metric::add("a");
        weir::metric::set("g", x);
        return x;
      })
      .name("m")
      .intercept(log)
      .sink([](int x, weir::StageContext& ctx) { ctx.emit_event("seen", std::to_string(x)); })
      .name("s");
  p.run();
  // Only `m` is watched: the sink's events go nowhere, and `m` reports once per batch.
  const std::vector<std::string> want{"m before", "m metric a=8", "m metric g=3", "m after"};
  CHECK(log->lines() == want);
}

TEST_CASE("a metric name outside [a-z_][a-z0-9_]* fails the item with invalid_argument") {
  for (const std::string bad : {"Rows", "rows-seen", "9lives", "", "rows seen"}) {
    CAPTURE(bad);
    weir::Pipeline p("bad", with_batch(8));
    weir::telemetry::attach(p, std::make_shared<weir::telemetry::StatsCollector>());
    p.source(iota(0, 3))
        .map([bad](int x) {
          weir::metric::add(bad);
          return x;
        })
        .name("m")
        .sink([](int) {});
    try {
      p.run();
      FAIL("the run should have failed");
    } catch (const weir::PipelineError& e) {
      CHECK(contains(e.what(), "std::invalid_argument"));
      CHECK(contains(e.what(), "'" + bad + "' is not a valid counter name"));
    }
  }
  // Under a skip policy the item is skipped; events are checked the same way.
  weir::Pipeline p("bad_event", with_batch(8));
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  weir::telemetry::attach(p, stats);
  p.source(iota(0, 3))
      .map([](int x) {
        if (x == 1) weir::emit_event("Oops", "x");
        weir::metric::add("good_name_2");
        return x;
      })
      .name("m")
      .on_error(weir::on_error::skip())
      .sink([](int) {});
  const auto r = p.run();
  CHECK(r.stage("m").skipped == 1);
  CHECK(stats->value("bad_event", "m", "user_good_name_2") == 2);
}

TEST_CASE("recording outside a running stage, or in a stage nothing listens to, does nothing") {
  CHECK_NOTHROW(weir::metric::add("Not A Name"));
  CHECK_NOTHROW(weir::metric::set("rows", 1));
  CHECK_NOTHROW(weir::emit_event("rows", "x"));
  weir::Pipeline p("quiet", with_batch(8));
  std::vector<int> got;
  p.source(iota(0, 20))
      .map([](int x) {
        weir::metric::add("Not A Name");
        return x;
      })
      .sink(weir::collect_into(got));
  CHECK(p.run().stage("map#1").items_out == 20);
  CHECK(got.size() == 20);
}

#else  // a build with -DWEIR_TELEMETRY=OFF

TEST_CASE("without telemetry hooks are never called, durations read zero and item counts stay") {
  weir::Pipeline p("off", with_batch(8));
  auto log = std::make_shared<OrderLog>();
  p.intercept(log);
  auto stats = std::make_shared<weir::telemetry::StatsCollector>();
  CHECK(weir::telemetry::attach(p, stats) == nullptr);
  std::vector<int> got;
  p.source(iota(0, 100))
      .map([](int x, weir::StageContext& ctx) {
        weir::metric::add("Not A Name");  // an empty function in this build: not even checked
        weir::emit_event("seen");
        ctx.add("Not A Name");
        CHECK_FALSE(ctx.recording());
        return x;
      })
      .name("m")
      .filter([](int x) { return x % 4 != 0; })
      .name("f")
      .sink(weir::collect_into(got))
      .name("out");
  const auto r = p.run();
  CHECK(got.size() == 75);
  CHECK(r.stage("m").items_in == 100);
  CHECK(r.stage("f").filtered == 25);
  CHECK(r.stage("out").items_out == 75);
  CHECK(r.stage("m").batches == 13);
  CHECK(r.stage("m").busy.count() == 0);
  CHECK(r.stage("m").batch_p99.count() == 0);
  CHECK(log->lines().empty());
  CHECK(stats->value("off", "m", "batches") == 0);
}

#endif
