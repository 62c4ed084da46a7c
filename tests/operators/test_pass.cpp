// Tests of fan_out and merge (ops/pass.hpp): every branch of a fan-out gets every item, a branch that
// changes items leaves the others intact, a merge of 2 to 4 streams delivers every item once and keeps
// each input's order at parallelism 1 and with .ordered(); on seeded random inputs at every
// parallelism and batch size.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <numeric>
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

using weir_test::eventually;
using weir_test::settings;
using weir_test::sorted;
using weir_test::with_batch;

using namespace std::chrono_literals;

/// An item of a merge test: which input it came from and its place there.
using Tagged = std::pair<int, std::int64_t>;

/// `first` merged with the others of `in` (2 to 4 streams).
weir::Stream<Tagged> merge_all(std::vector<weir::Stream<Tagged>>& in) {
  switch (in.size()) {
    case 2:
      return in[0].merge(in[1]);
    case 3:
      return in[0].merge(in[1], in[2]);
    case 4:
      return in[0].merge(in[1], in[2], in[3]);
    default:
      throw std::logic_error("merge_all takes 2 to 4 streams");
  }
}

}  // namespace

TEST_CASE("fan_out copies every item to every branch at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      const std::size_t branches = 1 + (s.index + seed) % 4;
      auto rng = weir_test::rng_for(seed, s);
      const auto input = weir_test::random_ints(rng, weir_test::input_size(seed, s), -1'000'000, 1'000'000);
      INFO("seed ", seed, ", ", s.str(), ", ", branches, " branches, ", input.size(), " items");
      weir::Pipeline p("fan_out", s.options());
      std::vector<std::vector<std::int64_t>> got(branches);
      auto out = p.source(input).fan_out(branches);
      REQUIRE(out.size() == branches);
      // Each branch changes the items its own way, in a parallel stage of its own.
      for (std::size_t b = 0; b < branches; ++b) {
        const auto k = static_cast<std::int64_t>(b);
        out[b]
            .map([k](std::int64_t x) { return x * (k + 1) + k; })
            .parallelism(s.parallelism)
            .sink(weir::collect_into(got[b]));
      }
      const auto r = p.run();
      for (std::size_t b = 0; b < branches; ++b) {
        CAPTURE(b);
        std::vector<std::int64_t> want;
        const auto k = static_cast<std::int64_t>(b);
        for (const auto x : input) want.push_back(x * (k + 1) + k);
        if (s.parallelism == 1) {
          CHECK(got[b] == want);
        } else {
          CHECK(sorted(got[b]) == sorted(want));
        }
      }
      CHECK(r.stage("fan_out#1").items_in == input.size());
      CHECK(r.stage("fan_out#1").items_out == input.size());
    }
  }
}

TEST_CASE("a merge of 2 to 4 streams keeps every item once and each input's order at every setting") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      const std::size_t inputs = 2 + (s.index + seed) % 3;
      auto rng = weir_test::rng_for(seed, s);
      // Input sizes from the usual list, one per input, so that some inputs are empty.
      std::vector<std::vector<Tagged>> in(inputs);
      for (std::size_t i = 0; i < inputs; ++i) {
        const weir_test::Setting shifted{s.parallelism, s.batch, s.index + i};
        const auto n = weir_test::input_size(seed, shifted) / inputs;
        for (std::size_t k = 0; k < n; ++k)
          in[i].emplace_back(static_cast<int>(i),
                             static_cast<std::int64_t>(k) * 1000 + static_cast<std::int64_t>(rng() % 1000));
      }
      std::vector<Tagged> want;
      for (const auto& v : in) want.insert(want.end(), v.begin(), v.end());
      for (const bool ordered : {false, true}) {
        if (ordered && s.parallelism == 1) continue;
        INFO("seed ", seed, ", ", s.str(), ", ", inputs, " inputs, ordered ", ordered);
        weir::Pipeline p("merge", s.options());
        std::vector<weir::Stream<Tagged>> streams;
        for (const auto& v : in) streams.push_back(p.source(v));
        std::vector<Tagged> got;
        auto merged = merge_all(streams).name("merged").parallelism(s.parallelism);
        if (ordered) merged.ordered();
        merged.sink(weir::collect_into(got));
        const auto r = p.run();
        CHECK(sorted(got) == sorted(want));
        CHECK(r.stage("merged").items_in == want.size());
        CHECK(r.stage("merged").items_out == want.size());
        if (s.parallelism == 1 || ordered) {
          // Each input's items in the order it gave them.
          std::vector<std::vector<Tagged>> by_input(inputs);
          for (const auto& t : got) by_input[static_cast<std::size_t>(t.first)].push_back(t);
          for (std::size_t i = 0; i < inputs; ++i) {
            CAPTURE(i);
            CHECK(by_input[i] == in[i]);
          }
        }
      }
    }
  }
}

