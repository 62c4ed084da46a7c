#pragma once
/// \file join_by_key: a stream joined with a bounded table loaded first (a lookup join).

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weir/detail/runtime.hpp"
#include "weir/ops/key_by.hpp"

namespace weir {

/// The bounded side of a lookup join: its rows are indexed by key before the first item arrives.
template <class R>
struct table {
  std::vector<R> rows;
};
template <class R>
table(std::vector<R>) -> table<R>;

/// What a lookup join does with an item whose key is not in the table.
enum class JoinMiss {
  drop,   ///< drop it and count it as filtered
  error,  ///< fail it with weir::JoinMissError, which goes to the stage's error policy (skip, dead letter)
};

/// Settings of a lookup join.
struct JoinOptions {
  JoinMiss unmatched = JoinMiss::drop;
};

/// The error of an item whose key is not in a lookup join's table (with JoinMiss::error).
class JoinMissError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace weir

namespace weir::ops {

/// Joins each item with the table row of the same key: `combine(const T&, const R&) -> U`. The table
/// is built when the stage is created and only read afterwards, so the stage is stateless and runs
/// in parallel; key, combine and their captures must be safe to call from several threads.
template <class T, class R, class KeyA, class KeyB, class Combine>
class LookupJoinKernel final : public detail::Kernel {
  using K = key_t<KeyA, T>;
  using U = std::remove_cvref_t<std::invoke_result_t<Combine&, const T&, const R&>>;

 public:
  LookupJoinKernel(std::vector<R> rows, KeyA key_a, KeyB key_b, Combine combine, JoinOptions options)
      : key_a_(std::move(key_a)), combine_(std::move(combine)), options_(options) {
    rows_.reserve(rows.size());
    for (auto& r : rows) {
      auto k = std::invoke(key_b, std::as_const(r));
      if (!rows_.try_emplace(std::move(k), std::move(r)).second)
        throw std::invalid_argument("join_by_key: the table has two rows with the same key");
    }
  }

  void open(detail::StageRuntime& st) override {
    if (st.listens()) st.emit(events::JoinGroupCreated{rows_.size(), rows_.size()});
  }

  detail::BatchPtr apply(detail::BatchPtr in, detail::StageRuntime& st, detail::BatchTally& tally) override {
    const auto& items = static_cast<const Batch<T>&>(*in).items;
    if (rows_.size() >= prefetch_rows) warm(items);
    auto out = detail::derived_batch<U>(*in, items.size());
    std::uint64_t missed = 0;
    for (const auto& x : items) {
      try {
        const auto it = rows_.find(std::invoke(key_a_, x));
        if (it == rows_.end()) {
          if (options_.unmatched == JoinMiss::drop) {
            ++missed;
            continue;
          }
          throw JoinMissError("no row in the join table for the item's key");
        }
        out->items.push_back(std::invoke(combine_, x, it->second));
      } catch (...) {
        st.fail_item(&x, typeid(T), std::current_exception(), 1, tally);
      }
    }
    tally.filtered += missed;
    if (st.listens()) st.emit(events::JoinCompleted{out->items.size(), out->items.size()});
    if (out->items.empty()) return nullptr;
    return out;
  }

 private:
  /// From this many rows on, the table is unlikely to stay in the core's caches, and each lookup waits
  /// on memory for its bucket and its node.
  static constexpr std::size_t prefetch_rows = std::size_t{1} << 16;

  /// Reads the bucket of every item of the batch and prefetches the bucket's first node, before the
  /// lookups: the loop does nothing with what it reads, so the processor overlaps the cache misses of
  /// many items instead of waiting for each lookup's in turn, and the lookups then find the lines in
  /// the cache.
  void warm(const std::vector<T>& items) noexcept {
    for (const auto& x : items) {
      try {
        const std::size_t b = rows_.bucket(std::invoke(key_a_, x));
        const auto it = rows_.begin(b);
        if (it != rows_.end(b)) __builtin_prefetch(&*it);
      } catch (...) {
        // The lookup calls the key function again and applies the stage's error policy.
      }
    }
  }

  KeyA key_a_;
  Combine combine_;
  JoinOptions options_;
  std::unordered_map<K, R, KeyHash<K>> rows_;
};

}  // namespace weir::ops
