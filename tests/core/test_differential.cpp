// Randomized differential tests: seeded random inputs run through keyed and routing stages at
// parallelism 1, 2, 3 and 8 and batch sizes 1, 7, 256 and the default, compared with a plain C++
// computation of what the stage promises (docs/architecture.md, "Order, watermarks and lateness").
//
// The suite runs a fixed list of seeds. WEIR_SEEDS=FIRST[-LAST] runs others (scripts/soak does, for
// as long as asked); a failure prints the command that runs its case again.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using Clock = std::chrono::system_clock;

struct Ev {
  std::uint32_t key = 0;
  std::int64_t t = 0;  ///< event time, ms
  std::uint32_t seq = 0;
  std::uint32_t value = 0;
};

Clock::time_point at_ms(std::int64_t ms) {
  return Clock::time_point{std::chrono::milliseconds{ms}};
}
std::int64_t ms_of(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
std::int64_t floor_to(std::int64_t t, std::int64_t size) {
  std::int64_t q = t / size;
  if (t % size < 0) --q;
  return q * size;
}

/// One randomized case: its input, and the settings it runs with.
struct Case {
  std::uint64_t seed = 0;
  int parallelism = 1;
  std::size_t batch = 0;
  std::int64_t window = 100;  ///< ms
  std::int64_t disorder = 0;  ///< how far (ms) an item may be earlier than the highest before it
  std::int64_t bound = 0;     ///< the stage's out-of-orderness bound, ms
  std::int64_t lateness = 0;  ///< allowed lateness, ms
  std::uint64_t count = 3;    ///< count windows
  std::vector<Ev> items;
};

/// The seeds to run: a fixed list, or WEIR_SEEDS=FIRST[-LAST].
std::vector<std::uint64_t> seeds() {
  if (const char* env = std::getenv("WEIR_SEEDS"); env != nullptr && *env != '\0') {
    const std::string s(env);
    const auto dash = s.find('-');
    const std::uint64_t first = std::stoull(s.substr(0, dash));
    const std::uint64_t last = dash == std::string::npos ? first : std::stoull(s.substr(dash + 1));
    std::vector<std::uint64_t> v;
    for (std::uint64_t x = first; x <= last; ++x) v.push_back(x);
    return v;
  }
  return {1, 2, 3, 4};
}

/// The settings every seed runs with.
std::vector<std::pair<int, std::size_t>> settings() {
  std::vector<std::pair<int, std::size_t>> v;
  for (const int par : {1, 2, 3, 8}) {
    for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{256}, std::size_t{0}})
      v.emplace_back(par, batch);
  }
  return v;
}

/// A random input: sizes from empty to large (smaller for one-item batches), one key to many, with
/// skew, time in order with bounded disorder, duplicate times and times on window boundaries.
Case make_case(std::uint64_t seed, int par, std::size_t batch) {
  std::mt19937_64 rng(seed * 1'000'003 + static_cast<std::uint64_t>(par) * 31 + batch);
  auto pick = [&](std::uint64_t n) { return static_cast<std::uint64_t>(rng() % n); };
  Case c;
  c.seed = seed;
  c.parallelism = par;
  c.batch = batch;
  static constexpr std::size_t sizes[] = {0, 1, 17, 1000, 5000, 20'000, 60'000};
  std::size_t n = sizes[pick(std::size(sizes))];
  if (batch == 1) n = std::min<std::size_t>(n, 2000);
  if (seed % 4 == 0 && par == 2 && batch == 0) n = 200'000;  // one large case per such seed
  static constexpr std::uint32_t key_counts[] = {1, 2, 10, 1000, 100'000};
  const std::uint32_t keys = key_counts[pick(std::size(key_counts))];
  const bool skew = pick(2) == 0;
  c.window = static_cast<std::int64_t>(1 + pick(200));
  c.disorder = pick(3) == 0 ? 0 : static_cast<std::int64_t>(pick(static_cast<std::uint64_t>(3 * c.window)));
  c.bound = static_cast<std::int64_t>(pick(static_cast<std::uint64_t>(2 * c.window + 1)));
  c.lateness = pick(3) == 0 ? static_cast<std::int64_t>(pick(static_cast<std::uint64_t>(c.window))) : 0;
  c.count = 1 + pick(5);
  const std::int64_t step = static_cast<std::int64_t>(pick(4));  // 0: many duplicate times
  std::int64_t base = static_cast<std::int64_t>(pick(1000)) - 500;
  c.items.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    base += step == 0 ? static_cast<std::int64_t>(pick(8) == 0) : step;
    std::int64_t t =
        base -
        (c.disorder > 0 ? static_cast<std::int64_t>(pick(static_cast<std::uint64_t>(c.disorder + 1))) : 0);
    if (pick(16) == 0) t = floor_to(t, c.window);  // on a window boundary
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const auto key = static_cast<std::uint32_t>(skew ? static_cast<double>(keys) * u * u * u
                                                     : static_cast<double>(keys) * u);
    c.items.push_back(Ev{std::min(key, keys - 1), t, static_cast<std::uint32_t>(i),
                         static_cast<std::uint32_t>(rng() & 0xffff)});
  }
  return c;
}

