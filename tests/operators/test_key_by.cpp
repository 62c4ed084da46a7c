// Tests of key_by (ops/key_by.hpp): its partitioner puts every item of a key in one partition, in
// stream order, and spreads the keys over every partition; the keyed stage after it sees each key's
// items in stream order at every partition count and batch size; keys of any hashable type, keys
// returned by reference, a key function that throws, and a key_by that adds no stage of its own.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "operator_cases.hpp"
#include "weir_test.hpp"

namespace key_by_test {
/// A key type of the user's, hashed through a weir::KeyHash specialisation.
struct Region {
  int zone = 0;
  bool operator==(const Region&) const = default;
  bool operator<(const Region& o) const { return zone < o.zone; }
};
}  // namespace key_by_test

template <>
struct weir::KeyHash<key_by_test::Region> {
  std::size_t operator()(const key_by_test::Region& r) const { return std::hash<int>{}(r.zone * 7919); }
};

namespace {

using key_by_test::Region;
using weir_test::settings;
using weir_test::with_batch;

/// An item of the keyed tests: its key and its place in the stream.
struct Item {
  std::uint32_t key = 0;
  std::uint32_t seq = 0;
  std::string name;  ///< the key as a string, for keys returned by reference
};

/// `n` items over `keys` keys, skewed when asked (a few keys take most items).
std::vector<Item> random_items(std::mt19937_64& rng, std::size_t n, std::uint32_t keys, bool skew) {
  std::vector<Item> v;
  v.reserve(n);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = u(rng);
    const auto k =
        std::min(keys - 1, static_cast<std::uint32_t>(static_cast<double>(keys) * (skew ? x * x * x : x)));
    v.push_back(Item{k, static_cast<std::uint32_t>(i), std::string("key-").append(std::to_string(k))});
  }
  return v;
}

using Partitioner = weir::ops::KeyPartitioner<Item, std::uint32_t (*)(const Item&)>;

std::uint32_t key_of(const Item& x) {
  return x.key;
}

/// Splits `items` in batches of `batch` with `split` over `n` partitions, as a sending stage does,
/// and returns each partition's items in the order it received them.
std::vector<std::vector<Item>> split_all(const Partitioner& split, const std::vector<Item>& items,
                                         std::size_t batch, std::size_t n, bool shared) {
  std::vector<std::vector<Item>> parts(n);
  std::int64_t high = 0;
  for (std::size_t from = 0; from < items.size(); from += batch) {
    auto in = std::make_shared<weir::Batch<Item>>();
    in->items.assign(items.begin() + static_cast<std::ptrdiff_t>(from),
                     items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), from + batch)));
    const auto keep = shared ? in : nullptr;  // a batch another branch still reads: items are copied
    std::vector<weir::detail::BatchPtr> out(n);
    split.split(std::move(in), out, 0, high);
    for (std::size_t p = 0; p < n; ++p) {
      if (out[p] == nullptr) continue;
      CHECK(out[p]->partition == p);
      const auto& got = static_cast<const weir::Batch<Item>&>(*out[p]).items;
      parts[p].insert(parts[p].end(), got.begin(), got.end());
    }
  }
  return parts;
}

}  // namespace

