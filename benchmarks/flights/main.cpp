// bench_flights: the flights ETL example's job on data/flights-20k.json replayed 500 times (10M
// records; --quick: 50 times), end to end from the JSON file to the three output files, for each
// variant in turn. hand_loop runs first and gives the reference checksum; a full variant that
// disagrees stops the run with exit status 1. parse_share, on the weir lines, is the seconds of
// weir_parse_only over the seconds of weir in the same round.
#include <unistd.h>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/bench.hpp"
#include "flights/flights.hpp"

#ifndef WEIR_DATA_DIR
#error "WEIR_DATA_DIR must name the data/ folder"
#endif

namespace {

constexpr std::string_view scenario = "flights";

void print_result(std::string_view variant, const FlightsResult& r, std::int64_t peak_rss,
                  double parse_share) {
  weir::bench::JsonLine line{scenario, variant};
  line.add_throughput(r.records, r.seconds);
  line.add("cpu_seconds", r.cpu_seconds);
  if (parse_share >= 0) line.add("parse_share", parse_share);
  if (peak_rss >= 0) line.add("peak_rss_bytes", peak_rss);
  line.add("checksum", r.checksum);
  line.print();
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  namespace fs = std::filesystem;
  const fs::path data = WEIR_DATA_DIR;
  const fs::path out = fs::temp_directory_path() / ("weir_bench_flights_" + std::to_string(::getpid()));
  fs::create_directories(out);
  const FlightsWorkload w{data / "flights-20k.json", data / "airports.csv", out, options.quick ? 50 : 500, 2};
  weir::bench::log(scenario, "flights-20k x " + std::to_string(w.repeat) + ", parallelism " +
                                 std::to_string(w.parallelism) +
                                 ", repeat=" + std::to_string(options.repeat));
  int status = EXIT_SUCCESS;
  for (int round = 0; round < options.repeat && status == EXIT_SUCCESS; ++round) {
    weir::bench::reset_peak_rss();
    const FlightsResult reference = run_hand_loop(w);
    print_result("hand_loop", reference, weir::bench::peak_rss_bytes(), -1);
#if defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR
    weir::bench::reset_peak_rss();
    const FlightsResult parse = run_weir_parse_only(w);
    const std::int64_t parse_rss = weir::bench::peak_rss_bytes();
    weir::bench::reset_peak_rss();
    const FlightsResult full = run_weir(w, true);
    const std::int64_t full_rss = weir::bench::peak_rss_bytes();
    weir::bench::reset_peak_rss();
    const FlightsResult slow = run_weir(w, false);
    const std::int64_t slow_rss = weir::bench::peak_rss_bytes();
    print_result("weir_parse_only", parse, parse_rss, -1);
    print_result("weir", full, full_rss, parse.seconds / full.seconds);
    print_result("weir_simdjson", slow, slow_rss, -1);
    for (const auto* r : {&full, &slow}) {
      if (r->checksum != reference.checksum || r->records != reference.records) {
        weir::bench::log(scenario, "error: a weir variant's checksum " + std::to_string(r->checksum) +
                                       " differs from hand_loop's " + std::to_string(reference.checksum));
        status = EXIT_FAILURE;
      }
    }
    if (parse.checksum != reference.records) {
      weir::bench::log(scenario, "error: weir_parse_only parsed " + std::to_string(parse.checksum) + " of " +
                                     std::to_string(reference.records) + " records");
      status = EXIT_FAILURE;
    }
#endif
  }
  std::error_code ignored;
  fs::remove_all(out, ignored);
  return status;
}
