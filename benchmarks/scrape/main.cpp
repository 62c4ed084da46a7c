// bench_scrape: how long rendering /metrics takes while a 50-stage pipeline runs. A generator feeds
// 48 maps (every eighth one parallel, so the stages spread over several physical nodes) and a sink;
// the main thread renders the Prometheus exposition back to back. Variant "weir" reports renders
// per second as items_per_second, plus "p50_ns", "p99_ns" and "max_ns" of one render (target: p99
// at most 5 ms) and "bytes" of the last exposition.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <weir/telemetry/metrics.hpp>
#include <weir/telemetry/prometheus.hpp>
#include <weir/weir.hpp>

#include "common/bench.hpp"

namespace {

constexpr std::string_view scenario = "scrape";
constexpr int maps = 48;

void run(int renders) {
  weir::Pipeline p("scrape");
  std::uint64_t next = 0;
  auto s = p.source(weir::from_generator{[&next]() -> std::optional<std::uint64_t> {
              return next++;
            }}).name("numbers");
  weir::Stream<std::uint64_t> st = s.map([](std::uint64_t x) { return x + 1; }).name("step_0");
  for (int i = 1; i < maps; ++i) {
    st = st.map([i](std::uint64_t x) { return x ^ static_cast<std::uint64_t>(i); })
             .name("step_" + std::to_string(i))
             .parallelism(i % 8 == 0 ? 2 : 1);
  }
  std::uint64_t sum = 0;
  st.sink([&sum](std::uint64_t x) { sum += x; }).name("sum");
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::attach(p, prom);
  p.start();
  std::vector<std::int64_t> ns;
  ns.reserve(static_cast<std::size_t>(renders));
  std::size_t bytes = 0;
  weir::bench::Stopwatch total;
  for (int i = 0; i < renders; ++i) {
    weir::bench::Stopwatch one;
    const std::string text = prom->render();
    ns.push_back(one.nanoseconds());
    bytes = text.size();
    weir::bench::do_not_optimize(text);
  }
  const double seconds = total.seconds();
  p.cancel();
  const auto report = p.wait();
  weir::bench::do_not_optimize(sum);
  weir::bench::JsonLine line{scenario, "weir"};
  line.add_throughput(static_cast<std::uint64_t>(renders), seconds);
  line.add("p50_ns", weir::bench::percentile(ns, 50.0));
  line.add("p99_ns", weir::bench::percentile(ns, 99.0));
  line.add("max_ns", weir::bench::percentile(ns, 100.0));
  line.add("bytes", static_cast<std::uint64_t>(bytes));
  line.add("stages", static_cast<std::uint64_t>(report.stages.size()));
  line.add("pipeline_items", report.stages.back().items_in);
  line.print();
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const int renders = options.quick ? 200 : 2000;
  weir::bench::log(scenario,
                   "renders=" + std::to_string(renders) + ", repeat=" + std::to_string(options.repeat));
  for (int round = 0; round < options.repeat; ++round) run(renders);
  return EXIT_SUCCESS;
}
