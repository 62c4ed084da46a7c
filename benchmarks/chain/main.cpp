// bench_chain: N uint64 items through map1 -> filter -> map2 -> sum, for each
// competitor in turn. hand_loop runs first and gives the reference checksum;
// any competitor that disagrees stops the run with exit status 1. Without
// --quick, one measurement runs a competitor over the N items as many times as
// it takes to last weir::bench::min_timed_seconds (the hand loop takes about
// 0.05 s per pass), and reports the items, wall and CPU seconds of all passes.
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

/// One measurement: `passes` runs over the same N items.
struct Measured {
  std::uint64_t items = 0;   ///< over all passes
  double seconds = 0.0;      ///< wall time of the passes, as each competitor times itself
  double cpu_seconds = 0.0;  ///< CPU time of the process over the passes (setup included)
  int passes = 0;
  std::uint64_t checksum = 0;  ///< the first pass's that differs from `expected`, else `expected`
};

void print_result(const std::string& variant, const Measured& m, std::int64_t peak_rss) {
  weir::bench::JsonLine line{scenario, variant};
  line.add_throughput(m.items, m.seconds);
  if (m.cpu_seconds >= 0.0) {
    line.add("cpu_seconds", m.cpu_seconds);
  }
  line.add("passes", static_cast<std::uint64_t>(m.passes));
  if (peak_rss >= 0) {
    line.add("peak_rss_bytes", peak_rss);
  }
  line.add("checksum", m.checksum);
  line.print();
}

/// Runs `variant` over `n` items until the passes have lasted `min_seconds`. A pass with the wrong
/// item count or checksum ends the measurement (`expected` 0: the first pass sets it).
Measured run_measured(const Variant& variant, std::uint64_t n, double min_seconds, std::uint64_t expected,
                      std::int64_t& peak_rss) {
  weir::bench::reset_peak_rss();
  Measured m;
  m.checksum = expected;
  const weir::bench::CpuStopwatch cpu;
  do {
    const ChainResult r = variant.run(n);
    m.items += r.items;
    m.seconds += r.seconds;
    ++m.passes;
    if (m.passes == 1 && expected == 0) {
      m.checksum = expected = r.checksum;
    }
    if (r.items != n || r.checksum != expected) {
      m.checksum = r.checksum;
      break;
    }
  } while (m.seconds < min_seconds);
  m.cpu_seconds = cpu.seconds();
  peak_rss = weir::bench::peak_rss_bytes();
  return m;
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

  const double min_seconds = options.quick ? 0.0 : weir::bench::min_timed_seconds;
  std::uint64_t expected = 0;  // hand_loop's checksum from the first round

  for (int round = 0; round < options.repeat; ++round) {
    const Variant hand_loop{"hand_loop", run_hand_loop};
    std::int64_t peak_rss = -1;
    const Measured reference = run_measured(hand_loop, n, min_seconds, expected, peak_rss);
    if (round == 0) {
      expected = reference.checksum;
    }
    if (reference.checksum != expected ||
        reference.items != n * static_cast<std::uint64_t>(reference.passes)) {
      weir::bench::log(scenario, "error: hand_loop checksum changed between passes");
      return EXIT_FAILURE;
    }
    print_result(hand_loop.name, reference, peak_rss);

    for (const Variant& variant : competitors) {
      if (!options.selected(variant.name)) {
        continue;
      }
      weir::bench::log(scenario, "running " + variant.name);
      const Measured m = run_measured(variant, n, min_seconds, expected, peak_rss);
      if (m.checksum != expected || m.items != n * static_cast<std::uint64_t>(m.passes)) {
        weir::bench::log(scenario,
                         "error: variant " + variant.name + " returned items=" + std::to_string(m.items) +
                             " checksum=" + std::to_string(m.checksum) + " over " + std::to_string(m.passes) +
                             " pass(es) of " + std::to_string(n) +
                             " items, expected checksum=" + std::to_string(expected) + " (hand_loop)");
        return EXIT_FAILURE;
      }
      print_result(variant.name, m, peak_rss);
    }
  }
  return EXIT_SUCCESS;
}
