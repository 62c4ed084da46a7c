// Competitors "weir", "weir_no_telemetry" and "weir_parallel": the chain as a Weir pipeline; "weir" and
// "weir_parallel" have the Prometheus collector attached, "weir_no_telemetry" has no telemetry at all.
#include <chrono>
#include <cstdint>
#include <memory>
#include <ranges>
#include <thread>
#include <weir/telemetry/metrics.hpp>
#include <weir/telemetry/prometheus.hpp>
#include <weir/weir.hpp>

#include "chain/chain.hpp"

namespace {
ChainResult run(std::uint64_t n, bool telemetry, int parallelism) {
  weir::PipelineOptions opts;
  opts.telemetry = telemetry;
  weir::Pipeline p("chain", opts);
  std::uint64_t sum = 0;
  p.source(std::views::iota(std::uint64_t{0}, n))
      .map([](std::uint64_t x) { return chain_map1(x); })
      .parallelism(parallelism)
      .filter([](std::uint64_t x) { return chain_keep(x); })
      .parallelism(parallelism)
      .map([](std::uint64_t x) { return chain_map2(x); })
      .parallelism(parallelism)
      .sink([&sum](std::uint64_t x) { sum += x; });
  // "Metrics on" means what a user gets from one call: the Prometheus collector attached.
  std::shared_ptr<weir::telemetry::PrometheusCollector> prom;
  if (telemetry) {
    prom = std::make_shared<weir::telemetry::PrometheusCollector>();
    weir::telemetry::attach(p, prom);
  }
  const auto t0 = std::chrono::steady_clock::now();
  (void)p.run();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {n, s, sum};
}
}  // namespace

// Default settings: parallelism 1, so the fused loop runs on the source's thread.
ChainResult run_weir(std::uint64_t n, bool telemetry) {
  return run(n, telemetry, 1);
}

ChainResult run_weir_parallel(std::uint64_t n) {
  return run(n, true, static_cast<int>(std::thread::hardware_concurrency()));
}
