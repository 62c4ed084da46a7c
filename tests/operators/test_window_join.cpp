// Tests of the windowed join of two streams (ops/window_join.hpp): the pairs of one key in the same
// event-time window against a brute-force reference on seeded random inputs at every partition count
// and batch size, empty sides, items behind the watermark, and failing time functions.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "operator_cases.hpp"
#include "weir_test.hpp"

namespace {

using weir_test::settings;
using weir_test::sorted;
using weir_test::with_batch;

struct Click {
  int ad = 0;
  int user = 0;
};
struct Impression {
  int ad = 0;
  long t = 0;  ///< seconds
};
auto click_ad = [](const Click& c) { return c.ad; };
auto imp_ad = [](const Impression& i) { return i.ad; };
auto imp_time = [](const Impression& i) {
  return std::chrono::system_clock::time_point{std::chrono::seconds{i.t}};
};
auto click_time = [](const Click& c) {
  return std::chrono::system_clock::time_point{std::chrono::seconds{c.user}};
};

/// The joins and late count a windowed join of `imps` (left) and `clicks` (right) should give when
/// every click is in before the first impression, judging each impression against the watermark
/// just before it: the lower of the impressions' highest time so far and the clicks' highest time.
std::pair<std::vector<std::tuple<int, long, int>>, std::uint64_t> expected_join(
    const std::vector<Impression>& imps, const std::vector<Click>& clicks, long window, long ooo) {
  long clicks_high = std::numeric_limits<long>::min() / 4;
  for (const auto& c : clicks) clicks_high = std::max(clicks_high, static_cast<long>(c.user));
  long high = std::numeric_limits<long>::min() / 4;
  std::uint64_t late = 0;
  std::vector<std::tuple<int, long, int>> joins;
  for (const auto& m : imps) {
    const long start = m.t / window * window;
    const bool is_late = start + window <= std::min(high, clicks_high) - ooo;
    high = std::max(high, m.t);
    if (is_late) {
      ++late;
      continue;
    }
    for (const auto& c : clicks) {
      if (c.ad == m.ad && c.user / window == m.t / window) joins.emplace_back(m.ad, m.t, c.user);
    }
  }
  std::sort(joins.begin(), joins.end());
  return {joins, late};
}

/// An item of the random tests: key, event time (ms) and place in its stream.
struct Ev {
  std::uint32_t key = 0;
  std::int64_t t = 0;
  std::uint32_t seq = 0;
};

auto ev_key = [](const Ev& e) { return e.key; };
auto ev_time = [](const Ev& e) {
  return std::chrono::system_clock::time_point{std::chrono::milliseconds{e.t}};
};

std::int64_t floor_to(std::int64_t t, std::int64_t size) {
  std::int64_t q = t / size;
  if (t % size < 0) --q;
  return q * size;
}

/// `n` items in time order (steps of 0 to 3 ms, so with equal times, some on window boundaries and
/// some before the epoch) over `keys` keys.
std::vector<Ev> random_side(std::mt19937_64& rng, std::size_t n, std::uint32_t keys, std::int64_t window) {
  std::vector<Ev> v;
  std::int64_t t = static_cast<std::int64_t>(rng() % 1000) - 500;
  for (std::size_t i = 0; i < n; ++i) {
    t += static_cast<std::int64_t>(rng() % 4);
    const std::int64_t at = rng() % 16 == 0 ? std::max(floor_to(t, window), v.empty() ? t : v.back().t) : t;
    t = at;
    v.push_back(Ev{static_cast<std::uint32_t>(rng() % keys), at, static_cast<std::uint32_t>(i)});
  }
  return v;
}

/// Every pair of a left and a right item with one key in one window: (left seq, right seq), sorted.
std::vector<std::pair<std::uint32_t, std::uint32_t>> brute_force_pairs(const std::vector<Ev>& a,
                                                                       const std::vector<Ev>& b,
                                                                       std::int64_t window) {
  std::map<std::pair<std::uint32_t, std::int64_t>, std::vector<std::uint32_t>> right;
  for (const auto& e : b) right[{e.key, floor_to(e.t, window)}].push_back(e.seq);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> pairs;
  for (const auto& e : a) {
    const auto it = right.find({e.key, floor_to(e.t, window)});
    if (it == right.end()) continue;
    for (const auto s : it->second) pairs.emplace_back(e.seq, s);
  }
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

}  // namespace

TEST_CASE(
    "a windowed join of two in-order streams gives the brute-force pairs at every partition count and batch "
    "size") {
  // Both sides in time order: no item is ever late, whatever the interleaving of the two sources, so
  // the output must be exactly every pair of one key in one window.
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const std::int64_t window = 1 + static_cast<std::int64_t>(rng() % 60);
      const std::uint32_t keys = 1 + static_cast<std::uint32_t>(rng() % 40);
      const auto n_left = weir_test::input_size(seed, s);
      const auto n_right = weir_test::input_size(seed + 2, s);
      const auto left = random_side(rng, n_left, keys, window);
      const auto right = random_side(rng, n_right, keys, window);
      const auto want = brute_force_pairs(left, right, window);
      INFO("seed ", seed, ", ", s.str(), ", ", n_left, " + ", n_right, " items, ", keys, " keys, window ",
           window, " ms, ", want.size(), " pairs");
      weir::Pipeline p("window_join", s.options());
      std::vector<std::pair<std::uint32_t, std::uint32_t>> got;
      p.source(left)
          .join_by_key(
              p.source(right), ev_key, ev_key,
              [](const Ev& a, const Ev& b) {
                return std::pair<std::uint32_t, std::uint32_t>{a.seq, b.seq};
              },
              weir::join_window{std::chrono::milliseconds{window}, ev_time, ev_time})
          .name("join")
          .parallelism(s.parallelism)
          .sink(weir::collect_into(got));
      const auto r = p.run();
      CHECK(r.stage("join").late == 0);
      CHECK(r.stage("join").items_in == n_left + n_right);
      CHECK(r.stage("join").items_out == want.size());
      CHECK(sorted(got) == want);
    }
  }
}

