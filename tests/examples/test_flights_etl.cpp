// End-to-end tests of the flights ETL example: runs the example binary as a child process and
// checks its output files against an independent computation. Nothing here uses flights_core or
// simdjson: the flights are read with nlohmann::json, the airports with the small RFC 4180 reader
// below, and dates are converted with days-from-civil arithmetic instead of std::chrono.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#ifndef WEIR_FLIGHTS_ETL
#error "WEIR_FLIGHTS_ETL must name the flights_etl binary"
#endif
#ifndef WEIR_DATA_DIR
#error "WEIR_DATA_DIR must name the data/ folder"
#endif
#ifndef WEIR_FIXTURES
#error "WEIR_FIXTURES must name tests/examples/data"
#endif

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// The parts joined. Strings are built by appending because GCC 12 at -O3 gives a false
/// -Wrestrict warning for `"literal" + std::string`.
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const std::string_view part : parts) {
    out += part;
  }
  return out;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE_MESSAGE(out.good(), "cannot write ", path.string());
}

/// The lines of a JSON-lines file written by the example: every line ends with '\n' and none is
/// empty, so that the line count is the record count.
std::vector<std::string> read_jsonl(const fs::path& path) {
  const std::string text = read_text(path);
  std::vector<std::string> lines;
  if (text.empty()) {
    return lines;
  }
  CHECK_MESSAGE(text.back() == '\n', path.string(), " does not end with a newline");
  std::size_t pos = 0;
  std::size_t empty_lines = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) {
      end = text.size();
    }
    lines.emplace_back(text, pos, end - pos);
    empty_lines += lines.back().empty() ? 1 : 0;
    pos = end + 1;
  }
  CHECK_MESSAGE(empty_lines == 0, path.string(), " has ", empty_lines, " empty lines");
  return lines;
}

