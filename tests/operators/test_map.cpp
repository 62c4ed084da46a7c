// Tests of map (ops/map.hpp): results against a plain loop on seeded random inputs at every
// parallelism and batch size, in order at parallelism 1 and with .ordered(), a map that changes the
// item type, the forms of the function it takes, and a failing map under each error policy.
#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
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

using namespace std::chrono_literals;

/// The map the random tests run: cheap, and different for every input.
std::int64_t scramble(std::int64_t x) {
  return x * 31 + (x >> 3) - 7;
}

/// A value with no default constructor, to show a map may produce one.
struct Label {
  explicit Label(std::string t) : text(std::move(t)) {}
  std::string text;
  bool operator<(const Label& o) const { return text < o.text; }
  bool operator==(const Label& o) const { return text == o.text; }
};

}  // namespace

TEST_CASE("map matches a plain loop on seeded random inputs at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto input =
          weir_test::random_ints(rng, weir_test::input_size(seed, s), -1'000'000'000, 1'000'000'000);
      std::vector<std::int64_t> want;
      for (const auto x : input) want.push_back(scramble(x));
      // At parallelism 1 the map keeps order; above it only with .ordered().
      for (const bool ordered : {false, true}) {
        if (ordered && s.parallelism == 1) continue;
        INFO("seed ", seed, ", ", s.str(), ", ordered ", ordered, ", ", input.size(), " items");
        weir::Pipeline p("map", s.options());
        std::vector<std::int64_t> got;
        auto m = p.source(input).map(scramble).name("m").parallelism(s.parallelism);
        if (ordered) m.ordered();
        m.sink(weir::collect_into(got));
        const auto r = p.run();
        CHECK(r.stage("m").items_in == input.size());
        CHECK(r.stage("m").items_out == input.size());
        if (s.parallelism == 1 || ordered) {
          CHECK(got == want);
        } else {
          CHECK(sorted(got) == sorted(want));
        }
      }
    }
  }
}

TEST_CASE("a map that changes the item type matches a plain loop at every parallelism and batch size") {
  // int64 -> string -> (size, label) -> Label: three type changes, fused at parallelism 1 and in a
  // node of their own above it.
  for (const auto& s : settings()) {
    auto rng = weir_test::rng_for(7, s);
    const auto input = weir_test::random_ints(rng, weir_test::input_size(7, s), -5'000'000, 5'000'000);
    std::vector<Label> want;
    for (const auto x : input) {
      const std::string t = std::to_string(x);
      want.emplace_back(std::to_string(t.size()) + ":" + t);
    }
    INFO(s.str(), ", ", input.size(), " items");
    weir::Pipeline p("map-types", s.options());
    std::vector<Label> got;
    p.source(input)
        .map([](std::int64_t x) { return std::to_string(x); })
        .parallelism(s.parallelism)
        .map([](std::string t) {
          return std::pair<std::size_t, std::string>{t.size(), std::move(t)};
        })
        .parallelism(s.parallelism)
        .map([](std::pair<std::size_t, std::string> x) {
          return Label{std::to_string(x.first) + ":" + x.second};
        })
        .parallelism(s.parallelism)
        .sink(weir::collect_into(got));
    (void)p.run();
    if (s.parallelism == 1) {
      CHECK(got == want);
    } else {
      CHECK(sorted(got) == sorted(want));
    }
  }
}

TEST_CASE("a map may change the item type several times") {
  weir::Pipeline p("types", with_batch(5));
  std::vector<std::size_t> got;
  p.source(std::vector<int>{1, 22, 333, 4444, 55555, 666666})
      .map([](int x) { return std::to_string(x); })
      .map([](const std::string& s) { return s.size(); })
      .map([](std::size_t n) { return n * 2; })
      .sink(weir::collect_into(got));
  (void)p.run();
  CHECK(got == std::vector<std::size_t>{2, 4, 6, 8, 10, 12});
}

TEST_CASE("a map takes its item by value, const reference or rvalue reference, with or without a context") {
  weir::Pipeline p("map-forms", with_batch(3));
  const std::vector<std::string> input{"a", "bb", "", "dddd"};
  std::vector<std::vector<std::size_t>> got(5);
  auto fan = p.source(input).fan_out(5);
  fan[0].map([](std::string x) { return x.size(); }).sink(weir::collect_into(got[0]));
  fan[1].map([](const std::string& x) { return x.size(); }).sink(weir::collect_into(got[1]));
  fan[2].map([](std::string&& x) { return std::move(x).size(); }).sink(weir::collect_into(got[2]));
  fan[3]
      .map([](const std::string& x, weir::StageContext&) { return x.size(); })
      .sink(weir::collect_into(got[3]));
  // A mutable function keeps its state from call to call (parallelism 1: one copy).
  fan[4]
      .map([n = std::size_t{0}](const std::string&) mutable { return n++; })
      .sink(weir::collect_into(got[4]));
  (void)p.run();
  for (int i = 0; i < 4; ++i) CHECK(got[static_cast<std::size_t>(i)] == std::vector<std::size_t>{1, 2, 0, 4});
  CHECK(got[4] == std::vector<std::size_t>{0, 1, 2, 3});
}

