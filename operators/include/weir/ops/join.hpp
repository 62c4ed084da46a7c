#pragma once
/// \file join_by_key: a stream joined with a bounded table loaded first (a lookup join).

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "weir/detail/fusion.hpp"
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

/// A lookup join's table, indexed by key: read-only once built, so it is a flat open-addressing
/// table (linear probing, at most a quarter full, so that few lookups probe twice; Fibonacci hashing
/// of KeyHash<K>): a lookup is a slot read and an entry read, with no division and no pointer chase.
/// Keys must be unique.
template <class K, class R>
class JoinIndex {
 public:
  template <class KeyB>
  JoinIndex(std::vector<R> rows, const KeyB& key_b) {
    if (rows.size() >= std::numeric_limits<std::uint32_t>::max() / 2)
      throw std::length_error("join_by_key: the table has too many rows");
    std::size_t cap = 8;
    int bits = 3;
    while (cap < 4 * rows.size()) {
      cap *= 2;
      ++bits;
    }
    slots_.assign(cap, 0);
    mask_ = cap - 1;
    shift_ = 64 - bits;
    entries_.reserve(rows.size());
    for (auto& r : rows) {
      K k = std::invoke(key_b, std::as_const(r));
      std::size_t i = home(k);
      for (; slots_[i] != 0; i = (i + 1) & mask_) {
        if (entries_[slots_[i] - 1].first == k)
          throw std::invalid_argument("join_by_key: the table has two rows with the same key");
      }
      entries_.emplace_back(std::move(k), std::move(r));
      slots_[i] = static_cast<std::uint32_t>(entries_.size());
    }
  }

  /// The row of key `k`, or null.
  [[nodiscard]] const R* find(const K& k) const {
    for (std::size_t i = home(k);; i = (i + 1) & mask_) {
      const std::uint32_t s = slots_[i];
      if (s == 0) return nullptr;
      const auto& e = entries_[s - 1];
      if (e.first == k) return &e.second;
    }
  }
  /// Starts loading the slot where the lookup of `k` begins.
  void prefetch(const K& k) const { __builtin_prefetch(&slots_[home(k)]); }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  [[nodiscard]] std::size_t home(const K& k) const {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(KeyHash<K>{}(k)) * 0x9E3779B97F4A7C15ULL) >>
                                    shift_);
  }

  std::vector<std::uint32_t> slots_;  ///< 1 + the entry's index; 0 for an empty slot
  std::vector<std::pair<K, R>> entries_;
  std::size_t mask_ = 0;
  int shift_ = 64;
};

/// Indexes `rows` by `key_b(row)`; keys must be unique.
template <class R, class KeyB>
std::shared_ptr<const JoinIndex<key_t<KeyB, R>, R>> index_join_table(std::vector<R> rows, const KeyB& key_b) {
  return std::make_shared<const JoinIndex<key_t<KeyB, R>, R>>(std::move(rows), key_b);
}

/// From this many rows on, a table is unlikely to stay in the core's caches, and each lookup waits on
/// memory for its slot and its entry: the join then runs as a stage kernel of its own that starts
/// loading a batch's slots before its lookups (LookupJoinKernel). Smaller tables are looked up
/// in the fused loop of the stages before the join (LookupJoinOp).
inline constexpr std::size_t lookup_join_prefetch_rows = std::size_t{1} << 16;

/// The error sent to a stage's policy for an item without a row (JoinMiss::error).
[[nodiscard]] inline std::exception_ptr join_miss() {
  return std::make_exception_ptr(JoinMissError("no row in the join table for the item's key"));
}

/// A lookup join as a fused operator: one lookup per item, `combine(item, row)` emitted; a missing
/// row drops the item (counted as filtered) or fails it with JoinMissError. A throwing key or combine
/// function fails the item under the stage's policy (no retry: a lookup gives the same answer again).
/// The table belongs to the stage's kernel (OpKernel's state); the operator only points to it.
template <class T, class R, class KeyA, class Combine>
struct LookupJoinOp {
  using K = key_t<KeyA, T>;
  using U = std::remove_cvref_t<std::invoke_result_t<Combine&, const T&, const R&>>;
  template <class X>
  using output = U;
  static constexpr bool may_grow = false;
  static constexpr bool counts_emitted = true;
  static constexpr bool is_filter = true;
  /// Looking up and combining do not change the operator, so the fused loop may run a copy of it.
  template <class X>
  static constexpr bool pure =
      std::invocable<const KeyA&, const T&>&& std::invocable<const Combine&, const T&, const R&>;

