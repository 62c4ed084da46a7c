// End-to-end tests of the flights ETL example: runs the example binary as a child process and
// checks its output files against an independent computation. Nothing here uses flights_core or
// simdjson: the flights are read with nlohmann::json, the airports with the small RFC 4180 reader
// below, and dates are converted with days-from-civil arithmetic instead of std::chrono.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cmath>
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
/// `shell` (commands for /bin/sh, e.g. a ulimit) runs first, in the shell that then execs the example.
RunResult run_example(const TempDir& dir, const std::vector<std::string>& args, std::string_view shell = "") {
  const fs::path out_file = dir.path() / "stdout.txt";
  const fs::path err_file = dir.path() / "stderr.txt";
  std::string command = cat({shell, shell.empty() ? "" : "; exec ", shell_quote(WEIR_FLIGHTS_ETL)});
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
/// A usable flight as this test sees it, or why not.
struct Parsed {
  bool parses = false;  ///< date, numbers and airport codes are valid (the airports may be unknown)
  bool usable = false;  ///< parses, and both airports are in the table
  std::int64_t time = 0;
  std::int64_t delay = 0;
  std::int64_t distance = 0;
  std::string origin_state, destination_state;
};

/// Classifies one element: an object with a valid "date", 32-bit "delay", non-negative 32-bit
/// "distance" and non-empty "origin" and "destination" strings parses; it is usable when both
/// airports are in `states`.
Parsed classify(const json& record, const std::unordered_map<std::string, std::string>& states) {
  Parsed out;
  if (!record.is_object()) {
    return out;
  }
  for (const char* key : {"date", "delay", "distance", "origin", "destination"}) {
    if (!record.contains(key)) {
      return out;
    }
  }
  const json& date = record["date"];
  const json& origin = record["origin"];
  const json& destination = record["destination"];
  if (!date.is_string() || !origin.is_string() || !destination.is_string() ||
      origin.get<std::string>().empty() || destination.get<std::string>().empty()) {
    return out;
  }
  const auto time = unix_seconds(date.get<std::string>());
  const auto delay = int32_value(record["delay"], std::numeric_limits<std::int32_t>::min());
  const auto distance = int32_value(record["distance"], 0);
  if (!time || !delay || !distance) {
    return out;
  }
  out.parses = true;
  out.time = *time;
  out.delay = *delay;
  out.distance = *distance;
  const auto o = states.find(origin.get<std::string>());
  const auto d = states.find(destination.get<std::string>());
  if (o != states.end() && d != states.end()) {
    out.usable = true;
    out.origin_state = o->second;
    out.destination_state = d->second;
  }
  return out;
}

/// The elements of a flights file as this test reads it: a JSON array parsed whole, or JSON lines
/// parsed one by one; an element that is not JSON is kept as its raw text (a JSON string).
struct Elements {
  std::vector<json> values;   ///< the element, or its raw text
  std::vector<bool> is_json;  ///< whether the element parsed as JSON
};

Elements read_elements(const fs::path& path) {
  const std::string text = read_text(path);
  Elements out;
  const auto first = text.find_first_not_of(" \t\r\n");
  REQUIRE(first != std::string::npos);
  if (text[first] == '[') {
    // The fixtures in array form have one element per line; the shipped file parses whole.
    json all = json::parse(text, nullptr, false);
    if (!all.is_discarded()) {
      for (auto& element : all) {
        out.values.push_back(std::move(element));
        out.is_json.push_back(true);
      }
      return out;
    }
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      const auto b = line.find_first_not_of(" \t\r");
      if (b == std::string::npos) {
        continue;
      }
      line = line.substr(b);
      if (line == "[" || line == "]") {
        continue;
      }
      while (!line.empty() && (line.back() == ',' || line.back() == ' ' || line.back() == '\r')) {
        line.pop_back();
      }
      json value = json::parse(line, nullptr, false);
      out.is_json.push_back(!value.is_discarded());
      out.values.push_back(value.is_discarded() ? json(line) : std::move(value));
    }
    return out;
  }
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    json value = json::parse(line, nullptr, false);
    out.is_json.push_back(!value.is_discarded());
    out.values.push_back(value.is_discarded() ? json(line) : std::move(value));
  }
  return out;
}

std::int64_t floor_to(std::int64_t t, std::int64_t size) {
  std::int64_t q = t / size;
  if (t % size < 0) {
    --q;
  }
  return q * size;
}

constexpr std::int64_t out_of_orderness = 3600;  // the example's documented one hour

struct WindowFigures {
  std::int64_t flights = 0, delayed = 0, delay_sum = 0, total_distance = 0;
  std::int64_t max_delay = std::numeric_limits<std::int64_t>::min();
};
struct RouteFigures {
  std::int64_t flights = 0, delay_sum = 0;
};

