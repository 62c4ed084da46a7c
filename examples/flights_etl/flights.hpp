// Domain layer of the flights ETL example: airport table, record splitting,
// flight parsing and validation, enrichment and JSON output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace flights {

/// Input that cannot be used at all (missing file, wrong header, broken
/// framing); the message is one line naming the file. Immutable after construction.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One record that failed parsing, validation or enrichment; `what()` is a
/// short machine-friendly reason such as "missing field: delay". Immutable.
class RecordError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One row of the airport table. A plain value; not synchronised.
struct Airport {
  std::string iata, name, city, state, country;
  double latitude = 0, longitude = 0;
};

/// Airports keyed by IATA code, loaded from an RFC 4180 CSV file. Immutable
/// after loading, so concurrent `find` calls from several threads are safe.
class AirportTable {
 public:
  /// The largest airport file read, in bytes (the shipped one has 250 KB).
  static constexpr std::size_t max_airports_bytes = std::size_t{64} << 20;

  /// The header every airport CSV must start with.
  static constexpr std::string_view expected_header = "iata,name,city,state,country,latitude,longitude";

  AirportTable() = default;

  /// Reads and parses `path`; throws InputError on any unusable input, a
  /// file larger than max_airports_bytes or a field that is not valid UTF-8.
  static AirportTable load(const std::filesystem::path& path);

  /// Parses CSV text; `source` names the input in error messages.
  static AirportTable from_csv(std::string_view text, std::string_view source = "<memory>");

  /// The airport with this IATA code, or nullptr. Does not allocate.
  [[nodiscard]] const Airport* find(std::string_view iata) const;

  /// Every airport, in no particular order (the rows of a lookup join).
  [[nodiscard]] std::vector<Airport> rows() const;

  [[nodiscard]] std::size_t size() const noexcept { return airports_.size(); }
  [[nodiscard]] bool empty() const noexcept { return airports_.empty(); }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  std::unordered_map<std::string, Airport, StringHash, std::equal_to<>> airports_;
};

/// The longest record read, in bytes: the text of a JSON line or of an array
/// element, from its first to its last non-blank character. A longer record
/// is not held in memory: only its first `too_large_prefix` bytes are kept, and
/// it fails with the reason "too large".
inline constexpr std::size_t max_record_bytes = std::size_t{1} << 20;

/// How many bytes of a record longer than max_record_bytes are kept (for its dead letter).
inline constexpr std::size_t too_large_prefix = 256;

/// The deepest nesting of arrays and objects in a record: a deeper record fails
/// with the reason "nesting too deep", and no JSON tree deeper than this is
/// ever built or written (writing one recurses once per level).
inline constexpr std::size_t max_json_depth = 64;

/// The raw JSON text of one input element and its 0-based position in the
/// input. A plain value; not synchronised.
struct RawRecord {
  std::int64_t index;
  std::string json;
  /// The element was longer than max_record_bytes: `json` holds its first
  /// too_large_prefix bytes only, and parse_flight rejects it as "too large".
  bool too_large = false;
};

/// Cuts a stream of bytes, given in pieces of any size, into records: the
/// incremental form of split_records, which holds one record at a time (at
/// most max_record_bytes, or `max_record` when given) however large the input.
/// A JSON array (first non-blank character '[', after an optional UTF-8 BOM)
/// is cut at its top-level commas; input whose first non-blank character is
/// '{' is read as JSON lines, one element per non-blank line. A malformed
/// element is kept as is so that only it fails later. Used by one thread.
class RecordSplitter {
 public:
  /// Receives each record as soon as it is complete.
  using Emit = std::function<void(RawRecord&&)>;

  /// `source` names the input in error messages.
  explicit RecordSplitter(std::string source, std::size_t max_record = max_record_bytes);

  /// Takes the next bytes of the input; calls `emit` for each record they
  /// complete. Throws InputError, naming the source and the line, for an
  /// unknown format or data after an array's closing ']'.
  void feed(std::string_view bytes, const Emit& emit);

  /// The end of the input: emits the last JSON line if it has no newline.
  /// Throws InputError for empty input or an unterminated array.
  void finish(const Emit& emit);

 private:
  enum class Mode { detect, array, lines, after_array };
  void feed_array(std::string_view bytes, const Emit& emit);
  void feed_lines(std::string_view bytes, const Emit& emit);
  /// Appends `part` to the current record, or only counts it once the record is too large.
  void append(std::string_view part);
  void emit_record(const Emit& emit);

  std::string source_;
  std::size_t max_record_;
  Mode mode_ = Mode::detect;
  std::size_t bom_seen_ = 0;   ///< bytes of a leading UTF-8 BOM matched so far
  std::size_t line_ = 1;       ///< the line of the next byte
  std::size_t open_line_ = 0;  ///< the line of an array's '['
  std::int64_t index_ = 0;
  std::string record_;      ///< the current record, from its first non-blank byte
  bool started_ = false;    ///< a non-blank byte of the current record was seen
  bool too_large_ = false;  ///< the current record passed max_record_
  std::size_t depth_ = 0;   ///< array mode: nesting inside the current element
  bool in_string_ = false;  ///< array mode: inside a string
  bool escaped_ = false;    ///< array mode: after a backslash inside a string
};

