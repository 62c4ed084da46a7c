// Tests of flat_map (ops/flat_map.hpp): results against a plain loop on seeded random inputs at every
// parallelism and batch size with 0 to 4 outputs per item, a function that gives nothing, large
// fan-outs, the kinds of range it may return, and a throwing function under each error policy.
#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "operator_cases.hpp"
#include "weir_test.hpp"

namespace {

using weir_test::settings;
using weir_test::sorted;
using weir_test::with_batch;

/// Runs `p` and returns the PipelineError it throws; fails the test when it throws nothing.
std::optional<weir::PipelineError> run_expecting_failure(weir::Pipeline& p) {
  auto e = weir_test::run_failing(p);
  if (!e) FAIL("the run did not throw a PipelineError");
  return e;
}

/// The function of the random tests: 0 to 4 outputs per item, each telling its item and its place.
std::vector<std::int64_t> expand(std::int64_t x) {
  std::vector<std::int64_t> out;
  for (std::int64_t k = 0; k < x % 5; ++k) out.push_back(x * 8 + k);
  return out;
}

}  // namespace

TEST_CASE("flat_map matches a plain loop on seeded random inputs at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto input = weir_test::random_ints(rng, weir_test::input_size(seed, s), 0, 1'000'000'000);
      std::vector<std::int64_t> want;
      for (const auto x : input) {
        for (const auto y : expand(x)) want.push_back(y);
      }
      for (const bool ordered : {false, true}) {
        if (ordered && s.parallelism == 1) continue;
        INFO("seed ", seed, ", ", s.str(), ", ordered ", ordered, ", ", input.size(), " items");
        weir::Pipeline p("flat_map", s.options());
        std::vector<std::int64_t> got;
        auto f = p.source(input).flat_map(expand).name("f").parallelism(s.parallelism);
        if (ordered) f.ordered();
        f.sink(weir::collect_into(got));
        const auto r = p.run();
        if (s.parallelism == 1 || ordered) {
          CHECK(got == want);
        } else {
          CHECK(sorted(got) == sorted(want));
        }
        CHECK(r.stage("f").items_in == input.size());
        CHECK(r.stage("f").items_out == want.size());
      }
    }
  }
}

TEST_CASE("a flat_map that gives nothing for every item ends the stream there") {
  for (const auto& s : settings()) {
    INFO(s.str());
    weir::Pipeline p("flat_map-nothing", s.options());
    int sink_calls = 0;
    p.source(weir_test::iota(0, s.batch == 1 ? 300 : 3000))
        .flat_map([](int) { return std::vector<int>{}; })
        .name("f")
        .parallelism(s.parallelism)
        .sink([&sink_calls](int) { ++sink_calls; });
    const auto r = p.run();
    CHECK(r.status == weir::RunStatus::completed);
    CHECK(sink_calls == 0);
    CHECK(r.stage("f").items_out == 0);
    CHECK(r.stage("f").errors == 0);
  }
}

TEST_CASE("large fan-outs deliver every element in order, whatever the batch size") {
  // A few items that each give tens of thousands: the outputs of one call span many batches.
  for (const auto& s : settings()) {
    const int per_item = s.batch == 1 ? 2'500 : 25'000;
    INFO(s.str(), ", ", per_item, " elements per item");
    weir::Pipeline p("flat_map-large", s.options());
    std::vector<std::pair<int, int>> got;
    p.source(std::vector<int>{0, 1, 2, 3})
        .flat_map([per_item](int x) {
          std::vector<std::pair<int, int>> out;
          out.reserve(static_cast<std::size_t>(per_item));
          for (int k = 0; k < per_item; ++k) out.emplace_back(x, k);
          return out;
        })
        .name("f")
        .parallelism(s.parallelism)
        .ordered()
        .sink(weir::collect_into(got));
    const auto r = p.run();
    REQUIRE(got.size() == static_cast<std::size_t>(4 * per_item));
    bool in_order = true;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const auto want = std::pair<int, int>{static_cast<int>(i) / per_item, static_cast<int>(i) % per_item};
      if (got[i] != want) in_order = false;
    }
    CHECK(in_order);
    CHECK(r.stage("f").items_in == 4);
    CHECK(r.stage("f").items_out == got.size());
  }
}