/// Everything the three files must hold, computed with plain loops and std::map.
struct Expected {
  std::map<std::pair<std::int64_t, std::string>, WindowFigures> windows;  ///< (start, state)
  std::map<std::pair<std::string, std::string>, RouteFigures> routes;
  std::map<std::int64_t, std::string> reasons;  ///< index -> reason, for the records that are dead letters
  std::size_t records = 0;
  std::size_t late = 0;
  std::int64_t window = 0;
};

/// Replays `elements` `repeat` times as the example documents it and aggregates. `known_reasons`
/// gives the reason of each unusable element of the file (by its index in the file); the test
/// checks that it names exactly the elements this function finds unusable.
Expected compute(const Elements& elements, const std::unordered_map<std::string, std::string>& states,
                 std::int64_t window, std::int64_t repeat,
                 const std::map<std::int64_t, std::string>& known_reasons) {
  std::vector<Parsed> parsed;
  std::int64_t first = std::numeric_limits<std::int64_t>::max();
  std::int64_t last = std::numeric_limits<std::int64_t>::min();
  for (std::size_t i = 0; i < elements.values.size(); ++i) {
    parsed.push_back(elements.is_json[i] ? classify(elements.values[i], states) : Parsed{});
    if (parsed.back().parses) {
      first = std::min(first, parsed.back().time);
      last = std::max(last, parsed.back().time);
    }
    const bool unusable = !parsed.back().usable;
    CHECK_MESSAGE(unusable == (known_reasons.count(static_cast<std::int64_t>(i)) != 0), "element ", i,
                  " is classified differently by the test and its table of reasons");
  }
  const std::int64_t shift = first <= last ? (floor_to(last, 86400) - floor_to(first, 86400) + 86400) : 0;

  Expected out;
  out.window = window;
  const auto n = static_cast<std::int64_t>(elements.values.size());
  out.records = static_cast<std::size_t>(n * repeat);
  std::int64_t highest = std::numeric_limits<std::int64_t>::min();
  for (std::int64_t copy = 0; copy < repeat; ++copy) {
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t index = copy * n + i;
      const Parsed& p = parsed[static_cast<std::size_t>(i)];
      if (!p.usable) {
        out.reasons[index] = known_reasons.at(i);
        continue;
      }
      const std::int64_t time = p.time + copy * shift;
      RouteFigures& route = out.routes[{p.origin_state, p.destination_state}];
      ++route.flights;
      route.delay_sum += p.delay;
      highest = std::max(highest, time);
      const std::int64_t start = floor_to(time, window);
      if (start + window <= highest - out_of_orderness) {
        out.reasons[index] =
            cat({"late: window ", rfc3339(start), " to ", rfc3339(start + window), " had closed"});
        ++out.late;
        continue;
      }
      WindowFigures& w = out.windows[{start, p.origin_state}];
      ++w.flights;
      w.delayed += p.delay >= 15 ? 1 : 0;
      w.delay_sum += p.delay;
      w.max_delay = std::max(w.max_delay, p.delay);
      w.total_distance += p.distance;
    }
  }
  return out;
}

/// Problems found in a file, at most a few spelled out.
class Problems {
 public:
  void add(std::string text) {
    if (++total_ <= 8) {
      list_.push_back(std::move(text));
    }
  }
  [[nodiscard]] bool empty() const { return total_ == 0; }
  [[nodiscard]] std::string str() const {
    std::string out;
    for (const auto& p : list_) {
      out += p;
      out += '\n';
    }
    if (total_ > list_.size()) {
      out += cat({"... and ", std::to_string(total_ - list_.size()), " more\n"});
    }
    return out;
  }

 private:
  std::size_t total_ = 0;
  std::vector<std::string> list_;
};

/// An average as the files write it: within half a hundredth of sum / count.
bool average_matches(const json& value, std::int64_t sum, std::int64_t count) {
  if (!value.is_number()) {
    return false;
  }
  const double exact = static_cast<double>(sum) / static_cast<double>(count);
  return std::abs(value.get<double>() - exact) <= 0.005 + 1e-9;
}

/// Keys of a JSON object, in the order written (nlohmann sorts them, so read them from the text).
bool has_keys(const json& object, std::initializer_list<const char*> keys) {
  if (!object.is_object() || object.size() != keys.size()) {
    return false;
  }
  for (const char* key : keys) {
    if (!object.contains(key)) {
      return false;
    }
  }
  return true;
}

