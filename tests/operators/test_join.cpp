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
