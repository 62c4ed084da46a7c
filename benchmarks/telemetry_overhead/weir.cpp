// Competitors "weir_no_telemetry", "weir" and "weir_full": the same pipeline, with no telemetry,
// with the Prometheus collector attached (a registry rendered once at the end so it is real), and
// with everything attached at default settings.
#include <prometheus/registry.h>
#include <chrono>
#include <memory>
#include <ranges>
#include <string>
#include <thread>
#include <weir/telemetry/metrics.hpp>
#include <weir/telemetry/prometheus.hpp>
#include <weir/weir.hpp>

#include "common/bench.hpp"
#include "telemetry_overhead/overhead.hpp"

OverheadResult run_weir(std::uint64_t n, Telemetry telemetry) {
  weir::PipelineOptions opts;
  opts.telemetry = telemetry != Telemetry::none;
  weir::Pipeline p("telemetry_overhead", opts);
  std::uint64_t sum = 0;
  p.source(std::views::iota(std::uint64_t{0}, n))
      .map([](std::uint64_t x) { return overhead_work(x); })
      .name("work")
      .parallelism(static_cast<int>(std::thread::hardware_concurrency()))
      .filter([](std::uint64_t x) { return overhead_keep(x); })
      .name("keep")
      .sink([&sum](std::uint64_t x) { sum += x; })
      .name("sum");
  std::shared_ptr<weir::telemetry::PrometheusCollector> prom;
  if (telemetry != Telemetry::none) {
    prom = std::make_shared<weir::telemetry::PrometheusCollector>();
    weir::telemetry::attach(p, prom);
  }
  weir::bench::Stopwatch watch;
  (void)p.run();
  const double s = watch.seconds();
  if (prom) {
    const auto text = prom->render();
    weir::bench::do_not_optimize(text);
  }
  return {n, s, sum};
}
