// Tests of filter (ops/filter.hpp): results and counts against a plain loop on seeded random inputs
// at every parallelism and batch size, a filter that drops every item or none, and a predicate that
// throws under each error policy.
#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <weir/weir.hpp>

#include "operator_cases.hpp"
#include "weir_test.hpp"

namespace {

using weir_test::iota;
using weir_test::settings;
using weir_test::sorted;

using namespace std::chrono_literals;

/// Options with a ManualClock, which is returned through `clock`.
weir::PipelineOptions manual(std::shared_ptr<weir::ManualClock>& clock, std::size_t batch_size = 256) {
  clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.batch_size = batch_size;
  o.clock = clock;
  return o;
}

std::chrono::nanoseconds elapsed(const weir::ManualClock& c) {
  return c.steady_now().time_since_epoch();
}

/// Runs `p` and returns the PipelineError it throws; fails the test when it throws nothing.
std::optional<weir::PipelineError> run_expecting_failure(weir::Pipeline& p) {
  auto e = weir_test::run_failing(p);
  if (!e) FAIL("the run did not throw a PipelineError");
  return e;
}

/// The predicate of the random tests: keeps about two items in five.
bool keep(std::int64_t x) {
  return (x ^ (x >> 5)) % 5 < 2;
}

}  // namespace

TEST_CASE("filter matches a plain loop on seeded random inputs at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto input = weir_test::random_ints(rng, weir_test::input_size(seed, s), 0, 1'000'000'000);
      std::vector<std::int64_t> want;
      for (const auto x : input) {
        if (keep(x)) want.push_back(x);
      }
      for (const bool ordered : {false, true}) {
        if (ordered && s.parallelism == 1) continue;
        INFO("seed ", seed, ", ", s.str(), ", ordered ", ordered, ", ", input.size(), " items");
        weir::Pipeline p("filter", s.options());
        std::vector<std::int64_t> got;
        auto f = p.source(input).filter(keep).name("f").parallelism(s.parallelism);
        if (ordered) f.ordered();
        f.sink(weir::collect_into(got));
        const auto r = p.run();
        if (s.parallelism == 1 || ordered) {
          CHECK(got == want);
        } else {
          CHECK(sorted(got) == sorted(want));
        }
        const auto& st = r.stage("f");
        CHECK(st.items_in == input.size());
        CHECK(st.items_out == want.size());
        CHECK(st.filtered == input.size() - want.size());
        CHECK(st.errors == 0);
      }
    }
  }
}

TEST_CASE("a filter that drops every item or keeps every item gives nothing or its whole input") {
  for (const auto& s : settings()) {
    std::vector<std::string> input;
    for (int i = 0; i < (s.batch == 1 ? 300 : 2000); ++i)
      input.push_back(std::string("item ").append(std::to_string(i)));
    INFO(s.str());
    weir::Pipeline p("filter-all-none", s.options());
    std::vector<std::string> none;
    std::vector<std::string> all;
    std::uint64_t after_none = 0;
    auto src = p.source(input);
    src.filter([](const std::string&) { return false; })
        .name("drop_all")
        .parallelism(s.parallelism)
        .map([&after_none](std::string x) {
          ++after_none;  // never called
          return x;
        })
        .parallelism(s.parallelism)
        .sink(weir::collect_into(none));
    src.filter([](const std::string& x) { return !x.empty(); })
        .name("keep_all")
        .parallelism(s.parallelism)
        .ordered()
        .sink(weir::collect_into(all));
    const auto r = p.run();
    CHECK(none.empty());
    CHECK(after_none == 0);
    CHECK(r.stage("drop_all").filtered == input.size());
    CHECK(r.stage("drop_all").items_out == 0);
    CHECK(all == input);  // ordered: the very items, in order
    CHECK(r.stage("keep_all").filtered == 0);
    CHECK(r.stage("keep_all").items_out == input.size());
  }
}