TEST_CASE("merging the branches of a fan_out delivers each item once per branch at every setting") {
  for (const auto& s : settings()) {
    const std::size_t branches = 2 + s.index % 3;
    auto rng = weir_test::rng_for(4, s);
    const auto input = weir_test::random_ints(rng, weir_test::input_size(4, s), 0, 1'000'000);
    INFO(s.str(), ", ", branches, " branches");
    weir::Pipeline p("fan_out-merge", s.options());
    auto out = p.source(input).map([](std::int64_t x) { return Tagged{0, x}; }).fan_out(branches);
    std::vector<weir::Stream<Tagged>> tagged;
    for (std::size_t b = 0; b < branches; ++b) {
      const int tag = static_cast<int>(b);
      tagged.push_back(out[b]
                           .map([tag](Tagged t) {
                             return Tagged{tag, t.second};
                           })
                           .parallelism(s.parallelism));
    }
    std::vector<Tagged> got;
    merge_all(tagged).parallelism(s.parallelism).sink(weir::collect_into(got));
    (void)p.run();
    std::vector<Tagged> want;
    for (std::size_t b = 0; b < branches; ++b) {
      for (const auto x : input) want.emplace_back(static_cast<int>(b), x);
    }
    CHECK(sorted(got) == sorted(want));
  }
}

TEST_CASE("fan_out needs a branch, refuses a branch named twice and unknown branch names") {
  weir::Pipeline p("fan");
  auto src = p.source(std::vector<int>{1});
  CHECK_THROWS_AS((void)src.fan_out(0), std::invalid_argument);
  CHECK_THROWS_AS((void)src.fan_out({"a", "b", "a"}), std::invalid_argument);
  auto named = src.fan_out({"left", "right"});
  CHECK(named.size() == 2);
  CHECK_THROWS_AS((void)named["middle"], std::out_of_range);
  CHECK(named["left"].stage_name() == named["right"].stage_name());
}

TEST_CASE("merging two branches of a fan_out delivers every item twice") {
  weir::Pipeline p("merge_branches");
  std::vector<int> got;
  auto branches = p.source(std::vector<int>{1, 2, 3}).fan_out(2);
  branches[0].merge(branches[1]).sink(weir::collect_into(got));
  const auto r = p.run();
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{1, 1, 2, 2, 3, 3});
  CHECK(r.stage("merge#2").items_in == 6);
}

TEST_CASE("fan_out(n) delivers every item to every branch") {
  weir::Pipeline p("fan", with_batch(9));
  std::vector<std::vector<int>> got(3);
  auto branches = p.source(std::views::iota(0, 100)).fan_out(3);
  REQUIRE(branches.size() == 3);
  for (std::size_t b = 0; b < 3; ++b) branches[b].sink(weir::collect_into(got[b]));
  const auto r = p.run();
  std::vector<int> expected(100);
  std::iota(expected.begin(), expected.end(), 0);
  for (const auto& g : got) CHECK(g == expected);
  CHECK(r.stage("fan_out#1").items_in == 100);
  CHECK(r.stage("fan_out#1").items_out == 100);
}

TEST_CASE("a named fan_out delivers every item to every named branch") {
  weir::Pipeline p("named_fan", with_batch(4));
  std::vector<std::string> upper;
  std::vector<std::size_t> sizes;
  std::vector<std::string> all;
  auto branches =
      p.source(std::vector<std::string>{"ab", "cde", "f", "", "ghij"}).fan_out({"upper", "size", "all"});
  branches["upper"]
      .map([](std::string s) {
        for (auto& c : s) c = static_cast<char>(c - 'a' + 'A');
        return s;
      })
      .sink(weir::collect_into(upper));
  branches["size"].map([](const std::string& s) { return s.size(); }).sink(weir::collect_into(sizes));
  branches["all"].sink(weir::collect_into(all));
  (void)p.run();
  CHECK(upper == std::vector<std::string>{"AB", "CDE", "F", "", "GHIJ"});
  CHECK(sizes == std::vector<std::size_t>{2, 3, 1, 0, 4});
  CHECK(all == std::vector<std::string>{"ab", "cde", "f", "", "ghij"});
}