void check_windows(const fs::path& file, const Expected& expected) {
  const auto lines = read_jsonl(file);
  CHECK(lines.size() == expected.windows.size());
  Problems problems;
  auto want = expected.windows.begin();
  for (std::size_t i = 0; i < lines.size() && want != expected.windows.end(); ++i, ++want) {
    const json line = json::parse(lines[i], nullptr, false);
    const auto& [key, w] = *want;
    const auto& [start, state] = key;
    const bool ok = has_keys(line, {"window_start", "window_end", "state", "flights", "delayed", "avg_delay",
                                    "max_delay", "total_distance"}) &&
                    line["window_start"] == rfc3339(start) &&
                    line["window_end"] == rfc3339(start + expected.window) && line["state"] == state &&
                    line["flights"] == w.flights && line["delayed"] == w.delayed &&
                    average_matches(line["avg_delay"], w.delay_sum, w.flights) &&
                    line["max_delay"] == w.max_delay && line["total_distance"] == w.total_distance;
    if (!ok) {
      problems.add(cat({"line ", std::to_string(i + 1), ": ", lines[i], "; expected ", rfc3339(start), " ",
                        state, " flights ", std::to_string(w.flights), " delayed ", std::to_string(w.delayed),
                        " delay sum ", std::to_string(w.delay_sum), " max ", std::to_string(w.max_delay),
                        " distance ", std::to_string(w.total_distance)}));
    }
  }
  CHECK_MESSAGE(problems.empty(), problems.str());
}

void check_routes(const fs::path& file, const Expected& expected) {
  // The order the example promises: flights descending, then origin state, then destination state.
  std::vector<std::pair<std::pair<std::string, std::string>, RouteFigures>> order(expected.routes.begin(),
                                                                                  expected.routes.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.second.flights > b.second.flights; });
  const auto lines = read_jsonl(file);
  CHECK(lines.size() == order.size());
  Problems problems;
  for (std::size_t i = 0; i < lines.size() && i < order.size(); ++i) {
    const json line = json::parse(lines[i], nullptr, false);
    const auto& [states, r] = order[i];
    const bool ok = has_keys(line, {"origin_state", "destination_state", "flights", "avg_delay"}) &&
                    line["origin_state"] == states.first && line["destination_state"] == states.second &&
                    line["flights"] == r.flights &&
                    average_matches(line["avg_delay"], r.delay_sum, r.flights);
    if (!ok) {
      problems.add(cat({"line ", std::to_string(i + 1), ": ", lines[i], "; expected ", states.first, " -> ",
                        states.second, " flights ", std::to_string(r.flights), " delay sum ",
                        std::to_string(r.delay_sum)}));
    }
  }
  CHECK_MESSAGE(problems.empty(), problems.str());
}

void check_dead_letters(const fs::path& file, const Expected& expected, const Elements& elements) {
  const auto lines = read_jsonl(file);
  CHECK(lines.size() == expected.reasons.size());
  Problems problems;
  auto want = expected.reasons.begin();
  const auto n = static_cast<std::int64_t>(elements.values.size());
  for (std::size_t i = 0; i < lines.size() && want != expected.reasons.end(); ++i, ++want) {
    const json line = json::parse(lines[i], nullptr, false);
    const auto& [index, reason] = *want;
    const bool ok = has_keys(line, {"index", "reason", "record"}) && line["index"] == index &&
                    line["reason"] == reason &&
                    line["record"] == elements.values[static_cast<std::size_t>(index % n)];
    if (!ok) {
      problems.add(cat({"line ", std::to_string(i + 1), ": ", lines[i], "; expected index ",
                        std::to_string(index), " reason ", reason}));
    }
  }
  CHECK_MESSAGE(problems.empty(), problems.str());
}

const fs::path data_dir = WEIR_DATA_DIR;
const fs::path fixtures = WEIR_FIXTURES;

/// What one run checks: the input, the options and the expected reasons of the file's elements.
struct Case {
  fs::path flights;
  std::vector<std::string> options;  ///< --window, --repeat, --parallelism
  std::int64_t window = 86400;
  std::int64_t repeat = 1;
  std::map<std::int64_t, std::string> reasons;  ///< index in the file -> reason of each unusable element
};

/// Runs the example, checks its exit code, its summary line and every line of the three files against
/// compute(); returns the output directory's three files as text, for comparing runs.
std::string run_and_check(const Case& c) {
  CAPTURE(c.flights);
  const std::string options = [&] {
    std::string s;
    for (const auto& o : c.options) s += o + " ";
    return s;
  }();
  CAPTURE(options);
  const auto states = read_airport_states(data_dir / "airports.csv");
  const Elements elements = read_elements(c.flights);
  const Expected expected = compute(elements, states, c.window, c.repeat, c.reasons);

  const TempDir dir;
  const fs::path out = dir.path() / "out";
  std::vector<std::string> args{"--flights",  c.flights.string(),
                                "--airports", (data_dir / "airports.csv").string(),
                                "--out",      out.string()};
  args.insert(args.end(), c.options.begin(), c.options.end());
  const RunResult result = run_example(dir, args);
  INFO("stdout: ", result.out);
  INFO("stderr: ", result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out.find("pipeline 'flights_etl' run ") != std::string::npos);
  std::int64_t windowed = 0;
  for (const auto& [key, w] : expected.windows) windowed += w.flights;
  std::int64_t routed = 0;
  for (const auto& [key, r] : expected.routes) routed += r.flights;
  CHECK(result.out.find(cat(
            {"records ", std::to_string(expected.records), ", in windows ", std::to_string(windowed), " (",
             std::to_string(expected.windows.size()), " lines), in routes ", std::to_string(routed), " (",
             std::to_string(expected.routes.size()), " lines), dead letters ",
             std::to_string(expected.reasons.size()), " (late ", std::to_string(expected.late), ") -> "})) !=
        std::string::npos);
  // Every record is in a window or a dead letter.
  CHECK(static_cast<std::size_t>(windowed) + expected.reasons.size() == expected.records);

  check_windows(out / "state_windows.jsonl", expected);
  check_routes(out / "routes.jsonl", expected);
  check_dead_letters(out / "dead_letters.jsonl", expected, elements);
  return cat({read_text(out / "state_windows.jsonl"), "--\n", read_text(out / "routes.jsonl"), "--\n",
              read_text(out / "dead_letters.jsonl")});
}

