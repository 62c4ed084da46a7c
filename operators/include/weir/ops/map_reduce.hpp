#pragma once
/// \file map_reduce: map each item to key-value pairs, shuffle them by key, reduce each key's values.

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <ranges>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weir/clock.hpp"
#include "weir/detail/batch_pool.hpp"
#include "weir/detail/runtime.hpp"
#include "weir/ops/key_by.hpp"

namespace weir {

namespace detail {
template <class X>
struct is_pair : std::false_type {};
template <class A, class B>
struct is_pair<std::pair<A, B>> : std::true_type {};

template <class R>
struct pair_of_result {
  using type = std::remove_cvref_t<std::ranges::range_value_t<R>>;
};
template <class R>
requires is_pair<std::remove_cvref_t<R>>::value struct pair_of_result<R> {
  using type = std::remove_cvref_t<R>;
};
}  // namespace detail

/// A map function for `map_reduce`: takes a const T& and returns a std::pair<K, V> or a range of them.
template <class F, class T>
concept MapReduceMapFn = std::copy_constructible<F> && std::invocable<F&, const T&> &&
    (detail::is_pair<std::remove_cvref_t<std::invoke_result_t<F&, const T&>>>::value ||
     (std::ranges::input_range<std::invoke_result_t<F&, const T&>> &&
      detail::is_pair<
          std::remove_cvref_t<std::ranges::range_value_t<std::invoke_result_t<F&, const T&>>>>::value));

/// The pair type a map function for `map_reduce` produces.
template <class F, class T>
using map_reduce_pair_t = typename detail::pair_of_result<std::invoke_result_t<F&, const T&>>::type;

}  // namespace weir

namespace weir::ops {

/// An item whose map function threw upstream, on its way to the reduce stage's error policy.
template <class T>
struct MapFailure {
  T item;
  std::exception_ptr error;
};
/// The port that tags batches of MapFailure.
inline constexpr std::uint32_t map_failure_port = 0x8000'0000U;

/// A pair on its way from the shuffle to the reduce, with the hash of its key: the shuffle hashes each
/// key once to pick the partition, and the reduce looks the key up with the same hash.
template <class Pair>
struct HashedPair {
  Pair pair;
  std::size_t hash;
};

/// Counters of the map and shuffle phases, shared by the threads that run them (updated per batch).
struct MapReduceStats {
  std::atomic<std::uint64_t> items{0};  ///< input items mapped
  std::atomic<std::uint64_t> pairs{0};  ///< pairs the map produced and the shuffle routed
  std::atomic<std::int64_t> map_ns{0};
  std::atomic<std::int64_t> shuffle_ns{0};
  std::atomic<std::size_t> partitions_done{0};
};

/// The map and shuffle phases: runs on the threads of the upstream stage, maps every item of a batch
/// to pairs and splits the pairs by key hash into one batch per partition of the reduce phase.
template <class T, class MapF>
class MapShuffle final : public detail::Partitioner {
  using Pair = map_reduce_pair_t<MapF, T>;
  using K = typename Pair::first_type;

 public:
  MapShuffle(MapF fn, std::shared_ptr<Clock> clock, std::shared_ptr<MapReduceStats> stats)
      : fn_(std::move(fn)), clock_(std::move(clock)), stats_(std::move(stats)) {}

  void split(detail::BatchPtr in, std::vector<detail::BatchPtr>& out, std::uint32_t port,
             std::int64_t& /*stream_high*/) const override {
    const auto& items = static_cast<const Batch<T>&>(*in).items;
    // Phase times exist for telemetry only: no clock read in a build without it.
    const auto now = [this] {
      return detail::telemetry_compiled ? clock_->steady_now() : std::chrono::steady_clock::time_point{};
    };
    const auto t0 = now();
    // The pairs of one batch live in a buffer kept per thread, so a batch costs no allocation for them.
    static thread_local std::vector<Pair> spare;
    std::vector<Pair> pairs = std::move(spare);
    pairs.clear();
    pairs.reserve(items.size());
    std::vector<MapFailure<T>> failed;  // items whose map threw
    for (std::size_t i = 0; i < items.size(); ++i) {
      try {
        if constexpr (detail::is_pair<std::remove_cvref_t<std::invoke_result_t<MapF&, const T&>>>::value) {
          pairs.push_back(std::invoke(fn_, items[i]));
        } else {
          for (auto&& pr : std::invoke(fn_, items[i])) pairs.push_back(std::forward<decltype(pr)>(pr));
        }
      } catch (...) {
        failed.push_back(MapFailure<T>{items[i], std::current_exception()});
      }
    }
    const auto t1 = now();
    const std::size_t n = out.size();
    std::vector<Batch<HashedPair<Pair>>*> parts(n, nullptr);
    auto part = [&](std::size_t p) -> Batch<HashedPair<Pair>>& {
      if (parts[p] == nullptr && out[p] != nullptr) {
        parts[p] = static_cast<Batch<HashedPair<Pair>>*>(out[p].get());  // held from an earlier split
      } else if (parts[p] == nullptr) {
        auto b = pool_->derived(*in, pairs.size() / n + pairs.size() / (4 * n) + 8);
        b->partition = static_cast<std::uint32_t>(p);
        b->port = port;
        parts[p] = b.get();
        out[p] = std::move(b);
      }
      return *parts[p];
    };
    for (auto& pr : pairs) {
      const std::size_t h = hash_(pr.first);
      part(n == 1 ? 0 : detail::partition_of(h, n)).items.push_back(HashedPair<Pair>{std::move(pr), h});
    }
    if (!failed.empty()) {
      // Failed items travel in a batch of their own (to partition 0), which applies the stage's policy.
      auto b = detail::derived_batch<MapFailure<T>>(*in, 0);
      b->items = std::move(failed);
      b->port = map_failure_port;
      out.push_back(std::move(b));
    }
    const auto t2 = now();
    stats_->items.fetch_add(items.size(), std::memory_order_relaxed);
    stats_->pairs.fetch_add(pairs.size(), std::memory_order_relaxed);
    pairs.clear();
    spare = std::move(pairs);
    stats_->map_ns.fetch_add((t1 - t0).count(), std::memory_order_relaxed);
    stats_->shuffle_ns.fetch_add((t2 - t1).count(), std::memory_order_relaxed);
  }

