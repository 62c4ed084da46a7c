// bench_backpressure: a source as fast as it can go into a 1 us/item sink.
// Reports peak RSS (VmHWM) and its growth over the RSS at the variant's start.
// VmHWM is process-wide: it is reset through /proc/self/clear_refs before each
// variant where the kernel allows, and the weir variant runs first regardless.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "backpressure/backpressure.hpp"
#include "common/bench.hpp"

namespace {

constexpr std::string_view scenario = "backpressure";

struct Variant {
  std::string name;
  BackpressureResult (*run)(std::uint64_t n);
};

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const std::uint64_t n = options.quick ? backpressure_quick_items : backpressure_default_items;

  const std::vector<Variant> variants = {
#if defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR
    {"weir", run_weir_backpressure},
#endif
    {"threads_moodycamel", run_threads_moodycamel_backpressure},
  };

  weir::bench::log(scenario, "N=" + std::to_string(n) + (options.quick ? " (quick)" : "") +
                                 ", repeat=" + std::to_string(options.repeat));
#if !(defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR)
  weir::bench::log(scenario, "built without backpressure/weir.cpp: weir variant skipped");
#endif

  const std::uint64_t expected = backpressure_expected_checksum(n);
  for (int round = 0; round < options.repeat; ++round) {
    for (const Variant& variant : variants) {
      weir::bench::log(scenario, "running " + variant.name);
      const bool reset = weir::bench::reset_peak_rss();
      if (!reset && round == 0) {
        weir::bench::log(scenario, "note: VmHWM could not be reset; peak_rss_bytes is process-wide");
      }
      const std::int64_t rss_start = weir::bench::current_rss_bytes();
      const BackpressureResult result = variant.run(n);
      const std::int64_t peak = weir::bench::peak_rss_bytes();

      if (result.items != n || result.checksum != expected) {
        weir::bench::log(
            scenario, "error: variant " + variant.name + " returned items=" + std::to_string(result.items) +
                          " checksum=" + std::to_string(result.checksum) +
                          ", expected items=" + std::to_string(n) + " checksum=" + std::to_string(expected));
        return EXIT_FAILURE;
      }

      weir::bench::JsonLine line{scenario, variant.name};
      line.add_throughput(result.items, result.seconds);
      line.add("peak_rss_bytes", peak);
      line.add("rss_growth_bytes", peak - rss_start);
      line.add("checksum", result.checksum);
      line.print();
    }
  }
  return EXIT_SUCCESS;
}
