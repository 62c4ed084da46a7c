// Scenario "chain": N uint64 items 0..N-1 through map1 -> filter -> map2 ->
// sum. Every competitor uses the functions below, so they all do the same
// work and must produce the same checksum.
#pragma once

#include <cstddef>
#include <cstdint>

/// First map stage: x * 3 + 1.
[[nodiscard]] inline constexpr std::uint64_t chain_map1(std::uint64_t x) noexcept {
  return x * 3 + 1;
}

/// Filter stage: keeps even values (about half of map1's output).
[[nodiscard]] inline constexpr bool chain_keep(std::uint64_t x) noexcept {
  return (x & 1U) == 0;
}

/// Second map stage: x ^ (x >> 7).
[[nodiscard]] inline constexpr std::uint64_t chain_map2(std::uint64_t x) noexcept {
  return x ^ (x >> 7);
}

/// Items per message for the batched competitors (the engine's default batch size).
inline constexpr std::size_t chain_batch_size = 256;

/// Outcome of one run: N input items, wall seconds, and the wrapping sum of
/// every map2 output reaching the sink.
struct ChainResult {
  std::uint64_t items;
  double seconds;
  std::uint64_t checksum;
};

/// One fused for-loop on the calling thread: the ceiling.
ChainResult run_hand_loop(std::uint64_t n);
/// Raw tbb::flow graph, one message per item, bounded by a limiter_node.
ChainResult run_tbb_per_item(std::uint64_t n);
/// Raw tbb::flow graph, 256-item vectors per message, bounded by a limiter_node.
ChainResult run_tbb_batched(std::uint64_t n);
/// A std::thread per stage joined by bounded moodycamel queues, 256-item blocks.
ChainResult run_threads_moodycamel(std::uint64_t n);
/// The Weir pipeline (benchmarks/chain/weir.cpp); telemetry=false is variant
/// "weir_no_telemetry", true is "weir".
ChainResult run_weir(std::uint64_t n, bool telemetry);
/// The Weir pipeline with every map and filter at parallelism = cores (variant "weir_parallel"):
/// the source hands batches to oneTBB instead of running the fused loop on its own thread.
ChainResult run_weir_parallel(std::uint64_t n);
