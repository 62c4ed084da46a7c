// Tests of route: first-match and all-matches routing, the otherwise branch, dropped items, errors
// and the events a route reports.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using weir_test::with_batch;

struct RouteEvents final : weir::Interceptor {
  std::mutex m;
  std::map<std::string, std::size_t> selected;
  std::size_t no_route = 0;
  /// events::RouteProcessed, by the stage that received it and the route.
  std::map<std::string, std::size_t> processed_items;
  std::map<std::string, std::vector<std::chrono::nanoseconds>> processed_times;
  void on_event(const weir::StageInfo& s, const weir::Event& e) override {
    const std::lock_guard lock(m);
    if (const auto* r = std::get_if<weir::events::RouteSelected>(&e))
      selected[std::string(r->route)] += r->items;
    if (const auto* n = std::get_if<weir::events::NoRoute>(&e)) no_route += n->items;
    if (const auto* r = std::get_if<weir::events::RouteProcessed>(&e)) {
      const std::string key = s.name + "/" + std::string(r->route);
      processed_items[key] += r->items;
      processed_times[key].push_back(r->duration);
    }
  }
};

std::vector<int> upto(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

TEST_CASE("first-match routing sends each item to the first branch that accepts it" WEIR_NEEDS_TELEMETRY) {
  std::vector<int> fizz, buzz, rest;
  auto events = std::make_shared<RouteEvents>();
  weir::Pipeline p("route", with_batch(7));
  p.intercept(events);
  auto r = p.source(upto(100)).route(weir::RouteOptions{weir::RouteMode::first_match, "rest"},
                                     weir::when{"fizz", [](int x) { return x % 3 == 0; }},
                                     weir::when{"buzz", [](int x) { return x % 5 == 0; }});
  r["fizz"].sink(weir::collect_into(fizz));
  r["buzz"].sink(weir::collect_into(buzz));
  r["rest"].sink(weir::collect_into(rest));
  const auto rep = p.run();
  std::vector<int> want_fizz, want_buzz, want_rest;
  for (int x = 0; x < 100; ++x) (x % 3 == 0 ? want_fizz : x % 5 == 0 ? want_buzz : want_rest).push_back(x);
  CHECK(fizz == want_fizz);
  CHECK(buzz == want_buzz);
  CHECK(rest == want_rest);
  const auto& s = rep.stage("route#1");
  CHECK(s.items_in == 100);
  CHECK(s.items_out == 100);
  CHECK(s.filtered == 0);
  CHECK(events->selected["fizz"] == want_fizz.size());
  CHECK(events->selected["buzz"] == want_buzz.size());
  CHECK(events->selected["rest"] == want_rest.size());
  CHECK(events->no_route == 0);
}

TEST_CASE("all-matches routing copies an item to every branch that accepts it") {
  std::vector<int> even, small;
  weir::Pipeline p("route-all", with_batch(16));
  auto r = p.source(upto(50)).route(weir::RouteOptions{weir::RouteMode::all_matches, {}},
                                    weir::when{"even", [](int x) { return x % 2 == 0; }},
                                    weir::when{"small", [](int x) { return x < 10; }});
  r["even"].sink(weir::collect_into(even));
  r["small"].sink(weir::collect_into(small));
  const auto rep = p.run();
  CHECK(even.size() == 25);
  CHECK(small == upto(10));
  const auto& s = rep.stage("route#1");
  CHECK(s.items_out == 35);
  CHECK(s.filtered == 20);  // odd numbers from 11 up match nothing
}

TEST_CASE(
    "items that match no route and have no otherwise branch are dropped and counted" WEIR_NEEDS_TELEMETRY) {
  std::vector<int> big;
  auto events = std::make_shared<RouteEvents>();
  weir::Pipeline p("route-drop");
  p.intercept(events);
  p.source(upto(10)).route(weir::RouteOptions{}, weir::when{"big", [](int x) { return x >= 7; }})["big"].sink(
      weir::collect_into(big));
  const auto rep = p.run();
  CHECK(big == std::vector<int>{7, 8, 9});
  CHECK(rep.stage("route#1").filtered == 7);
  CHECK(events->no_route == 7);
}

TEST_CASE("a route predicate that throws goes to the route's error policy") {
  std::vector<int> out;
  weir::Pipeline p("route-throw");
  auto r = p.source(upto(10)).route(weir::RouteOptions{weir::RouteMode::first_match, "other"},
                                    weir::when{"five", [](int x) {
                                                 if (x == 3) throw std::runtime_error("three");
                                                 return x == 5;
                                               }});
  r.name("router").on_error(weir::on_error::skip());
  r["five"].sink(weir::collect_into(out));
  r["other"].sink([](int) {});
  const auto rep = p.run();
  CHECK(out == std::vector<int>{5});
  const auto& s = rep.stage("router");
  CHECK(s.skipped == 1);
  CHECK(s.items_out == 9);
}

TEST_CASE("a route predicate that throws fails the run by default") {
  weir::Pipeline p("route-fail");
  auto r = p.source(upto(10)).route(weir::RouteOptions{}, weir::when{"any", [](int x) {
                                                                       if (x == 3)
                                                                         throw std::runtime_error("three");
                                                                       return true;
                                                                     }});
  r["any"].sink([](int) {});
  CHECK_THROWS_AS(p.run(), weir::PipelineError);
}

TEST_CASE("a parallel route after a parallel map keeps every item") {
  std::vector<int> low, high;
  weir::Pipeline p("route-parallel", with_batch(32));
  auto r = p.source(upto(10000))
               .map([](int x) { return x * 2; })
               .parallelism(2)
               .route(weir::RouteOptions{weir::RouteMode::first_match, "high"},
                      weir::when{"low", [](int x) { return x < 5000; }});
  r["low"].sink(weir::collect_into(low));
  r["high"].sink(weir::collect_into(high));
  p.run();
  CHECK(low.size() == 2500);
  CHECK(high.size() == 7500);
  CHECK(std::all_of(low.begin(), low.end(), [](int x) { return x < 5000 && x % 2 == 0; }));
}

TEST_CASE("route rejects unnamed and duplicate branches") {
  weir::Pipeline p("route-bad");
  auto s = p.source(upto(3));
  auto yes = [](int) { return true; };
  CHECK_THROWS_AS(s.route(weir::RouteOptions{}, weir::when{"a", yes}, weir::when{"a", yes}),
                  std::invalid_argument);
  CHECK_THROWS_AS(s.route(weir::RouteOptions{weir::RouteMode::first_match, "a"}, weir::when{"a", yes}),
                  std::invalid_argument);
  CHECK_THROWS_AS(s.route(weir::RouteOptions{}, weir::when{"", yes}), std::invalid_argument);
}

TEST_CASE("each branch tells its route how long it took on the route's batches" WEIR_NEEDS_TELEMETRY) {
  using namespace std::chrono_literals;
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o = with_batch(10);
  o.clock = clock;
  weir::Pipeline p("route_time", o);
  auto events = std::make_shared<RouteEvents>();
  p.intercept(events);
  std::vector<int> slow, fast, merged;
  auto r = p.source(upto(50))
               .route(weir::RouteOptions{weir::RouteMode::first_match, "other"},
                      weir::when{"slow", [](int x) { return x % 2 == 0; }},
                      weir::when{"fast", [](int x) { return x % 5 == 1; }})
               .name("router");
  // The slow branch's first stage works 1 ms of the pipeline's clock per item.
  r["slow"]
      .map([clock](int x) {
        clock->advance(1ms);
        return x;
      })
      .name("slow_work")
      .sink(weir::collect_into(slow));
  r["fast"].sink(weir::collect_into(fast)).name("fast_out");
  // A merge of two inputs cannot tell which batch came from the route: it reports nothing.
  r["other"].merge(p.source(upto(3)).name("extra")).sink(weir::collect_into(merged));
  p.run();
  REQUIRE(slow.size() == 25);
  REQUIRE(fast.size() == 5);
  REQUIRE(merged.size() == 23);
  // Sent to the route stage, under the branch's name, once per batch the branch's first stage ran.
  CHECK(events->processed_items["router/slow"] == 25);
  CHECK(events->processed_items["router/fast"] == 5);
  CHECK(events->processed_items.count("router/other") == 0);
  CHECK(events->processed_items.size() == 2);
  // The five batches of ten items hold five even items each: 5 ms per slow batch.
  const auto& times = events->processed_times["router/slow"];
  CHECK(times.size() == 5);
  for (const auto d : times) CHECK(d == 5ms);
  CHECK(events->processed_times["router/fast"].size() == 5);  // one odd item ending in 1 per batch
}