/// make_case's input cut to 10,000 items (1,000 with one-item batches), for the slower pipelines.
Case make_small_case(std::uint64_t seed, int par, std::size_t batch) {
  Case c = make_case(seed, par, batch);
  c.items.resize(std::min<std::size_t>(c.items.size(), batch == 1 ? 1000 : 10'000));
  return c;
}

std::string rerun(const Case& c, const char* test) {
  std::ostringstream os;
  os << "rerun: WEIR_SEEDS=" << c.seed << " build/asan/tests/test_differential -tc=\"" << test
     << "\"  (parallelism " << c.parallelism << ", batch size " << c.batch << ", " << c.items.size()
     << " items, window " << c.window << " ms, disorder " << c.disorder << ", bound " << c.bound
     << ", lateness " << c.lateness << ")";
  return os.str();
}

weir::PipelineOptions options(const Case& c) {
  weir::PipelineOptions o;
  o.batch_size = c.batch;
  return o;
}

using WindowKey = std::pair<std::uint32_t, std::int64_t>;

/// What an event-time window stage must give for one input stream: an item is late when its window's
/// end plus the allowed lateness is at or below the watermark just before it (the highest time
/// before it, less the bound).
std::pair<std::map<WindowKey, std::uint64_t>, std::uint64_t> reference_windows(const Case& c) {
  std::map<WindowKey, std::uint64_t> counts;
  std::uint64_t late = 0;
  std::int64_t high = std::numeric_limits<std::int64_t>::min() / 4;
  for (const auto& e : c.items) {
    const std::int64_t start = floor_to(e.t, c.window);
    if (start + c.window + c.lateness <= high - c.bound) {
      ++late;
    } else {
      ++counts[{e.key, start}];
    }
    high = std::max(high, e.t);
  }
  return {counts, late};
}

}  // namespace

TEST_CASE("event-time windows match the reference for one input stream, directly or through a serial stage") {
  for (const auto seed : seeds()) {
    for (const auto& [par, batch] : settings()) {
      for (const bool through_serial : {false, true}) {
        const Case c = make_case(seed, par, batch);
        INFO(rerun(c,
                   "event-time windows match the reference for one input stream, directly or through a "
                   "serial stage"));
        CAPTURE(through_serial);
        weir::Pipeline p("diff-window", options(c));
        auto src = p.source(c.items);
        weir::Stream<Ev> in = src;
        std::uint64_t side = 0;
        if (through_serial) {
          src.sink([&](const Ev&) { ++side; });  // the map below then runs in a node of its own
          in = src.map([](Ev e) { return e; }).name("serial");
        }
        std::vector<weir::WindowResult<std::uint32_t, std::uint64_t>> out;
        in.key_by([](const Ev& e) { return e.key; })
            .window(weir::tumbling{std::chrono::milliseconds{c.window}})
            .event_time([](const Ev& e) { return at_ms(e.t); }, std::chrono::milliseconds{c.bound})
            .allowed_lateness(std::chrono::milliseconds{c.lateness})
            .count()
            .name("window")
            .parallelism(c.parallelism)
            .sink(weir::collect_into(out));
        const auto rep = p.run();
        const auto [want, want_late] = reference_windows(c);
        std::map<WindowKey, std::uint64_t> got;
        bool once = true;
        for (const auto& w : out) {
          once = got.emplace(WindowKey{w.key, ms_of(w.start)}, w.value).second && once;
          CHECK(ms_of(w.end) - ms_of(w.start) == c.window);
        }
        CHECK(once);  // every window emitted once
        CHECK(got == want);
        CHECK(rep.stage("window").late == want_late);
        if (through_serial) CHECK(side == c.items.size());
      }
    }
  }
}

TEST_CASE("count windows match the reference: each key's items in stream order, in windows of n") {
  struct Agg {
    std::uint32_t first = 0;
    std::uint32_t last = 0;
    std::uint64_t sum = 0;
    std::uint32_t n = 0;
  };
  for (const auto seed : seeds()) {
    for (const auto& [par, batch] : settings()) {
      const Case c = make_case(seed, par, batch);
      INFO(rerun(c, "count windows match the reference: each key's items in stream order, in windows of n"));
      weir::Pipeline p("diff-count", options(c));
      std::vector<weir::WindowResult<std::uint32_t, Agg>> out;
      p.source(c.items)
          .filter([](const Ev& e) { return e.value % 7 != 0; })
          .key_by([](const Ev& e) { return e.key; })
          .window(weir::tumbling_count{c.count})
          .aggregate(Agg{},
                     [](Agg& a, const Ev& e) {
                       if (a.n == 0) a.first = e.seq;
                       a.last = e.seq;
                       a.sum = a.sum * 31 + e.seq;  // order-sensitive
                       ++a.n;
                     })
          .parallelism(c.parallelism)
          .sink(weir::collect_into(out));
      p.run();
      // The reference: per key, consecutive items in stream order, c.count at a time.
      std::map<std::uint32_t, Agg> open;
      std::map<std::tuple<std::uint32_t, std::uint32_t>,
               std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>>
          want;
      for (const auto& e : c.items) {
        if (e.value % 7 == 0) continue;
        auto& a = open[e.key];
        if (a.n == 0) a.first = e.seq;
        a.last = e.seq;
        a.sum = a.sum * 31 + e.seq;
        if (++a.n == c.count) {
          want[{e.key, a.first}] = {a.last, a.sum, a.n};
          a = Agg{};
        }
      }
      for (const auto& [k, a] : open) {
        if (a.n > 0) want[{k, a.first}] = {a.last, a.sum, a.n};
      }
      std::map<std::tuple<std::uint32_t, std::uint32_t>,
               std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>>
          got;
      for (const auto& w : out) got[{w.key, w.value.first}] = {w.value.last, w.value.sum, w.value.n};
      CHECK(got.size() == want.size());
      CHECK(got == want);
    }
  }
}

TEST_CASE("map_reduce matches the reference: each key's values folded in stream order") {
  for (const auto seed : seeds()) {
    for (const auto& [par, batch] : settings()) {
      const Case c = make_case(seed, par, batch);
      INFO(rerun(c, "map_reduce matches the reference: each key's values folded in stream order"));
      weir::Pipeline p("diff-mapreduce", options(c));
      std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
      const auto fold = [](std::uint64_t acc, std::uint64_t v) {
        return acc * 1'000'003 + v;
      };  // order-sensitive
      p.source(c.items)
          .map_reduce(
              [](const Ev& e) {
                return std::pair<std::uint32_t, std::uint64_t>{e.key, e.seq};
              },
              fold)
          .parallelism(c.parallelism)
          .sink(weir::collect_into(out));
      p.run();
      std::map<std::uint32_t, std::uint64_t> want;
      for (const auto& e : c.items) {
        auto [it, fresh] = want.try_emplace(e.key, e.seq);
        if (!fresh) it->second = fold(it->second, e.seq);
      }
      const std::map<std::uint32_t, std::uint64_t> got(out.begin(), out.end());
      CHECK(out.size() == want.size());
      CHECK(got == want);
    }
  }
}

TEST_CASE("a windowed join within its out-of-orderness bound matches the brute-force pairs") {
  for (const auto seed : seeds()) {
    for (const auto& [par, batch] : settings()) {
      Case c = make_case(seed, par, batch);
      c.items.resize(std::min<std::size_t>(c.items.size(), 20'000));
      c.bound = c.disorder;  // nothing is late: the pairs do not depend on scheduling
      INFO(rerun(c, "a windowed join within its out-of-orderness bound matches the brute-force pairs"));
      weir::Pipeline p("diff-join", options(c));
      auto src = p.source(c.items);
      auto left = src.filter([](const Ev& e) { return e.value % 3 != 0; }).name("left");
      auto right = src.filter([](const Ev& e) { return e.value % 5 != 0; }).name("right");
      std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
      const auto key = [](const Ev& e) { return e.key % 64; };
      left.join_by_key(
              right, key, key,
              [](const Ev& a, const Ev& b) {
                return std::pair<std::uint32_t, std::uint32_t>{a.seq, b.seq};
              },
              weir::join_window{std::chrono::milliseconds{c.window}, [](const Ev& e) { return at_ms(e.t); },
                                [](const Ev& e) { return at_ms(e.t); }, std::chrono::milliseconds{c.bound}})
          .name("join")
          .parallelism(c.parallelism)
          .sink(weir::collect_into(out));
      const auto rep = p.run();
      // Brute force by window and key.
      std::map<std::pair<std::uint32_t, std::int64_t>,
               std::pair<std::vector<std::uint32_t>, std::vector<std::uint32_t>>>
          groups;
      for (const auto& e : c.items) {
        auto& g = groups[{e.key % 64, floor_to(e.t, c.window)}];
        if (e.value % 3 != 0) g.first.push_back(e.seq);
        if (e.value % 5 != 0) g.second.push_back(e.seq);
      }
      std::vector<std::pair<std::uint32_t, std::uint32_t>> want;
      for (const auto& [k, g] : groups) {
        for (const auto a : g.first) {
          for (const auto b : g.second) want.emplace_back(a, b);
        }
      }
      std::sort(want.begin(), want.end());
      std::sort(out.begin(), out.end());
      CHECK(rep.stage("join").late == 0);
      CHECK(out.size() == want.size());
      CHECK(out == want);
    }
  }
}

TEST_CASE("route, fan-out and merge with a skipping error policy keep every item exactly once") {
  for (const auto seed : seeds()) {
    for (const auto& [par, batch] : settings()) {
      const Case c = make_case(seed, par, batch);
      INFO(rerun(c, "route, fan-out and merge with a skipping error policy keep every item exactly once"));
      weir::Pipeline p("diff-route", options(c));
      auto parsed = p.source(c.items)
                        .map([](Ev e) {
                          if (e.value % 11 == 0) throw std::runtime_error("bad value");
                          return e;
                        })
                        .name("parse")
                        .parallelism(c.parallelism)
                        .on_error(weir::on_error::skip());
      auto routes = parsed.route(weir::RouteOptions{weir::RouteMode::first_match, "odd"},
                                 weir::when{"even", [](const Ev& e) { return e.value % 2 == 0; }});
      auto even = routes["even"].map([](Ev e) {
        e.value *= 2;
        return e;
      });
      auto odd = routes["odd"].map([](Ev e) { return e; });
      std::vector<Ev> merged;
      std::uint64_t copies = 0;
      auto all = even.merge(odd);
      all.sink(weir::collect_into(merged));
      all.sink([&](const Ev&) { ++copies; });  // a fan-out: each branch gets every item
      const auto rep = p.run();
      std::vector<std::uint32_t> want;
      for (const auto& e : c.items) {
        if (e.value % 11 != 0) want.push_back(e.seq);
      }
      std::vector<std::uint32_t> got;
      for (const auto& e : merged) got.push_back(e.seq);
      std::sort(got.begin(), got.end());
      CHECK(got == want);
      CHECK(copies == want.size());
      CHECK(rep.stage("parse").skipped == c.items.size() - want.size());
    }
  }
}

namespace {

/// What a count window over `items` gives, with `key_of` its key and `keep` a filter before it: per
/// key, consecutive items in stream order, `count` at a time (the last ones of a key at end of
/// input). Keyed by key and first sequence number: the last sequence number, an order-sensitive hash
/// of the sequence numbers and the item count.
using CountWindows = std::map<std::tuple<std::uint32_t, std::uint32_t>,
                              std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>>;

struct SeqAgg {
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  std::uint64_t sum = 0;
  std::uint32_t n = 0;
  void add(const Ev& e) {
    if (n == 0) first = e.seq;
    last = e.seq;
    sum = sum * 31 + e.seq;  // order-sensitive
    ++n;
  }
};

template <class Key, class Keep>
CountWindows reference_count_windows(const std::vector<Ev>& items, std::uint64_t count, Key key_of,
                                     Keep keep) {
  std::map<std::uint32_t, SeqAgg> open;
  CountWindows want;
  for (const auto& e : items) {
    if (!keep(e)) continue;
    auto& a = open[key_of(e)];
    a.add(e);
    if (a.n == count) {
      want[{key_of(e), a.first}] = {a.last, a.sum, a.n};
      a = SeqAgg{};
    }
  }
  for (const auto& [k, a] : open) {
    if (a.n > 0) want[{k, a.first}] = {a.last, a.sum, a.n};
  }
  return want;
}

CountWindows got_count_windows(const std::vector<weir::WindowResult<std::uint32_t, SeqAgg>>& out) {
  CountWindows got;
  for (const auto& w : out) got[{w.key, w.value.first}] = {w.value.last, w.value.sum, w.value.n};
  return got;
}

/// Returns `e` after some work for a few items, so that a parallel stage's batches finish out of order.
std::atomic<std::uint64_t> work_done{0};
Ev uneven(Ev e) {
  if (e.value % 32 == 0) {
    std::uint64_t h = e.seq;
    for (int i = 0; i < 2000; ++i) h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    work_done.store(h, std::memory_order_relaxed);
  }
  return e;
}

}  // namespace

TEST_CASE("an ordered parallel stage before count windows matches the reference: one key and many keys") {
  // The map and filter run in parallel on any thread; .ordered() sends their batches on in the
  // source's order, so count windows (which depend on order) after them, with one key and with many,
  // group each key's items exactly as the source gave them. Each seed gives every setting one of the
  // window parallelisms, so the default seeds cover every pair of map and window parallelism.
  constexpr int window_pars[] = {1, 2, 3, 8};
  const auto all = settings();
  for (const auto seed : seeds()) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      const auto [par, batch] = all[i];
      Case c = make_small_case(seed, par, batch);
      const int window_par = window_pars[(seed + i) % std::size(window_pars)];
      INFO(rerun(
          c, "an ordered parallel stage before count windows matches the reference: one key and many keys"));
      CAPTURE(window_par);
      weir::Pipeline p("diff-ordered", options(c));
      const auto keep = [](const Ev& e) { return e.value % 7 != 0; };
      auto parsed = p.source(c.items)
                        .map([](Ev e) { return uneven(e); })
                        .name("parse")
                        .parallelism(par)
                        .ordered()
                        .filter(keep)
                        .parallelism(par);
      std::vector<weir::WindowResult<std::uint32_t, SeqAgg>> one;
      std::vector<weir::WindowResult<std::uint32_t, SeqAgg>> many;
      const auto add = [](SeqAgg& a, const Ev& e) { a.add(e); };
      parsed.key_by([](const Ev&) { return std::uint32_t{0}; })
          .window(weir::tumbling_count{c.count})
          .aggregate(SeqAgg{}, add)
          .parallelism(window_par)
          .sink(weir::collect_into(one));
      parsed.key_by([](const Ev& e) { return e.key; })
          .window(weir::tumbling_count{c.count})
          .aggregate(SeqAgg{}, add)
          .parallelism(window_par)
          .sink(weir::collect_into(many));
      p.run();
      CHECK(got_count_windows(one) ==
            reference_count_windows(
                c.items, c.count, [](const Ev&) { return std::uint32_t{0}; }, keep));
      CHECK(got_count_windows(many) == reference_count_windows(
                                           c.items, c.count, [](const Ev& e) { return e.key; }, keep));
    }
  }
}

TEST_CASE(
    "an ordered parallel stage before an event-time window with no out-of-orderness makes nothing late") {
  // In-order input and a bound of zero: an item is late only if a batch overtook another on the way.
  const auto all = settings();
  for (const auto seed : seeds()) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      const auto [par, batch] = all[i];
      Case c = make_small_case(seed, par, batch);
      std::stable_sort(c.items.begin(), c.items.end(), [](const Ev& a, const Ev& b) { return a.t < b.t; });
      c.bound = 0;
      const int window_par = std::vector<int>{1, 2, 3, 8}[(seed + i) % 4];
      INFO(rerun(c,
                 "an ordered parallel stage before an event-time window with no out-of-orderness makes "
                 "nothing late"));
      CAPTURE(window_par);
      weir::Pipeline p("diff-ordered-time", options(c));
      std::vector<weir::WindowResult<std::uint32_t, std::uint64_t>> out;
      p.source(c.items)
          .map([](Ev e) { return uneven(e); })
          .name("parse")
          .parallelism(par)
          .ordered()
          .key_by([](const Ev& e) { return e.key; })
          .window(weir::tumbling{std::chrono::milliseconds{c.window}})
          .event_time([](const Ev& e) { return at_ms(e.t); }, std::chrono::milliseconds{0})
          .allowed_lateness(std::chrono::milliseconds{c.lateness})
          .count()
          .name("window")
          .parallelism(window_par)
          .sink(weir::collect_into(out));
      const auto rep = p.run();
      const auto [want, want_late] = reference_windows(c);
      std::map<WindowKey, std::uint64_t> got;
      for (const auto& w : out) got[WindowKey{w.key, ms_of(w.start)}] += w.value;
      CHECK(want_late == 0);
      CHECK(rep.stage("window").late == 0);
      CHECK(got == want);
    }
  }
}