TEST_CASE(
    "the key partitioner sends every item of a key to one partition, in stream order, over every partition") {
  for (const auto seed : weir_test::seeds) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{8}}) {
      for (const bool shared : {false, true}) {
        std::mt19937_64 rng(seed * 101 + n);
        const std::uint32_t keys = seed % 2 == 0 ? 64 : 2000;
        const bool skew = seed == 12;
        const auto items = random_items(rng, 6'000, keys, skew);
        INFO("seed ", seed, ", ", n, " partitions, ", keys, " keys, skew ", skew, ", shared ", shared);
        const Partitioner split(&key_of);
        const auto parts = split_all(split, items, 1 + rng() % 700, n, shared);
        std::map<std::uint32_t, std::size_t> home;
        std::size_t total = 0;
        bool one_home = true;
        bool in_order = true;
        std::vector<std::int64_t> last_seq(keys, -1);
        for (std::size_t p = 0; p < n; ++p) {
          total += parts[p].size();
          for (const auto& x : parts[p]) {
            if (home.emplace(x.key, p).first->second != p) one_home = false;
            if (static_cast<std::int64_t>(x.seq) <= last_seq[x.key]) in_order = false;
            last_seq[x.key] = x.seq;
          }
        }
        CHECK(total == items.size());
        CHECK(one_home);
        CHECK(in_order);
        // Every item arrived: each key's last item is the last one the stream gave it.
        std::vector<std::int64_t> want_last(keys, -1);
        for (const auto& x : items) want_last[x.key] = x.seq;
        CHECK(last_seq == want_last);
        // The keys are spread: without skew every partition gets a fair share of the keys.
        if (!skew) {
          std::vector<std::size_t> keys_in(n, 0);
          for (const auto& [k, p] : home) ++keys_in[p];
          for (std::size_t p = 0; p < n; ++p) {
            CAPTURE(p);
            CHECK(keys_in[p] * n * 2 >= home.size());  // at least half of an even share
          }
        }
        // The same key goes to the same partition in another split.
        const auto again = split_all(split, items, 50, n, !shared);
        bool same = true;
        for (std::size_t p = 0; p < n; ++p) {
          for (const auto& x : again[p]) same = same && home.at(x.key) == p;
        }
        CHECK(same);
      }
    }
  }
}

TEST_CASE("an item whose key function throws goes to partition 0, for the stage to fail it") {
  auto key = [](const Item& x) -> std::uint32_t {
    if (x.key % 10 == 3) throw std::runtime_error("no key");
    return x.key;
  };
  weir::ops::KeyPartitioner<Item, decltype(key)> split(key);
  std::mt19937_64 rng(5);
  const auto items = random_items(rng, 3000, 100, false);
  auto in = std::make_shared<weir::Batch<Item>>();
  in->items = items;
  std::vector<weir::detail::BatchPtr> out(8);
  std::int64_t high = 0;
  split.split(in, out, 0, high);
  std::size_t total = 0;
  bool thrown_in_zero = true;
  for (std::size_t p = 0; p < out.size(); ++p) {
    if (out[p] == nullptr) continue;
    for (const auto& x : static_cast<const weir::Batch<Item>&>(*out[p]).items) {
      ++total;
      if (x.key % 10 == 3 && p != 0) thrown_in_zero = false;
    }
  }
  CHECK(total == items.size());
  CHECK(thrown_in_zero);
}

TEST_CASE(
    "a keyed stage after key_by sees each key's items in stream order at every partition count and batch "
    "size") {
  // Count windows of c items per key: each window must hold c consecutive items of its key in the
  // order of the stream, whatever the partition count (the keyed stage's parallelism) and batch size.
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const std::size_t n = weir_test::input_size(seed, s);
      const std::uint32_t keys = 1 + static_cast<std::uint32_t>(rng() % 300);
      const std::uint64_t c = 1 + rng() % 6;
      const auto items = random_items(rng, n, keys, seed == 12);
      std::map<std::uint32_t, std::vector<std::vector<std::uint32_t>>> want;
      {
        std::map<std::uint32_t, std::vector<std::uint32_t>> open;
        for (const auto& x : items) {
          auto& w = open[x.key];
          w.push_back(x.seq);
          if (w.size() == c) want[x.key].push_back(std::exchange(w, {}));
        }
        for (auto& [k, w] : open) {
          if (!w.empty()) want[k].push_back(std::move(w));
        }
      }
      INFO("seed ", seed, ", ", s.str(), ", ", n, " items, ", keys, " keys, windows of ", c);
      weir::Pipeline p("key_by-order", s.options());
      std::vector<weir::WindowResult<std::uint32_t, std::vector<std::uint32_t>>> out;
      p.source(items)
          .key_by(&Item::key)
          .window(weir::tumbling_count{c})
          .aggregate(std::vector<std::uint32_t>{},
                     [](std::vector<std::uint32_t>& acc, const Item& x) { acc.push_back(x.seq); })
          .name("windows")
          .parallelism(s.parallelism)
          .sink(weir::collect_into(out));
      const auto r = p.run();
      std::map<std::uint32_t, std::vector<std::vector<std::uint32_t>>> got;
      for (auto& w : out) got[w.key].push_back(std::move(w.value));
      for (auto& [k, windows] : got) std::sort(windows.begin(), windows.end());
      for (auto& [k, windows] : want) std::sort(windows.begin(), windows.end());
      CHECK(got == want);
      CHECK(r.stage("windows").items_in == n);
      CHECK(r.stage("windows").parallelism == s.parallelism);
    }
  }
}

