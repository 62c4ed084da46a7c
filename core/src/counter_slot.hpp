#pragma once
// One thread's share of a stage's counters (CounterSlot) and how they are written. Private to
// weir_core: StageRuntime holds the slots, reports and snapshots sum them.

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>

namespace weir::detail {

inline constexpr int histogram_buckets = 48;  ///< log2 buckets of nanoseconds

/// One thread's share of a stage's counters: one slot per arena thread, which only that thread
/// writes (plain load + store, no read-modify-write), and a last slot shared by the threads outside
/// the arena (a source's own thread, an async sink's thread), written with atomic adds. Readers sum
/// all slots.
struct alignas(64) CounterSlot {
  std::atomic<std::uint64_t> items_in{0}, items_out{0}, filtered{0}, errors{0}, skipped{0}, dead_lettered{0},
      dead_letter_failures{0}, retries{0}, late{0}, batches{0}, timeouts{0};
  std::atomic<std::int64_t> busy_ns{0}, blocked_ns{0};
  std::atomic<std::int64_t> first_ns{std::numeric_limits<std::int64_t>::max()}, last_ns{0};
  std::array<std::atomic<std::uint32_t>, histogram_buckets> batch_ns_log2{};
};

/// The run whose arena the calling thread is in now (its tag), or null: set when a thread enters a
/// run's arena and cleared when it leaves (an observer of the arena, see Execution).
const void*& run_arena_tag() noexcept;

/// Adds `v` to a slot's counter; `shared`: the slot threads outside the arena share.
template <class A, class V>
inline void bump(A& a, V v, bool shared) noexcept {
  using T = typename A::value_type;
  if (shared) {
    a.fetch_add(static_cast<T>(v), std::memory_order_relaxed);
  } else {
    a.store(static_cast<T>(a.load(std::memory_order_relaxed) + static_cast<T>(v)), std::memory_order_relaxed);
  }
}

/// Lowers (`lower`) or raises a slot's time mark to `v`; `shared` as for bump().
inline void move_mark(std::atomic<std::int64_t>& a, std::int64_t v, bool lower, bool shared) noexcept {
  std::int64_t seen = a.load(std::memory_order_relaxed);
  while (lower ? v < seen : v > seen) {
    if (!shared) {
      a.store(v, std::memory_order_relaxed);
      return;
    }
    if (a.compare_exchange_weak(seen, v, std::memory_order_relaxed)) return;
  }
}

}  // namespace weir::detail