TEST_CASE("a lookup join matches the reference: each item with a row combined once, the rest counted") {
  // Tables of every size the join handles differently: none, small (looked up in the fused loop) and
  // over ops::lookup_join_prefetch_rows (a kernel of its own that prefetches a batch's slots).
  constexpr std::uint32_t table_sizes[] = {0, 10, 1000, 70'000};
  const auto all = settings();
  for (const auto seed : seeds()) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      const auto [par, batch] = all[i];
      const Case c = make_case(seed, par, batch);
      INFO(rerun(
          c, "a lookup join matches the reference: each item with a row combined once, the rest counted"));
      std::mt19937_64 rng(seed * 7 + i);
      const std::uint32_t size = table_sizes[(seed + i) % std::size(table_sizes)];
      struct Row {
        std::uint32_t key;
        std::uint64_t value;
      };
      std::vector<Row> rows;
      std::unordered_map<std::uint32_t, std::uint64_t> index;
      for (std::uint32_t k = 0; rows.size() < size; ++k) {
        if (rng() % 3 == 0) continue;  // keys missing from the table
        rows.push_back(Row{k, rng()});
        index.emplace(k, rows.back().value);
      }
      CAPTURE(size);
      weir::Pipeline p("diff-lookup", options(c));
      std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
      p.source(c.items)
          .map([](Ev e) { return uneven(e); })
          .parallelism(par)
          .join_by_key(
              weir::table{rows}, [](const Ev& e) { return e.key; }, [](const Row& r) { return r.key; },
              [](const Ev& e, const Row& r) {
                return std::pair{e.seq, r.value ^ e.value};
              })
          .name("join")
          .parallelism(par)
          .sink(weir::collect_into(out));
      const auto rep = p.run();
      std::vector<std::pair<std::uint32_t, std::uint64_t>> want;
      for (const auto& e : c.items) {
        const auto it = index.find(e.key);
        if (it != index.end()) want.emplace_back(e.seq, it->second ^ e.value);
      }
      std::sort(out.begin(), out.end());
      CHECK(out == want);
      CHECK(rep.stage("join").filtered == c.items.size() - want.size());
    }
  }
}