TEST_CASE("a windowed join with an empty side gives nothing and ends") {
  std::mt19937_64 rng(21);
  const auto some = random_side(rng, 500, 5, 10);
  const std::vector<Ev> none;
  for (const int side : {0, 1, 2}) {
    CAPTURE(side);
    weir::Pipeline p("window_join-empty", with_batch(16));
    std::vector<int> got;
    // 0: the left side is empty, 1: the right side, 2: both.
    p.source(side == 1 ? some : none)
        .join_by_key(
            p.source(side == 0 ? some : none), ev_key, ev_key, [](const Ev&, const Ev&) { return 1; },
            weir::join_window{std::chrono::milliseconds{10}, ev_time, ev_time})
        .name("join")
        .parallelism(3)
        .sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(r.status == weir::RunStatus::completed);
    CHECK(got.empty());
    CHECK(r.stage("join").late == 0);
  }
}

TEST_CASE("a windowed join pairs the items of one key in the same window, on any number of partitions") {
  using namespace std::chrono_literals;
  // Impressions and clicks of ads 0..9; a click (its time in `user`) joins the impressions of its
  // ad in the same 10 s window.
  std::vector<Impression> imps;
  std::vector<Click> clicks;
  for (int i = 0; i < 300; ++i) imps.push_back(Impression{i % 10, i / 3});
  for (int i = 0; i < 100; ++i) clicks.push_back(Click{(i * 7) % 10, i});
  std::vector<std::tuple<int, long, int>> want;
  for (const auto& c : clicks) {
    for (const auto& m : imps) {
      if (m.ad == c.ad && m.t / 10 == c.user / 10) want.emplace_back(m.ad, m.t, c.user);
    }
  }
  std::sort(want.begin(), want.end());
  for (int parts : {1, 3}) {
    CAPTURE(parts);
    std::vector<std::tuple<int, long, int>> out;
    weir::Pipeline p("window-join", with_batch(16));
    auto left = p.source(imps);
    auto right = p.source(clicks);
    left.join_by_key(
            right, imp_ad, click_ad,
            [](const Impression& m, const Click& c) {
              return std::tuple<int, long, int>{m.ad, m.t, c.user};
            },
            weir::join_window{10s, imp_time, click_time})
        .parallelism(parts)
        .sink(weir::collect_into(out));
    const auto rep = p.run();
    std::sort(out.begin(), out.end());
    CHECK(out == want);
    CHECK(rep.stage("join#2").items_in == imps.size() + clicks.size());
  }
}

TEST_CASE("a windowed join drops and counts items behind the watermark") {
  using namespace std::chrono_literals;
  // With one item per batch, the watermark follows the slower side: the impression at 5 arrives
  // after both sides have passed 30 and is late.
  std::vector<Impression> imps{{1, 0}, {1, 40}, {1, 5}};
  std::vector<Click> clicks{{1, 1}, {1, 41}};
  std::vector<int> out;
  weir::PipelineOptions o = with_batch(1);
  o.max_in_flight = 1;
  weir::Pipeline p("window-join-late", o);
  auto left = p.source(imps);
  auto right = p.source(clicks);
  left.join_by_key(
          right, imp_ad, click_ad, [](const Impression& m, const Click&) { return static_cast<int>(m.t); },
          weir::join_window{10s, imp_time, click_time})
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  std::sort(out.begin(), out.end());
  const auto late = rep.stage("join#2").late;
  CHECK(late <= 1);
  // Whatever the interleaving of the two sources, 0 joins 1 and 40 joins 41; 5 joins 1 only if on time.
  CHECK(out.size() == 3 - late);
}

