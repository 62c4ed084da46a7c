#pragma once
/// \file key_by: partitions a stream by key so that keyed state is owned by one serial partition.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "weir/detail/batch_pool.hpp"
#include "weir/detail/runtime.hpp"

namespace weir {

/// The hash keyed stages use: std::hash, and for std::pair and std::tuple a combination of the
/// hashes of their members (so a pair of strings is a key as it is). Specialise it for your types.
template <class K>
struct KeyHash : std::hash<K> {};

namespace detail {
inline std::size_t hash_combine(std::size_t seed, std::size_t h) noexcept {
  return seed ^ (h + 0x9E3779B97F4A7C15ULL + (seed << 6) + (seed >> 2));
}
}  // namespace detail

template <class A, class B>
struct KeyHash<std::pair<A, B>> {
  std::size_t operator()(const std::pair<A, B>& p) const {
    return detail::hash_combine(KeyHash<A>{}(p.first), KeyHash<B>{}(p.second));
  }
};

template <class... Ts>
struct KeyHash<std::tuple<Ts...>> {
  std::size_t operator()(const std::tuple<Ts...>& t) const {
    return std::apply(
        [](const auto&... x) {
          std::size_t seed = 0;
          ((seed = detail::hash_combine(seed, KeyHash<std::remove_cvref_t<decltype(x)>>{}(x))), ...);
          return seed;
        },
        t);
  }
};

/// A key function for `key_by`: takes a const T& and returns a key that weir::KeyHash (std::hash, or
/// pairs and tuples of hashable types) and == accept.
/// It may return a reference into the item (no copy is made until a new key is stored).
template <class F, class T>
concept KeyFn = std::copy_constructible<F> && std::invocable<F&, const T&> && requires(F& f, const T& x) {
  {
    KeyHash<std::remove_cvref_t<std::invoke_result_t<F&, const T&>>>{}(std::invoke(f, x))
    } -> std::convertible_to<std::size_t>;
  { std::invoke(f, x) == std::invoke(f, x) } -> std::convertible_to<bool>;
};

/// The key type a key function produces.
template <class F, class T>
using key_t = std::remove_cvref_t<std::invoke_result_t<F&, const T&>>;

}  // namespace weir

namespace weir::ops {

/// Time tags for KeyPartitioner: no time at all, or the batch's source stamp (processing time).
struct NoTimestamp {};
struct BatchStamp {};

/// When an item is late for a tumbling window stage: its window's end plus the allowed lateness is
/// at or below the watermark (the highest time seen before it, less the out-of-orderness bound).
/// `size_ns == 0` turns it off.
struct LateRule {
  std::int64_t size_ns = 0;
  std::int64_t out_of_orderness_ns = 0;
  std::int64_t lateness_ns = 0;
  [[nodiscard]] bool late(std::int64_t ts, std::int64_t high_before) const noexcept {
    if (size_ns == 0) return false;
    std::int64_t start = ts / size_ns * size_ns;
    if (ts % size_ns < 0) start -= size_ns;
    return start + size_ns + lateness_ns <= high_before - out_of_orderness_ns;
  }
};

/// Where a keyed stage without a LateRule closes its windows (a window join): at the multiples of
/// `size_ns` past `offset_ns` (the out-of-orderness bound) of the highest time seen. `size_ns == 0`: no
/// windows.
struct EpochRule {
  std::int64_t size_ns = 0;
  std::int64_t offset_ns = 0;
};

/// Marks the batches of late items a partitioner sends (see KeyPartitioner).
inline constexpr std::uint32_t late_items_port = 0x4000'0000U;

/// Splits batches of T by the hash of `key(item)` into one batch per partition. With a time (an
/// event-time function or BatchStamp) it also tags each part with the stream's highest time before
/// the batch and with it, so that the partitions' watermarks follow each stream in its order; and
/// with a LateRule it judges each item against its stream's watermark as it stood just before that
/// item, in the order of the stream, sending those late items in batches of their own
/// (port | late_items_port) to their partition. The partition then decides with the watermarks of
/// its other input streams (an item is late only when it is late against every stream). So with one
/// input stream, whether an item is late depends neither on the partition count nor on where batches
/// begin and end. epoch() tells the caller when the windows of the LateRule (or EpochRule) may close.
/// Thread-safe for distinct streams: the key and time functions must be safe to call from several
/// threads when several streams feed the stage.
template <class T, class F, class TimeF = NoTimestamp>
class KeyPartitioner final : public detail::Partitioner {
 public:
  explicit KeyPartitioner(F key, TimeF time = {}, LateRule rule = {}, EpochRule epochs = {})
      : key_(std::move(key)),
        time_(std::move(time)),
        rule_(rule),
        epochs_(rule.size_ns > 0 ? EpochRule{rule.size_ns, rule.out_of_orderness_ns + rule.lateness_ns}
                                 : epochs) {}