/// Index -> reason of every unusable element of the bad-record fixtures.
std::map<std::int64_t, std::string> bad_fixture_reasons() {
  return {
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
      {16, "airport not in the table: ZZZ"},
      {17, "airport not in the table: QQQ"},
      {18, "out of range: distance"},
      {19, "out of range: delay"},
      {20, "empty field: origin"},
  };
}

/// Index -> reason of the unusable elements of late_flights.jsonl: none (its late flights are usable).
std::map<std::int64_t, std::string> no_reasons() {
  return {};
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
  CHECK(floor_to(-1, 86400) == -86400);
  CHECK(floor_to(86400, 86400) == 86400);
}

TEST_CASE("the shipped flights are in date order, so no flight of them is late") {
  const auto states = read_airport_states(data_dir / "airports.csv");
  const Elements elements = read_elements(data_dir / "flights-20k.json");
  REQUIRE(elements.values.size() == 20000);
  std::int64_t previous = std::numeric_limits<std::int64_t>::min();
  std::size_t out_of_order = 0;
  for (const auto& value : elements.values) {
    const Parsed p = classify(value, states);
    REQUIRE(p.usable);
    out_of_order += p.time < previous ? 1 : 0;
    previous = std::max(previous, p.time);
  }
  CHECK(out_of_order == 0);
}

TEST_CASE(
    "flights_etl computes every window, route and dead letter of the shipped data, on one and two "
    "partitions") {
  Case c{data_dir / "flights-20k.json", {"--parallelism", "1"}, 86400, 1, {}};
  const std::string one = run_and_check(c);
  c.options = {"--parallelism", "2"};
  const std::string two = run_and_check(c);
  CHECK_MESSAGE(one == two, "--parallelism 2 wrote other files than --parallelism 1");
}

TEST_CASE("flights_etl computes six-hour windows of the shipped data") {
  run_and_check(
      Case{data_dir / "flights-20k.json", {"--window", "6h", "--parallelism", "2"}, 6 * 3600, 1, {}});
}

TEST_CASE("flights_etl replays the shipped data twice, the second copy moved by the 90 days it spans") {
  const std::string text = run_and_check(
      Case{data_dir / "flights-20k.json", {"--repeat", "2", "--parallelism", "2"}, 86400, 2, {}});
  // The second copy starts on the day after the first one ends.
  CHECK(text.find(R"({"window_start":"2001-03-31T00:00:00Z","window_end":"2001-04-01T00:00:00Z")") !=
        std::string::npos);
  CHECK(text.find(R"({"window_start":"2001-04-01T00:00:00Z","window_end":"2001-04-02T00:00:00Z")") !=
        std::string::npos);
  CHECK(text.find(R"({"window_start":"2001-06-29T00:00:00Z")") != std::string::npos);
  CHECK(text.find(R"({"window_start":"2001-06-30T00:00:00Z")") == std::string::npos);
}

TEST_CASE("the JSON array and the JSON lines bad-record fixtures hold the same elements") {
  std::vector<std::string> elements;
  std::istringstream in(read_text(fixtures / "bad_flights.jsonl"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      elements.push_back(line);
    }
  }
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
  const std::string one = run_and_check(
      Case{fixtures / "bad_flights.json", {"--parallelism", "1"}, 86400, 1, bad_fixture_reasons()});
  const std::string two = run_and_check(
      Case{fixtures / "bad_flights.json", {"--parallelism", "2"}, 86400, 1, bad_fixture_reasons()});
  CHECK(one == two);
}

TEST_CASE("flights_etl reads the bad records as JSON lines the same way, also replayed twice") {
  const std::string lines = run_and_check(
      Case{fixtures / "bad_flights.jsonl", {"--parallelism", "2"}, 86400, 1, bad_fixture_reasons()});
  const std::string array = run_and_check(
      Case{fixtures / "bad_flights.json", {"--parallelism", "2"}, 86400, 1, bad_fixture_reasons()});
  CHECK(lines == array);
  run_and_check(Case{fixtures / "bad_flights.jsonl", {"--repeat", "2"}, 86400, 2, bad_fixture_reasons()});
}

