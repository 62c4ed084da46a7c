// Scenario "backpressure": a source as fast as it can go into a sink that
// spends 1 us per item. Memory must stay bounded however far the source
// could run ahead; the figure is peak RSS growth during the run.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

/// Items per run: full and --quick.
inline constexpr std::uint64_t backpressure_default_items = 5'000'000;
inline constexpr std::uint64_t backpressure_quick_items = 1'000'000;

/// What flows through the pipeline: 64 bytes, so an unbounded buffer of the
/// whole input (320 MB at the default size) shows plainly in RSS.
struct BackpressureItem {
  std::uint64_t seq = 0;
  std::array<std::uint64_t, 7> payload{};
};

/// The item the source emits for sequence number `seq`.
[[nodiscard]] inline constexpr BackpressureItem make_backpressure_item(std::uint64_t seq) noexcept {
  BackpressureItem item;
  item.seq = seq;
  for (std::size_t i = 0; i < item.payload.size(); ++i) {
    item.payload[i] = seq + i;
  }
  return item;
}

/// The slow sink's work: busy-waits 1 us on steady_clock.
inline void sink_work_1us() noexcept {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds{1};
  while (std::chrono::steady_clock::now() < until) {
  }
}

/// Outcome of one run: items that reached the sink, wall seconds, and the
/// wrapping sum of their seq fields.
struct BackpressureResult {
  std::uint64_t items;
  double seconds;
  std::uint64_t checksum;
};

/// The checksum of a complete run of n items: 0 + 1 + ... + (n - 1), wrapping.
[[nodiscard]] inline constexpr std::uint64_t backpressure_expected_checksum(std::uint64_t n) noexcept {
  return n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
}

/// A std::thread producer and consumer over a bounded moodycamel queue.
BackpressureResult run_threads_moodycamel_backpressure(std::uint64_t n);
/// The Weir pipeline (benchmarks/backpressure/weir.cpp).
BackpressureResult run_weir_backpressure(std::uint64_t n);