TEST_CASE(
    "a throwing predicate is skipped or dead-lettered, counted apart from filtered items, at every setting") {
  const auto bad = [](std::int64_t x) { return x % 11 == 0; };
  const auto pred = [bad](std::int64_t x) {
    if (bad(x)) throw std::runtime_error("cannot judge");
    return keep(x);
  };
  for (const auto& s : settings()) {
    auto rng = weir_test::rng_for(5, s);
    const auto input = weir_test::random_ints(rng, s.batch == 1 ? 300 : 1500, 0, 1'000'000);
    std::vector<std::int64_t> want;
    std::vector<std::int64_t> want_bad;
    std::uint64_t want_filtered = 0;
    for (const auto x : input) {
      if (bad(x)) {
        want_bad.push_back(x);
      } else if (keep(x)) {
        want.push_back(x);
      } else {
        ++want_filtered;
      }
    }
    REQUIRE(!want_bad.empty());
    for (const bool dead_letter : {false, true}) {
      INFO(s.str(), ", dead_letter ", dead_letter);
      weir::Pipeline p("filter-errors", s.options());
      std::vector<std::int64_t> got;
      std::vector<std::int64_t> letters;
      auto f = p.source(input).filter(pred).name("f").parallelism(s.parallelism);
      if (dead_letter) {
        f.on_error(weir::on_error::dead_letter(
            [&](weir::DeadLetter<std::int64_t> d) { letters.push_back(d.item); }));
      } else {
        f.on_error(weir::on_error::skip());
      }
      f.sink(weir::collect_into(got));
      const auto r = p.run();
      if (s.parallelism == 1) {
        CHECK(got == want);
      } else {
        CHECK(sorted(got) == sorted(want));
      }
      const auto& st = r.stage("f");
      CHECK(st.filtered == want_filtered);
      CHECK(st.errors == want_bad.size());
      CHECK(st.items_in == st.items_out + st.filtered + st.errors);
      if (dead_letter) {
        CHECK(st.dead_lettered == want_bad.size());
        CHECK(sorted(letters) == sorted(want_bad));
      } else {
        CHECK(st.skipped == want_bad.size());
        CHECK(letters.empty());
      }
    }
  }
}

TEST_CASE("errors in a filter predicate follow the stage's policy") {
  auto pred = [](int x) {
    if (x == 2 || x == 7) throw std::runtime_error("predicate");
    return x % 2 == 1;
  };
  SUBCASE("fail") {
    weir::Pipeline p("filter_fail");
    p.source(iota(0, 10)).filter(pred).sink([](int) {});
    const auto e = run_expecting_failure(p);
    REQUIRE(e.has_value());
    CHECK(e->errors()[0].stage == "filter#1");
  }
  SUBCASE("skip") {
    weir::Pipeline p("filter_skip");
    std::vector<int> got;
    p.source(iota(0, 10)).filter(pred).on_error(weir::on_error::skip()).sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(got == std::vector<int>{1, 3, 5, 9});
    CHECK(r.stage("filter#1").skipped == 2);
    CHECK(r.stage("filter#1").filtered == 4);  // 0, 4, 6, 8
  }
  SUBCASE("dead_letter") {
    weir::Pipeline p("filter_dead_letter");
    std::vector<int> got;
    std::vector<int> letters;
    p.source(iota(0, 10))
        .filter(pred)
        .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d.item); }))
        .sink(weir::collect_into(got));
    (void)p.run();
    CHECK(got == std::vector<int>{1, 3, 5, 9});
    CHECK(letters == std::vector<int>{2, 7});
  }
  SUBCASE("retry that succeeds keeps the item when the predicate accepts it") {
    std::shared_ptr<weir::ManualClock> clock;
    weir::Pipeline p("filter_retry", manual(clock));
    std::vector<int> got;
    std::map<int, int> calls;
    p.source(iota(0, 10))
        .filter([&calls](int x) {
          if ((x == 3 || x == 4) && ++calls[x] == 1) throw std::runtime_error("once");
          return x >= 3;
        })
        .on_error(weir::on_error::retry(2, 1ms))
        .sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(got == std::vector<int>{3, 4, 5, 6, 7, 8, 9});
    CHECK(r.stage("filter#1").retries == 2);
    CHECK(r.stage("filter#1").filtered == 3);
    CHECK(elapsed(*clock) == 2ms);
  }
}