  static constexpr bool plain = std::is_default_constructible_v<U> && std::is_move_assignable_v<U>;
  using Slot = std::conditional_t<plain, U, std::optional<U>>;

  const JoinIndex<K, R>* index;
  KeyA key_a;
  Combine combine;
  JoinMiss unmatched;

  template <bool Keep, class X, class Next>
  void push(X&& x, detail::OpCtx& c, Next&& next) {
    // The combined item waits in a plain local when its type allows, which the compiler keeps in
    // registers (a std::optional goes through the stack). `next` is called outside the try:
    // exceptions from further down the loop are not this stage's.
    Slot y;
    const R* row = nullptr;
    try {
      row = index->find(std::invoke(key_a, std::as_const(x)));
      if (row != nullptr) [[likely]] {
        if constexpr (plain) {
          y = std::invoke(combine, std::as_const(x), *row);
        } else {
          y.emplace(std::invoke(combine, std::as_const(x), *row));
        }
      }
    } catch (...) {
      c.stage->fail_item(&x, typeid(T), std::current_exception(), 1, *c.tally);
      return;
    }
    if (row == nullptr) [[unlikely]] {
      if (unmatched == JoinMiss::error) c.stage->fail_item(&x, typeid(T), join_miss(), 1, *c.tally);
      return;
    }
    ++c.emitted;
    if constexpr (plain) {
      next(std::move(y));
    } else {
      next(std::move(*y));
    }
  }

  void open(detail::Stage& st) const {
    if (st.listens()) st.emit(events::JoinGroupCreated{index->size(), index->size()});
  }
  static void batch_done(const detail::OpCtx& c) {
    if (c.stage->listens()) c.stage->emit(events::JoinCompleted{c.emitted, c.emitted});
  }
};

/// The lookup join of a large table (see lookup_join_prefetch_rows) as a stage kernel. Stateless: the
/// table is only read, so the stage runs in parallel; key, combine and their captures must be safe to
/// call from several threads.
template <class T, class R, class KeyA, class Combine>
class LookupJoinKernel final : public detail::Kernel {
  using K = key_t<KeyA, T>;
  using U = std::remove_cvref_t<std::invoke_result_t<Combine&, const T&, const R&>>;

 public:
  LookupJoinKernel(std::shared_ptr<const JoinIndex<K, R>> index, KeyA key_a, Combine combine,
                   JoinOptions options)
      : index_(std::move(index)), key_a_(std::move(key_a)), combine_(std::move(combine)), options_(options) {}

  void open(detail::Stage& st) override {
    if (st.listens()) st.emit(events::JoinGroupCreated{index_->size(), index_->size()});
  }

  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally& tally) override {
    const auto& items = static_cast<const Batch<T>&>(*in).items;
    warm(items);
    auto out = detail::derived_batch<U>(*in, items.size());
    std::uint64_t missed = 0;
    for (const auto& x : items) {
      try {
        const R* row = index_->find(std::invoke(key_a_, x));
        if (row == nullptr) {
          if (options_.unmatched == JoinMiss::drop) {
            ++missed;
          } else {
            st.fail_item(&x, typeid(T), join_miss(), 1, tally);
          }
          continue;
        }
        out->items.push_back(std::invoke(combine_, x, *row));
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
  /// Starts loading the slot of every item of the batch before the lookups: the processor overlaps
  /// the cache misses of many items instead of waiting for each lookup's in turn.
  void warm(const std::vector<T>& items) noexcept {
    for (const auto& x : items) {
      try {
        index_->prefetch(std::invoke(key_a_, x));
      } catch (...) {
        // The lookup calls the key function again and applies the stage's error policy.
      }
    }
  }

  std::shared_ptr<const JoinIndex<K, R>> index_;
  KeyA key_a_;
  Combine combine_;
  JoinOptions options_;
};

}  // namespace weir::ops