TEST_CASE("cancel during a keyed run leaves windows that are each a run of a key's items in order") {
  // Cancel from the sink once some windows came out. Whatever the run delivered is consistent with
  // the whole input: each window has the key's next items in stream order (the windows a cancelled
  // run flushes may have fewer than the count), no item is in two windows, and a run that ended
  // before the cancel gives exactly the reference.
  int cancelled = 0;
  for (const auto seed : seeds()) {
    for (const auto& [par, batch] : settings()) {
      const Case c = make_case(seed, par, batch);
      INFO(
          rerun(c, "cancel during a keyed run leaves windows that are each a run of a key's items in order"));
      weir::Pipeline p("diff-cancel", options(c));
      std::vector<weir::WindowResult<std::uint32_t, SeqAgg>> out;
      const std::size_t cancel_after = 1 + c.items.size() / 50;
      p.source(c.items)
          .key_by([](const Ev& e) { return e.key; })
          .window(weir::tumbling_count{c.count})
          .aggregate(SeqAgg{}, [](SeqAgg& a, const Ev& e) { a.add(e); })
          .parallelism(par)
          .sink([&](const weir::WindowResult<std::uint32_t, SeqAgg>& w) {
            out.push_back(w);
            if (out.size() == cancel_after) p.cancel();
          });
      const auto rep = p.run();
      const auto want = reference_count_windows(
          c.items, c.count, [](const Ev& e) { return e.key; }, [](const Ev&) { return true; });
      const auto got = got_count_windows(out);
      CHECK(got.size() == out.size());  // no window starts at an item another one started at
      if (rep.status == weir::RunStatus::completed) {
        CHECK(got == want);
        continue;
      }
      CHECK(rep.status == weir::RunStatus::cancelled);
      ++cancelled;
      std::map<std::uint32_t, std::vector<std::uint32_t>> of_key;
      for (const auto& e : c.items) of_key[e.key].push_back(e.seq);
      std::uint64_t items = 0;
      for (const auto& [at, v] : got) {
        const auto& [key, first] = at;
        const auto& [last, sum, n] = v;
        items += n;
        const auto ref = want.find(at);
        REQUIRE(ref != want.end());  // starts where the reference starts a window of the key
        CHECK(n <= std::get<2>(ref->second));
        if (n == std::get<2>(ref->second)) CHECK(v == ref->second);
        // A shorter window holds the key's next n items from `first`, in order.
        const auto& seqs = of_key[key];
        const auto from = std::lower_bound(seqs.begin(), seqs.end(), first);
        REQUIRE(std::distance(from, seqs.end()) >= static_cast<std::ptrdiff_t>(n));
        SeqAgg replay;
        for (std::uint32_t k = 0; k < n; ++k) replay.add(Ev{key, 0, *(from + k), 0});
        CHECK(std::tuple{replay.last, replay.sum, replay.n} == v);
      }
      CHECK(items <= c.items.size());
    }
  }
  CHECK(cancelled > 0);  // the runs with large inputs are cut short
}

