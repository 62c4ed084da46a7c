// Scenario "telemetry_overhead": N uint64 items through a map doing 75-100 ns
// of arithmetic per item, a filter and a summing sink. The Weir variants differ
// only in the telemetry attached, so their ratio is the price of telemetry on
// a pipeline doing real work.
#pragma once

#include <cstdint>
#include <string>

/// 75-100 ns of dependent arithmetic (a 64-round multiply-xorshift chain) on one core.
[[nodiscard]] inline std::uint64_t overhead_work(std::uint64_t x) noexcept {
  for (int i = 0; i < 64; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    x ^= x >> 29;
  }
  return x;
}

/// The filter: keeps three items in four.
[[nodiscard]] inline constexpr bool overhead_keep(std::uint64_t x) noexcept {
  return (x & 3U) != 0;
}

/// Outcome of one run: input items, wall seconds and the sum of what reached the sink.
struct OverheadResult {
  std::uint64_t items;
  double seconds;
  std::uint64_t checksum;
};

/// One loop on the calling thread: the work without any engine.
OverheadResult run_hand_loop(std::uint64_t n);

/// What a Weir variant attaches: nothing (and the built-in counting off), the Prometheus collector,
/// the collector with the telemetry server and its live page open (a poller fetching /ui/state and one
/// stage's /ui/history once a second, as the page does), or everything the library has at its
/// default settings.
enum class Telemetry { none, metrics, page, full };

/// The pipeline source -> map (all cores) -> filter -> sink with the telemetry given.
OverheadResult run_weir(std::uint64_t n, Telemetry telemetry);