TEST_CASE(
    "flights_etl sorts one-second windows, whose starts spread over far more seconds than there are "
    "windows") {
  run_and_check(Case{
      fixtures / "bad_flights.json", {"--window", "1s", "--parallelism", "2"}, 1, 1, bad_fixture_reasons()});
}

TEST_CASE("flights_etl dead-letters a flight whose window had closed and still counts it in its route") {
  for (const char* parallelism : {"1", "2"}) {
    run_and_check(
        Case{fixtures / "late_flights.jsonl", {"--parallelism", parallelism}, 86400, 1, no_reasons()});
  }
  // Ninety-minute windows: other windows, other late flights.
  run_and_check(Case{fixtures / "late_flights.jsonl", {"--window", "90m"}, 5400, 1, no_reasons()});
  // The fixture's late flights, as the test computes them, are the ones it was written for.
  const auto states = read_airport_states(data_dir / "airports.csv");
  const Expected expected = compute(read_elements(fixtures / "late_flights.jsonl"), states, 86400, 1, {});
  CHECK(expected.late == 2);
  CHECK(expected.reasons.count(4) == 1);
  CHECK(expected.reasons.count(6) == 1);
}

namespace {

/// Runs the example on unusable input and checks exit code 2 and one stderr line naming `culprit`.
void check_unusable(const TempDir& dir, const fs::path& flights, const fs::path& airports,
                    const std::string& culprit, std::vector<std::string> more = {}) {
  const fs::path out = dir.path() / "out";
  std::vector<std::string> args{"--flights",       flights.string(), "--airports",
                                airports.string(), "--out",          out.string()};
  args.insert(args.end(), more.begin(), more.end());
  const RunResult result = run_example(dir, args);
  INFO("stdout: ", result.out);
  INFO("stderr: ", result.err);
  CHECK(result.exit_code == 2);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(result.err.ends_with('\n'));
  CHECK(result.err.find(culprit) != std::string::npos);
}

}  // namespace

TEST_CASE("flights_etl exits with 2 and one line naming the file when the flights file is missing") {
  const TempDir dir;
  const fs::path missing = dir.path() / "no_such_flights.json";
  check_unusable(dir, missing, data_dir / "airports.csv", missing.string());
}

TEST_CASE("flights_etl exits with 2 and one line naming the file when the airports file is missing") {
  const TempDir dir;
  const fs::path missing = dir.path() / "no_such_airports.csv";
  check_unusable(dir, data_dir / "flights-20k.json", missing, missing.string());
}

TEST_CASE(
    "flights_etl exits with 2 and one line naming the file when the flights are neither a JSON array nor "
    "JSON lines") {
  const TempDir dir;
  const fs::path hello = dir.path() / "hello.json";
  write_text(hello, "hello\n");
  check_unusable(dir, hello, data_dir / "airports.csv", hello.string());
}

TEST_CASE("flights_etl exits with 2 and one line naming the file when the airports file has a wrong header") {
  const TempDir dir;
  const fs::path airports = dir.path() / "wrong_header.csv";
  write_text(airports,
             "code,name,city,state,country,latitude,longitude\nLAX,Los Angeles International,Los "
             "Angeles,CA,USA,33.94,-118.41\n");
  check_unusable(dir, fixtures / "bad_flights.json", airports, airports.string());
}

TEST_CASE("flights_etl exits with 2 and one line when --repeat would move the dates past 2200") {
  const TempDir dir;
  check_unusable(dir, fixtures / "bad_flights.json", data_dir / "airports.csv", "--repeat 1000",
                 {"--repeat", "1000"});
}

TEST_CASE("flights_etl rejects a malformed --window on its command line") {
  for (const char* window : {"0h", "5", "1.5h", "5x", "3651d"}) {
    CAPTURE(window);
    const TempDir dir;
    const RunResult result = run_example(dir, {"--window", window, "--out", (dir.path() / "out").string()});
    CHECK(result.exit_code != 0);
    CHECK_FALSE(fs::exists(dir.path() / "out"));
  }
}

TEST_CASE("flights_etl prints a wrong command line's error on stderr and exits with CLI11's code") {
  const TempDir dir;
  const RunResult result = run_example(dir, {"--parallelism", "0", "--out", (dir.path() / "out").string()});
  CHECK(result.exit_code == 105);  // CLI::ExitCodes::ValidationError
  CHECK(result.out.empty());
  CHECK(result.err ==
        "--parallelism: Value 0 not in range 1 to 256\nRun with --help for more information.\n");
  CHECK_FALSE(fs::exists(dir.path() / "out"));
}

TEST_CASE("flights_etl prints its help on stdout and exits with 0") {
  const TempDir dir;
  const RunResult result = run_example(dir, {"--help", "--out", (dir.path() / "out").string()});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out.starts_with("Flights ETL: "));
  CHECK(result.out.find("--otlp-endpoint") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "out"));
}

