// Variants "weir", "weir_simdjson" and "weir_parse_only": the example's pipeline from flights_core.
#include <sys/resource.h>

#include <chrono>

#include "etl.hpp"
#include "flights/flights.hpp"

namespace {

double cpu_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

flights::EtlOptions options_of(const FlightsWorkload& w, bool fast_path) {
  flights::EtlOptions o;
  o.flights_path = w.flights;
  o.airports_path = w.airports;
  o.repeat = w.repeat;
  o.parallelism = w.parallelism;
  o.fast_path = fast_path;
  return o;
}

}  // namespace

FlightsResult run_weir(const FlightsWorkload& w, bool fast_path) {
  const auto options = options_of(w, fast_path);
  const double cpu0 = cpu_now();
  const auto t0 = std::chrono::steady_clock::now();
  const auto input = flights::load_input(options);
  const auto result = flights::run_etl(input, options);
  flights::write_outputs(input, result, w.out_dir);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uint64_t windowed = 0;
  for (const auto& window : result.windows) windowed += window.stats.flights;
  return {input.total(), s, cpu_now() - cpu0, windowed + 1000 * result.dead_letters.size()};
}

FlightsResult run_weir_parse_only(const FlightsWorkload& w) {
  const auto options = options_of(w, true);
  const double cpu0 = cpu_now();
  const auto t0 = std::chrono::steady_clock::now();
  const auto input = flights::load_input(options);
  const std::uint64_t parsed = flights::run_parse_only(input, options);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {input.total(), s, cpu_now() - cpu0, parsed};
}
