// Competitor "hand_loop": the work in one loop, no engine (for reference; the targets are ratios
// between the Weir variants).
#include "common/bench.hpp"
#include "telemetry_overhead/overhead.hpp"

OverheadResult run_hand_loop(std::uint64_t n) {
  weir::bench::Stopwatch watch;
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t y = overhead_work(i);
    if (overhead_keep(y)) sum += y;
  }
  return {n, watch.seconds(), sum};
}
