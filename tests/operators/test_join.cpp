// Tests of the lookup join (matches, misses dropped or failed, duplicate table keys, parallel runs,
// small tables fused into the loop before them, large ones on their own). The windowed join of two
// streams is in test_window_join.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
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
