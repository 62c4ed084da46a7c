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
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
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
  bool fast_path = true;                ///< false: every record parsed by parse_flight_json (benchmark)
  /// Called with the pipeline once it is built, before it runs (e.g. to attach metrics).
  std::function<void(weir::Pipeline&)> configure;
};

/// A validated flight with its airports as ids (see EtlInput::airport_codes): what the pipeline
/// carries instead of Flight, so that copying it is a copy of 32 bytes. A plain value; trivially
/// copyable.
struct FlightRecord {
  std::int64_t index = 0;         ///< replay index
  std::int64_t time = 0;          ///< Unix seconds
  std::int32_t delay = 0;         ///< minutes; negative when early
  std::int32_t distance = 0;      ///< miles
  std::uint32_t origin = 0;       ///< airport id
  std::uint32_t destination = 0;  ///< airport id
};

/// A FlightRecord with the states of both airports as ids (see EtlInput::states). A plain value;
/// trivially copyable.
struct EnrichedRecord {
  FlightRecord flight;
  std::uint32_t origin_state = 0;
  std::uint32_t destination_state = 0;
};
static_assert(std::is_trivially_copyable_v<EnrichedRecord>);

/// The inputs, loaded before the run. Copy k of a replay (0-based) is the file's records with their
/// dates moved `k * shift_seconds` later and indexes `k * records.size() + i`. Each record of the file
/// is parsed and validated once, here; a copy takes the parsed flight (or the reason it is unusable)
/// and moves its date, which it checks against the range of event time. Immutable once loaded.
struct EtlInput {
  std::vector<RawRecord> records;
  AirportTable airports;
  std::int64_t repeat = 1;
  /// The whole days from the earliest to the latest date of the records that parse, in seconds.
  std::int64_t shift_seconds = 86400;
  /// Per record of the file: the flight as parsed (index and time of copy 0), meaningful when the
  /// record's reason is empty.
  std::vector<FlightRecord> flights;
  /// Per record of the file: empty when it parsed, else why not (RecordError's message).
  std::vector<std::string> reasons;
  /// Airport id -> IATA code: the table's airports first, in code order (ids below
  /// `airport_states.size()`), then the codes of records that name an airport not in the table.
  std::vector<std::string> airport_codes;
  /// Airport id -> state id, for the airports of the table.
  std::vector<std::uint32_t> airport_states;
  /// State id -> state, in ascending order, so that ids sort as the states do.
  std::vector<std::string> states;

  [[nodiscard]] std::uint64_t total() const noexcept {
    return static_cast<std::uint64_t>(records.size()) * static_cast<std::uint64_t>(repeat);
  }
  /// The raw record behind replay index `index`.
  [[nodiscard]] const RawRecord& raw(std::int64_t index) const {
    return records[static_cast<std::size_t>(index) % records.size()];
  }
  /// The flight of replay index `index`: copy `index / n` of record `index % n`, its date moved by
  /// the copy's shift. Throws RecordError for an unusable record or a date moved out of range.
  [[nodiscard]] FlightRecord replayed(std::uint64_t index) const;
};

/// Reads the airports and the flights (InputError when either is unusable), gives airports and states
/// their ids, parses and validates each record once and, when `repeat` > 1, computes the replay's
/// shift.
EtlInput load_input(const EtlOptions& options);

/// The per-window figures of one origin state. A plain value.
struct StateStats {
  std::uint64_t flights = 0;
  std::uint64_t delayed = 0;  ///< flights with delay >= delayed_minutes
  std::int64_t delay_sum = 0;
  std::int32_t max_delay = std::numeric_limits<std::int32_t>::min();
  std::int64_t total_distance = 0;
};

/// One line of state_windows.jsonl: window [start, end) in Unix seconds, origin state (an id of
/// EtlInput::states), figures. A plain value.
struct StateWindow {
  std::int64_t start = 0;
  std::int64_t end = 0;
  std::uint32_t state = 0;
  StateStats stats;
};

/// The key of a route: origin and destination state (ids of EtlInput::states). A plain value.
struct StatePair {
  std::uint32_t origin_state = 0;
  std::uint32_t destination_state = 0;
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

/// The dead letters of a run, read back in index order, in bounded memory however many there are:
/// they gather in a buffer of at most `buffer_bytes`; a full buffer is sorted and written to an
/// unnamed temporary file (in $TMPDIR, else /tmp) as a sorted run (appended to the previous run
/// when it follows it, as dead letters that come in index order do), and for_each merges the runs.
/// add() may be called from several threads at once; the other members from one thread once the
/// adding is over. Throws std::runtime_error when the temporary file cannot be written.
class DeadLetters {
 public:
  explicit DeadLetters(std::size_t buffer_bytes = std::size_t{4} << 20);
  DeadLetters(DeadLetters&&) noexcept;
  DeadLetters& operator=(DeadLetters&&) noexcept;
  DeadLetters(const DeadLetters&) = delete;
  DeadLetters& operator=(const DeadLetters&) = delete;
  ~DeadLetters();

  void add(std::int64_t index, std::string_view reason);
  [[nodiscard]] std::uint64_t size() const noexcept;
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  /// The sorted runs written to the temporary file so far (0 while everything fits the buffer).
  [[nodiscard]] std::size_t runs() const noexcept;
  /// Calls `f` with every entry, by index (entries of one index in no particular order).
  void for_each(const std::function<void(const DeadLetterEntry&)>& f) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The results of a run, each sorted the way its file is written: windows by start then state,
/// routes by flights descending then origin and destination state, dead letters by index.
struct EtlResult {
  weir::RunReport report;
  std::vector<StateWindow> windows;
  std::vector<Route> routes;
  DeadLetters dead_letters;
  std::uint64_t late = 0;  ///< dead letters of flights whose window had closed
};

/// Runs the pipeline over `input`. Throws weir::PipelineError when the run fails.
EtlResult run_etl(const EtlInput& input, const EtlOptions& options);

/// Writes state_windows.jsonl, routes.jsonl and dead_letters.jsonl into `out_dir`, which must exist.
/// Each is written to a temporary file in `out_dir` (".NAME.tmp.PID.N"), and the three are renamed
/// into place once all are complete, so that a failed write leaves the files of the previous run
/// as they were; throws std::runtime_error naming the file and the cause (strerror).
void write_outputs(const EtlInput& input, const EtlResult& result, const std::filesystem::path& out_dir);

/// The JSON line of a window, a route, a dead letter (without the trailing newline). A dead letter's
/// "record" is the record as JSON when is_safe_json accepts its text, and the text as a JSON string
/// otherwise. Each line is valid UTF-8.
std::string window_line(const EtlInput& input, const StateWindow& window);
std::string route_line(const EtlInput& input, const Route& route);
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
    return (std::size_t{p.origin_state} << 32U) ^ std::size_t{p.destination_state};
  }
};