TEST_CASE("a branch that changes items in place does not change what another branch sees") {
  constexpr int n = 64;
  constexpr std::size_t batch = 8;
  weir::Pipeline p("copy_on_write", with_batch(batch));
  std::atomic<int> changed{0};
  std::vector<int> changed_items;
  std::vector<int> seen;
  auto branches = p.source(std::views::iota(0, n)).fan_out({"change", "read"});
  branches["change"]
      .map([&changed](int x) {
        changed.fetch_add(1);
        return x + 1000;
      })
      .sink(weir::collect_into(changed_items));
  branches["read"].sink([&](int x) {
    // Hold the first shared batch until the other branch has been through it.
    if (seen.empty()) (void)eventually([&] { return changed.load() >= static_cast<int>(batch); }, 2s);
    seen.push_back(x);
  });
  (void)p.run();
  std::vector<int> expected(n);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(seen == expected);
  for (auto& e : expected) e += 1000;
  CHECK(changed_items == expected);
}

TEST_CASE("a branch that changes strings in place or filters them leaves the other branches intact") {
  constexpr std::size_t batch = 6;
  std::vector<std::string> input;
  for (int i = 0; i < 30; ++i) input.push_back(std::string("item-").append(std::to_string(i)));
  weir::Pipeline p("copy_on_write_strings", with_batch(batch));
  std::atomic<int> touched{0};
  std::vector<std::string> changed;
  std::vector<std::string> kept;
  std::vector<std::string> seen;
  auto branches = p.source(input).fan_out(3);
  branches[0]
      .map([&touched](std::string s) {
        touched.fetch_add(1);
        s += "-changed";
        return s;
      })
      .sink(weir::collect_into(changed));
  branches[1]
      .filter([&touched](const std::string& s) {
        touched.fetch_add(1);
        return s.back() == '0';
      })
      .sink(weir::collect_into(kept));
  branches[2].sink([&](const std::string& s) {
    if (seen.empty()) (void)eventually([&] { return touched.load() >= static_cast<int>(2 * batch); }, 2s);
    seen.push_back(s);
  });
  (void)p.run();
  CHECK(seen == input);
  REQUIRE(changed.size() == input.size());
  for (std::size_t i = 0; i < input.size(); ++i) CHECK(changed[i] == input[i] + "-changed");
  CHECK(kept == std::vector<std::string>{"item-0", "item-10", "item-20"});
}

TEST_CASE("merge of two sources delivers the union and keeps each input's order") {
  weir::Pipeline p("merge2", with_batch(7));
  std::vector<int> got;
  auto evens = p.source(std::views::iota(0, 500) | std::views::transform([](int i) { return 2 * i; }));
  auto odds = p.source(std::views::iota(0, 300) | std::views::transform([](int i) { return 2 * i + 1; }));
  evens.merge(odds).sink(weir::collect_into(got));
  const auto r = p.run();
  REQUIRE(got.size() == 800);
  std::vector<int> e;
  std::vector<int> o;
  for (const int x : got) (x % 2 == 0 ? e : o).push_back(x);
  CHECK(std::is_sorted(e.begin(), e.end()));
  CHECK(std::is_sorted(o.begin(), o.end()));
  CHECK(e.size() == 500);
  CHECK(o.size() == 300);
  CHECK(e.back() == 998);
  CHECK(o.back() == 599);
  CHECK(r.stage("merge#2").items_in == 800);
  CHECK(r.stage("merge#2").items_out == 800);
}

TEST_CASE("merge of three string sources delivers the union and keeps each input's order") {
  weir::Pipeline p("merge3", with_batch(5));
  std::vector<std::string> got;
  auto make = [](char tag, int count) {
    std::vector<std::string> v;
    for (int i = 0; i < count; ++i) v.push_back(std::string(1, tag).append(std::to_string(1000 + i)));
    return v;
  };
  auto a = p.source(make('a', 120));
  auto b = p.source(make('b', 77)).map([](std::string s) { return s; });
  int c_next = 0;
  auto c = p.source(weir::from_generator{[&c_next]() -> std::optional<std::string> {
    if (c_next == 40) return std::nullopt;
    return std::string("c").append(std::to_string(1000 + c_next++));
  }});
  a.merge(b, c).sink(weir::collect_into(got));
  (void)p.run();
  std::map<char, std::vector<std::string>> by_input;
  for (const auto& s : got) by_input[s[0]].push_back(s);
  CHECK(by_input['a'] == make('a', 120));
  CHECK(by_input['b'] == make('b', 77));
  CHECK(by_input['c'] == make('c', 40));
  CHECK(got.size() == 237);
}
