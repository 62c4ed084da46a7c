// Scenario "latency": a source paced at a fixed rate through a map into a
// sink; the figure is per-item latency from the item's scheduled emission
// time to its arrival at the sink, both on steady_clock.
#pragma once

#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "common/bench.hpp"

/// Items per second at the default settings.
inline constexpr std::uint64_t latency_default_rate = 100'000;
/// Run length in seconds: full and --quick.
inline constexpr double latency_default_seconds = 2.0;
inline constexpr double latency_quick_seconds = 0.5;

/// What flows through the pipeline: sequence number (also the index of the
/// item's slot in LatencyResult::latencies_ns), scheduled emission time in
/// steady_clock nanoseconds, and a value the map stage computes.
struct LatencyItem {
  std::uint64_t seq = 0;
  std::int64_t scheduled_ns = 0;
  std::uint64_t value = 0;
};

/// The map stage every competitor applies.
[[nodiscard]] inline constexpr LatencyItem latency_map(LatencyItem item) noexcept {
  item.value = (item.seq * 3 + 1) ^ (item.seq >> 7);
  return item;
}

/// Number of items a run at `rate` items/s for `seconds` emits.
[[nodiscard]] inline std::uint64_t latency_item_count(std::uint64_t rate, double seconds) noexcept {
  return static_cast<std::uint64_t>(std::llround(static_cast<double>(rate) * seconds));
}

/// Outcome of one run: items emitted, wall seconds from the first scheduled
/// emission to the end of the run, and latencies_ns[seq] = arrival at the
/// sink minus scheduled emission (-1 for an item that never arrived).
struct LatencyResult {
  std::uint64_t items;
  double seconds;
  std::vector<std::int64_t> latencies_ns;
};

/// Emission schedule of a source at `rate` items/s from `start_ns`: item k is
/// due at start_ns + k * 1e9 / rate. One owner thread; not thread safe.
class Pacer {
 public:
  Pacer(std::uint64_t rate, std::int64_t start_ns) noexcept : rate_{rate}, start_ns_{start_ns} {}

  /// Waits (yielding) until the next item is due and returns its scheduled
  /// time in steady_clock ns. Returns at once when the source is behind.
  std::int64_t wait_next() noexcept {
    const std::int64_t due = start_ns_ + static_cast<std::int64_t>(next_ * 1'000'000'000ULL / rate_);
    ++next_;
    while (weir::bench::steady_now_ns() < due) {
      std::this_thread::yield();
    }
    return due;
  }

 private:
  std::uint64_t rate_;
  std::int64_t start_ns_;
  std::uint64_t next_ = 0;
};

/// The source thread calls map and sink itself: the floor set by the pacer and the clock.
LatencyResult run_direct_call_latency(std::uint64_t rate, double seconds);
/// Raw tbb::flow: try_put per item from a std::thread into map -> serial sink.
LatencyResult run_tbb_per_item_latency(std::uint64_t rate, double seconds);
/// The Weir pipeline (benchmarks/latency/weir.cpp).
LatencyResult run_weir_latency(std::uint64_t rate, double seconds);