TEST_CASE("flat_map emits the elements of any range in order: containers, strings and views") {
  weir::Pipeline p("flat_map-ranges", with_batch(2));
  const std::vector<int> input{0, 1, 3};
  std::vector<std::vector<int>> got(4);
  std::vector<char> chars;
  auto fan = p.source(input).fan_out(5);
  fan[0]
      .flat_map([](int x) { return std::list<int>(static_cast<std::size_t>(x), x); })
      .sink(weir::collect_into(got[0]));
  fan[1].flat_map([](int x) { return std::array<int, 2>{x, -x}; }).sink(weir::collect_into(got[1]));
  fan[2].flat_map([](int x) { return std::views::iota(0, x); }).sink(weir::collect_into(got[2]));
  fan[3]
      .flat_map([](int x) {
        return std::views::iota(0, x) | std::views::transform([x](int k) { return 10 * x + k; });
      })
      .sink(weir::collect_into(got[3]));
  fan[4]
      .flat_map([](int x) { return std::string(static_cast<std::size_t>(x), static_cast<char>('a' + x)); })
      .sink(weir::collect_into(chars));
  (void)p.run();
  CHECK(got[0] == std::vector<int>{1, 3, 3, 3});
  CHECK(got[1] == std::vector<int>{0, 0, 1, -1, 3, -3});
  CHECK(got[2] == std::vector<int>{0, 0, 1, 2});
  CHECK(got[3] == std::vector<int>{10, 30, 31, 32});
  CHECK(chars == std::vector<char>{'b', 'd', 'd', 'd'});
}

TEST_CASE("a throwing flat_map emits nothing for the failed item under skip, at every setting") {
  // The function builds part of its output, then throws for every multiple of 13: none of that
  // item's elements may come out.
  const auto fn = [](std::int64_t x) {
    std::vector<std::int64_t> out;
    for (std::int64_t k = 0; k < x % 5; ++k) {
      out.push_back(x * 8 + k);
      if (x % 13 == 0 && k == 0) throw std::runtime_error("half built");
    }
    return out;
  };
  for (const auto& s : settings()) {
    auto rng = weir_test::rng_for(9, s);
    const auto input = weir_test::random_ints(rng, s.batch == 1 ? 400 : 2000, 0, 1'000'000);
    std::vector<std::int64_t> want;
    std::uint64_t failed = 0;
    for (const auto x : input) {
      if (x % 13 == 0 && x % 5 > 0) {
        ++failed;
        continue;
      }
      for (const auto y : expand(x)) want.push_back(y);
    }
    REQUIRE(failed > 0);
    INFO(s.str());
    weir::Pipeline p("flat_map-skip", s.options());
    std::vector<std::int64_t> got;
    p.source(input)
        .flat_map(fn)
        .name("f")
        .parallelism(s.parallelism)
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    const auto r = p.run();
    if (s.parallelism == 1) {
      CHECK(got == want);
    } else {
      CHECK(sorted(got) == sorted(want));
    }
    CHECK(r.stage("f").skipped == failed);
    CHECK(r.stage("f").items_out == want.size());
  }
}

TEST_CASE("errors in a flat_map function follow the stage's policy") {
  auto fn = [](const std::string& s) {
    if (s == "bad") throw std::runtime_error("cannot split");
    std::vector<std::string> parts;
    for (const char c : s) parts.emplace_back(1, c);
    return parts;
  };
  const std::vector<std::string> input{"ab", "bad", "", "cde", "bad"};
  SUBCASE("fail") {
    weir::Pipeline p("flat_map_fail");
    p.source(input).flat_map(fn).sink([](const std::string&) {});
    const auto e = run_expecting_failure(p);
    REQUIRE(e.has_value());
    CHECK(e->errors()[0].stage == "flat_map#1");
    CHECK(e->errors()[0].message == "cannot split");
  }
  SUBCASE("skip") {
    weir::Pipeline p("flat_map_skip");
    std::vector<std::string> got;
    p.source(input).flat_map(fn).on_error(weir::on_error::skip()).sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(got == std::vector<std::string>{"a", "b", "c", "d", "e"});
    CHECK(r.stage("flat_map#1").skipped == 2);
    CHECK(r.stage("flat_map#1").items_out == 5);
    CHECK(r.stage("flat_map#1").items_in == 5);
  }
  SUBCASE("dead_letter") {
    weir::Pipeline p("flat_map_dead_letter");
    std::vector<std::string> got;
    int letters = 0;
    p.source(input)
        .flat_map(fn)
        .on_error(weir::on_error::dead_letter([&](const weir::DeadLetter<std::string>& d) {
          CHECK(d.item == "bad");
          ++letters;
        }))
        .sink(weir::collect_into(got));
    (void)p.run();
    CHECK(letters == 2);
    CHECK(got.size() == 5);
  }
}
