#include "etl.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>
#include <weir/weir.hpp>

#include <nlohmann/json.hpp>

namespace flights {
namespace {

/// Event times must stay within these Unix seconds (1900-01-01 to 2200-01-01): windows work in
/// nanoseconds, which reach only the years 1678 to 2262.
constexpr std::int64_t earliest_time = -2208988800;
constexpr std::int64_t latest_time = 7258118400;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::int64_t to_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
}

/// The flight of replay index `index`: copy `index / n` of record `index % n`, its date moved by
/// the copy's shift. Throws RecordError for an unusable record.
Flight parse_replayed(const EtlInput& input, std::uint64_t index, bool fast_path) {
  const std::size_t n = input.records.size();
  const RawRecord& raw = input.records[index % n];
  Flight flight = fast_path ? parse_flight(raw) : parse_flight_json(raw);
  flight.index = static_cast<std::int64_t>(index);
  flight.time += static_cast<std::int64_t>(index / n) * input.shift_seconds;
  if (flight.time < earliest_time || flight.time >= latest_time) {
    throw RecordError("out of range: date " + format_utc(flight.time) + " is not within 1900 to 2199");
  }
  return flight;
}

/// Dead letters from every stage; add() may be called from several threads at once.
class DeadLetterLog {
 public:
  void add(std::int64_t index, std::string reason) {
    const std::lock_guard lock(mutex_);
    entries_.push_back(DeadLetterEntry{index, std::move(reason)});
  }
  /// The entries by index (a record has at most one).
  std::vector<DeadLetterEntry> take() {
    const std::lock_guard lock(mutex_);
    std::sort(entries_.begin(), entries_.end(),
              [](const DeadLetterEntry& a, const DeadLetterEntry& b) { return a.index < b.index; });
    return std::move(entries_);
  }

 private:
  std::mutex mutex_;
  std::vector<DeadLetterEntry> entries_;
};

/// The reason for a failed lookup join: the airport when the table has no row for it, the
/// exception's message otherwise.
template <class T>
std::string join_reason(const weir::DeadLetter<T>& letter, const std::string& airport) {
  if (letter.error_type.find("JoinMissError") != std::string::npos) {
    return "airport not in the table: " + one_line(airport);
  }
  return letter.message;
}

void append_double(std::string& out, double value) {
  std::array<char, 32> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), result.ptr);
}

void append_unsigned(std::string& out, std::uint64_t value) {
  std::array<char, 24> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), result.ptr);
}

/// Writes lines to a file through a large buffer; every failure names the file.
class LineFile {
 public:
  explicit LineFile(std::filesystem::path path) : path_(std::move(path)) {
    file_ = std::fopen(path_.c_str(), "wb");
    if (file_ == nullptr) fail();
    buffer_.reserve(capacity);
  }
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  ~LineFile() {
    if (file_ != nullptr) std::fclose(file_);
  }
  std::string& buffer() { return buffer_; }
  /// Ends the line in the buffer; writes the buffer out when it is full.
  void end_line() {
    buffer_ += '\n';
    if (buffer_.size() >= capacity) flush();
  }
  void close() {
    flush();
    const int status = std::fclose(file_);
    file_ = nullptr;
    if (status != 0) fail();
  }

 private:
  static constexpr std::size_t capacity = std::size_t{1} << 20;
  void flush() {
    if (!buffer_.empty() && std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) fail();
    buffer_.clear();
  }
  [[noreturn]] void fail() const { throw std::runtime_error("cannot write " + path_.string()); }

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::string buffer_;
};

void append_window(std::string& out, const StateWindow& w) {
  out += R"({"window_start":")";
  append_utc(out, w.start);
  out += R"(","window_end":")";
  append_utc(out, w.end);
  out += R"(","state":)";
  append_json_string(out, w.state);
  out += R"(,"flights":)";
  append_unsigned(out, w.stats.flights);
  out += R"(,"delayed":)";
  append_unsigned(out, w.stats.delayed);
  out += R"(,"avg_delay":)";
  append_double(out, rounded_mean(w.stats.delay_sum, w.stats.flights));
  out += R"(,"max_delay":)";
  append_integer(out, w.stats.max_delay);
  out += R"(,"total_distance":)";
  append_integer(out, w.stats.total_distance);
  out += '}';
}

void append_route(std::string& out, const Route& r) {
  out += R"({"origin_state":)";
  append_json_string(out, r.states.origin_state);
  out += R"(,"destination_state":)";
  append_json_string(out, r.states.destination_state);
  out += R"(,"flights":)";
  append_unsigned(out, r.stats.flights);
  out += R"(,"avg_delay":)";
  append_double(out, rounded_mean(r.stats.delay_sum, r.stats.flights));
  out += '}';
}

}  // namespace

