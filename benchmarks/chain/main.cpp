// bench_chain: N uint64 items through map1 -> filter -> map2 -> sum, for each
// competitor in turn. hand_loop runs first and gives the reference checksum;
// any competitor that disagrees stops the run with exit status 1.
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "chain/chain.hpp"
#include "common/bench.hpp"

namespace {

constexpr std::string_view scenario = "chain";

struct Variant {
  std::string name;
  std::function<ChainResult(std::uint64_t)> run;
};

void print_result(const std::string& variant, const ChainResult& result, std::int64_t peak_rss) {
  weir::bench::JsonLine line{scenario, variant};
  line.add_throughput(result.items, result.seconds);
  if (peak_rss >= 0) {
    line.add("peak_rss_bytes", peak_rss);
  }
  line.add("checksum", result.checksum);
  line.print();
}

ChainResult run_measured(const Variant& variant, std::uint64_t items, std::int64_t& peak_rss) {
  weir::bench::reset_peak_rss();
  const ChainResult result = variant.run(items);
  peak_rss = weir::bench::peak_rss_bytes();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const std::uint64_t n = options.quick ? 20'000'000 : 100'000'000;

  const std::vector<Variant> competitors = {
    {"tbb_per_item", run_tbb_per_item},
    {"tbb_batched", run_tbb_batched},
    {"threads_moodycamel", run_threads_moodycamel},
#if defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR
    {"weir_no_telemetry", [](std::uint64_t items) { return run_weir(items, false); }},
    {"weir", [](std::uint64_t items) { return run_weir(items, true); }},
    {"weir_parallel", [](std::uint64_t items) { return run_weir_parallel(items); }},
#endif
  };

  weir::bench::log(scenario, "N=" + std::to_string(n) + (options.quick ? " (quick)" : "") +
                                 ", repeat=" + std::to_string(options.repeat));
#if !(defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR)
  weir::bench::log(scenario, "built without chain/weir.cpp: weir variants skipped");
#endif

  std::uint64_t expected = 0;  // hand_loop's checksum from the first round

  for (int round = 0; round < options.repeat; ++round) {
    const Variant hand_loop{"hand_loop", run_hand_loop};
    std::int64_t peak_rss = -1;
    const ChainResult reference = run_measured(hand_loop, n, peak_rss);
    if (round == 0) {
      expected = reference.checksum;
    } else if (reference.checksum != expected) {
      weir::bench::log(scenario, "error: hand_loop checksum changed between rounds");
      return EXIT_FAILURE;
    }
    print_result(hand_loop.name, reference, peak_rss);

    for (const Variant& variant : competitors) {
      weir::bench::log(scenario, "running " + variant.name);
      const ChainResult result = run_measured(variant, n, peak_rss);
      if (result.items != n || result.checksum != expected) {
        weir::bench::log(
            scenario, "error: variant " + variant.name + " returned items=" + std::to_string(result.items) +
                          " checksum=" + std::to_string(result.checksum) + ", expected items=" +
                          std::to_string(n) + " checksum=" + std::to_string(expected) + " (hand_loop)");
        return EXIT_FAILURE;
      }
      print_result(variant.name, result, peak_rss);
    }
  }
  return EXIT_SUCCESS;
}
