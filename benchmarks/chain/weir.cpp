// Competitor "weir" / "weir_no_telemetry": the chain as a Weir pipeline with default settings.
#include <chrono>
#include <cstdint>
#include <ranges>
#include <thread>
#include <weir/weir.hpp>

#include "chain/chain.hpp"

ChainResult run_weir(std::uint64_t n, bool telemetry) {
  weir::PipelineOptions opts;
  opts.telemetry = telemetry;
  weir::Pipeline p("chain", opts);
  std::uint64_t sum = 0;
  const int workers = static_cast<int>(std::thread::hardware_concurrency());
  p.source(std::views::iota(std::uint64_t{0}, n))
      .map([](std::uint64_t x) { return chain_map1(x); })
      .parallelism(workers)
      .filter([](std::uint64_t x) { return chain_keep(x); })
      .parallelism(workers)
      .map([](std::uint64_t x) { return chain_map2(x); })
      .parallelism(workers)
      .sink([&sum](std::uint64_t x) { sum += x; });
  const auto t0 = std::chrono::steady_clock::now();
  p.run();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {n, s, sum};
}