/// A fresh directory under the system temporary directory, removed with everything in it when
/// the object dies.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            cat({"weir_test_flights_etl_", std::to_string(::getpid()), "_", std::to_string(counter++)});
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// `text` quoted for /bin/sh.
std::string shell_quote(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

/// What one run of the example did.
struct RunResult {
  int exit_code = -1;  ///< the exit status, or 128 + signal when killed by a signal
  std::string out;     ///< everything written to stdout
  std::string err;     ///< everything written to stderr
};

/// Runs the example with `args`, stdin from /dev/null, stdout and stderr captured in files of `dir`.
RunResult run_example(const TempDir& dir, const std::vector<std::string>& args) {
  const fs::path out_file = dir.path() / "stdout.txt";
  const fs::path err_file = dir.path() / "stderr.txt";
  std::string command = shell_quote(WEIR_FLIGHTS_ETL);
  for (const auto& arg : args) {
    command += ' ';
    command += shell_quote(arg);
  }
  command += cat({" </dev/null >", shell_quote(out_file.string()), " 2>", shell_quote(err_file.string())});
  const int status = std::system(command.c_str());
  REQUIRE_MESSAGE(status != -1, "cannot start: ", command);
  RunResult result;
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  result.out = read_text(out_file);
  result.err = read_text(err_file);
  return result;
}

// ---------------------------------------------------------------------------
// The independent computation

/// The records of an RFC 4180 text: fields end at a comma outside quotes, records at LF or CRLF
/// outside quotes, and inside quotes a doubled quote is one quote.
std::vector<std::vector<std::string>> read_csv(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  REQUIRE_MESSAGE(!quoted, "unterminated quoted field");
  if (!field.empty() || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

/// IATA code to state, from an airports CSV file.
std::unordered_map<std::string, std::string> read_airport_states(const fs::path& path) {
  const auto rows = read_csv(read_text(path));
  REQUIRE(!rows.empty());
  REQUIRE(rows[0] ==
          std::vector<std::string>{"iata", "name", "city", "state", "country", "latitude", "longitude"});
  std::unordered_map<std::string, std::string> states;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].size() != 7) {
      FAIL("airport row ", i, " has ", rows[i].size(), " fields");
    }
    if (!states.emplace(rows[i][0], rows[i][3]).second) {
      FAIL("duplicate airport ", rows[i][0]);
    }
  }
  return states;
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t year, std::int64_t month, std::int64_t day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const std::int64_t year_of_era = year - era * 400;
  const std::int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const std::int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

struct Civil {
  std::int64_t year, month, day;
  bool operator==(const Civil&) const = default;
};

/// The date of a day number (H. Hinnant's civil_from_days).
Civil civil_from_days(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t day_of_era = days - era * 146097;
  const std::int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const std::int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const std::int64_t mp = (5 * day_of_year + 2) / 153;
  const std::int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  return {year_of_era + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

/// "YYYY/MM/DD HH:MM" read as UTC, as Unix seconds; nullopt when malformed or impossible.
std::optional<std::int64_t> unix_seconds(const std::string& text) {
  if (text.size() != 16 || text[4] != '/' || text[7] != '/' || text[10] != ' ' || text[13] != ':') {
    return std::nullopt;
  }
  const auto number = [&](std::size_t from, std::size_t count) -> std::optional<std::int64_t> {
    std::int64_t value = 0;
    for (std::size_t i = from; i < from + count; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        return std::nullopt;
      }
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto year = number(0, 4);
  const auto month = number(5, 2);
  const auto day = number(8, 2);
  const auto hour = number(11, 2);
  const auto minute = number(14, 2);
  if (!year || !month || !day || !hour || !minute) {
    return std::nullopt;
  }
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59) {
    return std::nullopt;
  }
  const std::int64_t days = days_from_civil(*year, *month, *day);
  if (civil_from_days(days) != Civil{*year, *month, *day}) {
    return std::nullopt;  // a day past the end of its month, e.g. February 29 in 2001
  }
  return days * 86400 + *hour * 3600 + *minute * 60;
}

/// Unix seconds as RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ".
std::string rfc3339(std::int64_t seconds) {
  std::int64_t days = seconds / 86400;
  if (seconds % 86400 < 0) {
    --days;
  }
  const std::int64_t second_of_day = seconds - days * 86400;
  const Civil date = civil_from_days(days);
  char text[128];
  std::snprintf(text, sizeof text, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ",
                static_cast<long long>(date.year), static_cast<long long>(date.month),
                static_cast<long long>(date.day), static_cast<long long>(second_of_day / 3600),
                static_cast<long long>(second_of_day / 60 % 60), static_cast<long long>(second_of_day % 60));
  return text;
}

/// A JSON integer as int64_t if it is one within [minimum, INT32_MAX].
std::optional<std::int64_t> int32_value(const json& value, std::int64_t minimum) {
  constexpr std::int64_t maximum = std::numeric_limits<std::int32_t>::max();
  if (value.is_number_unsigned()) {
    const auto number = value.get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(maximum)) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(number);
  }
  if (value.is_number_integer()) {
    const auto number = value.get<std::int64_t>();
    if (number < minimum || number > maximum) {
      return std::nullopt;
    }
    return number;
  }
  return std::nullopt;
}

/// The enriched object the example must write for `record` at `index`, or nullopt when the record
/// is unusable: not an object, a field missing or of the wrong type, an impossible date, a delay
/// outside int32, a negative distance, or an empty or unknown airport.
std::optional<json> expected_enriched(const json& record, std::int64_t index,
                                      const std::unordered_map<std::string, std::string>& states) {
  if (!record.is_object()) {
    return std::nullopt;
  }
  for (const char* key : {"date", "delay", "distance", "origin", "destination"}) {
    if (!record.contains(key)) {
      return std::nullopt;
    }
  }
  const json& date = record["date"];
  const json& origin = record["origin"];
  const json& destination = record["destination"];
  if (!date.is_string() || !origin.is_string() || !destination.is_string()) {
    return std::nullopt;
  }
  const auto time = unix_seconds(date.get<std::string>());
  const auto delay = int32_value(record["delay"], std::numeric_limits<std::int32_t>::min());
  const auto distance = int32_value(record["distance"], 0);
  const auto origin_state = states.find(origin.get<std::string>());
  const auto destination_state = states.find(destination.get<std::string>());
  if (!time || !delay || !distance || origin_state == states.end() || destination_state == states.end()) {
    return std::nullopt;
  }
  return json{{"index", index},
              {"date", rfc3339(*time)},
              {"delay", *delay},
              {"distance", *distance},
              {"origin", origin},
              {"destination", destination},
              {"origin_state", origin_state->second},
              {"destination_state", destination_state->second}};
}

/// Checks enriched lines against the expected objects, matched by "index": every line is an
/// object with exactly the expected fields and values, no index repeats, and every expected
/// index has a line. Returns the problems found (at most a few are spelled out).
std::vector<std::string> compare_enriched(const std::vector<std::string>& lines,
                                          const std::map<std::int64_t, json>& expected) {
  std::vector<std::string> problems;
  std::size_t total = 0;
  const auto problem = [&](std::string text) {
    if (++total <= 5) {
      problems.push_back(std::move(text));
    }
  };
  std::set<std::int64_t> seen;
  for (const auto& line : lines) {
    const json actual = json::parse(line, nullptr, false);
    if (!actual.is_object() || !actual.contains("index") || !actual["index"].is_number_integer()) {
      problem(cat({"not an object with an integer \"index\": ", line}));
      continue;
    }
    const auto index = actual["index"].get<std::int64_t>();
    if (!seen.insert(index).second) {
      problem(cat({"index ", std::to_string(index), " written twice"}));
      continue;
    }
    const auto want = expected.find(index);
    if (want == expected.end()) {
      problem(cat({"index ", std::to_string(index), " should not be enriched: ", line}));
      continue;
    }
    if (actual.size() != want->second.size()) {
      problem(cat({"index ", std::to_string(index), " has ", std::to_string(actual.size()),
                   " fields, expected ", std::to_string(want->second.size()), ": ", line}));
    }
    for (const auto& [key, value] : want->second.items()) {
      if (!actual.contains(key) || actual[key] != value) {
        problem(cat({"index ", std::to_string(index), " field \"", key, "\": expected ", value.dump(),
                     ", got ", actual.contains(key) ? actual[key].dump() : std::string("nothing")}));
      }
    }
  }
  for (const auto& [index, value] : expected) {
    if (seen.count(index) == 0) {
      problem(cat({"index ", std::to_string(index), " missing, expected ", value.dump()}));
    }
  }
  if (total > problems.size()) {
    problems.push_back(cat({"... and ", std::to_string(total - problems.size()), " more"}));
  }
  return problems;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    out += line;
    out += '\n';
  }
  return out;
}

const fs::path data_dir = WEIR_DATA_DIR;
const fs::path fixtures = WEIR_FIXTURES;

/// The shipped flights, what the example must write for each, computed once.
struct Shipped {
  std::size_t records = 0;
  std::map<std::int64_t, json> expected;  ///< index -> enriched object, for every usable record
};

const Shipped& shipped() {
  static const Shipped data = [] {
    Shipped out;
    const auto states = read_airport_states(data_dir / "airports.csv");
    const json flights = json::parse(read_text(data_dir / "flights-20k.json"));
    REQUIRE(flights.is_array());
    out.records = flights.size();
    for (std::size_t i = 0; i < flights.size(); ++i) {
      const auto index = static_cast<std::int64_t>(i);
      if (auto enriched = expected_enriched(flights[i], index, states)) {
        out.expected.emplace(index, std::move(*enriched));
      }
    }
    return out;
  }();
  return data;
}

}  // namespace

