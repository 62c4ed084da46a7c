// Tests of the lookup join: matches, misses dropped or failed, duplicate table keys, parallel runs.
#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

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
}
