// latency competitor "tbb_per_item": a raw tbb::flow graph, map (unlimited)
// -> sink (serial), fed one item per try_put from a pacing std::thread. The
// graph is held open with reserve_wait()/release_wait() while the thread runs.
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include <oneapi/tbb/flow_graph.h>

#include "common/bench.hpp"
#include "latency/latency.hpp"

namespace flow = oneapi::tbb::flow;

LatencyResult run_tbb_per_item_latency(std::uint64_t rate, double seconds) {
  const std::uint64_t items = latency_item_count(rate, seconds);
  std::vector<std::int64_t> latencies(items, -1);

  flow::graph g;
  flow::function_node<LatencyItem, LatencyItem> map{
      g, flow::unlimited, [](const LatencyItem& item) { return latency_map(item); }};
  flow::function_node<LatencyItem, flow::continue_msg> sink{
      g, flow::serial, [&latencies](const LatencyItem& item) {
        weir::bench::do_not_optimize(item.value);
        latencies[item.seq] = weir::bench::steady_now_ns() - item.scheduled_ns;
        return flow::continue_msg{};
      }};
  flow::make_edge(map, sink);

  const std::int64_t start = weir::bench::steady_now_ns() + 1'000'000;
  g.reserve_wait();
  std::thread source{[&] {
    Pacer pacer{rate, start};
    for (std::uint64_t seq = 0; seq < items; ++seq) {
      map.try_put(LatencyItem{seq, pacer.wait_next(), 0});
    }
    g.release_wait();
  }};
  g.wait_for_all();
  source.join();
  const double elapsed = static_cast<double>(weir::bench::steady_now_ns() - start) / 1e9;
  return LatencyResult{items, elapsed, std::move(latencies)};
}