TEST_CASE("key_by takes keys of any hashable type, and keys returned by reference into the item") {
  std::mt19937_64 rng(17);
  const auto items = random_items(rng, 5000, 40, true);
  // The reference: items per key, whatever its type, as long as equal keys group the same items.
  std::map<std::uint32_t, std::uint64_t> want;
  for (const auto& x : items) ++want[x.key];
  for (const int parts : {1, 3, 8}) {
    CAPTURE(parts);
    weir::Pipeline p("key_by-types", with_batch(64));
    auto src = p.source(items);
    std::vector<weir::WindowResult<std::string, std::uint64_t>> by_ref;
    std::vector<weir::WindowResult<std::pair<std::uint32_t, std::string>, std::uint64_t>> by_pair;
    std::vector<weir::WindowResult<std::tuple<int, std::uint32_t, std::string>, std::uint64_t>> by_tuple;
    std::vector<weir::WindowResult<Region, std::uint64_t>> by_region;
    const auto big = weir::tumbling_count{1'000'000};  // one window per key, flushed at end of input
    src.key_by([](const Item& x) -> const std::string& { return x.name; })
        .window(big)
        .count()
        .parallelism(parts)
        .sink(weir::collect_into(by_ref));
    src.key_by([](const Item& x) {
         return std::pair<std::uint32_t, std::string>{x.key, x.name};
       })
        .window(big)
        .count()
        .parallelism(parts)
        .sink(weir::collect_into(by_pair));
    src.key_by([](const Item& x) {
         return std::tuple<int, std::uint32_t, std::string>{1, x.key, x.name};
       })
        .window(big)
        .count()
        .parallelism(parts)
        .sink(weir::collect_into(by_tuple));
    src.key_by([](const Item& x) { return Region{static_cast<int>(x.key)}; })
        .window(big)
        .count()
        .parallelism(parts)
        .sink(weir::collect_into(by_region));
    (void)p.run();
    std::map<std::uint32_t, std::uint64_t> got_ref;
    std::map<std::uint32_t, std::uint64_t> got_pair;
    std::map<std::uint32_t, std::uint64_t> got_tuple;
    std::map<std::uint32_t, std::uint64_t> got_region;
    for (const auto& w : by_ref) got_ref[static_cast<std::uint32_t>(std::stoul(w.key.substr(4)))] += w.value;
    for (const auto& w : by_pair) got_pair[w.key.first] += w.value;
    for (const auto& w : by_tuple) got_tuple[std::get<1>(w.key)] += w.value;
    for (const auto& w : by_region) got_region[static_cast<std::uint32_t>(w.key.zone)] += w.value;
    CHECK(by_ref.size() == want.size());  // one window per key: no key split over partitions
    CHECK(by_pair.size() == want.size());
    CHECK(by_tuple.size() == want.size());
    CHECK(by_region.size() == want.size());
    CHECK(got_ref == want);
    CHECK(got_pair == want);
    CHECK(got_tuple == want);
    CHECK(got_region == want);
  }
}

TEST_CASE("key_by adds no stage: the keyed stage after it is the only one between source and sink") {
  weir::Pipeline p("key_by-stages");
  std::vector<weir::WindowResult<int, std::uint64_t>> out;
  p.source(std::vector<int>{1, 2, 3, 4, 5, 6})
      .key_by([](int x) { return x % 2; })
      .window(weir::tumbling_count{3})
      .count()
      .parallelism(2)
      .sink(weir::collect_into(out));
  const auto r = p.run();
  REQUIRE(r.stages.size() == 3);
  CHECK(r.stages[0].kind == "source");
  CHECK(r.stages[1].kind == "window");
  CHECK(r.stages[2].kind == "collect");
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  REQUIRE(out.size() == 2);
  CHECK(out[0].key == 0);
  CHECK(out[0].value == 3);
  CHECK(out[1].key == 1);
  CHECK(out[1].value == 3);
}
