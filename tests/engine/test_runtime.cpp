#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <ranges>
#include <string>
#include <vector>
#include <weir/weir.hpp>

TEST_CASE("map, filter and map produce what a plain loop produces") {
  std::vector<long> expected;
  for (long i = 0; i < 10000; ++i) {
    const long x = i * 3 + 1;
    if (x % 2 == 0) expected.push_back(x ^ (x >> 7));
  }
  weir::Pipeline p("chain");
  std::vector<long> got;
  p.source(std::views::iota(0L, 10000L))
      .map([](long i) { return i * 3 + 1; })
      .filter([](long x) { return x % 2 == 0; })
      .map([](long x) { return x ^ (x >> 7); })
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(got == expected);
  CHECK(r.stage("filter#2").items_in == 10000);
  CHECK(r.stage("filter#2").filtered == 10000 - expected.size());
  CHECK(r.stage("collect#4").items_in == expected.size());
}

TEST_CASE("stateless stages with the same parallelism are fused into one node") {
  weir::Pipeline p("fused");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3}).map([](int x) { return x + 1; }).name("inc").filter([](int x) { return x > 2; }).sink(weir::collect_into(got));
  const auto plan = p.explain();
  CHECK(plan.find("inc (map) -> filter#2 (filter) -> collect#3 (collect)") != std::string::npos);
  const auto r = p.run();
  CHECK(r.stage("inc").node == r.stage("collect#3").node);
  CHECK(r.stage("range#0").node != r.stage("inc").node);
  CHECK(got == std::vector<int>{3, 4});
}
