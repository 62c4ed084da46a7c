// bench_latency: a source paced at 100'000 items/s for 2 s (--quick: 0.5 s)
// through map -> sink; reports source-to-sink latency percentiles per variant.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/bench.hpp"
#include "latency/latency.hpp"

namespace {

constexpr std::string_view scenario = "latency";

struct Variant {
  std::string name;
  LatencyResult (*run)(std::uint64_t rate, double seconds);
};

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const std::uint64_t rate = latency_default_rate;
  const double seconds = options.quick ? latency_quick_seconds : latency_default_seconds;

  const std::vector<Variant> variants = {
    {"direct_call", run_direct_call_latency},
    {"tbb_per_item", run_tbb_per_item_latency},
#if defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR
    {"weir", run_weir_latency},
#endif
  };

  weir::bench::log(scenario, "rate=" + std::to_string(rate) + "/s for " + std::to_string(seconds) + " s" +
                                 (options.quick ? " (quick)" : "") +
                                 ", repeat=" + std::to_string(options.repeat));
#if !(defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR)
  weir::bench::log(scenario, "built without latency/weir.cpp: weir variant skipped");
#endif

  for (int round = 0; round < options.repeat; ++round) {
    for (const Variant& variant : variants) {
      weir::bench::log(scenario, "running " + variant.name);
      weir::bench::reset_peak_rss();
      const LatencyResult result = variant.run(rate, seconds);
      const std::int64_t peak_rss = weir::bench::peak_rss_bytes();

      const std::uint64_t expected = latency_item_count(rate, seconds);
      const auto missing = std::count(result.latencies_ns.begin(), result.latencies_ns.end(), -1);
      if (result.items != expected || result.latencies_ns.size() != expected || missing != 0) {
        weir::bench::log(
            scenario, "error: variant " + variant.name + " returned items=" + std::to_string(result.items) +
                          " latencies=" + std::to_string(result.latencies_ns.size()) +
                          " missing=" + std::to_string(missing) + ", expected " + std::to_string(expected));
        return EXIT_FAILURE;
      }

      weir::bench::JsonLine line{scenario, variant.name};
      line.add_throughput(result.items, result.seconds);
      line.add("p50_ns", weir::bench::percentile(result.latencies_ns, 50.0));
      line.add("p99_ns", weir::bench::percentile(result.latencies_ns, 99.0));
      line.add("p999_ns", weir::bench::percentile(result.latencies_ns, 99.9));
      line.add("max_ns", weir::bench::percentile(result.latencies_ns, 100.0));
      if (peak_rss >= 0) {
        line.add("peak_rss_bytes", peak_rss);
      }
      line.print();
    }
  }
  return EXIT_SUCCESS;
}
