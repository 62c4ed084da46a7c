// bench_join: N keyed items joined by key against a table of 1M rows, for
// each competitor in turn. The input is generated once, before any timing.
// hand_loop runs first in every round and gives the reference match count and
// checksum; any competitor that disagrees stops the run with exit status 1.
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bench.hpp"
#include "join/join.hpp"

namespace {

constexpr std::string_view scenario = "join";

struct Variant {
  std::string name;
  std::function<JoinResult(const JoinInput&)> run;
};

JoinResult run_measured(const Variant& variant, const JoinInput& input, std::int64_t& peak_rss) {
  weir::bench::release_free_memory();
  weir::bench::reset_peak_rss();
  const JoinResult result = variant.run(input);
  peak_rss = weir::bench::peak_rss_bytes();
  return result;
}

void print_result(const std::string& variant, const JoinResult& result, std::int64_t peak_rss) {
  weir::bench::JsonLine line{scenario, variant};
  line.add_throughput(result.items, result.seconds);
  if (result.cpu_seconds >= 0.0) {
    line.add("cpu_seconds", result.cpu_seconds);
  }
  if (peak_rss >= 0) {
    line.add("peak_rss_bytes", peak_rss);
  }
  line.add("matched", result.matched);
  line.add("checksum", result.checksum);
  line.print();
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const std::uint64_t n = options.quick ? 2'000'000 : 10'000'000;

  const std::vector<Variant> competitors = {
#if defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR
    {"weir", run_weir},
#endif
  };

  weir::bench::log(scenario, "N=" + std::to_string(n) + ", table=" + std::to_string(join_table_rows) +
                                 " rows" + (options.quick ? " (quick)" : "") +
                                 ", repeat=" + std::to_string(options.repeat));
#if !(defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR)
  weir::bench::log(scenario, "built without join/weir.cpp: weir variant skipped");
#endif
  const weir::bench::Stopwatch generating;
  const JoinInput input = make_join_input(n);
  weir::bench::log(scenario, "input generated in " + std::to_string(generating.seconds()) + " s");

  JoinResult expected{};  // hand_loop's result from the first round

  for (int round = 0; round < options.repeat; ++round) {
    const Variant hand_loop{"hand_loop", run_hand_loop};
    std::int64_t peak_rss = -1;
    const JoinResult reference = run_measured(hand_loop, input, peak_rss);
    if (round == 0) {
      expected = reference;
      weir::bench::log(scenario, std::to_string(expected.matched) + " items matched");
    } else if (reference.matched != expected.matched || reference.checksum != expected.checksum) {
      weir::bench::log(scenario, "error: hand_loop result changed between rounds");
      return EXIT_FAILURE;
    }
    print_result(hand_loop.name, reference, peak_rss);

    for (const Variant& variant : competitors) {
      if (!options.selected(variant.name)) {
        continue;
      }
      weir::bench::log(scenario, "running " + variant.name);
      const JoinResult result = run_measured(variant, input, peak_rss);
      if (result.items != n || result.matched != expected.matched || result.checksum != expected.checksum) {
        weir::bench::log(scenario, "error: variant " + variant.name +
                                       " returned items=" + std::to_string(result.items) +
                                       " matched=" + std::to_string(result.matched) +
                                       " checksum=" + std::to_string(result.checksum) + ", expected items=" +
                                       std::to_string(n) + " matched=" + std::to_string(expected.matched) +
                                       " checksum=" + std::to_string(expected.checksum) + " (hand_loop)");
        return EXIT_FAILURE;
      }
      print_result(variant.name, result, peak_rss);
    }
  }
  return EXIT_SUCCESS;
}