/// Splits `text` into per-element raw JSON texts (see RecordSplitter). Throws
/// InputError, naming `source`, for empty input, an unknown format or an
/// unterminated array.
std::vector<RawRecord> split_records(std::string_view text, std::string_view source = "<memory>");

/// Reads `path` in blocks of 64 KiB through a RecordSplitter, calling `emit`
/// for each record as it is read: memory holds one block and one record, not
/// the file. Throws InputError naming the file.
void read_records(const std::filesystem::path& path, const RecordSplitter::Emit& emit);

/// Every record of `path` (read_records with a vector); throws InputError naming the file.
std::vector<RawRecord> read_records(const std::filesystem::path& path);

/// One validated flight. A plain value; not synchronised.
struct Flight {
  std::int64_t index;     ///< Position of the record in the input.
  std::int64_t time;      ///< Unix seconds, the "date" read as UTC.
  std::int32_t delay;     ///< Minutes; negative when early.
  std::int32_t distance;  ///< Miles; never negative.
  std::string origin, destination;
};

/// Parses and validates one record; throws RecordError with a short reason
/// ("malformed json", "nesting too deep", "too large", "not an object",
/// "duplicate field: X", "missing field: X", "wrong type: X",
/// "out of range: X", "empty field: X", "malformed date: T",
/// "impossible date: T"). Tries parse_flight_canonical first and falls back
/// to parse_flight_json, so the result is always parse_flight_json's. Safe to
/// call from several threads at once.
Flight parse_flight(const RawRecord& record);

/// parse_flight with simdjson alone: the definition of what a usable record
/// is and of every reason. Safe to call from several threads at once.
Flight parse_flight_json(const RawRecord& record);

/// The fast path of parse_flight for the shape every shipped record has:
/// exactly `{"date":"…","delay":I,"distance":I,"origin":"…","destination":"…"}`
/// with no spaces, the keys in this order, strings of printable ASCII without
/// escapes and integers of at most nine digits. Fills `out` and returns true
/// for such a text, in which case parse_flight_json would give the same
/// flight (or throw the same date error); returns false, touching nothing,
/// for any other text. Thread-safe.
bool parse_flight_canonical(const RawRecord& record, Flight& out);

/// Parses "YYYY/MM/DD HH:MM" as UTC into Unix seconds; throws RecordError
/// ("malformed date: T" or "impossible date: T").
std::int64_t parse_date(std::string_view text);

/// A flight with the states of both airports. A plain value; not synchronised.
struct EnrichedFlight {
  Flight flight;
  std::string origin_state, destination_state;
};

/// Looks both airports up; throws RecordError("unknown airport: XYZ") when one
/// is missing from the table.
EnrichedFlight enrich(Flight&& flight, const AirportTable& airports);

/// {"index","date","delay","distance","origin","destination","origin_state",
/// "destination_state"} with "date" in RFC 3339 UTC.
nlohmann::json to_json(const EnrichedFlight& flight);

/// Lets `nlohmann::json j = enriched_flight;` work.
void to_json(nlohmann::json& out, const EnrichedFlight& flight);

/// Appends the same text as `to_json(flight).dump()` (for valid UTF-8) to
/// `out` without building a JSON tree; the fast path for writing many records.
void append_json(std::string& out, const EnrichedFlight& flight);

/// Unix seconds as RFC 3339 UTC, e.g. "2001-01-14T21:55:00Z". Throws
/// std::out_of_range outside the years 0000 to 9999.
std::string format_utc(std::int64_t unix_seconds);

/// Appends format_utc(unix_seconds) to `out`.
void append_utc(std::string& out, std::int64_t unix_seconds);

/// Appends `text` as a JSON string, escaped the way nlohmann::json::dump does
/// for valid UTF-8; a byte that does not belong to a valid UTF-8 sequence is
/// written as U+FFFD, so that the output is always valid UTF-8.
void append_json_string(std::string& out, std::string_view text);

/// `text` made safe for a one-line message: control bytes and bytes outside
/// ASCII become \xNN, and anything past `max_chars` bytes (48 unless told) is cut
/// and marked with "...".
std::string one_line(std::string_view text, std::size_t max_chars = 48);

/// Whether `text` is valid UTF-8 (simdjson's validator).
bool valid_utf8(std::string_view text) noexcept;

/// Whether `text` is one JSON value that nlohmann::json holds whole and can
/// write back safely: valid JSON (and UTF-8), nested at most max_json_depth
/// deep, and no object naming a key twice (nlohmann would keep one value).
/// Checked without building a tree. Thread-safe.
bool is_safe_json(std::string_view text);

/// Appends `value` in decimal.
void append_integer(std::string& out, std::int64_t value);

/// "30s", "15m", "1h", "6h", "1d", "2w" as seconds: a positive whole number
/// and one unit (s, m, h, d, w). Throws std::invalid_argument otherwise.
std::int64_t parse_duration(std::string_view text);

}  // namespace flights
