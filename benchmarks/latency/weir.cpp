// Competitor "weir": a paced generator source -> map -> sink with default settings
// (256-item batches, 1 ms linger).
#include <chrono>
#include <optional>
#include <vector>
#include <weir/weir.hpp>

#include "latency/latency.hpp"

LatencyResult run_weir_latency(std::uint64_t rate, double seconds) {
  const std::uint64_t items = latency_item_count(rate, seconds);
  std::vector<std::int64_t> latencies(items, -1);
  weir::Pipeline p("latency");
  std::uint64_t seq = 0;
  Pacer pacer(rate, weir::bench::steady_now_ns());
  p.source(weir::from_generator{[&]() -> std::optional<LatencyItem> {
     if (seq == items) return std::nullopt;
     LatencyItem item;
     item.seq = seq++;
     item.scheduled_ns = pacer.wait_next();
     return item;
   }})
      .map([](LatencyItem item) { return latency_map(item); })
      .sink([&latencies](const LatencyItem& item) {
        latencies[item.seq] = weir::bench::steady_now_ns() - item.scheduled_ns;
      });
  const auto t0 = std::chrono::steady_clock::now();
  p.run();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return LatencyResult{items, s, std::move(latencies)};
}