  [[nodiscard]] detail::BatchPtr marker() const override {
    return std::make_shared<Batch<HashedPair<Pair>>>();
  }
  [[nodiscard]] std::size_t item_bytes() const noexcept override { return sizeof(HashedPair<Pair>); }

 private:
  mutable MapF fn_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<MapReduceStats> stats_;
  std::shared_ptr<detail::BatchPool<HashedPair<Pair>>> pool_ =
      std::make_shared<detail::BatchPool<HashedPair<Pair>>>();
  KeyHash<K> hash_{};
};

/// The reduce phase: one hash map per partition folds the values of each key with `reduce(V, V) -> V`;
/// at end of input every partition emits its pairs and reports the phases.
template <class T, class Pair, class ReduceF>
class ReduceKernel final : public detail::Kernel {
  using K = typename Pair::first_type;
  using V = typename Pair::second_type;

 public:
  ReduceKernel(ReduceF fn, std::shared_ptr<MapReduceStats> stats)
      : fn_(std::move(fn)), stats_(std::move(stats)) {}

  [[nodiscard]] bool stateless() const noexcept override { return false; }
  void open(detail::Stage& st) override {
    parts_.clear();
    parts_.resize(static_cast<std::size_t>(std::max(1, st.info.parallelism)));
  }

  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally& tally) override {
    if (in->port == map_failure_port) {
      for (const auto& f : static_cast<Batch<MapFailure<T>>&>(*in).items)
        st.fail_item(&f.item, typeid(T), f.error, 1, tally);
      return nullptr;
    }
    const auto now = [&st] {
      return detail::telemetry_compiled ? st.clock->steady_now() : std::chrono::steady_clock::time_point{};
    };
    const auto t0 = now();
    auto& part = parts_[in->partition];
    auto& pairs = static_cast<Batch<HashedPair<Pair>>&>(*in).items;
    part.pairs += pairs.size();
    for (auto& hp : pairs) {
      auto& [k, v] = hp.pair;
      auto it = part.values.find(Probe{k, hp.hash});
      if (it == part.values.end()) {
        part.values.emplace(std::move(k), Group{std::move(v), 1});
        continue;
      }
      // A reduce function that throws fails the run: the key's value so far cannot be trusted.
      it->second.value = std::invoke(fn_, std::move(it->second.value), std::move(v));
      ++it->second.size;
    }
    part.reduce_ns += (now() - t0).count();
    return nullptr;
  }

  detail::BatchPtr flush(std::uint32_t partition, detail::Stage& st, detail::BatchTally&) override {
    if (partition >= parts_.size()) return nullptr;
    auto& part = parts_[partition];
    auto out = std::make_shared<Batch<Pair>>();
    out->items.reserve(part.values.size());
    events::KeyGroupSizes sizes;
    for (auto& kv : part.values) {
      out->items.emplace_back(kv.first, std::move(kv.second.value));
      ++sizes.log2_counts[static_cast<std::size_t>(std::min<int>(31, std::bit_width(kv.second.size) - 1))];
    }
    if (st.listens()) {
      st.emit(events::MapReducePhase{"reduce", part.pairs, part.values.size(),
                                     std::chrono::nanoseconds{part.reduce_ns}});
      st.emit(sizes);
      if (stats_->partitions_done.fetch_add(1) + 1 == parts_.size()) {
        st.emit(events::MapReducePhase{"map", stats_->items.load(), 0,
                                       std::chrono::nanoseconds{stats_->map_ns.load()}});
        st.emit(events::MapReducePhase{"shuffle", stats_->pairs.load(), 0,
                                       std::chrono::nanoseconds{stats_->shuffle_ns.load()}});
      }
    }
    part.values.clear();
    if (out->items.empty()) return nullptr;
    return out;
  }

 private:
  struct Group {
    V value;
    std::uint64_t size = 0;  ///< values reduced into it
  };
  /// A key with the hash the shuffle computed, for a lookup that does not hash the key again.
  struct Probe {
    const K& key;
    std::size_t hash;
  };
  /// Hashes a key, or takes a Probe's hash. It is noexcept for scalar keys only: libstdc++ stores each
  /// node's hash when the hasher may throw, so string and other costly keys keep their hashes stored,
  /// and a lookup walking a bucket compares stored hashes instead of hashing every key it passes.
  struct ProbeHash {
    using is_transparent = void;
    std::size_t operator()(const K& k) const noexcept(std::is_scalar_v<K>) { return weir::KeyHash<K>{}(k); }
    std::size_t operator()(const Probe& p) const noexcept { return p.hash; }
  };
  struct KeyEqual {
    using is_transparent = void;
    bool operator()(const K& a, const K& b) const { return a == b; }
    bool operator()(const Probe& a, const K& b) const { return a.key == b; }
    bool operator()(const K& a, const Probe& b) const { return a == b.key; }
  };
  struct Part {
    std::unordered_map<K, Group, ProbeHash, KeyEqual> values;
    std::uint64_t pairs = 0;
    std::int64_t reduce_ns = 0;
  };
  ReduceF fn_;
  std::shared_ptr<MapReduceStats> stats_;
  std::vector<Part> parts_;
};

}  // namespace weir::ops