namespace {

/// How far behind the clock a timer tick moves a processing-time window's watermark.
constexpr std::int64_t timer_grace_ns = 100'000'000;
struct KeyOfEv {
  std::uint32_t operator()(const Ev& e) const { return e.key; }
};
static_assert(weir::ops::WindowKernel<Ev, KeyOfEv, weir::ops::CountAgg>::timer_grace_ns == timer_grace_ns);

/// Items the stage `name` of a running pipeline has taken in so far (counted after each batch ran).
std::uint64_t items_in(const weir::Pipeline& p, const std::string& name) {
  return p.live()->snapshot().report.stage(name).items_in;
}

/// A processing-time case: the items of a Case pushed in rounds, and how far the manual clock moves
/// after each round.
struct Rounds {
  std::int64_t start_ns = 0;              ///< the clock's wall time at the start
  std::vector<std::size_t> ends;          ///< round r pushes items [ends[r - 1], ends[r])
  std::vector<std::int64_t> advances_ns;  ///< how far the clock moves after round r
  bool timer = false;                     ///< the pipeline timer ticks every millisecond
  bool open_at_end = false;               ///< the source closes right after the last round
  std::size_t capacity = 0;               ///< of the push source
};

/// Rounds for `c`: from one to 24, of random sizes (some empty); clock moves of nothing, to a window
/// boundary or a nanosecond before it, within a window, across several, past the timer's grace.
Rounds make_rounds(const Case& c) {
  std::mt19937_64 rng(c.seed * 7'777'777 + static_cast<std::uint64_t>(c.parallelism) * 131 + c.batch);
  auto pick = [&](std::int64_t n) {
    return static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
  };
  const std::int64_t w = c.window * 1'000'000;
  Rounds r;
  r.start_ns = pick(1'000'000) * 1'000'000 + (pick(2) == 0 ? 0 : pick(1'000'000));
  if (pick(4) == 0) r.start_ns = floor_to(r.start_ns, w);
  const auto rounds = static_cast<std::size_t>(1 + pick(24));
  for (std::size_t i = 0; i + 1 < rounds; ++i)
    r.ends.push_back(static_cast<std::size_t>(pick(static_cast<std::int64_t>(c.items.size()) + 1)));
  r.ends.push_back(c.items.size());
  std::sort(r.ends.begin(), r.ends.end());
  std::int64_t now = r.start_ns;
  for (std::size_t i = 0; i < rounds; ++i) {
    const std::int64_t to_boundary = floor_to(now, w) + w - now;
    std::int64_t d = 0;
    switch (pick(8)) {
      case 0:
        d = 0;
        break;
      case 1:
        d = to_boundary;
        break;
      case 2:
        d = to_boundary - 1;
        break;
      case 3:
        d = 1 + pick(w);
        break;
      case 4:
        d = (2 + pick(4)) * w + pick(w);
        break;
      case 5:
        d = timer_grace_ns + pick(3 * w);
        break;
      case 6:
        d = 1;
        break;
      default:
        d = pick(2 * w + 1);
        break;
    }
    r.advances_ns.push_back(d);
    now += d;
  }
  r.timer = pick(2) == 0;
  r.open_at_end = pick(2) == 0;
  // A push source of 7 makes the pusher wait for the source every few items: only for small inputs.
  static constexpr std::size_t capacities[] = {64, 4096, 7};
  r.capacity = capacities[pick(c.items.size() <= 1000 ? 3 : 2)];
  return r;
}

std::string rerun(const Case& c, const Rounds& r, const char* test) {
  std::ostringstream os;
  os << "rerun: WEIR_SEEDS=" << c.seed << " build/asan/tests/test_differential -tc=\"" << test
     << "\"  (parallelism " << c.parallelism << ", batch size " << c.batch << ", " << c.items.size()
     << " items, window " << c.window << " ms, " << r.ends.size() << " rounds, timer " << r.timer
     << ", open at end " << r.open_at_end << ", capacity " << r.capacity << ")";
  return os.str();
}

/// What the sink of a running pipeline received, with the clock's wall time when it did and whether
/// the source had been closed by then; read from the test's thread.
class Received {
 public:
  using Result = weir::WindowResult<std::uint32_t, SeqAgg>;
  struct Entry {
    Result result;
    std::int64_t at_ns;
    bool closing;
  };
  Received(const weir::ManualClock& clock, const std::atomic<bool>& closing)
      : clock_(clock), closing_(closing) {}
  auto sink() {
    return [this](const Result& w) {
      const bool closing = closing_.load();
      const std::int64_t at =
          std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.system_now().time_since_epoch())
              .count();
      const std::lock_guard lock(m_);
      entries_.push_back(Entry{w, at, closing});
      got_.emplace(WindowKey{
          w.key, std::chrono::duration_cast<std::chrono::nanoseconds>(w.start.time_since_epoch()).count()});
    };
  }
  /// Whether every window in `want` (key, start in ns) has come.
  bool has(const std::vector<WindowKey>& want) {
    const std::lock_guard lock(m_);
    return std::all_of(want.begin(), want.end(), [&](const WindowKey& k) { return got_.count(k) > 0; });
  }
  std::vector<Entry> entries() {
    const std::lock_guard lock(m_);
    return entries_;
  }