// ---------------------------------------------------------------------------
// Input

EtlInput load_input(const EtlOptions& options) {
  if (options.repeat < 1) throw std::invalid_argument("repeat must be at least 1");
  EtlInput input;
  input.airports = AirportTable::load(options.airports_path);
  input.records = read_records(options.flights_path);
  input.repeat = options.repeat;
  if (options.repeat == 1 || input.records.empty()) return input;

  // The whole days from the earliest to the latest date, over the records that parse.
  std::int64_t first = std::numeric_limits<std::int64_t>::max();
  std::int64_t last = std::numeric_limits<std::int64_t>::min();
  for (const auto& record : input.records) {
    try {
      const Flight flight = parse_flight(record);
      first = std::min(first, flight.time);
      last = std::max(last, flight.time);
    } catch (const RecordError&) {
      // Dead-lettered by the run; no date to count.
    }
  }
  if (first > last) return input;  // nothing parses: every copy is dead letters only
  input.shift_seconds = (floor_div(last, 86400) - floor_div(first, 86400) + 1) * 86400;
  if (last >= latest_time ||
      (latest_time - last) / input.shift_seconds < static_cast<std::int64_t>(options.repeat - 1)) {
    throw InputError("--repeat " + std::to_string(options.repeat) + ": the copies, " +
                     std::to_string(input.shift_seconds / 86400) +
                     " days apart, would pass the year 2200, the limit of event time here");
  }
  return input;
}

// ---------------------------------------------------------------------------
// The pipeline

EtlResult run_etl(const EtlInput& input, const EtlOptions& options) {
  if (options.window_seconds <= 0 || options.window_seconds > std::int64_t{3650} * 86400)
    throw std::invalid_argument("the window must be between 1 second and 3650 days");
  const int par = options.parallelism;
  const bool fast_path = options.fast_path;

  weir::Pipeline p("flights_etl");

  DeadLetterLog dead;
  std::vector<StateWindow> windows;
  std::vector<Route> routes;
  std::uint64_t late = 0;

  // The join's rows: code and state only, so that the table stays small in cache.
  struct AirportState {
    std::string iata;
    std::string state;
  };
  std::vector<AirportState> airports;
  for (auto& a : input.airports.rows())
    airports.push_back(AirportState{std::move(a.iata), std::move(a.state)});
  const auto iata = [](const AirportState& a) -> const std::string& { return a.iata; };

  const auto enriched =
      p.source(std::views::iota(std::uint64_t{0}, input.total()))
          .name("records")
          .map([&input, fast_path](std::uint64_t i) { return parse_replayed(input, i, fast_path); })
          .name("parse")
          .on_error(weir::on_error::dead_letter([&dead](weir::DeadLetter<std::uint64_t> d) {
            dead.add(static_cast<std::int64_t>(d.item), std::move(d.message));
          }))
          .join_by_key(
              weir::table{airports}, [](const Flight& f) -> const std::string& { return f.origin; }, iata,
              [](const Flight& f, const AirportState& a) {
                return EnrichedFlight{f, a.state, {}};
              },
              weir::JoinOptions{weir::JoinMiss::error})
          .name("origin_state")
          .on_error(weir::on_error::dead_letter(
              [&dead](weir::DeadLetter<Flight> d) { dead.add(d.item.index, join_reason(d, d.item.origin)); }))
          .join_by_key(
              weir::table{std::move(airports)},
              [](const EnrichedFlight& f) -> const std::string& { return f.flight.destination; }, iata,
              [](const EnrichedFlight& f, const AirportState& a) {
                EnrichedFlight out = f;
                out.destination_state = a.state;
                return out;
              },
              weir::JoinOptions{weir::JoinMiss::error})
          .name("destination_state")
          .on_error(weir::on_error::dead_letter([&dead](weir::DeadLetter<EnrichedFlight> d) {
            dead.add(d.item.flight.index, join_reason(d, d.item.flight.destination));
          }));

  // Output 1: per event-time window and origin state.
  const auto window_size = std::chrono::seconds{options.window_seconds};
  auto by_state =
      enriched.key_by([](const EnrichedFlight& f) -> const std::string& { return f.origin_state; })
          .window(weir::tumbling{window_size})
          .event_time(
              [](const EnrichedFlight& f) {
                return std::chrono::system_clock::time_point{std::chrono::seconds{f.flight.time}};
              },
              max_out_of_orderness)
          .aggregate(StateStats{}, [](StateStats& s, const EnrichedFlight& f) {
            const Flight& flight = f.flight;
            ++s.flights;
            s.delayed += flight.delay >= delayed_minutes ? 1 : 0;
            s.delay_sum += flight.delay;
            s.max_delay = std::max(s.max_delay, flight.delay);
            s.total_distance += flight.distance;
          });
  by_state.name("state_windows").parallelism(par);
  by_state
      .sink([&windows](const weir::WindowResult<std::string, StateStats>& r) {
        windows.push_back(StateWindow{to_seconds(r.start), to_seconds(r.end), r.key, r.value});
      })
      .name("collect_windows");
  // A flight whose window had closed: counted in routes, dead-lettered for the windows.
  by_state.late()
      .sink([&dead, &late, size = options.window_seconds](const EnrichedFlight& f) {
        const std::int64_t start = floor_div(f.flight.time, size) * size;
        std::string reason = "late: window ";
        append_utc(reason, start);
        reason += " to ";
        append_utc(reason, start + size);
        reason += " had closed";
        dead.add(f.flight.index, std::move(reason));
        ++late;
      })
      .name("late_flights");

  // Output 2: per route over the whole input.
  enriched
      .map_reduce(
          [](const EnrichedFlight& f) {
            return std::pair{StatePair{f.origin_state, f.destination_state},
                             RouteStats{1, std::int64_t{f.flight.delay}}};
          },
          [](RouteStats a, const RouteStats& b) {
            a.flights += b.flights;
            a.delay_sum += b.delay_sum;
            return a;
          })
      .name("routes")
      .parallelism(par)
      .sink([&routes](std::pair<StatePair, RouteStats>&& r) {
        routes.push_back(Route{std::move(r.first), r.second});
      })
      .name("collect_routes");

  EtlResult result;
  if (options.configure) options.configure(p);
  result.report = p.run();
  std::sort(windows.begin(), windows.end(), [](const StateWindow& a, const StateWindow& b) {
    return std::tie(a.start, a.state) < std::tie(b.start, b.state);
  });
  std::sort(routes.begin(), routes.end(), [](const Route& a, const Route& b) {
    return std::tie(b.stats.flights, a.states.origin_state, a.states.destination_state) <
           std::tie(a.stats.flights, b.states.origin_state, b.states.destination_state);
  });
  result.windows = std::move(windows);
  result.routes = std::move(routes);
  result.dead_letters = dead.take();
  result.late = late;
  return result;
}

