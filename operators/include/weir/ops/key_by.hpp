#pragma once
/// \file key_by: partitions a stream by key so that keyed state is owned by one serial partition.

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "weir/detail/runtime.hpp"

namespace weir {

/// A key function for `key_by`: takes a const T& and returns a key that std::hash and == accept.
/// It may return a reference into the item (no copy is made until a new key is stored).
template <class F, class T>
concept KeyFn = std::copy_constructible<F> && std::invocable<F&, const T&> && requires(F& f, const T& x) {
  {
    std::hash<std::remove_cvref_t<std::invoke_result_t<F&, const T&>>>{}(std::invoke(f, x))
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

/// Splits batches of T by the hash of `key(item)` into one batch per partition. With a time (an
/// event-time function or BatchStamp) it also tags each part with the highest time it has split so
/// far, so that the partitions' watermarks follow the data in order. Thread-safe: the key and time
/// functions must be safe to call from several threads when the upstream stage is parallel.
template <class T, class F, class TimeF = NoTimestamp>
class KeyPartitioner final : public detail::Partitioner {
 public:
  explicit KeyPartitioner(F key, TimeF time = {}) : key_(std::move(key)), time_(std::move(time)) {}

  void split(detail::BatchPtr in, std::vector<detail::BatchPtr>& out, std::uint32_t port) const override {
    const std::size_t n = out.size();
    const bool own = in.use_count() == 1;
    auto& items = static_cast<Batch<T>&>(*in).items;
    if (n == 1 && own) {
      in->partition = 0;
      in->port = port;
      in->time_high_ns = publish(batch_high(*in));
      out[0] = std::move(in);
      return;
    }
    // One pass: each item goes to its partition's batch (made when the first item for it comes), and
    // the highest item time is taken on the way.
    const std::size_t expect = items.size() / n + items.size() / (4 * n) + 1;
    std::int64_t high = lowest;
    for (auto& x : items) {
      if constexpr (item_times) high = std::max(high, item_time(x));
      const std::size_t p = n == 1 ? 0 : partition(x, n);
      if (!out[p]) {
        auto b = detail::derived_batch<T>(*in, expect);
        b->partition = static_cast<std::uint32_t>(p);
        b->port = port;
        out[p] = std::move(b);
      }
      auto& dst = static_cast<Batch<T>&>(*out[p]).items;
      if (own) {
        dst.push_back(std::move(x));
      } else {
        dst.push_back(x);
      }
    }
    if constexpr (std::is_same_v<TimeF, BatchStamp>) high = in->stamp_ns;
    const std::int64_t seen = publish(high);
    for (auto& b : out) {
      if (b) b->time_high_ns = seen;
    }
  }

 private:
  /// The time function reads items (event time), rather than the batch's stamp or nothing.
  static constexpr bool item_times =
      !std::is_same_v<TimeF, NoTimestamp> && !std::is_same_v<TimeF, BatchStamp>;

  std::size_t partition(const T& x, std::size_t n) const {
    try {
      return detail::partition_of(hash_(std::invoke(key_, x)), n);
    } catch (...) {
      return 0;  // the stage calls the key function again and applies its error policy
    }
  }

  /// The time of an item in nanoseconds, or `lowest` when the time function throws (the stage calls
  /// it again and applies its error policy).
  std::int64_t item_time(const T& x) const {
    try {
      const std::chrono::system_clock::time_point t = std::invoke(time_, x);
      return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    } catch (...) {
      return lowest;
    }
  }

  /// The highest time of a batch: its items' (event time) or its stamp (processing time).
  std::int64_t batch_high(const detail::AnyBatch& in) const {
    if constexpr (std::is_same_v<TimeF, BatchStamp>) {
      return in.stamp_ns;
    } else {
      std::int64_t high = lowest;
      if constexpr (item_times) {
        for (const auto& x : static_cast<const Batch<T>&>(in).items) high = std::max(high, item_time(x));
      }
      return high;
    }
  }

  /// Publishes a batch's highest time; returns the highest seen so far (0 without a time).
  std::int64_t publish(std::int64_t batch_high) const {
    if constexpr (std::is_same_v<TimeF, NoTimestamp>) {
      return 0;
    } else {
      std::int64_t prev = high_.load(std::memory_order_relaxed);
      while (batch_high > prev && !high_.compare_exchange_weak(prev, batch_high, std::memory_order_relaxed)) {
      }
      return std::max(prev, batch_high);
    }
  }

  static constexpr std::int64_t lowest = std::numeric_limits<std::int64_t>::min() / 4;
  mutable F key_;
  mutable TimeF time_;
  std::hash<key_t<F, T>> hash_{};
  mutable std::atomic<std::int64_t> high_{lowest};
};

}  // namespace weir::ops
