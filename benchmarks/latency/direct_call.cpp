// latency competitor "direct_call": no pipeline at all. The pacing thread
// applies the map and records the latency itself, which measures what the
// pacer and the clock alone add.
#include <cstdint>
#include <utility>
#include <vector>

#include "common/bench.hpp"
#include "latency/latency.hpp"

LatencyResult run_direct_call_latency(std::uint64_t rate, double seconds) {
  const std::uint64_t items = latency_item_count(rate, seconds);
  std::vector<std::int64_t> latencies(items, -1);
  const std::int64_t start = weir::bench::steady_now_ns() + 1'000'000;
  Pacer pacer{rate, start};
  for (std::uint64_t seq = 0; seq < items; ++seq) {
    LatencyItem item{seq, pacer.wait_next(), 0};
    item = latency_map(item);
    weir::bench::do_not_optimize(item.value);
    latencies[item.seq] = weir::bench::steady_now_ns() - item.scheduled_ns;
  }
  const double elapsed = static_cast<double>(weir::bench::steady_now_ns() - start) / 1e9;
  return LatencyResult{items, elapsed, std::move(latencies)};
}
