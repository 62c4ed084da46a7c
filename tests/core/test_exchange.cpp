// Tests of the keyed exchange's guarantees (docs/architecture.md, "Order, watermarks and lateness"):
// each sending stream fills its own batches per partition, a partition receives each stream's
// batches in that stream's order, and watermarks are kept per stream and combined by minimum.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

struct Ev {
  int key = 0;
  std::int64_t t_ms = 0;  ///< event time
  int seq = 0;            ///< position in the source
};

Clock::time_point at_ms(std::int64_t ms) {
  return Clock::time_point{std::chrono::milliseconds{ms}};
}

/// `n` events in time order, one a millisecond, with keys 0..keys-1 in turn.
std::vector<Ev> in_order(int n, int keys) {
  std::vector<Ev> v;
  v.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v.push_back(Ev{i % keys, i, i});
  return v;
}

/// The first and last sequence number a count window saw, and whether it saw them in order.
struct Span {
  int first = -1;
  int last = -1;
  bool ordered = true;
  int items = 0;
};
Span add_seq(Span s, const Ev& e) {
  if (s.items > 0 && e.seq <= s.last) s.ordered = false;
  if (s.items == 0) s.first = e.seq;
  s.last = e.seq;
  ++s.items;
  return s;
}

}  // namespace

TEST_CASE("keyed stages run with linger 0: every split part is sent at once") {
  // linger 0 turns the filling off; the exchange still keeps per-stream order and watermarks.
  for (const int par : {1, 3}) {
    CAPTURE(par);
    weir::PipelineOptions o;
    o.linger = 0us;
    o.batch_size = 7;
    weir::Pipeline p("linger0", o);
    auto src = p.source(in_order(5000, 5));
    std::vector<weir::WindowResult<int, std::uint64_t>> counted;
    std::vector<weir::WindowResult<int, std::uint64_t>> timed;
    std::vector<std::pair<int, int>> reduced;
    std::vector<std::pair<int, int>> joined;
    src.key_by([](const Ev& e) { return e.key; })
        .window(weir::tumbling_count{10})
        .count()
        .parallelism(par)
        .sink(weir::collect_into(counted));
    src.key_by([](const Ev& e) { return e.key; })
        .window(weir::tumbling{100ms})
        .event_time([](const Ev& e) { return at_ms(e.t_ms); })
        .count()
        .parallelism(par)
        .sink(weir::collect_into(timed));
    src.map_reduce(
           [](const Ev& e) {
             return std::pair<int, int>{e.key, 1};
           },
           std::plus<int>{})
        .parallelism(par)
        .sink(weir::collect_into(reduced));
    src.join_by_key(
           src, [](const Ev& e) { return e.seq; }, [](const Ev& e) { return e.seq; },
           [](const Ev& a, const Ev& b) {
             return std::pair<int, int>{a.seq, b.seq};
           },
           weir::join_window{100ms, [](const Ev& e) { return at_ms(e.t_ms); },
                             [](const Ev& e) { return at_ms(e.t_ms); }})
        .parallelism(par)
        .sink(weir::collect_into(joined));
    const auto rep = p.run();
    CHECK(counted.size() == 500);
    std::uint64_t in_windows = 0;
    for (const auto& w : timed) in_windows += w.value;
    CHECK(in_windows == 5000);
    CHECK(timed.size() == 50 * 5);
    std::map<int, int> sums(reduced.begin(), reduced.end());
    CHECK(sums.size() == 5);
    for (const auto& [k, n] : sums) CHECK(n == 1000);
    CHECK(joined.size() == 5000);
    for (const auto& s : rep.stages) CHECK(s.late == 0);
  }
}