TEST_CASE("the independent date arithmetic of this test agrees with known dates") {
  CHECK(unix_seconds("1970/01/01 00:00") == 0);
  CHECK(unix_seconds("2001/01/01 00:47") == 978310020);
  CHECK(unix_seconds("2000/02/29 12:30") == 951827400);
  CHECK(rfc3339(978310020) == "2001-01-01T00:47:00Z");
  CHECK(rfc3339(-1) == "1969-12-31T23:59:59Z");
  CHECK_FALSE(unix_seconds("2001/02/29 10:00").has_value());
  CHECK_FALSE(unix_seconds("2001/13/01 00:00").has_value());
  CHECK_FALSE(unix_seconds("2001/01/01 24:00").has_value());
  CHECK_FALSE(unix_seconds("2001-01-01 00:47").has_value());
  CHECK(read_csv("a,\"b, \"\"c\"\"\"\r\n\"\",d\n") ==
        std::vector<std::vector<std::string>>{{"a", "b, \"c\""}, {"", "d"}});
}

TEST_CASE(
    "flights_etl enriches every shipped flight as an independent computation does, on one thread and on "
    "two") {
  const Shipped& data = shipped();
  REQUIRE(data.records == 20000);
  REQUIRE_MESSAGE(data.expected.size() == data.records, "the shipped data should have no unusable record");

  const auto run = [&](const TempDir& dir, int parallelism) {
    const fs::path out = dir.path() / "out";
    const RunResult result = run_example(dir, {"--flights", (data_dir / "flights-20k.json").string(),
                                               "--airports", (data_dir / "airports.csv").string(), "--out",
                                               out.string(), "--parallelism", std::to_string(parallelism)});
    INFO("stdout: ", result.out);
    INFO("stderr: ", result.err);
    REQUIRE(result.exit_code == 0);
    CHECK(result.err.empty());
    CHECK(result.out.find("pipeline 'flights_etl' run ") != std::string::npos);
    CHECK(result.out.find(cat({"records ", std::to_string(data.records), ", enriched ",
                               std::to_string(data.records), ", dead letters 0 -> "})) != std::string::npos);
    CHECK(read_jsonl(out / "dead_letters.jsonl").empty());
    auto lines = read_jsonl(out / "enriched.jsonl");
    CHECK(lines.size() == data.records);
    return lines;
  };

  const TempDir one_dir;
  auto one = run(one_dir, 1);
  const auto problems = compare_enriched(one, data.expected);
  CHECK_MESSAGE(problems.empty(), joined(problems));

  const TempDir two_dir;
  auto two = run(two_dir, 2);
  std::sort(one.begin(), one.end());
  std::sort(two.begin(), two.end());
  CHECK_MESSAGE(one == two, "--parallelism 2 wrote other lines than --parallelism 1");
}

