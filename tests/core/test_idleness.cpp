// Tests of idle input streams (`event_time(ts, max_out_of_orderness, idle_after)` and
// `join_window{..., idle_after}`): a stream of a keyed partition that sends nothing for `idle_after`
// of processing time is left out of the partition's watermark until it sends again. The pipelines
// run on a ManualClock whose time only the test moves; the timer ticks every millisecond of real
// time, and the tests wait for what must happen with a bounded poll.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>
#include <weir/detail/partition_clock.hpp>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
using weir_test::eventually;
using Time = std::chrono::system_clock::time_point;

struct Ev {
  std::string key;
  std::int64_t t_sec = 0;  ///< event time, seconds since the epoch
};

Time at(std::int64_t sec) {
  return Time{std::chrono::seconds{sec}};
}

auto key_of = [](const Ev& e) -> const std::string& { return e.key; };
auto time_of = [](const Ev& e) { return at(e.t_sec); };

std::int64_t seconds(Time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

/// What a sink of a running pipeline received, read from the test's thread.
template <class R>
class Collected {
 public:
  auto sink() {
    return [this](const R& r) {
      const std::lock_guard lock(m_);
      items_.push_back(r);
    };
  }
  std::vector<R> get() {
    const std::lock_guard lock(m_);
    return items_;
  }
  std::size_t size() {
    const std::lock_guard lock(m_);
    return items_.size();
  }

 private:
  std::mutex m_;
  std::vector<R> items_;
};

using Counts = weir::WindowResult<std::string, std::uint64_t>;
/// (key, window start in seconds, count), sorted.
using Row = std::tuple<std::string, std::int64_t, std::uint64_t>;

std::vector<Row> rows(const std::vector<Counts>& results) {
  std::vector<Row> out;
  for (const auto& r : results) out.emplace_back(r.key, seconds(r.start), r.value);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::int64_t> times(const std::vector<Ev>& items) {
  std::vector<std::int64_t> out;
  for (const auto& e : items) out.push_back(e.t_sec);
  std::sort(out.begin(), out.end());
  return out;
}

/// Items the stage `name` of a running pipeline has taken in so far.
std::uint64_t items_in(const weir::Pipeline& p, const std::string& name) {
  return p.live()->snapshot().report.stage(name).items_in;
}

/// Options of a pipeline on `clock` whose timer ticks every millisecond (of real time). A push source
/// sends each item as a batch of its own: a partial batch waits for the linger time on the pipeline's
/// clock, which only the test moves. Without `telemetry` no batch is timed, so the partitions read
/// the clock themselves.
weir::PipelineOptions on_clock(std::shared_ptr<weir::ManualClock> clock, bool telemetry = true) {
  weir::PipelineOptions o;
  o.clock = std::move(clock);
  o.timer_interval = 1ms;
  o.batch_size = 1;
  o.telemetry = telemetry;
  return o;
}

/// Two push sources, a and b, merged into an event-time count window of 10 s (no out-of-orderness)
/// named "window", with `idle_after` and `parallelism` partitions; results in `out`, late items in
/// `late`.
struct TwoSources {
  TwoSources(std::chrono::nanoseconds idle_after, int parallelism, bool telemetry = true)
      : p("idle", on_clock(clock, telemetry)) {
    auto w = p.source(a)
                 .merge(p.source(b))
                 .key_by(key_of)
                 .window(weir::tumbling{10s})
                 .event_time(time_of, 0s, idle_after)
                 .count()
                 .name("window")
                 .parallelism(parallelism);
    w.sink(out.sink());
    w.late().sink(late.sink());
  }
  /// Waits until the window has taken in `n` items.
  bool arrived(std::uint64_t n) const {
    return eventually([&] { return items_in(p, "window") == n; });
  }
  void close() {
    a->close();
    b->close();
  }

  std::shared_ptr<weir::ManualClock> clock = std::make_shared<weir::ManualClock>();
  std::shared_ptr<weir::PushSource<Ev>> a = std::make_shared<weir::PushSource<Ev>>(64);
  std::shared_ptr<weir::PushSource<Ev>> b = std::make_shared<weir::PushSource<Ev>>(64);
  Collected<Counts> out;
  Collected<Ev> late;
  weir::Pipeline p;  // last: destroyed (and its run ended) before what its sinks write to
};

}  // namespace

TEST_CASE("an event-time window fires once the source that sends nothing has been idle for idle_after") {
  for (const auto& [parallelism, telemetry] : {std::pair{1, true}, std::pair{3, true}, std::pair{2, false}}) {
    CAPTURE(parallelism);
    CAPTURE(telemetry);
    TwoSources t(1s, parallelism, telemetry);
    t.p.start();
    const weir_test::OnExit closed([&] { t.close(); });
    for (const std::int64_t s : {1, 5, 12}) t.a->push(Ev{"k", s});
    REQUIRE(t.arrived(3));
    // b has sent nothing and the clock has not moved: b holds the watermark back.
    CHECK(t.out.size() == 0);
    t.clock->advance(1s);
    // b has sent nothing for 1 s: a tick leaves it out, and the watermark follows a alone (a tick
    // may leave a out too, but a sends again): at 13 s, [0, 10) closes and [10, 20) stays open.
    t.a->push(Ev{"k", 13});
    REQUIRE(eventually([&] { return t.out.size() == 1; }));
    CHECK(rows(t.out.get()) == std::vector<Row>{{"k", 0, 2}});
    t.close();
    const auto rep = t.p.wait();
    CHECK(rows(t.out.get()) == std::vector<Row>{{"k", 0, 2}, {"k", 10, 2}});
    CHECK(rep.stage("window").late == 0);
  }
}

TEST_CASE("a stream that comes back from idleness sends late items, and no window is emitted twice") {
  for (const int parallelism : {1, 3}) {
    CAPTURE(parallelism);
    TwoSources t(1s, parallelism);
    t.p.start();
    const weir_test::OnExit closed([&] { t.close(); });
    for (const std::int64_t s : {1, 5, 12}) t.a->push(Ev{"k", s});
    REQUIRE(t.arrived(3));
    t.clock->advance(1s);
    t.a->push(Ev{"k", 13});
    REQUIRE(eventually([&] { return t.out.size() == 1; }));
    // b comes back: 3 s is behind the watermark (its window has been emitted), 14 s is not, and
    // b is no longer idle: the watermark waits for it again (it does not go back to 3 s either).
    for (const std::int64_t s : {3, 14}) t.b->push(Ev{"k", s});
    REQUIRE(t.arrived(6));
    REQUIRE(eventually([&] { return t.late.size() == 1; }));
    CHECK(t.out.size() == 1);
    t.close();
    const auto rep = t.p.wait();
    CHECK(rows(t.out.get()) == std::vector<Row>{{"k", 0, 2}, {"k", 10, 3}});
    CHECK(times(t.late.get()) == std::vector<std::int64_t>{3});
    CHECK(rep.stage("window").late == 1);
  }
}

TEST_CASE("with idle_after 0 a source that sends nothing holds event-time windows back as before") {
  TwoSources t(0s, 2);
  t.p.start();
  const weir_test::OnExit closed([&] { t.close(); });
  for (const std::int64_t s : {1, 5, 12}) t.a->push(Ev{"k", s});
  REQUIRE(t.arrived(3));
  t.clock->advance(1h);
  t.a->push(Ev{"k", 13});
  REQUIRE(t.arrived(4));
  CHECK(t.out.size() == 0);
  // b was never left out: its item at 3 s is on time, and with it the watermark reaches 13 s.
  for (const std::int64_t s : {3, 14}) t.b->push(Ev{"k", s});
  REQUIRE(t.arrived(6));
  REQUIRE(eventually([&] { return t.out.size() == 1; }));
  t.close();
  const auto rep = t.p.wait();
  CHECK(rows(t.out.get()) == std::vector<Row>{{"k", 0, 3}, {"k", 10, 3}});
  CHECK(t.late.size() == 0);
  CHECK(rep.stage("window").late == 0);
}

TEST_CASE("partitions of an upstream window that get no keys do not hold back the window after it") {
  for (const auto idle_after : {0s, 1s}) {
    CAPTURE(idle_after.count());
    auto clock = std::make_shared<weir::ManualClock>();
    auto src = std::make_shared<weir::PushSource<Ev>>(64);
    Collected<Counts> out;
    weir::Pipeline p("window-after-window", on_clock(clock));
    // One key: one of the first window's three partitions sends results, the other two nothing.
    p.source(src)
        .key_by(key_of)
        .window(weir::tumbling{10s})
        .event_time(time_of)
        .count()
        .name("first")
        .parallelism(3)
        .key_by([](const Counts& r) { return r.key; })
        .window(weir::tumbling{10s})
        .event_time([](const Counts& r) { return r.start; }, 0s, idle_after)
        .count()
        .name("second")
        .parallelism(2)
        .sink(out.sink());
    p.start();
    const weir_test::OnExit closed([&] { src->close(); });
    for (const std::int64_t s : {1, 12}) src->push(Ev{"k", s});
    // The first window closes [0, 10) at 12 s; its result (at 0 s) reaches the second.
    REQUIRE(eventually([&] { return items_in(p, "second") == 1; }));
    clock->advance(1s);
    src->push(Ev{"k", 25});  // closes [10, 20): a result at 10 s, the second's [0, 10) may close
    REQUIRE(eventually([&] { return items_in(p, "second") == 2; }));
    if (idle_after > 0s) {
      REQUIRE(eventually([&] { return out.size() == 1; }));
      CHECK(rows(out.get()) == std::vector<Row>{{"k", 0, 1}});
    } else {
      CHECK(out.size() == 0);
    }
    src->close();
    const auto rep = p.wait();
    CHECK(rows(out.get()) == std::vector<Row>{{"k", 0, 1}, {"k", 10, 1}, {"k", 20, 1}});
    CHECK(rep.stage("second").late == 0);
  }
}

TEST_CASE("a windowed join's watermark leaves out a side that has been idle for idle_after") {
  for (const auto idle_after : {0s, 1s}) {
    CAPTURE(idle_after.count());
    auto clock = std::make_shared<weir::ManualClock>();
    auto left = std::make_shared<weir::PushSource<Ev>>(64);
    auto right = std::make_shared<weir::PushSource<Ev>>(64);
    Collected<std::pair<std::int64_t, std::int64_t>> out;
    weir::Pipeline p("join-idle", on_clock(clock));
    p.source(left)
        .join_by_key(
            p.source(right), key_of, key_of,
            [](const Ev& l, const Ev& r) {
              return std::pair<std::int64_t, std::int64_t>{l.t_sec, r.t_sec};
            },
            weir::join_window{10s, time_of, time_of, 0s, idle_after})
        .name("join")
        .parallelism(2)
        .sink(out.sink());
    p.start();
    const weir_test::OnExit closed([&] {
      left->close();
      right->close();
    });
    right->push(Ev{"k", 2});
    REQUIRE(eventually([&] { return items_in(p, "join") == 1; }));
    for (const std::int64_t s : {1, 12}) left->push(Ev{"k", s});
    REQUIRE(eventually([&] { return items_in(p, "join") == 3; }));
    CHECK(out.size() == 0);  // the right side is at 2 s
    clock->advance(1s);
    left->push(Ev{"k", 13});
    REQUIRE(eventually([&] { return items_in(p, "join") == 4; }));
    if (idle_after > 0s) {
      // The right side went idle: [0, 10) closes on the left side's 13 s.
      REQUIRE(eventually([&] { return out.size() == 1; }));
    } else {
      CHECK(out.size() == 0);
    }
    // The right side comes back: with idleness, 5 s is too late for the emitted [0, 10).
    for (const std::int64_t s : {5, 14}) right->push(Ev{"k", s});
    REQUIRE(eventually([&] { return items_in(p, "join") == 6; }));
    left->close();
    right->close();
    const auto rep = p.wait();
    auto got = out.get();
    std::sort(got.begin(), got.end());
    using P = std::pair<std::int64_t, std::int64_t>;
    if (idle_after > 0s) {
      CHECK(got == std::vector<P>{{1, 2}, {12, 14}, {13, 14}});
      CHECK(rep.stage("join").late == 1);
    } else {
      CHECK(got == std::vector<P>{{1, 2}, {1, 5}, {12, 14}, {13, 14}});
      CHECK(rep.stage("join").late == 0);
    }
  }
}

TEST_CASE("idle_after cannot be negative") {
  weir::Pipeline p("bad-idle");
  auto src = std::make_shared<weir::PushSource<Ev>>(4);
  auto s = p.source(src);
  CHECK_THROWS_AS(s.key_by(key_of).window(weir::tumbling{1s}).event_time(time_of, 0s, -1s),
                  std::invalid_argument);
  CHECK_THROWS_AS(s.join_by_key(
                      s, key_of, key_of, [](const Ev& l, const Ev&) { return l.t_sec; },
                      weir::join_window{1s, time_of, time_of, 0s, -1s}),
                  std::invalid_argument);
}

// --- The partition's clock on its own -----------------------------------------------------------

TEST_CASE("a partition clock leaves an idle stream out until it sends again, and never goes back") {
  weir::detail::PartitionClock c;
  c.reset(2, 0);
  CHECK(c.observe(0, 50, 400).high == weir::detail::lowest_time);  // stream 1 has sent nothing
  CHECK_FALSE(c.tick(500, 1000));
  CHECK(c.tick(1000, 1000));  // stream 1: nothing since the start; stream 0: since 400
  CHECK(c.idle(1));
  CHECK_FALSE(c.idle(0));
  auto t = c.observe(-1, 0, 1000);
  CHECK(t.before == weir::detail::lowest_time);
  CHECK(t.high == 50);
  // Stream 1 comes back behind the watermark: the watermark stays, and waits for it again.
  t = c.observe(1, 20, 1100);
  CHECK_FALSE(c.idle(1));
  CHECK(t.before == 50);
  CHECK(t.high == 50);
  CHECK(t.others == 50);
  t = c.observe(0, 80, 1200);
  CHECK(t.high == 50);
  CHECK(t.others == 20);
  t = c.observe(1, 70, 1300);
  CHECK(t.high == 70);
  // Both quiet: both go idle, and the watermark does not move.
  CHECK_FALSE(c.tick(2199, 1000));
  CHECK_FALSE(c.tick(2200, 1000));  // stream 0 is idle: stream 1 alone is at 70 too
  CHECK(c.idle(0));
  CHECK_FALSE(c.idle(1));
  CHECK_FALSE(c.tick(2300, 1000));
  CHECK(c.idle(1));
  CHECK(c.observe(-1, 0, 2300).high == 70);
  // A stream that ended is at the end of time: with the others idle, the watermark goes there.
  c.observe(0, weir::detail::highest_time, 2400);
  CHECK(c.observe(-1, 0, 2400).high == weir::detail::highest_time);
}

TEST_CASE("a partition clock with one stream or no idle time leaves nothing out") {
  weir::detail::PartitionClock one;
  one.reset(1, 0);
  one.observe(0, 10, 0);
  CHECK_FALSE(one.tick(1'000'000, 1));
  CHECK_FALSE(one.idle(0));
  weir::detail::PartitionClock never;
  never.reset(2, 0);
  never.observe(0, 10, 0);
  CHECK_FALSE(never.tick(1'000'000, 0));
  CHECK_FALSE(never.idle(1));
  CHECK(never.observe(-1, 0, 1'000'000).high == weir::detail::lowest_time);
}

TEST_CASE("a partition clock matches a plain reference on random batches and ticks") {
  // The reference keeps, per stream, its highest time, when it last sent and whether a tick found
  // it idle (nothing sent for idle_after; it counts again from its next batch). The watermark is the
  // highest, over time, of the lowest highest time of the streams not idle.
  std::mt19937_64 rng(20240611);
  for (int round = 0; round < 300; ++round) {
    const auto streams = static_cast<std::size_t>(2 + rng() % 4);
    const std::int64_t idle_after = 1 + static_cast<std::int64_t>(rng() % 50);
    weir::detail::PartitionClock c;
    c.reset(streams, 0);
    std::vector<std::int64_t> high(streams, weir::detail::lowest_time);
    std::vector<std::int64_t> last_sent(streams, 0);  // the start at first
    std::vector<bool> idle(streams, false);
    std::int64_t combined = weir::detail::lowest_time;
    std::int64_t now = 0;
    auto lowest_active = [&](int except, bool& any) {
      any = false;
      std::int64_t lo = weir::detail::highest_time;
      for (std::size_t k = 0; k < streams; ++k) {
        if (idle[k] || static_cast<int>(k) == except) continue;
        any = true;
        lo = std::min(lo, high[k]);
      }
      return lo;
    };
    for (int step = 0; step < 200; ++step) {
      CAPTURE(round);
      CAPTURE(step);
      now += static_cast<std::int64_t>(rng() % 8);
      if (rng() % 4 == 0) {
        for (std::size_t k = 0; k < streams; ++k) {
          if (now - last_sent[k] >= idle_after) idle[k] = true;
        }
        bool any = false;
        const std::int64_t lo = lowest_active(-1, any);
        CHECK(c.tick(now, idle_after) == (any && lo > combined));
        for (std::size_t k = 0; k < streams; ++k) CHECK(c.idle(k) == idle[k]);
      } else {
        // A batch of a stream (or, now and then, of none), its time anywhere around the others.
        const int s = rng() % 8 == 0 ? -1 : static_cast<int>(rng() % streams);
        const std::int64_t t = static_cast<std::int64_t>(rng() % 1000);
        const std::int64_t before = combined;
        if (s >= 0) {
          const auto k = static_cast<std::size_t>(s);
          high[k] = std::max(high[k], t);
          last_sent[k] = now;
          idle[k] = false;
        }
        bool any = false;
        const std::int64_t lo = lowest_active(-1, any);
        if (any) combined = std::max(combined, lo);
        bool others_any = false;
        const std::int64_t others = lowest_active(s, others_any);
        const auto got = c.observe(s, t, now);
        CHECK(got.before == before);
        CHECK(got.high == combined);
        CHECK(got.high >= got.before);  // the watermark never goes back
        CHECK(got.others == others);
      }
    }
  }
}