TEST_CASE("flights_etl writes the run's events as JSON lines and logs JSON lines with the same run id") {
  const TempDir dir;
  const fs::path events = dir.path() / "events.jsonl";
  const RunResult result =
      run_example(dir, {"--flights", (fixtures / "bad_flights.json").string(), "--airports",
                        (data_dir / "airports.csv").string(), "--out", (dir.path() / "out").string(),
                        "--events-file", events.string(), "--log-format", "json", "--log-level", "info"});
  INFO("stderr: ", result.err);
  REQUIRE(result.exit_code == 0);
  // The report on stdout names the run: "pipeline 'flights_etl' run <id>: completed ...".
  const std::string marker = "pipeline 'flights_etl' run ";
  const auto at = result.out.find(marker);
  REQUIRE(at != std::string::npos);
  const std::string run_id =
      result.out.substr(at + marker.size(), result.out.find(':', at) - at - marker.size());
  CHECK(run_id.size() == 16);

  std::vector<json> lines;
  for (const auto& line : read_jsonl(events)) lines.push_back(json::parse(line));
  REQUIRE(lines.size() > 10);
  CHECK(lines.front().at("type") == "pipeline.started");
  CHECK(lines.back().at("type") == "pipeline.completed");
  std::set<std::string> types;
  for (const auto& j : lines) {
    CHECK(j.at("run_id") == run_id);
    CHECK(j.at("pipeline") == "flights_etl");
    CHECK(j.at("trace_id") == lines.front().at("trace_id"));
    types.insert(j.at("type").get<std::string>());
  }
  CHECK(types.count("dlq.item") == 1);  // the fixture's bad records reach the dead-letter sink
  CHECK(types.count("window.emitted") == 1);
  CHECK(types.count("stage.wide") == 1);

  std::size_t log_lines = 0;
  bool table = false;
  std::istringstream err(result.err);
  for (std::string line; std::getline(err, line);) {
    CAPTURE(line);
    const json j = json::parse(line);
    CHECK(j.at("run_id") == run_id);
    CHECK(j.at("trace_id") == lines.front().at("trace_id"));
    table = table || j.contains("report");
    ++log_lines;
  }
  CHECK(log_lines > 3);
  CHECK(table);
}

TEST_CASE("flights_etl --trace-file writes the run's spans as OTLP JSON lines: run, stages, dead letters") {
  const TempDir dir;
  const fs::path spans_file = dir.path() / "spans.jsonl";
  const RunResult result =
      run_example(dir, {"--flights", (fixtures / "bad_flights.json").string(), "--airports",
                        (data_dir / "airports.csv").string(), "--out", (dir.path() / "out").string(),
                        "--trace-file", spans_file.string()});
  INFO("stderr: ", result.err);
  REQUIRE(result.exit_code == 0);
  std::vector<json> spans;
  for (const auto& line : read_jsonl(spans_file)) {
    const json body = json::parse(line);
    const json& rs = body.at("resourceSpans").at(0);
    CHECK(rs.at("resource").at("attributes").at(0).at("value").at("stringValue") == "flights_etl");
    for (const auto& s : rs.at("scopeSpans").at(0).at("spans")) spans.push_back(s);
  }
  const json* run = nullptr;
  for (const auto& s : spans) {
    if (s.at("name") == "run flights_etl") run = &s;
  }
  REQUIRE(run != nullptr);
  CHECK_FALSE(run->contains("parentSpanId"));
  std::size_t stages = 0;
  bool dead_letter_event = false;
  for (const auto& s : spans) {
    CHECK(s.at("traceId") == run->at("traceId"));
    if (s.at("name").get<std::string>().rfind("stage ", 0) != 0) continue;
    ++stages;
    CHECK(s.at("parentSpanId") == run->at("spanId"));
    for (const auto& e : s.value("events", json::array())) dead_letter_event |= e.at("name") == "dead_letter";
  }
  CHECK(stages >= 5);
  CHECK(dead_letter_event);
}

// ---------------------------------------------------------------------------
// Hostile input