namespace {

/// The elements of the bad-record fixtures, one per line of bad_flights.jsonl.
std::vector<std::string> fixture_elements() {
  std::vector<std::string> elements;
  std::istringstream in(read_text(fixtures / "bad_flights.jsonl"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      elements.push_back(line);
    }
  }
  return elements;
}

/// Index -> reason of every unusable element of the fixtures, as flights.cpp words them.
const std::map<std::int64_t, std::string>& fixture_reasons() {
  static const std::map<std::int64_t, std::string> reasons{
      {1, "malformed json"},
      {3, "not an object"},
      {4, "not an object"},
      {5, "not an object"},
      {6, "wrong type: delay"},
      {7, "wrong type: distance"},
      {8, "wrong type: date"},
      {9, "missing field: delay"},
      {10, "missing field: origin"},
      {11, "missing field: date"},
      {12, "impossible date: 2001/02/29 10:00"},
      {13, "impossible date: 2001/13/01 00:00"},
      {14, "impossible date: 2001/01/01 24:00"},
      {15, "malformed date: 2001-01-01 00:47"},
      {16, "unknown airport: ZZZ"},
      {17, "unknown airport: QQQ"},
      {18, "out of range: distance"},
      {19, "out of range: delay"},
      {20, "empty field: origin"},
  };
  return reasons;
}

/// Runs the example on a bad-record fixture and checks both output files record by record.
void check_bad_fixture(const fs::path& flights, int parallelism) {
  CAPTURE(flights);
  CAPTURE(parallelism);
  const auto elements = fixture_elements();
  const auto& reasons = fixture_reasons();
  const auto states = read_airport_states(data_dir / "airports.csv");

  // What the test expects, computed independently; the usable records are exactly those not in
  // the table of reasons.
  std::map<std::int64_t, json> expected;
  std::map<std::int64_t, json> originals;  // index -> the element as JSON, or as a string of its raw text
  for (std::size_t i = 0; i < elements.size(); ++i) {
    const auto index = static_cast<std::int64_t>(i);
    json parsed = json::parse(elements[i], nullptr, false);
    const bool parses = !parsed.is_discarded();
    if (parses) {
      if (auto enriched = expected_enriched(parsed, index, states)) {
        expected.emplace(index, std::move(*enriched));
      }
    }
    originals.emplace(index, parses ? std::move(parsed) : json(elements[i]));
    CHECK_MESSAGE((expected.count(index) == 0) == (reasons.count(index) != 0), "element ", index,
                  " is classified differently by the test and its table of reasons");
  }
  REQUIRE(elements.size() == expected.size() + reasons.size());

  const TempDir dir;
  const fs::path out = dir.path() / "out";
  const RunResult result =
      run_example(dir, {"--flights", flights.string(), "--airports", (data_dir / "airports.csv").string(),
                        "--out", out.string(), "--parallelism", std::to_string(parallelism)});
  INFO("stdout: ", result.out);
  INFO("stderr: ", result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find(
            cat({"records ", std::to_string(elements.size()), ", enriched ", std::to_string(expected.size()),
                 ", dead letters ", std::to_string(reasons.size()), " -> "})) != std::string::npos);

  // Dead letters: exactly the expected indices, each once, with its reason and original element.
  std::set<std::int64_t> dead;
  for (const auto& line : read_jsonl(out / "dead_letters.jsonl")) {
    CAPTURE(line);
    const json letter = json::parse(line, nullptr, false);
    REQUIRE(letter.is_object());
    CHECK(letter.size() == 3);
    REQUIRE(letter.contains("index"));
    REQUIRE(letter["index"].is_number_integer());
    const auto index = letter["index"].get<std::int64_t>();
    CHECK_MESSAGE(dead.insert(index).second, "index ", index, " dead-lettered twice");
    const auto reason = reasons.find(index);
    CHECK_MESSAGE(reason != reasons.end(), "index ", index, " should not be a dead letter");
    if (reason != reasons.end()) {
      CHECK(letter.value("reason", json()) == reason->second);
    }
    const auto original = originals.find(index);
    REQUIRE(original != originals.end());
    CHECK(letter.value("record", json("<no record>")) == original->second);
  }
  std::set<std::int64_t> wanted_dead;
  for (const auto& entry : reasons) {
    wanted_dead.insert(entry.first);
  }
  CHECK(dead == wanted_dead);

  // Enriched: exactly the usable records, each as computed above.
  const auto enriched = read_jsonl(out / "enriched.jsonl");
  const auto problems = compare_enriched(enriched, expected);
  CHECK_MESSAGE(problems.empty(), joined(problems));

  // Every record is in exactly one of the two files.
  std::set<std::int64_t> all;
  std::size_t both = 0;
  for (const auto& line : enriched) {
    const json object = json::parse(line, nullptr, false);
    if (object.is_object() && object.contains("index") && object["index"].is_number_integer()) {
      const auto index = object["index"].get<std::int64_t>();
      both += dead.count(index);
      all.insert(index);
    }
  }
  all.insert(dead.begin(), dead.end());
  CHECK(both == 0);
  CHECK(all.size() == elements.size());
  CHECK(enriched.size() + dead.size() == elements.size());
}

}  // namespace