  void split(detail::BatchPtr in, std::vector<detail::BatchPtr>& out, std::uint32_t port,
             std::int64_t& stream_high) const override {
    auto& items = static_cast<Batch<T>&>(*in).items;
    std::vector<bool> late;
    const auto [before, high] = track(items, in->stamp_ns, late, stream_high);
    const std::size_t n = out.size();
    const bool own = in.use_count() == 1;
    if (n == 1 && own && late.empty() && out[0] == nullptr) {
      in->partition = 0;
      in->port = port;
      in->time_before_ns = before;
      in->time_high_ns = high;
      out[0] = std::move(in);
      return;
    }
    // Batches held from earlier splits learn how far time has got, whether or not items join them.
    std::vector<Batch<T>*> parts(late.empty() ? n : 2 * n, nullptr);
    for (std::size_t p = 0; p < n; ++p) {
      if (out[p] != nullptr) {
        out[p]->time_high_ns = std::max(out[p]->time_high_ns, high);
        parts[p] = static_cast<Batch<T>*>(out[p].get());
      }
    }
    const std::size_t base = out.size();
    if (!late.empty()) out.resize(base + n);  // late items of partition p go in out[base + p]
    const std::size_t expect = items.size() / n + items.size() / (4 * n) + 1;
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto& x = items[i];
      std::size_t p = n == 1 ? 0 : partition(x, n);
      const bool is_late = !late.empty() && late[i];
      const std::size_t slot = is_late ? base + p : p;
      if (parts[is_late ? n + p : p] == nullptr) {
        auto b = pool_->derived(*in, is_late ? 1 : expect);
        b->partition = static_cast<std::uint32_t>(p);
        b->port = is_late ? (port | late_items_port) : port;
        b->time_before_ns = before;
        b->time_high_ns = high;
        parts[is_late ? n + p : p] = b.get();
        out[slot] = std::move(b);
      }
      auto* part = parts[is_late ? n + p : p];
      if (own) {
        part->items.push_back(std::move(x));
      } else {
        part->items.push_back(x);
      }
    }
  }

  [[nodiscard]] detail::BatchPtr marker() const override { return std::make_shared<Batch<T>>(); }
  [[nodiscard]] std::size_t item_bytes() const noexcept override { return sizeof(T); }

  [[nodiscard]] std::int64_t epoch(std::int64_t time_high_ns) const noexcept override {
    if constexpr (std::is_same_v<TimeF, NoTimestamp>) {
      return Partitioner::epoch(time_high_ns);
    } else {
      if (epochs_.size_ns == 0) return Partitioner::epoch(time_high_ns);
      const std::int64_t wm = time_high_ns - epochs_.offset_ns;
      std::int64_t q = wm / epochs_.size_ns;
      if (wm % epochs_.size_ns < 0) --q;
      return q;
    }
  }

 private:
  std::size_t partition(const T& x, std::size_t n) const {
    try {
      return detail::partition_of(hash_(std::invoke(key_, x)), n);
    } catch (...) {
      return 0;  // the stage calls the key function again and applies its error policy
    }
  }

  /// Raises the stream's highest time by the batch's items; returns the highest seen before the batch
  /// and with it (0 without a time). With a LateRule and a late item, fills `late` (one flag per item).
  std::pair<std::int64_t, std::int64_t> track(const std::vector<T>& items, std::int64_t stamp,
                                              std::vector<bool>& late, std::int64_t& stream_high) const {
    if constexpr (std::is_same_v<TimeF, NoTimestamp>) {
      return {0, 0};
    } else {
      const std::int64_t prev = stream_high;
      std::int64_t running = prev;
      if constexpr (std::is_same_v<TimeF, BatchStamp>) {
        if (!items.empty() && rule_.late(stamp, running)) late.assign(items.size(), true);
        running = std::max(running, stamp);
      } else {
        for (std::size_t i = 0; i < items.size(); ++i) {
          try {
            const std::chrono::system_clock::time_point t = std::invoke(time_, items[i]);
            const std::int64_t ts =
                std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
            if (rule_.late(ts, running)) {
              if (late.empty()) late.assign(items.size(), false);
              late[i] = true;
            }
            running = std::max(running, ts);
          } catch (...) {
            // The stage calls the time function again and applies its error policy.
          }
        }
      }
      stream_high = running;
      return {prev, running};
    }
  }

  mutable F key_;
  mutable TimeF time_;
  LateRule rule_;
  EpochRule epochs_;
  KeyHash<key_t<F, T>> hash_{};
  std::shared_ptr<detail::BatchPool<T>> pool_ = std::make_shared<detail::BatchPool<T>>();
};

}  // namespace weir::ops
