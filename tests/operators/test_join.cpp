// Tests of the lookup join (matches, misses dropped or failed, duplicate table keys, parallel runs,
// small tables fused into the loop before them, large ones on their own) and of the windowed join.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "event_log.hpp"
#include "weir_test.hpp"

namespace {

using weir_test::with_batch;

struct Ad {
  int ad = 0;
  int campaign = 0;
};
struct Click {
  int ad = 0;
  int user = 0;
};

std::vector<Ad> ads() {
  std::vector<Ad> v;
  for (int a = 0; a < 100; ++a) v.push_back(Ad{a, a / 10});
  return v;
}

auto click_ad = [](const Click& c) { return c.ad; };
auto ad_id = [](const Ad& a) { return a.ad; };
auto to_campaign = [](const Click& c, const Ad& a) { return std::pair<int, int>{c.user, a.campaign}; };

}  // namespace

TEST_CASE("a lookup join combines each item with the table row of its key and drops misses") {
  std::vector<Click> in;
  for (int i = 0; i < 1000; ++i) in.push_back(Click{i % 120, i});
  std::vector<std::pair<int, int>> out;
  weir::Pipeline p("join", with_batch(64));
  p.source(in).join_by_key(weir::table{ads()}, click_ad, ad_id, to_campaign).sink(weir::collect_into(out));
  const auto rep = p.run();
  std::vector<std::pair<int, int>> want;
  for (const auto& c : in) {
    if (c.ad < 100) want.emplace_back(c.user, c.ad / 10);
  }
  CHECK(out == want);
  const auto& s = rep.stage("join#1");
  CHECK(s.items_in == 1000);
  CHECK(s.items_out == want.size());
  CHECK(s.filtered == 1000 - want.size());
}

TEST_CASE("a lookup join can fail misses into the stage's dead-letter sink") {
  std::vector<Click> in{{1, 10}, {500, 11}, {2, 12}};
  std::vector<std::pair<int, int>> out;
  std::vector<weir::DeadLetter<Click>> dead;
  weir::Pipeline p("join-miss");
  p.source(in)
      .join_by_key(weir::table{ads()}, click_ad, ad_id, to_campaign, weir::JoinOptions{weir::JoinMiss::error})
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<Click> d) { dead.push_back(std::move(d)); }))
      .sink(weir::collect_into(out));
  p.run();
  CHECK(out == std::vector<std::pair<int, int>>{{10, 0}, {12, 0}});
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].item.ad == 500);
  CHECK(dead[0].error_type == "weir::JoinMissError");
}

TEST_CASE("a lookup join table with a duplicate key is rejected") {
  weir::Pipeline p("join-dup");
  std::vector<Click> in;
  auto rows = ads();
  rows.push_back(Ad{5, 99});
  CHECK_THROWS_AS(p.source(in).join_by_key(weir::table{rows}, click_ad, ad_id, to_campaign),
                  std::invalid_argument);
}

TEST_CASE("a parallel lookup join after a parallel map keeps every match") {
  std::vector<Click> in;
  for (int i = 0; i < 20000; ++i) in.push_back(Click{i % 100, i});
  std::vector<std::pair<int, int>> out;
  weir::Pipeline p("join-parallel", with_batch(128));
  p.source(in)
      .map([](Click c) { return c; })
      .parallelism(2)
      .join_by_key(weir::table{ads()}, click_ad, ad_id, to_campaign)
      .sink(weir::collect_into(out));
  p.run();
  REQUIRE(out.size() == in.size());
  std::sort(out.begin(), out.end());
  for (int i = 0; i < 20000; ++i)
    CHECK(out[static_cast<std::size_t>(i)] == std::pair<int, int>{i, (i % 100) / 10});
}

TEST_CASE("a lookup join of a small table runs in the loop of the stages before it") {
  std::vector<Click> in;
  for (int i = 0; i < 5000; ++i) in.push_back(Click{i % 130, i});
  std::vector<std::pair<int, int>> out;
  auto log = std::make_shared<weir_test::EventLog>();
  weir::Pipeline p("join-fused", with_batch(64));
  p.intercept(log);
  p.source(in)
      .filter([](const Click& c) { return c.user % 5 != 0; })
      .name("thin")
      .join_by_key(weir::table{ads()}, click_ad, ad_id, to_campaign)
      .name("campaign")
      .map([](std::pair<int, int> x) {
        return std::pair<int, int>{x.first, x.second + 1};
      })
      .name("shift")
      .sink(weir::collect_into(out));
  CAPTURE(p.explain());
  CHECK(weir_test::contains(p.explain(), "loops: thin+campaign, shift, collect#4\n"));
  const auto rep = p.run();
  std::vector<std::pair<int, int>> want;
  std::size_t thinned = 0;
  for (const auto& c : in) {
    if (c.user % 5 == 0) continue;
    ++thinned;
    if (c.ad < 100) want.emplace_back(c.user, c.ad / 10 + 1);
  }
  CHECK(out == want);
  CHECK(rep.stage("thin").items_out == thinned);
  CHECK(rep.stage("campaign").items_in == thinned);
  CHECK(rep.stage("campaign").items_out == want.size());
  CHECK(rep.stage("campaign").filtered == thinned - want.size());
  // The table's size once, and per batch the items it matched: they add up to the stage's output.
  const auto created = log->of<weir::events::JoinGroupCreated>();
  REQUIRE(created.size() == 1);
  CHECK(created[0].groups == 100);
  std::size_t matched = 0;
  for (const auto& e : log->of<weir::events::JoinCompleted>()) matched += e.items;
  CHECK(matched == want.size());
}

