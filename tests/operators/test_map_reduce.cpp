// Tests of map_reduce: results against a plain loop on any number of partitions, single pairs and
// ranges of pairs, failing map functions, empty input and the phase events.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using weir_test::with_batch;

std::vector<std::string> lines(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string line;
    const int words = 1 + static_cast<int>(rng() % 8);
    for (int w = 0; w < words; ++w) {
      // A skewed vocabulary: low word numbers are far more frequent.
      const auto r = rng() % 1000;
      line.append("w").append(std::to_string(r * r / 10000)).append(" ");
    }
    out.push_back(line);
  }
  return out;
}

std::vector<std::pair<std::string, long>> split_words(const std::string& line) {
  std::vector<std::pair<std::string, long>> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.emplace_back(w, 1L);
  return out;
}

struct PhaseEvents final : weir::Interceptor {
  std::mutex m;
  std::map<std::string, std::uint64_t> items;
  std::size_t keys = 0;
  std::uint64_t grouped_keys = 0;
  void on_event(const weir::StageInfo&, const weir::Event& e) override {
    const std::lock_guard lock(m);
    if (const auto* ph = std::get_if<weir::events::MapReducePhase>(&e)) {
      items[std::string(ph->phase)] += ph->items;
      keys += ph->keys;
    }
    if (const auto* g = std::get_if<weir::events::KeyGroupSizes>(&e)) {
      for (auto c : g->log2_counts) grouped_keys += c;
    }
  }
};

}  // namespace

TEST_CASE("map_reduce counts words like a plain loop on any number of partitions" WEIR_NEEDS_TELEMETRY) {
  const auto in = lines(3000, 11);
  std::map<std::string, long> expect;
  std::size_t words = 0;
  for (const auto& l : in) {
    for (const auto& [w, one] : split_words(l)) {
      expect[w] += one;
      ++words;
    }
  }
  for (int parts : {1, 4}) {
    CAPTURE(parts);
    std::vector<std::pair<std::string, long>> out;
    auto events = std::make_shared<PhaseEvents>();
    weir::Pipeline p("wordcount", with_batch(50));
    p.intercept(events);
    p.source(in)
        .map([](const std::string& s) { return s; })
        .parallelism(2)
        .map_reduce(split_words, [](long a, long b) { return a + b; })
        .parallelism(parts)
        .sink(weir::collect_into(out));
    const auto rep = p.run();
    std::map<std::string, long> got(out.begin(), out.end());
    CHECK(got.size() == out.size());  // every key once
    CHECK(got == expect);
    CHECK(rep.stage("map_reduce#2").items_in == words);
    CHECK(rep.stage("map_reduce#2").items_out == expect.size());
    CHECK(events->items["map"] == in.size());
    CHECK(events->items["shuffle"] == words);
    CHECK(events->items["reduce"] == words);
    CHECK(events->keys == expect.size());
    CHECK(events->grouped_keys == expect.size());
  }
}

TEST_CASE("map_reduce takes a map function that returns one pair") {
  std::vector<int> in(1000);
  for (int i = 0; i < 1000; ++i) in[static_cast<std::size_t>(i)] = i;
  std::vector<std::pair<int, long>> out;
  weir::Pipeline p("mod", with_batch(64));
  p.source(in)
      .map_reduce(
          [](int x) {
            return std::pair<int, long>{x % 7, x};
          },
          [](long a, long b) { return a + b; })
      .parallelism(3)
      .sink(weir::collect_into(out));
  p.run();
  std::sort(out.begin(), out.end());
  REQUIRE(out.size() == 7);
  for (int k = 0; k < 7; ++k) {
    long sum = 0;
    for (int x = k; x < 1000; x += 7) sum += x;
    CHECK(out[static_cast<std::size_t>(k)] == std::pair<int, long>{k, sum});
  }
}

TEST_CASE("map_reduce on empty input emits nothing") {
  std::vector<std::string> in;
  std::vector<std::pair<std::string, long>> out;
  weir::Pipeline p("empty-mr");
  p.source(in).map_reduce(split_words, [](long a, long b) { return a + b; }).sink(weir::collect_into(out));
  p.run();
  CHECK(out.empty());
}

TEST_CASE("items whose map function throws go to the map_reduce stage's dead-letter sink") {
  std::vector<std::string> in{"a b", "bad", "b c", "bad"};
  std::vector<std::pair<std::string, long>> out;
  std::vector<weir::DeadLetter<std::string>> dead;
  weir::Pipeline p("mr-errors");
  p.source(in)
      .map_reduce(
          [](const std::string& s) {
            if (s == "bad") throw std::invalid_argument("bad line");
            return split_words(s);
          },
          [](long a, long b) { return a + b; })
      .name("count")
      .on_error(
          weir::on_error::dead_letter([&](weir::DeadLetter<std::string> d) { dead.push_back(std::move(d)); }))
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  std::map<std::string, long> got(out.begin(), out.end());
  CHECK(got == std::map<std::string, long>{{"a", 1}, {"b", 2}, {"c", 1}});
  REQUIRE(dead.size() == 2);
  CHECK(dead[0].item == "bad");
  CHECK(dead[0].error_type == "std::invalid_argument");
  CHECK(dead[0].message == "bad line");
  CHECK(dead[0].stage == "count");
  CHECK(rep.stage("count").dead_lettered == 2);
  // items_in: the four pairs the map made, and the two items whose map threw.
  CHECK(rep.stage("count").items_in == 4 + 2);
}

TEST_CASE("map_reduce keys may be pairs") {
  std::vector<std::pair<std::string, std::string>> in{{"MI", "CA"}, {"MI", "CA"}, {"CA", "MI"}};
  std::vector<std::pair<std::pair<std::string, std::string>, long>> out;
  weir::Pipeline p("pair-keys");
  p.source(in)
      .map_reduce(
          [](const std::pair<std::string, std::string>& r) {
            return std::pair{r, 1L};
          },
          [](long a, long b) { return a + b; })
      .parallelism(2)
      .sink(weir::collect_into(out));
  p.run();
  std::sort(out.begin(), out.end());
  REQUIRE(out.size() == 2);
  CHECK(out[0].first.first == "CA");
  CHECK(out[0].second == 1);
  CHECK(out[1].second == 2);
}
