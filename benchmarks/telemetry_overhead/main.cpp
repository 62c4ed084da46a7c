// bench_telemetry_overhead: N items through map (75-100 ns of work) -> filter -> sink, with
// telemetry off, with metrics, and with everything on. hand_loop runs first and gives the reference
// checksum; a competitor that disagrees stops the run with exit status 1. Fields beyond the common
// ones: "ratio_to_no_telemetry" on the Weir variants that have telemetry (the median of the runs so
// far of both), and "cpu_seconds" (CPU time of every thread of the process during the run, setup
// and teardown included).
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/bench.hpp"
#include "telemetry_overhead/overhead.hpp"

namespace {

constexpr std::string_view scenario = "telemetry_overhead";

struct Variant {
  std::string name;
  std::function<OverheadResult(std::uint64_t)> run;
};

double median(std::vector<double> v) {
  return weir::bench::percentile(std::move(v), 50.0);
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const std::uint64_t n = options.quick ? 4'000'000 : 20'000'000;
  const std::vector<Variant> competitors = {
      {"hand_loop", run_hand_loop},
      {"weir_no_telemetry", [](std::uint64_t items) { return run_weir(items, Telemetry::none); }},
      {"weir", [](std::uint64_t items) { return run_weir(items, Telemetry::metrics); }},
      {"weir_page_open", [](std::uint64_t items) { return run_weir(items, Telemetry::page); }},
      {"weir_full", [](std::uint64_t items) { return run_weir(items, Telemetry::full); }},
  };
  weir::bench::log(scenario, "N=" + std::to_string(n) + (options.quick ? " (quick)" : "") +
                                 ", repeat=" + std::to_string(options.repeat));
  std::uint64_t reference = 0;
  bool have_reference = false;
  std::map<std::string, std::vector<double>> rates;
  // Rounds interleave the variants, so a change in the machine's load touches all of them alike.
  for (int round = 0; round < options.repeat; ++round) {
    for (const auto& v : competitors) {
      weir::bench::log(scenario, "running " + v.name);
      weir::bench::reset_peak_rss();
      const weir::bench::CpuStopwatch cpu;
      const OverheadResult r = v.run(n);
      const double cpu_seconds = cpu.seconds();
      if (!have_reference) {
        reference = r.checksum;
        have_reference = true;
      } else if (r.checksum != reference) {
        weir::bench::log(scenario, v.name + " checksum " + std::to_string(r.checksum) + " differs from " +
                                       std::to_string(reference));
        return EXIT_FAILURE;
      }
      const double rate = static_cast<double>(r.items) / r.seconds;
      rates[v.name].push_back(rate);
      weir::bench::JsonLine line{scenario, v.name};
      line.add_throughput(r.items, r.seconds);
      line.add("peak_rss_bytes", weir::bench::peak_rss_bytes());
      line.add("cpu_seconds", cpu_seconds);
      if (v.name == "weir" || v.name == "weir_page_open" || v.name == "weir_full") {
        line.add("ratio_to_no_telemetry", median(rates[v.name]) / median(rates["weir_no_telemetry"]));
      }
      line.print();
    }
  }
  return EXIT_SUCCESS;
}
