// Scenario "join": a stream of N keyed items joined against a table of 1M
// rows by key (a lookup join), then folded into a checksum. Every competitor
// uses the types and functions below and must produce the same matches and
// checksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/bench.hpp"

/// An item of the stream.
struct JoinItem {
  std::uint64_t key;
  std::uint64_t value;
};

/// A row of the table.
struct JoinRow {
  std::uint64_t key;
  std::uint64_t payload;
};

/// The join's output: an item with its row's payload.
struct Joined {
  std::uint64_t key;
  std::uint64_t value;
  std::uint64_t payload;
};

inline constexpr std::size_t join_table_rows = 1'000'000;
/// One item in this many has a key that is not in the table (dropped by the join).
inline constexpr std::uint64_t join_miss_every = 10;

[[nodiscard]] inline Joined join_combine(const JoinItem& item, const JoinRow& row) noexcept {
  return Joined{item.key, item.value, row.payload};
}

/// What the sink folds into the checksum for each joined item.
[[nodiscard]] inline std::uint64_t join_fold(const Joined& j) noexcept {
  return (j.value ^ j.payload) * 0x9E3779B97F4A7C15ULL + j.key;
}

/// The generated input: the stream's items and the table's rows, made before any timing.
struct JoinInput {
  std::vector<JoinItem> items;
  std::vector<JoinRow> rows;
};

/// A table of 1M rows with distinct random 64-bit keys and `n` items with a fixed seed: keys uniform
/// over the table's rows, except about one in ten drawn from keys that are not in it.
[[nodiscard]] inline JoinInput make_join_input(std::uint64_t n) {
  weir::bench::SplitMix64 rng{0x5eed'0003};
  JoinInput in;
  in.rows.reserve(join_table_rows);
  for (std::size_t r = 0; r < join_table_rows; ++r) {
    // SplitMix64 is a bijection on its state, so keys 2r and 2r+1 never collide: rows take the
    // even states, misses the odd ones.
    in.rows.push_back(JoinRow{weir::bench::SplitMix64{2 * r}.next(), rng.next()});
  }
  in.items.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t r = rng.below(join_table_rows);
    const bool miss = rng.below(join_miss_every) == 0;
    const std::uint64_t key = miss ? weir::bench::SplitMix64{2 * r + 1}.next() : in.rows[r].key;
    in.items.push_back(JoinItem{key, rng.next()});
  }
  return in;
}

/// Outcome of one run: input items, wall seconds of the run, items joined and the wrapping sum of
/// join_fold over them.
struct JoinResult {
  std::uint64_t items;
  double seconds;
  double cpu_seconds;  ///< CPU time of the process during the run (every thread)
  std::uint64_t matched;
  std::uint64_t checksum;
};

/// One loop on the calling thread over a std::unordered_map of the table built before the clock starts.
JoinResult run_hand_loop(const JoinInput& in);
/// The Weir pipeline (join/weir.cpp).
JoinResult run_weir(const JoinInput& in);