TEST_CASE("a fused lookup join fails only its own functions' errors into its policy") {
  // The key function throws for ad 7, the combine for ad 8; the map after the join throws for ad 9.
  std::vector<Click> in;
  for (int i = 0; i < 300; ++i) in.push_back(Click{i % 12, i});
  std::vector<std::pair<int, int>> out;
  std::vector<weir::DeadLetter<Click>> join_dead;
  std::vector<weir::DeadLetter<std::pair<int, int>>> map_dead;
  weir::Pipeline p("join-errors", with_batch(32));
  p.source(in)
      .filter([](const Click&) { return true; })
      .join_by_key(
          weir::table{ads()},
          [](const Click& c) {
            if (c.ad == 7) throw std::runtime_error("bad key");
            return c.ad;
          },
          ad_id,
          [](const Click& c, const Ad& a) {
            if (c.ad == 8) throw std::domain_error("bad row");
            return std::pair<int, int>{c.user, a.ad};
          })
      .name("lookup")
      .on_error(
          weir::on_error::dead_letter([&](weir::DeadLetter<Click> d) { join_dead.push_back(std::move(d)); }))
      .map([](std::pair<int, int> x) {
        if (x.second == 9) throw std::logic_error("bad pair");
        return x;
      })
      .name("check")
      .on_error(weir::on_error::dead_letter(
          [&](weir::DeadLetter<std::pair<int, int>> d) { map_dead.push_back(std::move(d)); }))
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  REQUIRE(join_dead.size() == 50);
  for (const auto& d : join_dead) {
    CHECK((d.item.ad == 7 || d.item.ad == 8));
    CHECK(d.stage == "lookup");
    CHECK(d.error_type == (d.item.ad == 7 ? "std::runtime_error" : "std::domain_error"));
  }
  REQUIRE(map_dead.size() == 25);
  for (const auto& d : map_dead) {
    CHECK(d.item.second == 9);
    CHECK(d.stage == "check");
  }
  CHECK(out.size() == 300 - 75);
  CHECK(rep.stage("lookup").errors == 50);
  CHECK(rep.stage("lookup").items_out == 250);
  CHECK(rep.stage("check").errors == 25);
}

TEST_CASE("a lookup join takes keys and results of any type") {
  // String keys, and a result type with no default constructor.
  struct Named {
    std::string name;
    int n;
  };
  struct Tagged {
    explicit Tagged(std::string t) : tag(std::move(t)) {}
    std::string tag;
  };
  std::vector<Named> rows{{"alpha", 1}, {"beta", 2}, {"gamma", 3}};
  std::vector<std::string> in{"beta", "delta", "alpha", "beta", "gamma", ""};
  std::vector<Tagged> out;
  weir::Pipeline p("join-strings");
  p.source(in)
      .join_by_key(
          weir::table{rows}, [](const std::string& s) { return s; }, [](const Named& r) { return r.name; },
          [](const std::string& s, const Named& r) { return Tagged{s + "=" + std::to_string(r.n)}; })
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  std::vector<std::string> tags;
  for (const auto& t : out) tags.push_back(t.tag);
  CHECK(tags == std::vector<std::string>{"beta=2", "alpha=1", "beta=2", "gamma=3"});
  CHECK(rep.stage("join#1").filtered == 2);
}

namespace {
struct Impression {
  int ad = 0;
  long t = 0;  ///< seconds
};
auto imp_ad = [](const Impression& i) { return i.ad; };
auto imp_time = [](const Impression& i) {
  return std::chrono::system_clock::time_point{std::chrono::seconds{i.t}};
};
auto click_time = [](const Click& c) {
  return std::chrono::system_clock::time_point{std::chrono::seconds{c.user}};
};
}  // namespace

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

TEST_CASE("a lookup join with a table of many rows matches a plain loop") {
  // Enough rows for the join to prefetch each batch's buckets before looking the items up.
  std::vector<Ad> rows;
  for (int a = 0; a < 100000; ++a) rows.push_back(Ad{a * 7, a % 1000});
  std::vector<Click> in;
  for (int i = 0; i < 20000; ++i) in.push_back(Click{(i * 7919) % 800000, i});
  std::vector<std::pair<int, int>> out;
  weir::Pipeline p("join-big", with_batch(100));
  p.source(in).join_by_key(weir::table{rows}, click_ad, ad_id, to_campaign).sink(weir::collect_into(out));
  const auto rep = p.run();
  std::vector<std::pair<int, int>> want;
  for (const auto& c : in) {
    if (c.ad % 7 == 0 && c.ad / 7 < 100000) want.emplace_back(c.user, (c.ad / 7) % 1000);
  }
  CHECK(out == want);
  CHECK(rep.stage("join#1").filtered == in.size() - want.size());
  // A table this large gets a stage of its own, which prefetches a batch's slots before its lookups.
  CAPTURE(p.explain());
  CHECK(weir_test::contains(p.explain(), "loops: join#1, collect#2\n"));
}

TEST_CASE("a large lookup join table with a duplicate key is rejected") {
  std::vector<Ad> rows;
  for (int a = 0; a < 70000; ++a) rows.push_back(Ad{a, 0});
  rows.push_back(Ad{69999, 1});
  weir::Pipeline p("join-dup-big");
  std::vector<Click> in;
  CHECK_THROWS_AS(p.source(in).join_by_key(weir::table{rows}, click_ad, ad_id, to_campaign),
                  std::invalid_argument);
}

namespace {
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
}  // namespace

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
