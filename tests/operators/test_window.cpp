// Tests of key_by and keyed tumbling windows: event time, watermarks, lateness, count and
// processing-time windows, the aggregations, partitioning and the events they report.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "event_log.hpp"
#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
using weir_test::with_batch;
using Time = std::chrono::system_clock::time_point;

struct Ev {
  std::string key;
  std::int64_t t_sec = 0;  ///< event time, seconds since the epoch
  int value = 0;
};

Time at(std::int64_t sec) {
  return Time{std::chrono::seconds{sec}};
}

auto key_of = [](const Ev& e) -> const std::string& { return e.key; };
auto time_of = [](const Ev& e) { return at(e.t_sec); };

/// (key, window start in seconds, value, items), sorted, for comparisons.
template <class V>
using Row = std::tuple<std::string, std::int64_t, V, std::uint64_t>;

template <class V>
std::vector<Row<V>> rows(const std::vector<weir::WindowResult<std::string, V>>& results) {
  std::vector<Row<V>> out;
  for (const auto& r : results) {
    out.emplace_back(r.key,
                     std::chrono::duration_cast<std::chrono::seconds>(r.start.time_since_epoch()).count(),
                     r.value, r.items);
    CHECK(r.end - r.start >= std::chrono::nanoseconds{0});
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Records the window events a stage reports.
struct WindowEvents final : weir::Interceptor {
  std::mutex m;
  std::vector<weir::events::WindowEmitted> emitted;
  std::uint64_t late = 0;
  int watermarks = 0;
  void on_event(const weir::StageInfo& s, const weir::Event& e) override {
    if (s.kind != "window") return;
    const std::lock_guard lock(m);
    if (const auto* w = std::get_if<weir::events::WindowEmitted>(&e)) emitted.push_back(*w);
    if (const auto* l = std::get_if<weir::events::LateItems>(&e)) late += l->count;
    if (std::holds_alternative<weir::events::WatermarkAdvanced>(e)) ++watermarks;
  }
};

}  // namespace

TEST_CASE("event-time tumbling windows count the items of each key and window") {
  std::vector<Ev> in{{"a", 0}, {"b", 5}, {"a", 9}, {"a", 10}, {"b", 19}, {"a", 25}, {"b", 31}};
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("windows", with_batch(2));
  p.source(in)
      .key_by(key_of)
      .window(weir::tumbling{10s})
      .event_time(time_of)
      .count()
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  using R = Row<std::uint64_t>;
  CHECK(rows(out) == std::vector<R>{R{"a", 0, 2, 2}, R{"a", 10, 1, 1}, R{"a", 20, 1, 1}, R{"b", 0, 1, 1},
                                    R{"b", 10, 1, 1}, R{"b", 30, 1, 1}});
  for (const auto& r : out) CHECK(r.end - r.start == 10s);
  const auto& w = rep.stage("window#1");
  CHECK(w.items_in == in.size());
  CHECK(w.items_out == out.size());
  CHECK(w.late == 0);
}

TEST_CASE("a window stage with no input emits nothing") {
  std::vector<Ev> in;
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("empty");
  p.source(in)
      .key_by(key_of)
      .window(weir::tumbling{10s})
      .event_time(time_of)
      .count()
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  CHECK(out.empty());
  CHECK(rep.stage("window#1").items_out == 0);
}

TEST_CASE("windows close as the watermark passes them, before end of input" WEIR_NEEDS_TELEMETRY) {
  // One item per batch: the window [0, 10) must leave the stage when the item at 12 arrives,
  // which the sink sees before the last item's window is flushed at end of input.
  std::vector<Ev> in{{"a", 1}, {"a", 2}, {"a", 12}, {"a", 35}};
  std::vector<std::int64_t> starts;
  auto events = std::make_shared<WindowEvents>();
  weir::Pipeline p("watermark", with_batch(1));
  p.intercept(events);
  p.source(in)
      .key_by(key_of)
      .window(weir::tumbling{10s})
      .event_time(time_of, 2s)
      .count()
      .sink([&](const weir::WindowResult<std::string, std::uint64_t>& r) {
        starts.push_back(
            std::chrono::duration_cast<std::chrono::seconds>(r.start.time_since_epoch()).count());
      });
  p.run();
  CHECK(starts == std::vector<std::int64_t>{0, 10, 30});
  REQUIRE(events->emitted.size() == 3);
  CHECK(events->emitted[0].items == 2);
  CHECK(events->emitted[0].keys == 1);
  CHECK(events->emitted[0].start == at(0));
  CHECK(events->emitted[0].end == at(10));
  CHECK(events->watermarks == 4);  // every batch moves it
}

TEST_CASE(
    "items behind the watermark are late: counted, and sent to the late output when "
    "asked" WEIR_NEEDS_TELEMETRY) {
  std::vector<Ev> in{{"a", 0}, {"a", 15}, {"a", 3}, {"b", 9}, {"a", 16}};
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  std::vector<Ev> late;
  auto events = std::make_shared<WindowEvents>();
  weir::Pipeline p("late", with_batch(8));
  p.intercept(events);
  auto counts = p.source(in).key_by(key_of).window(weir::tumbling{10s}).event_time(time_of).count();
  counts.sink(weir::collect_into(out));
  counts.late().sink(weir::collect_into(late));
  const auto rep = p.run();
  using R = Row<std::uint64_t>;
  CHECK(rows(out) == std::vector<R>{R{"a", 0, 1, 1}, R{"a", 10, 2, 2}});
  REQUIRE(late.size() == 2);
  CHECK(late[0].t_sec == 3);
  CHECK(late[1].key == "b");
  const auto& w = rep.stage("window#1");
  CHECK(w.late == 2);
  CHECK(w.items_in == 5);
  CHECK(w.items_out == out.size() + late.size());
  CHECK(events->late == 2);
}

TEST_CASE("the setters of a window stage return its handle, so late() can follow them") {
  std::vector<Ev> in{{"a", 0}, {"a", 15}, {"a", 3}};
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  std::vector<Ev> late;
  std::vector<Ev> letters;
  weir::Pipeline p("late_after_setters", with_batch(8));
  auto counts = p.source(in)
                    .key_by(key_of)
                    .window(weir::tumbling{10s})
                    .event_time(time_of)
                    .count()
                    .name("counts")
                    .parallelism(2)
                    .on_error(weir::on_error::dead_letter(
                        [&](const weir::DeadLetter<Ev>& d) { letters.push_back(d.item); }))
                    .intercept(std::make_shared<WindowEvents>());
  static_assert(std::is_same_v<decltype(counts),
                               weir::WindowStream<weir::WindowResult<std::string, std::uint64_t>, Ev>>);
  counts.sink(weir::collect_into(out));
  counts.late().sink(weir::collect_into(late));
  const auto rep = p.run();
  CHECK(rep.stage("counts").parallelism == 2);
  CHECK(rep.stage("counts").late == 1);
  REQUIRE(late.size() == 1);
  CHECK(late[0].t_sec == 3);
  CHECK(out.size() == 2);
  CHECK(letters.empty());
}

TEST_CASE("every item is late when the watermark starts past them") {
  std::vector<Ev> in{{"a", 100}, {"a", 1}, {"b", 2}, {"c", 3}};
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("all-late", with_batch(1));
  p.source(in)
      .key_by(key_of)
      .window(weir::tumbling{10s})
      .event_time(time_of)
      .count()
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  REQUIRE(out.size() == 1);
  CHECK(out[0].items == 1);
  CHECK(rep.stage("window#1").late == 3);
}

TEST_CASE("allowed lateness keeps a window open for late items and emits it once") {
  std::vector<Ev> in{{"a", 1}, {"a", 12}, {"a", 5}, {"a", 21}, {"a", 6}};
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("lateness", with_batch(1));
  p.source(in)
      .key_by(key_of)
      .window(weir::tumbling{10s})
      .event_time(time_of)
      .allowed_lateness(10s)
      .count()
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  // 5 arrives with the watermark at 12: inside the lateness. 6 arrives at 21: [0, 10) closed at 20.
  using R = Row<std::uint64_t>;
  CHECK(rows(out) == std::vector<R>{R{"a", 0, 2, 2}, R{"a", 10, 1, 1}, R{"a", 20, 1, 1}});
  CHECK(rep.stage("window#1").late == 1);
}

TEST_CASE("keyed windows give the same results on any number of partitions, with skewed keys") {
  std::mt19937 rng(7);
  std::vector<Ev> in;
  for (int i = 0; i < 20000; ++i) {
    // One hot key takes half the items.
    const int k = (rng() % 2 == 0) ? 0 : static_cast<int>(rng() % 200);
    in.push_back(Ev{std::string("k").append(std::to_string(k)), i / 100, static_cast<int>(rng() % 1000)});
  }
  std::map<std::pair<std::string, std::int64_t>, std::pair<long, std::uint64_t>> expect;
  for (const auto& e : in) {
    auto& cell = expect[{e.key, e.t_sec / 30 * 30}];
    cell.first += e.value;
    ++cell.second;
  }
  for (int parts : {1, 3, 8}) {
    CAPTURE(parts);
    std::vector<weir::WindowResult<std::string, long>> out;
    weir::Pipeline p("skew", with_batch(64));
    p.source(in)
        .key_by(key_of)
        .window(weir::tumbling{30s})
        .event_time(time_of, 5s)
        .aggregate(0L, [](long& acc, const Ev& e) { acc += e.value; })
        .parallelism(parts)
        .sink(weir::collect_into(out));
    const auto rep = p.run();
    CHECK(rep.stage("window#1").late == 0);
    REQUIRE(out.size() == expect.size());
    for (const auto& r : out) {
      const auto s = std::chrono::duration_cast<std::chrono::seconds>(r.start.time_since_epoch()).count();
      const auto it = expect.find({r.key, s});
      REQUIRE(it != expect.end());
      CHECK(r.value == it->second.first);
      CHECK(r.items == it->second.second);
    }
    CHECK(weir_test::contains(p.explain(), std::string("partitions ").append(std::to_string(parts))));
  }
}

TEST_CASE("reduce folds the items of a window and aggregate maps its accumulator to a result") {
  std::vector<Ev> in{{"a", 0, 4}, {"a", 1, 9}, {"a", 2, 1}, {"b", 3, 7}};
  std::vector<weir::WindowResult<std::string, Ev>> maxes;
  std::vector<weir::WindowResult<std::string, double>> means;
  weir::Pipeline p("aggs");
  auto w = p.source(in).key_by(key_of).window(weir::tumbling{1min}).event_time(time_of);
  w.reduce([](const Ev& a, const Ev& b) {
     return a.value >= b.value ? a : b;
   }).sink(weir::collect_into(maxes));
  w.aggregate(
       std::pair<long, long>{0, 0},
       [](std::pair<long, long>& acc, const Ev& e) {
         acc.first += e.value;
         ++acc.second;
       },
       [](const std::pair<long, long>& acc) {
         return static_cast<double>(acc.first) / static_cast<double>(acc.second);
       })
      .sink(weir::collect_into(means));
  p.run();
  std::sort(maxes.begin(), maxes.end(), [](const auto& x, const auto& y) { return x.key < y.key; });
  std::sort(means.begin(), means.end(), [](const auto& x, const auto& y) { return x.key < y.key; });
  REQUIRE(maxes.size() == 2);
  CHECK(maxes[0].value.value == 9);
  CHECK(maxes[1].value.value == 7);
  REQUIRE(means.size() == 2);
  CHECK(means[0].value == doctest::Approx(14.0 / 3.0));
  CHECK(means[0].items == 3);
  CHECK(means[1].value == doctest::Approx(7.0));
}

TEST_CASE("count windows emit every n items of a key and flush the rest at end of input") {
  std::vector<Ev> in;
  for (int i = 0; i < 10; ++i) in.push_back(Ev{i % 3 == 0 ? "x" : "y", 0, i});
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("count-windows", with_batch(4));
  p.source(in).key_by(key_of).window(weir::tumbling_count{3}).count().sink(weir::collect_into(out));
  p.run();
  // x: items 0 3 6 9 -> 3 + 1; y: 1 2 4 5 7 8 -> 3 + 3.
  std::map<std::string, std::vector<std::uint64_t>> sizes;
  for (const auto& r : out) sizes[r.key].push_back(r.value);
  for (auto& [k, v] : sizes) std::sort(v.begin(), v.end());
  CHECK(sizes["x"] == std::vector<std::uint64_t>{1, 3});
  CHECK(sizes["y"] == std::vector<std::uint64_t>{3, 3});
}

TEST_CASE("processing-time windows use the time each batch left its source") {
  auto clock = std::make_shared<weir::ManualClock>(at(1000));
  weir::PipelineOptions o = with_batch(1);
  o.clock = clock;
  o.timer_interval = 0ms;  // windows close on the stamps of the batches alone
  int i = 0;
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("processing-time", o);
  // Items leave the source 4 s apart, at 1004, 1008, ..., 1032.
  p.source(weir::from_generator{[&]() -> std::optional<Ev> {
     if (i == 8) return std::nullopt;
     clock->advance(4s);
     return Ev{"k", 0, i++};
   }})
      .key_by(key_of)
      .window(weir::tumbling{10s})
      .count()
      .sink(weir::collect_into(out));
  p.run();
  using R = Row<std::uint64_t>;
  CHECK(rows(out) ==
        std::vector<R>{R{"k", 1000, 2, 2}, R{"k", 1010, 2, 2}, R{"k", 1020, 3, 3}, R{"k", 1030, 1, 1}});
}

TEST_CASE("a key function that throws goes to the window stage's error policy") {
  std::vector<Ev> in{{"a", 0}, {"", 1}, {"a", 2}};
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("bad-key");
  p.source(in)
      .key_by([](const Ev& e) -> const std::string& {
        if (e.key.empty()) throw std::invalid_argument("no key");
        return e.key;
      })
      .window(weir::tumbling{10s})
      .event_time(time_of)
      .count()
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  REQUIRE(out.size() == 1);
  CHECK(out[0].value == 2);
  // The partitioner calls the key function too: with one partition it never needs to.
  CHECK(rep.stage("window#1").skipped == 1);
}

TEST_CASE("window builders reject sizes that make no sense") {
  weir::Pipeline p("bad");
  std::vector<Ev> in;
  auto k = p.source(in).key_by(key_of);
  CHECK_THROWS_AS(k.window(weir::tumbling{0s}), std::invalid_argument);
  CHECK_THROWS_AS(k.window(weir::tumbling_count{0}), std::invalid_argument);
  CHECK_THROWS_AS(k.window(weir::tumbling{1s}).allowed_lateness(-1s), std::invalid_argument);
  CHECK_THROWS_AS(k.window(weir::tumbling_count{2}).event_time(time_of), std::invalid_argument);
}

TEST_CASE("the pipeline timer closes processing-time windows while the source is idle") {
  auto push = std::make_shared<weir::ops::PushSource<Ev>>(16);
  std::mutex m;
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::PipelineOptions o;
  o.timer_interval = 5ms;
  weir::Pipeline p("idle-windows", o);
  p.source(push).key_by(key_of).window(weir::tumbling{20ms}).count().sink([&](const auto& r) {
    const std::lock_guard lock(m);
    out.push_back(r);
  });
  p.start();
  push->push(Ev{"a", 0});
  push->push(Ev{"a", 0});
  CHECK(weir_test::eventually([&] {
    const std::lock_guard lock(m);
    return !out.empty();
  }));
  push->close();
  p.wait();
  std::uint64_t total = 0;
  for (const auto& r : out) total += r.value;
  CHECK(total == 2);
}

TEST_CASE("whether an item is late does not depend on the partition count") {
  // One batch: B at day 1 and C at day 50 come after A at day 100. Each is judged against the
  // watermark just before it, in the batch's order, so both are late on one partition or several.
  std::vector<Ev> in{{"A", 100 * 86400}, {"B", 86400}, {"C", 50 * 86400}};
  for (int parts : {1, 2, 3}) {
    CAPTURE(parts);
    std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
    weir::Pipeline p("late-by-batch", with_batch(8));
    p.source(in)
        .key_by(key_of)
        .window(weir::tumbling{24h})
        .event_time(time_of, 1h)
        .count()
        .parallelism(parts)
        .sink(weir::collect_into(out));
    const auto rep = p.run();
    CHECK(rep.stage("window#1").late == 2);
    REQUIRE(out.size() == 1);
    CHECK(out[0].key == "A");
  }
}

TEST_CASE("a window stage reports its open windows when their number changes") {
  // Event time, 25 s out of orderness, one item per batch: windows open at 0, 10 and 20 before the
  // watermark closes any; the item at 70 closes [10, 20) and [20, 30); end of input closes the rest.
  std::vector<Ev> in{{"a", 1}, {"a", 12}, {"a", 25}, {"a", 40}, {"a", 70}};
  auto log = std::make_shared<weir_test::EventLog>();
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("open_windows", with_batch(1));
  p.intercept(log);
  p.source(in)
      .key_by(key_of)
      .window(weir::tumbling{10s})
      .event_time(time_of, 25s)
      .count()
      .sink(weir::collect_into(out));
  (void)p.run();
  std::vector<std::size_t> counts;
  for (const auto& e : log->of<weir::events::WindowsOpen>()) counts.push_back(e.count);
  CHECK(counts == std::vector<std::size_t>{1, 2, 3, 2, 0});
  CHECK(out.size() == 5);
}

TEST_CASE("count windows report one open window per key and none after the flush") {
  std::vector<Ev> in{{"a", 0}, {"b", 0}, {"a", 0}, {"c", 0}};
  auto log = std::make_shared<weir_test::EventLog>();
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("open_counts", with_batch(4));
  p.intercept(log);
  p.source(in).key_by(key_of).window(weir::tumbling_count{2}).count().sink(weir::collect_into(out));
  (void)p.run();
  std::vector<std::size_t> counts;
  for (const auto& e : log->of<weir::events::WindowsOpen>()) counts.push_back(e.count);
  CHECK(counts == std::vector<std::size_t>{2, 0});  // b and c open after the batch (a closed)
}

TEST_CASE("the open-window count of a partitioned stage is the sum over its partitions") {
  std::vector<Ev> in;
  for (int i = 0; i < 40; ++i) in.push_back({std::string(1, static_cast<char>('a' + i % 8)), i, 0});
  auto log = std::make_shared<weir_test::EventLog>();
  std::vector<weir::WindowResult<std::string, std::uint64_t>> out;
  weir::Pipeline p("open_parts", with_batch(4));
  p.intercept(log);
  p.source(in)
      .key_by(key_of)
      .window(weir::tumbling{10s})
      .event_time(time_of, 1000s)  // nothing closes before the end
      .count()
      .parallelism(4)
      .sink(weir::collect_into(out));
  (void)p.run();
  const auto events = log->of<weir::events::WindowsOpen>();
  REQUIRE_FALSE(events.empty());
  std::size_t most = 0;
  for (const auto& e : events) most = std::max(most, e.count);
  // Four 10 s windows in every partition that got keys (8 keys over 4 partitions), all open until
  // the end: the totals rise to that, then fall to 0 as the partitions flush, never out of order.
  CHECK(most % 4 == 0);
  CHECK(most >= 4);
  CHECK(most <= 16);
  const auto peak =
      std::find_if(events.begin(), events.end(), [&](const auto& e) { return e.count == most; });
  CHECK(std::is_sorted(events.begin(), peak + 1,
                       [](const auto& a, const auto& b) { return a.count < b.count; }));
  CHECK(std::is_sorted(peak, events.end(), [](const auto& a, const auto& b) { return a.count > b.count; }));
  CHECK(events.back().count == 0);
}
