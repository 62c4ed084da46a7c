// flights_etl: reads US flight records and airports, validates every flight, adds the states of its
// airports with a lookup join, and writes per event-time window and origin state figures
// (state_windows.jsonl), per route figures computed with map-reduce (routes.jsonl), and every record
// it could not use with the reason (dead_letters.jsonl). Prints the run report at the end.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <string>
#include <weir/weir.hpp>

#include "etl.hpp"
#include "flights.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Flights ETL: per-state windows, routes and dead letters of US flight records, with Weir"};
  flights::EtlOptions options;
  std::filesystem::path out_dir = "out/flights";
  std::string window = "1d";
  app.add_option("--flights", options.flights_path, "flight records: a JSON array or JSON lines")
      ->capture_default_str();
  app.add_option("--airports", options.airports_path,
                 "airports CSV (iata,name,city,state,country,latitude,longitude)")
      ->capture_default_str();
  app.add_option("--out", out_dir, "output directory")->capture_default_str();
  app.add_option("--window", window, "event-time tumbling window: a number and s, m, h, d or w (90m, 6h, 1d)")
      ->check([](const std::string& text) -> std::string {
        try {
          if (flights::parse_duration(text) > std::int64_t{3650} * 86400)
            return "a window of at most 3650 days";
          return {};
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      })
      ->capture_default_str();
  app.add_option("--repeat", options.repeat,
                 "replay the input N times, copy k moved k times the days the input spans (load tests)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--parallelism", options.parallelism, "partitions of the window and map-reduce stages")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.window_seconds = flights::parse_duration(window);

  try {
    const flights::EtlInput input = flights::load_input(options);
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) throw flights::InputError("cannot create " + out_dir.string() + ": " + ec.message());

    const flights::EtlResult result = flights::run_etl(input, options);
    flights::write_outputs(input, result, out_dir);
    std::cout << result.report.to_string();

    std::uint64_t windowed = 0;
    for (const auto& w : result.windows) windowed += w.stats.flights;
    std::uint64_t routed = 0;
    for (const auto& r : result.routes) routed += r.stats.flights;
    const std::uint64_t records = input.total();
    const std::uint64_t dead = result.dead_letters.size();
    std::cout << "records " << records << ", in windows " << windowed << " (" << result.windows.size()
              << " lines), in routes " << routed << " (" << result.routes.size() << " lines), dead letters "
              << dead << " (late " << result.late << ") -> " << out_dir.string() << "\n";
    // Every record is in a window or a dead letter; a late flight is in routes and a dead letter.
    if (windowed + dead != records || routed + dead - result.late != records) {
      std::cerr << "flights_etl: records unaccounted for: " << records << " records, " << windowed
                << " in windows, " << routed << " in routes, " << dead << " dead letters of which "
                << result.late << " late\n";
      return 1;
    }
    return 0;
  } catch (const flights::InputError& e) {
    std::cerr << "flights_etl: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {  // weir::PipelineError, or an output that cannot be written
    std::cerr << "flights_etl: " << e.what() << "\n";
    return 1;
  }
}
