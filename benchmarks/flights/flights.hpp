// Scenario "flights": the flights ETL example's job end to end from the JSON file, on the shipped
// flights-20k replayed many times (--repeat of the example). Every variant reads the files, runs, and
// (except parse_only) writes the three output files into a temporary directory.
#pragma once

#include <cstdint>
#include <filesystem>

/// Outcome of one run: records processed, wall seconds, CPU seconds of the process (user + system)
/// during the run, and a checksum of the results (flights in windows + 1000 * dead letters, or
/// records parsed for parse_only) that every full variant must agree on.
struct FlightsResult {
  std::uint64_t records;
  double seconds;
  double cpu_seconds;
  std::uint64_t checksum;
};

/// What every variant reads and how many times the flights are replayed.
struct FlightsWorkload {
  std::filesystem::path flights;
  std::filesystem::path airports;
  std::filesystem::path out_dir;  ///< scratch directory for the output files
  std::int64_t repeat;
  int parallelism;
};

/// One thread, no pipeline: parse, look up, aggregate in hash maps, sort, write (hand_loop.cpp).
FlightsResult run_hand_loop(const FlightsWorkload& w);
/// The example's pipeline (flights::run_etl), with the parse fast path on or off (weir.cpp).
FlightsResult run_weir(const FlightsWorkload& w, bool fast_path);
/// Only the source and the parse stage of the example's pipeline (weir.cpp).
FlightsResult run_weir_parse_only(const FlightsWorkload& w);