std::uint64_t run_parse_only(const EtlInput& input, const EtlOptions& options) {
  weir::Pipeline p("flights_parse");
  const bool fast_path = options.fast_path;
  p.source(std::views::iota(std::uint64_t{0}, input.total()))
      .name("records")
      .map([&input, fast_path](std::uint64_t i) { return parse_replayed(input, i, fast_path); })
      .name("parse")
      .on_error(weir::on_error::skip())
      .sink([](const Flight&) {})
      .name("discard");
  const auto report = p.run();
  return report.stage("parse").items_out;
}

// ---------------------------------------------------------------------------
// Output

double rounded_mean(std::int64_t sum, std::uint64_t count) {
  if (count == 0) return 0.0;
  const double rounded = std::round(static_cast<double>(sum) / static_cast<double>(count) * 100.0) / 100.0;
  return rounded == 0.0 ? 0.0 : rounded;  // no "-0"
}

std::string window_line(const StateWindow& window) {
  std::string out;
  append_window(out, window);
  return out;
}

std::string route_line(const Route& route) {
  std::string out;
  append_route(out, route);
  return out;
}

std::string dead_letter_line(const EtlInput& input, const DeadLetterEntry& entry) {
  const std::string& raw = input.raw(entry.index).json;
  auto record = nlohmann::json::parse(raw, nullptr, false);
  if (record.is_discarded()) record = raw;  // not JSON: the text as it was
  const nlohmann::json line{{"index", entry.index}, {"reason", entry.reason}, {"record", std::move(record)}};
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write_outputs(const EtlInput& input, const EtlResult& result, const std::filesystem::path& out_dir) {
  LineFile windows(out_dir / "state_windows.jsonl");
  for (const auto& w : result.windows) {
    append_window(windows.buffer(), w);
    windows.end_line();
  }
  windows.close();
  LineFile routes(out_dir / "routes.jsonl");
  for (const auto& r : result.routes) {
    append_route(routes.buffer(), r);
    routes.end_line();
  }
  routes.close();
  LineFile dead(out_dir / "dead_letters.jsonl");
  for (const auto& d : result.dead_letters) {
    dead.buffer() += dead_letter_line(input, d);
    dead.end_line();
  }
  dead.close();
}

}  // namespace flights
