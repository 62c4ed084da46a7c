// The flights ETL pipeline: flights parsed and validated, joined with the airports table for the
// states of both airports, aggregated per event-time window and origin state, and per route with
// map-reduce; every unusable record dead-lettered with its reason. Shared by the flights_etl example
// and the flights benchmark.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <weir/pipeline.hpp>
#include <weir/report.hpp>

#include "flights.hpp"

namespace flights {

/// How far behind the latest flight time seen a window waits before it closes. The windows read
/// the flights in input order (the stages before them run on the source's thread: a parallel stage
/// would let batches overtake each other without bound), and the shipped file is in date order, so
/// there no flight is late; an hour lets a feed be out of order by that much. A flight later than
/// that is dead-lettered ("late: ...").
inline constexpr std::chrono::hours max_out_of_orderness{1};

/// A flight counts as delayed from this many minutes of delay.
inline constexpr std::int32_t delayed_minutes = 15;

/// What the ETL job reads and how it runs. A plain value.
struct EtlOptions {
  std::filesystem::path flights_path = "data/flights-20k.json";
  std::filesystem::path airports_path = "data/airports.csv";
  std::int64_t window_seconds = 86400;  ///< tumbling event-time windows, aligned to the Unix epoch
  std::int64_t repeat = 1;              ///< the input replayed this many times (see EtlInput)
  int parallelism = 1;                  ///< partitions of the window and map-reduce stages
  bool fast_path = true;                ///< false: every record through parse_flight_json (benchmark)
  /// Called with the pipeline once it is built, before it runs (e.g. to attach metrics).
  std::function<void(weir::Pipeline&)> configure;
};

/// The inputs, loaded before the run. Copy k of a replay (0-based) is the file's records with their
/// dates moved `k * shift_seconds` later and indexes `k * records.size() + i`. Immutable once loaded.
struct EtlInput {
  std::vector<RawRecord> records;
  AirportTable airports;
  std::int64_t repeat = 1;
  /// The whole days from the earliest to the latest date of the records that parse, in seconds.
  std::int64_t shift_seconds = 86400;

  [[nodiscard]] std::uint64_t total() const noexcept {
    return static_cast<std::uint64_t>(records.size()) * static_cast<std::uint64_t>(repeat);
  }
  /// The raw record behind replay index `index`.
  [[nodiscard]] const RawRecord& raw(std::int64_t index) const {
    return records[static_cast<std::size_t>(index) % records.size()];
  }
};

/// Reads the airports and the flights (InputError when either is unusable) and, when `repeat` > 1,
/// computes the replay's shift.
EtlInput load_input(const EtlOptions& options);

/// The per-window figures of one origin state. A plain value.
struct StateStats {
  std::uint64_t flights = 0;
  std::uint64_t delayed = 0;  ///< flights with delay >= delayed_minutes
  std::int64_t delay_sum = 0;
  std::int32_t max_delay = std::numeric_limits<std::int32_t>::min();
  std::int64_t total_distance = 0;
};

/// One line of state_windows.jsonl: window [start, end) in Unix seconds, origin state, figures.
struct StateWindow {
  std::int64_t start = 0;
  std::int64_t end = 0;
  std::string state;
  StateStats stats;
};

/// The key of a route: origin and destination state. A plain value.
struct StatePair {
  std::string origin_state;
  std::string destination_state;
  friend bool operator==(const StatePair&, const StatePair&) = default;
};

/// The figures of one route. A plain value.
struct RouteStats {
  std::uint64_t flights = 0;
  std::int64_t delay_sum = 0;
};

/// One line of routes.jsonl.
struct Route {
  StatePair states;
  RouteStats stats;
};

/// One record that could not be used: its replay index and the reason (dead_letters.jsonl adds
/// the record itself).
struct DeadLetterEntry {
  std::int64_t index = 0;
  std::string reason;
};

/// The results of a run, each sorted the way its file is written: windows by start then state,
/// routes by flights descending then origin and destination state, dead letters by index.
struct EtlResult {
  weir::RunReport report;
  std::vector<StateWindow> windows;
  std::vector<Route> routes;
  std::vector<DeadLetterEntry> dead_letters;
  std::uint64_t late = 0;  ///< dead letters of flights whose window had closed
};

/// Runs the pipeline over `input`. Throws weir::PipelineError when the run fails.
EtlResult run_etl(const EtlInput& input, const EtlOptions& options);

/// Writes state_windows.jsonl, routes.jsonl and dead_letters.jsonl into `out_dir`, which must exist;
/// throws std::runtime_error naming a file that cannot be written.
void write_outputs(const EtlInput& input, const EtlResult& result, const std::filesystem::path& out_dir);

/// The JSON line of a window, a route, a dead letter (without the trailing newline).
std::string window_line(const StateWindow& window);
std::string route_line(const Route& route);
std::string dead_letter_line(const EtlInput& input, const DeadLetterEntry& entry);

/// A mean rounded to two decimals (0 for no values), as the output files show it.
double rounded_mean(std::int64_t sum, std::uint64_t count);

/// Only the source and the parse stage of run_etl (a benchmark variant): returns the records that
/// parsed. Throws weir::PipelineError when the run fails.
std::uint64_t run_parse_only(const EtlInput& input, const EtlOptions& options);

}  // namespace flights

template <>
struct std::hash<flights::StatePair> {
  std::size_t operator()(const flights::StatePair& p) const noexcept {
    const std::size_t a = std::hash<std::string>{}(p.origin_state);
    const std::size_t b = std::hash<std::string>{}(p.destination_state);
    return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6U) + (a >> 2U));
  }
};