TEST_CASE("a windowed join judges each item against the watermark just before it, whatever the batch size") {
  using namespace std::chrono_literals;
  // Out-of-order impressions (times drift back up to 14 s) of ads 0..4, and clicks of every ad
  // each second. All clicks reach the join before the first impression leaves its source, so the
  // clicks' side of the watermark is known; the impressions' side moves with each impression.
  std::vector<Impression> imps;
  std::uint32_t seed = 12345;
  for (int i = 0; i < 400; ++i) {
    seed = seed * 1664525U + 1013904223U;
    imps.push_back(Impression{i % 5, std::max(0L, i / 4 - static_cast<long>((seed >> 16) % 15))});
  }
  std::vector<Click> clicks;
  for (int t = 0; t < 120; ++t) {
    for (int ad = 0; ad < 5; ++ad) clicks.push_back(Click{ad, t});
  }
  const auto [want, want_late] = expected_join(imps, clicks, 10, 2);
  REQUIRE(want_late > 20);  // the case tests something
  REQUIRE(!want.empty());
  for (std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{256}}) {
    for (int parts : {1, 3}) {
      CAPTURE(batch);
      CAPTURE(parts);
      std::vector<std::tuple<int, long, int>> out;
      weir::Pipeline p("window-join-batches", with_batch(batch));
      bool clicks_in = false;
      auto left = p.source(imps).map([&](const Impression& m) {
        // Runs on the impressions' source thread, before the batch is split for the join.
        if (!clicks_in)
          clicks_in = weir_test::eventually(
              [&] { return p.snapshot().report.stage("join").items_in == clicks.size(); });
        return m;
      });
      auto right = p.source(clicks);
      left.join_by_key(
              right, imp_ad, click_ad,
              [](const Impression& m, const Click& c) {
                return std::tuple<int, long, int>{m.ad, m.t, c.user};
              },
              weir::join_window{10s, imp_time, click_time, 2s})
          .name("join")
          .parallelism(parts)
          .sink(weir::collect_into(out));
      const auto rep = p.run();
      REQUIRE(clicks_in);
      std::sort(out.begin(), out.end());
      CHECK(out == want);
      CHECK(rep.stage("join").late == want_late);
      CHECK(rep.stage("join").items_in == imps.size() + clicks.size());
    }
  }
}

TEST_CASE("a windowed join skips a failing right-side item under a dead-letter policy and goes on") {
  using namespace std::chrono_literals;
  // A click with a negative user has no time; an impression with a negative time neither.
  auto strict_click_time = [](const Click& c) {
    if (c.user < 0) throw std::out_of_range("click without a time");
    return std::chrono::system_clock::time_point{std::chrono::seconds{c.user}};
  };
  auto strict_imp_time = [](const Impression& m) {
    if (m.t < 0) throw std::invalid_argument("impression without a time");
    return std::chrono::system_clock::time_point{std::chrono::seconds{m.t}};
  };
  std::vector<Impression> imps{{1, 1}, {1, -1}, {2, 3}};
  std::vector<Click> clicks{{1, 2}, {2, -5}, {2, 4}};
  std::vector<int> out;
  std::vector<weir::DeadLetter<Impression>> dead;
  weir::Pipeline p("window-join-dlq");
  auto left = p.source(imps);
  auto right = p.source(clicks);
  left.join_by_key(
          right, imp_ad, click_ad, [](const Impression& m, const Click& c) { return m.ad * 100 + c.user; },
          weir::join_window{10s, strict_imp_time, strict_click_time})
      .name("join")
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<Impression> d) { dead.push_back(d); }))
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  CHECK(rep.status == weir::RunStatus::completed);
  std::sort(out.begin(), out.end());
  CHECK(out == std::vector<int>{102, 204});
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].item.t == -1);
  CHECK(dead[0].message == "impression without a time");
  const auto& s = rep.stage("join");
  CHECK(s.errors == 2);
  CHECK(s.dead_lettered == 1);
  CHECK(s.skipped == 1);
  CHECK(s.dead_letter_failures == 0);
  const bool reported = std::any_of(rep.errors.begin(), rep.errors.end(), [](const weir::ErrorSummary& e) {
    return e.stage == "join" && e.type == "std::out_of_range" && e.message == "click without a time";
  });
  CHECK(reported);
}
