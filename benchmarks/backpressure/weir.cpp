// Competitor "weir": a source as fast as it can go into a sink that takes 1 us per item,
// with default settings; memory must stay flat.
#include <chrono>
#include <ranges>
#include <weir/weir.hpp>

#include "backpressure/backpressure.hpp"

BackpressureResult run_weir_backpressure(std::uint64_t n) {
  weir::Pipeline p("backpressure");
  std::uint64_t items = 0;
  std::uint64_t checksum = 0;
  p.source(std::views::iota(std::uint64_t{0}, n))
      .map([](std::uint64_t i) { return make_backpressure_item(i); })
      .parallelism(2)
      .sink([&](const BackpressureItem& item) {
        sink_work_1us();
        ++items;
        checksum += item.seq;
      });
  const auto t0 = std::chrono::steady_clock::now();
  p.run();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return BackpressureResult{items, s, checksum};
}