namespace {

const std::string valid_flight =
    R"({"date":"2001/01/01 00:47","delay":66,"distance":1750,"origin":"DTW","destination":"LAS"})";

/// `levels` arrays nested in each other.
std::string nested(std::size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

/// The dead letters of a run's output directory, by index.
std::map<std::int64_t, json> dead_letters_of(const fs::path& out) {
  std::map<std::int64_t, json> letters;
  for (const auto& line : read_jsonl(out / "dead_letters.jsonl")) {
    const json j = json::parse(line);
    letters[j.at("index").get<std::int64_t>()] = j;
  }
  return letters;
}

/// Whether `text` has a byte outside ASCII.
bool has_non_ascii(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

/// What a run fed through a pipe did: its exit code (128 + signal when killed) and peak resident set.
struct FedRun {
  int exit_code = -1;
  long max_rss_kib = 0;
  std::string err;
};

/// Runs the example with `args` and stdin a pipe fed with `head`, then `zeros` zero bytes, then
/// `tail`; the feeding stops early when the example closes the pipe. The peak resident set is the
/// example's own (wait4).
FedRun run_fed(const TempDir& dir, const std::vector<std::string>& args, std::string_view head,
               std::size_t zeros, std::string_view tail) {
  const fs::path err_file = dir.path() / "stderr.txt";
  std::vector<std::string> argv_text{WEIR_FLIGHTS_ETL};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[0], 0);
    ::close(fds[0]);
    ::close(fds[1]);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    const int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null_fd, 1);
    ::dup2(err_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[0]);
  const auto previous = std::signal(SIGPIPE, SIG_IGN);
  const auto feed = [fd = fds[1]](std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n <= 0) return false;  // EPIPE: the example stopped reading
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  };
  const std::string block(std::size_t{1} << 16, '\0');
  bool open = feed(head);
  for (std::size_t left = zeros; open && left > 0;) {
    const std::size_t n = std::min(left, block.size());
    open = feed(std::string_view(block).substr(0, n));
    left -= n;
  }
  if (open) feed(tail);
  ::close(fds[1]);
  int status = 0;
  rusage usage{};
  REQUIRE(::wait4(pid, &status, 0, &usage) == pid);
  std::signal(SIGPIPE, previous);
  FedRun result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.max_rss_kib = usage.ru_maxrss;
  result.err = read_text(err_file);
  return result;
}

}  // namespace

TEST_CASE(
    "flights_etl dead-letters a record nested 100,000 levels deep, as an array element, a JSON line or "
    "inside a field, and goes on") {
  const TempDir dir;
  const std::string deep = nested(100000);
  const std::string deep_field = R"({"date":"2001/01/01 00:47","extra":)" + deep + "}";
  const std::string unclosed = R"({"a":)" + std::string(100000, '[');
  const fs::path array = dir.path() / "deep.json";
  write_text(array, cat({"[", valid_flight, ",\n", deep, ",\n", deep_field, ",\n", valid_flight, "]\n"}));
  const fs::path lines = dir.path() / "deep.jsonl";
  write_text(lines,
             cat({valid_flight, "\n", deep, "\n", deep_field, "\n", unclosed, "\n", valid_flight, "\n"}));
  for (const fs::path& flights : {array, lines}) {
    CAPTURE(flights);
    const fs::path out = dir.path() / flights.stem();
    const RunResult result = run_example(dir, {"--flights", flights.string(), "--airports",
                                               (data_dir / "airports.csv").string(), "--out", out.string()});
    INFO("stderr: ", result.err);
    REQUIRE(result.exit_code == 0);
    const auto letters = dead_letters_of(out);
    const std::size_t records = flights == array ? 4 : 5;
    REQUIRE(letters.size() == records - 2);
    CHECK(letters.at(1).at("reason") == "nesting too deep");
    CHECK(letters.at(1).at("record") == deep);  // the text, as a JSON string
    CHECK(letters.at(2).at("reason") == "nesting too deep");
    CHECK(letters.at(2).at("record") == deep_field);
    if (flights == lines) {
      const std::string reason = letters.at(3).at("reason");
      CHECK((reason == "nesting too deep" || reason == "malformed json"));
      CHECK(letters.at(3).at("record") == unclosed);
    }
    CHECK(result.out.find(cat({"records ", std::to_string(records), ", in windows 2 "})) !=
          std::string::npos);
  }
}

TEST_CASE(
    "flights_etl refuses an airports file with invalid UTF-8, naming the file, the line and the field") {
  const TempDir dir;
  const fs::path airports = dir.path() / "latin1.csv";
  write_text(airports,
             "iata,name,city,state,country,latitude,longitude\n"
             "DTW,Detroit Metropolitan,Detroit,MI,USA,42.2,-83.3\n"
             "LAS,McCarran International,Las Vegas,N\xE9V,USA,36.1,-115.2\n");
  check_unusable(dir, fixtures / "bad_flights.json", airports,
                 airports.string() + ": line 3: invalid UTF-8 in the state field");
  CHECK_FALSE(fs::exists(dir.path() / "out" / "state_windows.jsonl"));
}

TEST_CASE("flights_etl escapes bytes outside ASCII in its error messages") {
  const TempDir dir;
  const fs::path airports = dir.path() / "a\xC3\xA9roports.csv";
  write_text(airports, "iata,n\xC3\xA1me,city,state,country,latitude,longitude\n");
  const RunResult result =
      run_example(dir, {"--flights", (fixtures / "bad_flights.json").string(), "--airports",
                        airports.string(), "--out", (dir.path() / "out").string()});
  CHECK(result.exit_code == 2);
  CHECK(result.err.find(R"(a\xc3\xa9roports.csv)") != std::string::npos);
  CHECK(result.err.find(R"(n\xc3\xa1me)") != std::string::npos);
  CHECK_FALSE(has_non_ascii(result.err));
}