 private:
  const weir::ManualClock& clock_;
  const std::atomic<bool>& closing_;
  std::mutex m_;
  std::vector<Entry> entries_;
  std::set<WindowKey> got_;
};

}  // namespace

TEST_CASE(
    "processing-time windows match the reference on a manual clock: each round in the window of its time") {
  // A push source fed in rounds on a ManualClock: push a round's items, wait until the window stage
  // has taken them all in (its live items_in), then move the clock. Every item of a round leaves
  // the source at the round's clock time, so the reference puts it in the window of that time, per
  // key, in push order. A window comes out once, never before the clock reaches its end (except at
  // the end of input, which emits every open window), as soon as its key's partition sees a later
  // round's items, and, with the timer on, once the clock is past its end plus the timer's grace.
  const char* const name =
      "processing-time windows match the reference on a manual clock: each round in the window of its time";
  int open_at_end = 0;
  for (const auto seed : seeds()) {
    for (const auto& [par, batch] : settings()) {
      Case c = make_case(seed, par, batch);
      c.items.resize(std::min<std::size_t>(c.items.size(), batch == 1 ? 1000 : 20'000));
      const Rounds r = make_rounds(c);
      INFO(rerun(c, r, name));
      const std::int64_t w = c.window * 1'000'000;
      auto clock = std::make_shared<weir::ManualClock>(
          std::chrono::system_clock::time_point{std::chrono::nanoseconds{r.start_ns}});
      weir::PipelineOptions o = options(c);
      o.clock = clock;
      o.linger = std::chrono::microseconds{0};  // what the source takes leaves at once
      o.timer_interval = std::chrono::milliseconds{r.timer ? 1 : 0};
      weir::Pipeline p("diff-processing-time", o);
      auto push = std::make_shared<weir::PushSource<Ev>>(r.capacity);
      std::atomic<bool> closing{false};
      Received received(*clock, closing);
      p.source(push)
          .key_by(KeyOfEv{})
          .window(weir::tumbling{std::chrono::nanoseconds{w}})
          .aggregate(SeqAgg{}, [](SeqAgg& a, const Ev& e) { a.add(e); })
          .name("window")
          .parallelism(c.parallelism)
          .sink(received.sink());
      p.start();
      bool waited = false;
      const weir_test::OnExit end([&] {
        if (waited) return;
        push->close();
        try {
          (void)p.wait();
        } catch (...) {
        }
      });
      // The reference, round by round: per key and window start, the items in push order.
      std::map<WindowKey, SeqAgg> want;
      std::int64_t now = r.start_ns;
      std::size_t from = 0;
      for (std::size_t round = 0; round < r.ends.size(); ++round) {
        CAPTURE(round);
        const std::size_t to = r.ends[round];
        const std::int64_t start = floor_to(now, w);
        std::set<std::uint32_t> keys;
        for (std::size_t i = from; i < to; ++i) {
          REQUIRE(push->push(c.items[i]));
          want[{c.items[i].key, start}].add(c.items[i]);
          keys.insert(c.items[i].key);
        }
        REQUIRE(weir_test::eventually([&] { return items_in(p, "window") == to; }));
        from = to;
        // Windows that must come out now: those of the round's keys that ended by now (their
        // partitions saw items of this time), and with the timer, all that ended a grace ago.
        std::vector<WindowKey> due;
        for (const auto& [at, agg] : want) {
          const std::int64_t end_ns = at.second + w;
          if ((end_ns <= now && keys.count(at.first) > 0) || (r.timer && end_ns <= now - timer_grace_ns))
            due.push_back(at);
        }
        REQUIRE(weir_test::eventually([&] { return received.has(due); }));
        if (round + 1 < r.ends.size() || !r.open_at_end) {
          clock->advance(std::chrono::nanoseconds{r.advances_ns[round]});
          now += r.advances_ns[round];
        }
      }
      if (r.timer && !r.open_at_end) {
        // The clock moves past every window and its grace: the timer closes them all.
        clock->advance(std::chrono::nanoseconds{w + timer_grace_ns});
        now += w + timer_grace_ns;
        std::vector<WindowKey> all;
        for (const auto& [at, agg] : want) all.push_back(at);
        REQUIRE(weir_test::eventually([&] { return received.has(all); }));
      }
      // Windows still open now come out at the end of input.
      bool any_open = false;
      for (const auto& [at, agg] : want) any_open = any_open || at.second + w > now;
      if (r.open_at_end && any_open) ++open_at_end;
      closing = true;
      push->close();
      waited = true;
      const auto rep = p.wait();
      std::map<WindowKey, std::tuple<std::uint32_t, std::uint32_t, std::uint64_t, std::uint32_t>> got;
      bool once = true;
      for (const auto& e : received.entries()) {
        const auto& res = e.result;
        const std::int64_t s =
            std::chrono::duration_cast<std::chrono::nanoseconds>(res.start.time_since_epoch()).count();
        const std::int64_t end_ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(res.end.time_since_epoch()).count();
        CHECK(end_ns - s == w);
        CHECK(res.items == res.value.n);
        if (!e.closing) CHECK(e.at_ns >= end_ns);  // never before the clock reached the window's end
        once = got.emplace(WindowKey{res.key, s},
                           std::tuple{res.value.first, res.value.last, res.value.sum, res.value.n})
                   .second &&
               once;
      }
      std::map<WindowKey, std::tuple<std::uint32_t, std::uint32_t, std::uint64_t, std::uint32_t>> expected;
      for (const auto& [at, a] : want) expected[at] = std::tuple{a.first, a.last, a.sum, a.n};
      CHECK(once);
      CHECK(got.size() == expected.size());
      CHECK(got == expected);
      CHECK(rep.stage("window").late == 0);
      CHECK(rep.stage("window").items_in == c.items.size());
    }
  }
  CHECK(open_at_end > 0);  // some runs end with windows open
}