TEST_CASE("count windows group each key's items in stream order") {
  // One key, items in order: every window must hold three consecutive items.
  for (const std::size_t batch : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
    for (const int par : {1, 2, 8}) {
      CAPTURE(batch);
      CAPTURE(par);
      weir::Pipeline p("count-order", weir_test::with_batch(batch));
      std::vector<weir::WindowResult<int, Span>> out;
      p.source(in_order(20'000, 1))
          .map([](Ev e) { return e; })
          .parallelism(1)
          .key_by([](const Ev& e) { return e.key; })
          .window(weir::tumbling_count{3})
          .aggregate(Span{}, [](Span& s, const Ev& e) { s = add_seq(s, e); })
          .parallelism(par)
          .sink(weir::collect_into(out));
      p.run();
      REQUIRE(out.size() == 20'000 / 3 + 1);
      std::sort(out.begin(), out.end(),
                [](const auto& a, const auto& b) { return a.value.first < b.value.first; });
      int bad = 0;
      for (std::size_t i = 0; i < out.size(); ++i) {
        const auto& s = out[i].value;
        const int want = static_cast<int>(3 * i);
        if (!s.ordered || s.first != want || s.last != std::min(want + 2, 19'999) ||
            out[i].start > out[i].end)
          ++bad;
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("map_reduce folds each key's values in stream order") {
  // A non-commutative fold (keep the later value's sequence when it follows the earlier one, else
  // mark a break) over values in order: any reordering shows as a break.
  for (const int par : {1, 2, 3}) {
    CAPTURE(par);
    weir::Pipeline p("fold-order", weir_test::with_batch(7));
    std::vector<std::pair<int, int>> out;
    auto src = p.source(in_order(30'000, 4));
    std::uint64_t side = 0;
    src.sink([&](const Ev&) { ++side; });  // the map below then runs in a node of its own
    src.map([](Ev e) { return e; })
        .map_reduce(
            [](const Ev& e) {
              return std::pair<int, int>{e.key, e.seq};
            },
            [](int acc, int next) { return acc >= 0 && next > acc ? next : -1; })
        .parallelism(par)
        .sink(weir::collect_into(out));
    p.run();
    REQUIRE(out.size() == 4);
    for (const auto& [k, last] : out) CHECK(last == 29'996 + k);
  }
}

TEST_CASE("a serial stage in its own node before an event-time window counts no in-order item late") {
  // The map runs in a node of its own (the source also feeds a second sink), so its batches run on
  // whichever worker is free; the window must still see them in order.
  for (const auto& [par, window] :
       {std::pair{1, 10ms}, std::pair{2, 1000ms}, std::pair{8, 1000ms}, std::pair{8, 10ms}}) {
    CAPTURE(par);
    CAPTURE(window.count());
    weir::Pipeline p("serial-before-window", weir_test::with_batch(window < 100ms ? 64 : 0));
    auto src = p.source(in_order(100'000, 7));
    std::uint64_t side = 0;
    src.sink([&](const Ev&) { ++side; });
    std::vector<weir::WindowResult<int, std::uint64_t>> out;
    src.map([](Ev e) { return e; })
        .name("serial")
        .key_by([](const Ev& e) { return e.key; })
        .window(weir::tumbling{window})
        .event_time([](const Ev& e) { return at_ms(e.t_ms); })
        .count()
        .name("window")
        .parallelism(par)
        .sink(weir::collect_into(out));
    const auto rep = p.run();
    CHECK(rep.stage("window").late == 0);
    // The reference: every item counted in its key's 10 ms window.
    std::map<std::pair<int, std::int64_t>, std::uint64_t> want;
    for (const auto& e : in_order(100'000, 7)) ++want[{e.key, e.t_ms / window.count() * window.count()}];
    std::map<std::pair<int, std::int64_t>, std::uint64_t> got;
    for (const auto& w : out) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(w.start.time_since_epoch()).count();
      got[{w.key, ms}] += w.value;
    }
    CHECK(got == want);
    CHECK(side == 100'000);
  }
}

TEST_CASE("a windowed join fed by serial stages in their own nodes loses no pair") {
  for (const int par : {1, 3}) {
    CAPTURE(par);
    weir::Pipeline p("serial-before-join");
    auto src = p.source(in_order(60'000, 1));
    std::uint64_t side = 0;
    src.sink([&](const Ev&) { ++side; });
    auto left = src.map([](Ev e) { return e; }).name("left");
    auto right = src.map([](Ev e) { return e; }).name("right");
    std::uint64_t pairs = 0;
    left.join_by_key(
            right, [](const Ev& e) { return e.seq % 1000; }, [](const Ev& e) { return e.seq % 1000; },
            [](const Ev& a, const Ev& b) { return a.seq == b.seq ? 1 : 0; },
            weir::join_window{500ms, [](const Ev& e) { return at_ms(e.t_ms); },
                              [](const Ev& e) { return at_ms(e.t_ms); }})
        .name("join")
        .parallelism(par)
        .sink([&](int same) { pairs += static_cast<std::uint64_t>(same); });
    const auto rep = p.run();
    CHECK(rep.stage("join").late == 0);
    CHECK(pairs == 60'000);
  }
}

TEST_CASE("the watermark of two sources is the lower of theirs: a lagging source's items are not late") {
  // Source a runs far ahead in event time; b's items are in order on their own, so none is late,
  // whatever the interleaving of the two streams.
  weir::Pipeline p("two-sources", weir_test::with_batch(16));
  std::vector<Ev> a;
  std::vector<Ev> b;
  for (int i = 0; i < 20'000; ++i) {
    a.push_back(Ev{0, 1'000'000 + i, i});
    b.push_back(Ev{1, i, i});
  }
  auto sa = p.source(a);
  auto sb = p.source(b);
  std::vector<weir::WindowResult<int, std::uint64_t>> out;
  sa.merge(sb)
      .key_by([](const Ev& e) { return e.key; })
      .window(weir::tumbling{100ms})
      .event_time([](const Ev& e) { return at_ms(e.t_ms); })
      .count()
      .name("window")
      .parallelism(2)
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  CHECK(rep.stage("window").late == 0);
  std::uint64_t total = 0;
  for (const auto& w : out) total += w.value;
  CHECK(total == 40'000);
}