TEST_CASE("flights_etl dead-letters a record that names a field twice") {
  const TempDir dir;
  const fs::path flights = dir.path() / "twice.jsonl";
  const std::string twice =
      R"({"date":"2001/01/01 00:47","delay":66,"delay":-5,"distance":1750,"origin":"DTW","destination":"LAS"})";
  write_text(flights, cat({valid_flight, "\n", twice, "\n"}));
  const fs::path out = dir.path() / "out";
  const RunResult result = run_example(dir, {"--flights", flights.string(), "--airports",
                                             (data_dir / "airports.csv").string(), "--out", out.string()});
  REQUIRE(result.exit_code == 0);
  const auto letters = dead_letters_of(out);
  REQUIRE(letters.size() == 1);
  CHECK(letters.at(1).at("reason") == "duplicate field: delay");
  CHECK(letters.at(1).at("record") == twice);  // the text: a JSON object would keep one of the values
}

TEST_CASE("flights_etl refuses a --trace-sample that is not a number from 0 to 1, NaN included") {
  for (const char* sample : {"nan", "-nan", "NaN", "inf", "-0.5", "1.5"}) {
    CAPTURE(sample);
    const TempDir dir;
    const RunResult result = run_example(dir, {"--flights", (fixtures / "bad_flights.json").string(),
                                               "--airports", (data_dir / "airports.csv").string(), "--out",
                                               (dir.path() / "out").string(), "--trace-sample", sample});
    CHECK(result.exit_code != 0);
    CHECK(result.err.find("--trace-sample") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "out"));
  }
}

TEST_CASE("flights_etl names the cause of a failed write and leaves the previous run's files as they were") {
  const TempDir dir;
  const fs::path out = dir.path() / "out";
  const std::vector<std::string> args{"--flights",  (data_dir / "flights-20k.json").string(),
                                      "--airports", (data_dir / "airports.csv").string(),
                                      "--out",      out.string()};
  REQUIRE(run_example(dir, args).exit_code == 0);
  const auto files_of = [&out] {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::directory_iterator(out))
      files[entry.path().filename().string()] = read_text(entry.path());
    return files;
  };
  const auto before = files_of();
  REQUIRE(before.size() == 3);
  REQUIRE(before.at("state_windows.jsonl").size() > 200'000);
  // Files may grow to 100 KB (200 blocks of 512 bytes); a write past that fails with EFBIG.
  const RunResult result = run_example(dir, args, "trap '' XFSZ; ulimit -f 200");
  INFO("stderr: ", result.err);
  CHECK(result.exit_code == 1);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(result.err.find("cannot write " + (out / "state_windows.jsonl").string() + ": File too large") !=
        std::string::npos);
  CHECK(files_of() == before);  // the same three files, whole, and no temporary file left
}

TEST_CASE("flights_etl reads a flights file of endless zeros in bounded memory") {
  const TempDir dir;
  const std::vector<std::string> args{"--flights",  "/dev/stdin",
                                      "--airports", (data_dir / "airports.csv").string(),
                                      "--out",      (dir.path() / "out").string()};
  constexpr std::size_t zeros = std::size_t{400} << 20;
  // The bound is the peak of the same run on 1 MB of input plus 100 MB, so that what a sanitizer
  // build adds to every run does not count; the whole 400 MB read into memory exceeds it.
  const long baseline_kib = run_fed(dir, args, "", std::size_t{1} << 20, "").max_rss_kib;
  const long bound_kib = baseline_kib + 100 * 1024;
  CAPTURE(baseline_kib);
  SUBCASE("zeros only: not a flights file, refused after the first block") {
    const FedRun run = run_fed(dir, args, "", zeros, "");
    INFO("stderr: ", run.err);
    CHECK(run.exit_code == 2);
    CHECK(run.err.find(R"(found '\x00')") != std::string::npos);
    CHECK(run.max_rss_kib < bound_kib);
  }
  SUBCASE("a JSON line of 400 MB: dead-lettered as too large, the next line read") {
    const FedRun run = run_fed(dir, args, "{", zeros, "\n" + valid_flight + "\n");
    INFO("stderr: ", run.err);
    CHECK(run.exit_code == 0);
    CHECK(run.max_rss_kib < bound_kib);
    const auto letters = dead_letters_of(dir.path() / "out");
    REQUIRE(letters.size() == 1);
    CHECK(letters.at(0).at("reason") == "too large: more than 1048576 bytes");
    std::string first_bytes = "{";  // its first 256 bytes (not "{" + std::string: GCC 12 -Wrestrict at -O3)
    first_bytes.append(255, '\0');
    CHECK(letters.at(0).at("record") == first_bytes);
    CHECK(read_jsonl(dir.path() / "out" / "state_windows.jsonl").size() == 1);
  }
}