TEST_CASE("the JSON array and the JSON lines bad-record fixtures hold the same elements") {
  const auto elements = fixture_elements();
  REQUIRE(elements.size() == 23);
  std::string array = "[\n";
  for (std::size_t i = 0; i < elements.size(); ++i) {
    array += cat({"  ", elements[i], i + 1 < elements.size() ? ",\n" : "\n"});
  }
  array += "]\n";
  CHECK(read_text(fixtures / "bad_flights.json") == array);
}

TEST_CASE(
    "flights_etl dead-letters every kind of bad record of a JSON array with its reason and keeps the rest") {
  check_bad_fixture(fixtures / "bad_flights.json", 1);
  check_bad_fixture(fixtures / "bad_flights.json", 2);
}

TEST_CASE("flights_etl gives the same result for the bad records as JSON lines") {
  check_bad_fixture(fixtures / "bad_flights.jsonl", 1);
  check_bad_fixture(fixtures / "bad_flights.jsonl", 2);
}

namespace {

/// Runs the example on unusable input and checks exit code 2 and one stderr line naming `culprit`.
void check_unusable(const TempDir& dir, const fs::path& flights, const fs::path& airports,
                    const fs::path& culprit) {
  const fs::path out = dir.path() / "out";
  const RunResult result = run_example(
      dir, {"--flights", flights.string(), "--airports", airports.string(), "--out", out.string()});
  INFO("stdout: ", result.out);
  INFO("stderr: ", result.err);
  CHECK(result.exit_code == 2);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(result.err.ends_with('\n'));
  CHECK(result.err.find(culprit.string()) != std::string::npos);
}

}  // namespace

TEST_CASE("flights_etl exits with 2 and one line naming the file when the flights file is missing") {
  const TempDir dir;
  const fs::path missing = dir.path() / "no_such_flights.json";
  check_unusable(dir, missing, data_dir / "airports.csv", missing);
}

TEST_CASE("flights_etl exits with 2 and one line naming the file when the airports file is missing") {
  const TempDir dir;
  const fs::path missing = dir.path() / "no_such_airports.csv";
  check_unusable(dir, data_dir / "flights-20k.json", missing, missing);
}

TEST_CASE(
    "flights_etl exits with 2 and one line naming the file when the flights are neither a JSON array nor "
    "JSON lines") {
  const TempDir dir;
  const fs::path hello = dir.path() / "hello.json";
  write_text(hello, "hello\n");
  check_unusable(dir, hello, data_dir / "airports.csv", hello);
}

TEST_CASE("flights_etl exits with 2 and one line naming the file when the airports file has a wrong header") {
  const TempDir dir;
  const fs::path airports = dir.path() / "wrong_header.csv";
  write_text(airports,
             "code,name,city,state,country,latitude,longitude\nLAX,Los Angeles International,Los "
             "Angeles,CA,USA,33.94,-118.41\n");
  check_unusable(dir, fixtures / "bad_flights.json", airports, airports);
}