TEST_CASE("a map on an empty input never calls its function") {
  for (const auto& s : settings()) {
    INFO(s.str());
    weir::Pipeline p("map-empty", s.options());
    int calls = 0;
    std::vector<int> got;
    p.source(std::vector<int>{})
        .map([&calls](int x) {
          ++calls;
          return x;
        })
        .name("m")
        .parallelism(s.parallelism)
        .sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(r.status == weir::RunStatus::completed);
    CHECK(calls == 0);
    CHECK(got.empty());
    CHECK(r.stage("m").items_in == 0);
  }
}

TEST_CASE("a failing map follows each error policy at every parallelism and batch size") {
  // The map throws for every multiple of 7 (on its first call only, for the retry policy).
  const auto bad = [](std::int64_t x) { return x % 7 == 0; };
  for (const auto& s : settings()) {
    auto rng = weir_test::rng_for(3, s);
    auto input = weir_test::random_ints(rng, s.batch == 1 ? 300 : 1000, 0, 1'000'000);
    for (std::size_t i = 0; i < input.size(); ++i)
      input[i] = input[i] * 2000 + static_cast<std::int64_t>(i);  // unique
    std::vector<std::int64_t> want_kept;
    std::vector<std::int64_t> want_bad;
    for (const auto x : input) (bad(x) ? want_bad : want_kept).push_back(x * 2);
    REQUIRE(!want_bad.empty());
    const auto failing = [bad](std::int64_t x) {
      if (bad(x)) throw std::domain_error("multiple of 7");
      return x * 2;
    };
    INFO(s.str());
    {
      INFO("policy fail");
      weir::Pipeline p("map-fail", s.options());
      p.source(input).map(failing).name("m").parallelism(s.parallelism).sink([](std::int64_t) {});
      const auto e = weir_test::run_failing(p);
      REQUIRE(e.has_value());
      REQUIRE(!e->errors().empty());
      CHECK(e->errors()[0].stage == "m");
      CHECK(e->errors()[0].type == "std::domain_error");
      CHECK(e->errors()[0].message == "multiple of 7");
      CHECK(e->report().status == weir::RunStatus::failed);
    }
    {
      INFO("policy skip");
      weir::Pipeline p("map-skip", s.options());
      std::vector<std::int64_t> got;
      p.source(input)
          .map(failing)
          .name("m")
          .parallelism(s.parallelism)
          .on_error(weir::on_error::skip())
          .sink(weir::collect_into(got));
      const auto r = p.run();
      CHECK(sorted(got) == sorted(want_kept));
      if (s.parallelism == 1) CHECK(got == want_kept);
      const auto& m = r.stage("m");
      CHECK(m.skipped == want_bad.size());
      CHECK(m.errors == want_bad.size());
      CHECK(m.items_in == m.items_out + m.filtered + m.errors);
    }
    {
      INFO("policy dead_letter");
      weir::Pipeline p("map-dead-letter", s.options());
      std::vector<std::int64_t> got;
      std::vector<std::int64_t> letters;
      int wrong = 0;
      p.source(input)
          .map(failing)
          .name("m")
          .parallelism(s.parallelism)
          .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<std::int64_t> d) {
            if (d.stage != "m" || d.attempts != 1) ++wrong;
            letters.push_back(d.item * 2);  // the item as it was before the call
          }))
          .sink(weir::collect_into(got));
      const auto r = p.run();
      CHECK(sorted(got) == sorted(want_kept));
      CHECK(wrong == 0);
      CHECK(sorted(letters) == sorted(want_bad));
      if (s.parallelism == 1) CHECK(letters == want_bad);
      CHECK(r.stage("m").dead_lettered == want_bad.size());
    }
    {
      INFO("policy retry");
      auto clock = std::make_shared<weir::ManualClock>();
      weir::PipelineOptions o = s.options();
      o.clock = clock;
      weir::Pipeline p("map-retry", o);
      std::vector<std::int64_t> got;
      std::mutex m;
      std::map<std::int64_t, int> calls;
      p.source(input)
          .map([&](std::int64_t x) {
            if (bad(x)) {
              const std::lock_guard lock(m);
              if (++calls[x] == 1) throw std::domain_error("first call");
            }
            return x * 2;
          })
          .name("m")
          .parallelism(s.parallelism)
          .on_error(weir::on_error::retry(2, 1ms))
          .sink(weir::collect_into(got));
      const auto r = p.run();
      std::vector<std::int64_t> all;
      for (const auto x : input) all.push_back(x * 2);
      CHECK(sorted(got) == sorted(all));
      CHECK(r.stage("m").retries == want_bad.size());
      CHECK(r.stage("m").errors == 0);
      CHECK(clock->steady_now().time_since_epoch() == want_bad.size() * 1ms);  // one backoff per retry
    }
  }
}
