// Tests of the flights ETL domain code: CSV airport table, record splitting,
// flight validation, enrichment and formatting, and the shipped data files.
#include <doctest/doctest.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include "etl.hpp"
#include "flights.hpp"

namespace {

namespace fs = std::filesystem;

/// The parts joined. Strings here are built by appending because GCC 12 at
/// -O3 gives a false -Wrestrict warning for `"literal" + std::string`.
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const std::string_view part : parts) {
    out += part;
  }
  return out;
}

/// A file in the temporary directory that is removed when the object dies.
class TempFile {
 public:
  TempFile(std::string_view name, std::string_view content)
      : path_(fs::temp_directory_path() / cat({"weir_flights_", std::to_string(::getpid()), "_", name})) {
    std::ofstream out(path_, std::ios::binary);
    out << content;
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    std::error_code ignored;
    fs::remove(path_, ignored);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

constexpr std::string_view header = "iata,name,city,state,country,latitude,longitude\n";

/// The reason parse_flight gives for `json`, or "" when it parses.
std::string reason_for(std::string_view json) {
  try {
    (void)flights::parse_flight(flights::RawRecord{7, std::string(json)});
  } catch (const flights::RecordError& error) {
    return error.what();
  }
  return "";
}

/// `text` in double quotes.
std::string quoted(std::string_view text) {
  return cat({"\"", text, "\""});
}

/// A valid flight record with one field's raw JSON value replaced.
std::string flight_with(std::string_view field, std::string_view raw_value) {
  const std::vector<std::pair<std::string_view, std::string_view>> fields = {
      {"date", R"("2001/01/14 21:55")"},
      {"delay", "0"},
      {"distance", "480"},
      {"origin", R"("SAN")"},
      {"destination", R"("SMF")"}};
  std::string out = "{";
  for (const auto& [name, value] : fields) {
    if (out.size() > 1) {
      out += ",";
    }
    out += quoted(name);
    out += ':';
    out += name == field ? raw_value : value;
  }
  return out + "}";
}

/// A valid flight record without `field`.
std::string flight_without(std::string_view field) {
  std::string out = flight_with(field, "REMOVED");
  const std::string needle = quoted(field) + ":REMOVED";
  const auto at = out.find(needle);
  out.erase(at, needle.size());
  // Drop the comma left before or after the removed field.
  if (at < out.size() && out[at] == ',') {
    out.erase(at, 1);
  } else if (at > 0 && out[at - 1] == ',') {
    out.erase(at - 1, 1);
  }
  return out;
}

std::string input_error_of(const auto& action) {
  try {
    action();
  } catch (const flights::InputError& error) {
    return error.what();
  }
  return "";
}

flights::AirportTable small_table() {
  return flights::AirportTable::from_csv(
      std::string(header) +
      "SAN,San Diego International-Lindbergh,San Diego,CA,USA,32.7,-117.2\n"
      "SMF,Sacramento International,Sacramento,CA,USA,38.7,-121.6\n"
      "LAS,McCarran International,Las Vegas,NV,USA,36.1,-115.2\n");
}

}  // namespace

// ---------------------------------------------------------------------------
// Airport table

TEST_CASE("a quoted airport field keeps its commas") {
  const auto table = flights::AirportTable::from_csv(
      std::string(header) + "N25,Westport,\"Westport, NY\",NY,USA,44.15838611,-73.43290444\n");
  REQUIRE(table.size() == 1);
  const flights::Airport* airport = table.find("N25");
  REQUIRE(airport != nullptr);
  CHECK(airport->name == "Westport");
  CHECK(airport->city == "Westport, NY");
  CHECK(airport->state == "NY");
  CHECK(airport->country == "USA");
  CHECK(airport->latitude == doctest::Approx(44.15838611));
  CHECK(airport->longitude == doctest::Approx(-73.43290444));
}

TEST_CASE("doubled quotes inside a quoted airport field become one quote") {
  const auto table = flights::AirportTable::from_csv(
      std::string(header) + "DBN,\"W. H. \"\"Bud\"\" Barron\",Dublin,GA,USA,32.56445806,-82.98525556\n");
  const flights::Airport* airport = table.find("DBN");
  REQUIRE(airport != nullptr);
  CHECK(airport->name == R"(W. H. "Bud" Barron)");
  CHECK(airport->city == "Dublin");
}

TEST_CASE("an airport file with CRLF line ends and no final newline loads") {
  const auto table = flights::AirportTable::from_csv(
      "iata,name,city,state,country,latitude,longitude\r\n"
      "AAA,\"One, Two\",Alpha,AK,USA,1.5,2.5\r\n"
      "BBB,Bravo,Beta,CA,USA,-3,4");
  REQUIRE(table.size() == 2);
  REQUIRE(table.find("AAA") != nullptr);
  CHECK(table.find("AAA")->name == "One, Two");
  REQUIRE(table.find("BBB") != nullptr);
  CHECK(table.find("BBB")->longitude == doctest::Approx(4.0));
  CHECK(table.find("BBB")->state == "CA");
}

TEST_CASE("a quoted airport field may span lines and empty quoted fields are empty") {
  const auto table = flights::AirportTable::from_csv(std::string(header) +
                                                     "AAA,\"first\nsecond\",\"\",AK,USA,1,2\n"
                                                     "BBB,Bravo,Beta,CA,USA,3,4\n");
  REQUIRE(table.size() == 2);
  CHECK(table.find("AAA")->name == "first\nsecond");
  CHECK(table.find("AAA")->city.empty());
}

TEST_CASE("find returns null for an unknown or differently cased code") {
  const auto table = small_table();
  CHECK(table.size() == 3);
  CHECK(table.find("SAN") != nullptr);
  CHECK(table.find("san") == nullptr);
  CHECK(table.find("XYZ") == nullptr);
  CHECK(table.find("") == nullptr);
  const std::string code = "LAS";
  CHECK(table.find(std::string_view(code))->city == "Las Vegas");
}

TEST_CASE("an airport file with a wrong header is rejected naming the file") {
  const TempFile file("wrong_header.csv",
                      "code,name,city,state,country,latitude,longitude\nAAA,A,B,C,D,1,2\n");
  const std::string message = input_error_of([&] { (void)flights::AirportTable::load(file.path()); });
  CHECK(message.find(file.path().string()) != std::string::npos);
  CHECK(message.find("wrong header") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
}

TEST_CASE("an airport file with a header in another order is rejected") {
  CHECK_THROWS_AS(flights::AirportTable::from_csv("name,iata,city,state,country,latitude,longitude\n"),
                  flights::InputError);
  CHECK_THROWS_AS(flights::AirportTable::from_csv("iata,name,city,state,country,latitude\n"),
                  flights::InputError);
}

TEST_CASE("an empty airport file is rejected") {
  CHECK_THROWS_AS(flights::AirportTable::from_csv(""), flights::InputError);
  CHECK_THROWS_AS(flights::AirportTable::from_csv("\n\n"), flights::InputError);
}

TEST_CASE("a header-only airport file gives an empty table") {
  const auto table = flights::AirportTable::from_csv(header);
  CHECK(table.empty());
  CHECK(table.size() == 0);
}

TEST_CASE("an unterminated quote is rejected with the file and the line where it opens") {
  const TempFile file(
      "unterminated.csv",
      std::string(header) + "AAA,A,B,C,D,1,2\nBBB,\"never closed,B,C,D,1,2\nCCC,A,B,C,D,1,2\n");
  const std::string message = input_error_of([&] { (void)flights::AirportTable::load(file.path()); });
  CHECK(message.find(file.path().string()) != std::string::npos);
  CHECK(message.find("line 3") != std::string::npos);
  CHECK(message.find("unterminated quoted field") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
}

TEST_CASE("malformed airport rows are rejected with their line") {
  const auto message_for = [](std::string_view rows) {
    return input_error_of(
        [&] { (void)flights::AirportTable::from_csv(std::string(header) + std::string(rows), "a.csv"); });
  };
  CHECK(message_for("AAA,A,B,C,D,1,2\nBBB,A,B,C,D,1\n") == "a.csv: line 3: expected 7 fields, found 6");
  CHECK(message_for("AAA,A,B,C,D,1,2,extra\n") == "a.csv: line 2: expected 7 fields, found 8");
  CHECK(message_for("AAA,\"A\"x,B,C,D,1,2\n").starts_with("a.csv: line 2: unexpected character 'x'"));
  CHECK(message_for("AAA,A\"B,B,C,D,1,2\n") == "a.csv: line 2: quote inside an unquoted field");
  CHECK(message_for("AAA,A,B,C,D,north,2\n") == "a.csv: line 2: bad latitude 'north'");
  CHECK(message_for("AAA,A,B,C,D,1,\n") == "a.csv: line 2: bad longitude ''");
  CHECK(message_for("AAA,A,B,C,D,91,2\n") == "a.csv: line 2: latitude out of range '91'");
  CHECK(message_for(",A,B,C,D,1,2\n") == "a.csv: line 2: empty iata code");
  CHECK(message_for("AAA,A,B,C,D,1,2\nAAA,A,B,C,D,1,2\n") == "a.csv: line 3: duplicate iata code 'AAA'");
}

TEST_CASE("a comma as the last byte of the airport input ends the row with an empty field") {
  // The text is a view that stops before a quote: a reader that looked one byte past its end would
  // take that quote for the start of a quoted field.
  const std::string buffer = std::string(header) + "AAA,A,B,C,D,1,\"";
  const std::string_view text(buffer.data(), buffer.size() - 1);
  CHECK(input_error_of([&] { (void)flights::AirportTable::from_csv(text, "a.csv"); }) ==
        "a.csv: line 2: bad longitude ''");
  const std::string header_buffer = "iata,name,city,state,country,latitude,longitude,\"";
  CHECK(input_error_of([&] {
          (void)flights::AirportTable::from_csv(
              std::string_view(header_buffer.data(), header_buffer.size() - 1), "a.csv");
        }).starts_with("a.csv: line 1: wrong header"));
}

TEST_CASE("a missing airport file is rejected naming the file") {
  const fs::path missing = fs::temp_directory_path() / "weir_flights_no_such_file.csv";
  const std::string message = input_error_of([&] { (void)flights::AirportTable::load(missing); });
  CHECK(message.find(missing.string()) != std::string::npos);
  CHECK(message.find("cannot open") != std::string::npos);
}

// ---------------------------------------------------------------------------
// Record splitting

TEST_CASE("a JSON array is split into its top-level elements") {
  const auto records = flights::split_records(
      R"(  [ {"a":[1,2,{"b":"x]"}]} , {"s":"comma, and \"quote\" and \\"} ,{"c":{}}
      ])");
  REQUIRE(records.size() == 3);
  CHECK(records[0].index == 0);
  CHECK(records[0].json == R"({"a":[1,2,{"b":"x]"}]})");
  CHECK(records[1].index == 1);
  CHECK(records[1].json == R"({"s":"comma, and \"quote\" and \\"})");
  CHECK(records[2].index == 2);
  CHECK(records[2].json == R"({"c":{}})");
}

TEST_CASE("an empty JSON array has no records") {
  CHECK(flights::split_records("[]").empty());
  CHECK(flights::split_records(" [ \n ] \n").empty());
}

TEST_CASE("JSON lines are split per line and blank lines are ignored") {
  const auto records = flights::split_records("{\"a\":1}\r\n\n   \n{\"b\":[1,\n{\"c\":3}");
  REQUIRE(records.size() == 3);
  CHECK(records[0].json == R"({"a":1})");
  CHECK(records[1].index == 1);
  CHECK(records[1].json == R"({"b":[1,)");
  CHECK(records[2].index == 2);
  CHECK(records[2].json == R"({"c":3})");
}

TEST_CASE("a file of flights is detected as an array or as JSON lines from its first character") {
  const std::string one = flight_with("delay", "1");
  const std::string two = flight_with("delay", "2");
  const TempFile array("array.json", cat({"\n[", one, ",\n", two, "]\n"}));
  const TempFile lines("lines.jsonl", one + "\n" + two + "\n");
  for (const fs::path& path : {array.path(), lines.path()}) {
    CAPTURE(path);
    const auto records = flights::read_records(path);
    REQUIRE(records.size() == 2);
    CHECK(flights::parse_flight(records[0]).delay == 1);
    CHECK(flights::parse_flight(records[1]).delay == 2);
    CHECK(flights::parse_flight(records[1]).index == 1);
  }
}

TEST_CASE("a malformed element in the middle of an array does not lose its neighbours") {
  const std::string text = cat({"[", flight_with("delay", "1"), R"(, {"date": oops, "delay": } ,)",
                                flight_with("delay", "3"), ",", flight_with("delay", "4"), "]"});
  const auto records = flights::split_records(text);
  REQUIRE(records.size() == 4);
  CHECK(flights::parse_flight(records[0]).delay == 1);
  CHECK(reason_for(records[1].json) == "malformed json");
  CHECK_THROWS_AS((void)flights::parse_flight(records[1]), flights::RecordError);
  CHECK(flights::parse_flight(records[2]).delay == 3);
  CHECK(flights::parse_flight(records[2]).index == 2);
  CHECK(flights::parse_flight(records[3]).index == 3);
}

TEST_CASE("empty array elements are kept so that they fail on their own") {
  const auto records = flights::split_records("[{\"a\":1},,{\"b\":2},]");
  REQUIRE(records.size() == 4);
  CHECK(records[1].json.empty());
  CHECK(records[2].json == R"({"b":2})");
  CHECK(records[3].json.empty());
  CHECK(reason_for(records[1].json) == "malformed json");
}

TEST_CASE("input that is neither an array nor JSON lines is rejected naming the file") {
  const TempFile empty("empty.json", "");
  const TempFile blank("blank.json", " \n\t\n");
  const TempFile csv("flights.csv", "date,delay\n2001/01/01 00:00,1\n");
  const TempFile open_array("open.json",
                            cat({"[", flight_with("delay", "1"), ",\n", flight_with("delay", "2")}));
  const TempFile open_string("open_string.json", "[{\"date\":\"2001/01/01 00:00}]");
  for (const TempFile* file : {&empty, &blank, &csv, &open_array, &open_string}) {
    CAPTURE(file->path());
    const std::string message = input_error_of([&] { (void)flights::read_records(file->path()); });
    CHECK(message.find(file->path().string()) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
  CHECK(input_error_of([&] {
          (void)flights::read_records(open_array.path());
        }).find("unterminated JSON array") != std::string::npos);
  CHECK(input_error_of([&] { (void)flights::read_records(csv.path()); }).find("found 'd'") !=
        std::string::npos);
}

TEST_CASE("data after the end of a JSON array is rejected") {
  CHECK_THROWS_AS((void)flights::split_records("[{\"a\":1}] [{\"b\":2}]"), flights::InputError);
}

TEST_CASE("a missing records file is rejected naming the file") {
  const fs::path missing = fs::temp_directory_path() / "weir_flights_no_such_file.json";
  const std::string message = input_error_of([&] { (void)flights::read_records(missing); });
  CHECK(message.find(missing.string()) != std::string::npos);
}

// ---------------------------------------------------------------------------
// Flight parsing

TEST_CASE("a valid flight record is parsed with its date read as UTC") {
  const flights::Flight flight = flights::parse_flight(
      {42,
       R"({"date":"2001/01/14 21:55","delay":-7,"distance":480,"origin":"SAN","destination":"SMF","extra":[1]})"});
  CHECK(flight.index == 42);
  CHECK(flight.time == 979509300);
  CHECK(flight.delay == -7);
  CHECK(flight.distance == 480);
  CHECK(flight.origin == "SAN");
  CHECK(flight.destination == "SMF");
}

TEST_CASE("malformed json is rejected as malformed json") {
  CHECK(reason_for("") == "malformed json");
  CHECK(reason_for("{") == "malformed json");
  CHECK(reason_for(R"({"date":"2001/01/14 21:55","delay":0,})") == "malformed json");
  CHECK(reason_for(flight_with("delay", "0") + " trailing") == "malformed json");
  CHECK(reason_for(flight_with("delay", "01")) == "malformed json");
}

TEST_CASE("a record that is not an object is rejected") {
  CHECK(reason_for("[1,2]") == "not an object");
  CHECK(reason_for("42") == "not an object");
}

TEST_CASE("each missing field is named in the reason") {
  for (const std::string_view field : {"date", "delay", "distance", "origin", "destination"}) {
    CAPTURE(field);
    CHECK(reason_for(flight_without(field)) == cat({"missing field: ", field}));
  }
}

TEST_CASE("a field of the wrong type is named in the reason") {
  CHECK(reason_for(flight_with("date", "20010114")) == "wrong type: date");
  CHECK(reason_for(flight_with("delay", R"("5")")) == "wrong type: delay");
  CHECK(reason_for(flight_with("delay", "5.0")) == "wrong type: delay");
  CHECK(reason_for(flight_with("delay", "null")) == "wrong type: delay");
  CHECK(reason_for(flight_with("distance", "1e3")) == "wrong type: distance");
  CHECK(reason_for(flight_with("distance", "true")) == "wrong type: distance");
  CHECK(reason_for(flight_with("origin", "7")) == "wrong type: origin");
  CHECK(reason_for(flight_with("destination", R"(["SMF"])")) == "wrong type: destination");
}

TEST_CASE("numbers outside their range and empty airport codes are rejected") {
  CHECK(reason_for(flight_with("distance", "-1")) == "out of range: distance");
  CHECK(reason_for(flight_with("distance", "0")).empty());
  CHECK(reason_for(flight_with("delay", "-2147483648")).empty());
  CHECK(reason_for(flight_with("delay", "2147483648")) == "out of range: delay");
  CHECK(reason_for(flight_with("delay", "18446744073709551615")) == "out of range: delay");
  CHECK(reason_for(flight_with("origin", R"("")")) == "empty field: origin");
  CHECK(reason_for(flight_with("destination", R"("")")) == "empty field: destination");
}

TEST_CASE("a date not in the form YYYY/MM/DD HH:MM is rejected as malformed") {
  for (const std::string_view date :
       {"2001-01-14 21:55", "2001/1/14 21:55", "2001/01/14 21:55:00", "2001/01/14T21:55", "2001/01/14 2155",
        "", "2001/01/14 21:5x", "+001/01/14 21:55"}) {
    CAPTURE(date);
    CHECK(reason_for(flight_with("date", quoted(date))) == cat({"malformed date: ", date}));
  }
}

TEST_CASE("an impossible date is rejected with its text in the reason") {
  for (const std::string_view date :
       {"2001/02/30 10:00", "2001/02/29 10:00", "1900/02/29 00:00", "2001/13/01 00:00", "2001/00/10 00:00",
        "2001/04/31 00:00", "2001/01/00 00:00", "2001/01/14 24:00", "2001/01/14 23:60"}) {
    CAPTURE(date);
    CHECK(reason_for(flight_with("date", quoted(date))) == cat({"impossible date: ", date}));
  }
}

TEST_CASE("February 29 is accepted in a leap year only") {
  CHECK_THROWS_WITH_AS(flights::parse_date("2001/02/29 12:00"), "impossible date: 2001/02/29 12:00",
                       flights::RecordError);
  CHECK(flights::parse_date("2000/02/29 12:00") == 951825600);
  CHECK(flights::parse_date("2004/02/29 00:00") == 1078012800);
  CHECK(flights::parse_date("2001/03/01 00:00") - flights::parse_date("2001/02/28 00:00") == 86400);
  CHECK(flights::parse_date("2004/03/01 00:00") - flights::parse_date("2004/02/28 00:00") == 2 * 86400);
}

TEST_CASE("dates are read as UTC across the epoch and month ends") {
  CHECK(flights::parse_date("1970/01/01 00:00") == 0);
  CHECK(flights::parse_date("1969/12/31 23:59") == -60);
  CHECK(flights::parse_date("2001/01/01 00:47") == 978310020);
  CHECK(flights::parse_date("2001/12/31 23:59") == 1009843140);
}

TEST_CASE("a control character in a bad date is escaped so the reason stays on one line") {
  const std::string reason = reason_for(flight_with("date", R"("2001/01/14\n21:55")"));
  CHECK(reason == "malformed date: 2001/01/14\\x0a21:55");
}

// ---------------------------------------------------------------------------
// Enrichment and output

TEST_CASE("enrichment adds the states of both airports") {
  const auto table = small_table();
  flights::Flight flight = flights::parse_flight({3, flight_with("destination", R"("LAS")")});
  const flights::EnrichedFlight enriched = flights::enrich(std::move(flight), table);
  CHECK(enriched.flight.index == 3);
  CHECK(enriched.flight.origin == "SAN");
  CHECK(enriched.origin_state == "CA");
  CHECK(enriched.destination_state == "NV");
}

TEST_CASE("an unknown origin or destination airport is rejected with its code") {
  const auto table = small_table();
  CHECK_THROWS_WITH_AS(flights::enrich(flights::parse_flight({0, flight_with("origin", R"("XYZ")")}), table),
                       "unknown airport: XYZ", flights::RecordError);
  CHECK_THROWS_WITH_AS(
      flights::enrich(flights::parse_flight({0, flight_with("destination", R"("QQQ")")}), table),
      "unknown airport: QQQ", flights::RecordError);
}

TEST_CASE("an enriched flight is written as JSON with an RFC 3339 date") {
  const auto table = small_table();
  const auto enriched = flights::enrich(flights::parse_flight({5, flight_with("delay", "-3")}), table);
  const nlohmann::json expected = {{"index", 5},           {"date", "2001-01-14T21:55:00Z"},
                                   {"delay", -3},          {"distance", 480},
                                   {"origin", "SAN"},      {"destination", "SMF"},
                                   {"origin_state", "CA"}, {"destination_state", "CA"}};
  CHECK(flights::to_json(enriched) == expected);
  const nlohmann::json implicit = enriched;
  CHECK(implicit == expected);
}

TEST_CASE("append_json writes the same text as dumping to_json") {
  const auto table = small_table();
  const auto enriched = flights::enrich(flights::parse_flight({5, flight_with("delay", "-3")}), table);
  std::string out = "prefix ";
  flights::append_json(out, enriched);
  CHECK(out == "prefix " + flights::to_json(enriched).dump());
  CHECK(out ==
        R"(prefix {"date":"2001-01-14T21:55:00Z","delay":-3,"destination":"SMF","destination_state":"CA",)"
        R"("distance":480,"index":5,"origin":"SAN","origin_state":"CA"})");
}

TEST_CASE("append_json escapes strings the way nlohmann does") {
  flights::EnrichedFlight odd{
      {-1, -60, -2147483647 - 1, 2147483647, "A\"B\\C", std::string("\x01\b\f\n\r\t\x1f\x7f", 8)},
      "\xc3\xa9t\xc3\xa9",
      "/"};
  std::string out;
  flights::append_json(out, odd);
  CHECK(out == flights::to_json(odd).dump());
}

TEST_CASE("format_utc writes RFC 3339 UTC timestamps") {
  CHECK(flights::format_utc(0) == "1970-01-01T00:00:00Z");
  CHECK(flights::format_utc(979509300) == "2001-01-14T21:55:00Z");
  CHECK(flights::format_utc(951825600) == "2000-02-29T12:00:00Z");
  CHECK(flights::format_utc(-1) == "1969-12-31T23:59:59Z");
  CHECK(flights::format_utc(-62167219200) == "0000-01-01T00:00:00Z");
  CHECK(flights::format_utc(253402300799) == "9999-12-31T23:59:59Z");
  CHECK_THROWS_AS((void)flights::format_utc(253402300800), std::out_of_range);
  CHECK_THROWS_AS((void)flights::format_utc(-62167219201), std::out_of_range);
}

TEST_CASE("format_utc and parse_date agree on every minute of a leap day") {
  const std::int64_t start = flights::parse_date("2000/02/29 00:00");
  for (std::int64_t minute = 0; minute < 1440; ++minute) {
    const std::string text = flights::format_utc(start + minute * 60);
    CAPTURE(text);
    const std::string as_input =
        text.substr(0, 4) + "/" + text.substr(5, 2) + "/" + text.substr(8, 2) + " " + text.substr(11, 5);
    CHECK(flights::parse_date(as_input) == start + minute * 60);
  }
}

// ---------------------------------------------------------------------------
// Durations

TEST_CASE("parse_duration reads a number and a unit as seconds") {
  CHECK(flights::parse_duration("30s") == 30);
  CHECK(flights::parse_duration("15m") == 900);
  CHECK(flights::parse_duration("1h") == 3600);
  CHECK(flights::parse_duration("6h") == 21600);
  CHECK(flights::parse_duration("1d") == 86400);
  CHECK(flights::parse_duration("2w") == 1209600);
}

TEST_CASE("parse_duration rejects zero, negative and malformed durations with a clear message") {
  for (const std::string_view bad : {"", "0s", "-5m", "+5m", "h", "5", "5x", "5 m", " 5m", "5mm", "1.5h",
                                     "5H", "99999999999999999999s", "9223372036854775807w"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS((void)flights::parse_duration(bad), std::invalid_argument);
  }
  CHECK_THROWS_WITH((void)flights::parse_duration("0s"), doctest::Contains("must be greater than zero"));
  CHECK_THROWS_WITH((void)flights::parse_duration("5x"), doctest::Contains("unknown unit 'x'"));
  CHECK_THROWS_WITH((void)flights::parse_duration("5"), doctest::Contains("missing unit"));
}

// ---------------------------------------------------------------------------
// Shipped data

TEST_CASE("the shipped airport table loads with every row") {
  const auto table = flights::AirportTable::load(fs::path(WEIR_DATA_DIR) / "airports.csv");
  CHECK(table.size() == 3376);
  const flights::Airport* dtw = table.find("DTW");
  REQUIRE(dtw != nullptr);
  CHECK(dtw->name == "Detroit Metropolitan-Wayne County");
  CHECK(dtw->state == "MI");
  CHECK(dtw->latitude == doctest::Approx(42.21205889));
  REQUIRE(table.find("DBN") != nullptr);
  CHECK(table.find("DBN")->name == R"(W. H. "Bud" Barron)");
  REQUIRE(table.find("PUW") != nullptr);
  CHECK(table.find("PUW")->city == "Pullman/Moscow,ID");
  REQUIRE(table.find("YAP") != nullptr);
  CHECK(table.find("YAP")->country == "Federated States of Micronesia");
}

TEST_CASE("every shipped flight parses and finds both its airports") {
  const auto table = flights::AirportTable::load(fs::path(WEIR_DATA_DIR) / "airports.csv");
  const auto records = flights::read_records(fs::path(WEIR_DATA_DIR) / "flights-20k.json");
  REQUIRE(records.size() == 20000);

  std::int64_t delay_sum = 0;
  std::int64_t distance_sum = 0;
  std::int64_t early = 0;
  std::int64_t previous_time = 0;
  bool in_time_order = true;
  std::set<std::string> codes;
  std::vector<flights::EnrichedFlight> enriched;
  enriched.reserve(records.size());
  for (const auto& record : records) {
    flights::EnrichedFlight flight = flights::enrich(flights::parse_flight(record), table);
    delay_sum += flight.flight.delay;
    distance_sum += flight.flight.distance;
    early += flight.flight.delay < 0 ? 1 : 0;
    in_time_order = in_time_order && flight.flight.time >= previous_time;
    previous_time = flight.flight.time;
    codes.insert(flight.flight.origin);
    codes.insert(flight.flight.destination);
    enriched.push_back(std::move(flight));
  }
  // Totals checked independently with jq on the same file.
  CHECK(delay_sum == 154078);
  CHECK(distance_sum == 14476934);
  CHECK(early == 9720);
  CHECK(codes.size() == 224);
  CHECK(in_time_order);

  std::string fast;
  std::string slow;
  for (const auto& flight : enriched) {
    flights::append_json(fast, flight);
    fast += '\n';
    slow += flights::to_json(flight).dump();
    slow += '\n';
  }
  CHECK(fast == slow);

  const nlohmann::json first = flights::to_json(enriched.front());
  CHECK(first["index"] == 0);
  CHECK(first["date"] == "2001-01-01T00:47:00Z");
  CHECK(first["origin"] == "DTW");
  CHECK(first["origin_state"] == "MI");
  CHECK(first["destination_state"] == "NV");
  const nlohmann::json last = flights::to_json(enriched.back());
  CHECK(last["index"] == 19999);
  CHECK(last["date"] == "2001-03-31T22:27:00Z");
  CHECK(last["origin"] == "CLT");
  CHECK(last["destination"] == "GSO");
  CHECK(last["delay"] == -9);
  CHECK(last["distance"] == 83);
}

TEST_CASE("parse_flight gives the same results from several threads at once") {
  const auto records = flights::read_records(fs::path(WEIR_DATA_DIR) / "flights-20k.json");
  constexpr std::size_t thread_count = 4;
  std::vector<std::int64_t> sums(thread_count, 0);
  {
    std::vector<std::jthread> threads;
    for (std::size_t t = 0; t < thread_count; ++t) {
      threads.emplace_back([&records, &sums, t] {
        std::int64_t sum = 0;
        for (std::size_t i = t; i < records.size() + t; ++i) {
          const flights::Flight flight = flights::parse_flight(records[i % records.size()]);
          sum += flight.delay + flight.time % 1000;
        }
        sums[t] = sum;
      });
    }
  }
  for (std::size_t t = 1; t < thread_count; ++t) {
    CHECK(sums[t] == sums[0]);
  }
}

// ---------------------------------------------------------------------------
// The fast path

namespace {

/// The flight parse_flight_json gives, or its reason.
std::string json_path(const std::string& text) {
  try {
    const auto f = flights::parse_flight_json(flights::RawRecord{3, text});
    return cat({std::to_string(f.index), " ", std::to_string(f.time), " ", std::to_string(f.delay), " ",
                std::to_string(f.distance), " ", f.origin, " ", f.destination});
  } catch (const flights::RecordError& e) {
    return e.what();
  }
}

/// The flight parse_flight gives (fast path first), or its reason.
std::string any_path(const std::string& text) {
  try {
    const auto f = flights::parse_flight(flights::RawRecord{3, text});
    return cat({std::to_string(f.index), " ", std::to_string(f.time), " ", std::to_string(f.delay), " ",
                std::to_string(f.distance), " ", f.origin, " ", f.destination});
  } catch (const flights::RecordError& e) {
    return e.what();
  }
}

bool canonical(const std::string& text) {
  flights::Flight f{};
  return flights::parse_flight_canonical(flights::RawRecord{3, text}, f);
}

}  // namespace

TEST_CASE("the fast path takes every shipped record and agrees with simdjson on each") {
  const auto records = flights::read_records(fs::path(WEIR_DATA_DIR) / "flights-20k.json");
  std::size_t taken = 0;
  std::size_t differ = 0;
  for (const auto& record : records) {
    flights::Flight fast{};
    if (flights::parse_flight_canonical(record, fast)) {
      ++taken;
      const flights::Flight slow = flights::parse_flight_json(record);
      differ += (fast.index != slow.index || fast.time != slow.time || fast.delay != slow.delay ||
                 fast.distance != slow.distance || fast.origin != slow.origin ||
                 fast.destination != slow.destination)
                    ? 1
                    : 0;
    }
  }
  CHECK(taken == records.size());
  CHECK(differ == 0);
}

TEST_CASE("the fast path leaves every other shape to simdjson, which gives the same result or reason") {
  const std::string base =
      R"({"date":"2001/01/14 21:55","delay":-3,"distance":480,"origin":"SAN","destination":"SMF"})";
  CHECK(canonical(base));
  CHECK(any_path(base) == json_path(base));
  // Texts the fast path must refuse: other spacing, order, numbers, escapes, bytes or endings.
  for (
      const std::string text : {
          R"({"date": "2001/01/14 21:55","delay":-3,"distance":480,"origin":"SAN","destination":"SMF"})",
          R"({"delay":-3,"date":"2001/01/14 21:55","distance":480,"origin":"SAN","destination":"SMF"})",
          R"({"date":"2001/01/14 21:55","delay":-03,"distance":480,"origin":"SAN","destination":"SMF"})",
          R"({"date":"2001/01/14 21:55","delay":3.0,"distance":480,"origin":"SAN","destination":"SMF"})",
          R"({"date":"2001/01/14 21:55","delay":1e3,"distance":480,"origin":"SAN","destination":"SMF"})",
          R"({"date":"2001/01/14 21:55","delay":2147483648,"distance":480,"origin":"SAN","destination":"SMF"})",
          R"({"date":"2001/01/14 21:55","delay":1234567890,"distance":480,"origin":"SAN","destination":"SMF"})",
          R"({"date":"2001/01/14 21:55","delay":-3,"distance":-480,"origin":"SAN","destination":"SMF"})",
          R"({"date":"2001/01/14 21:55","delay":-3,"distance":480,"origin":"S\u0041N","destination":"SMF"})",
          R"({"date":"2001/01/14 21:55","delay":-3,"distance":480,"origin":"","destination":"SMF"})",
          "{\"date\":\"2001/01/14 "
          "21:55\",\"delay\":-3,\"distance\":480,\"origin\":\"S\xc3\xa9\",\"destination\":\"SMF\"}",
          "{\"date\":\"2001/01/14 "
          "21:55\",\"delay\":-3,\"distance\":480,\"origin\":\"S\xff\",\"destination\":\"SMF\"}",
          R"({"date":"2001/01/14 21:55","delay":-3,"distance":480,"origin":"SAN","destination":"SMF","x":1})",
          R"({"date":"2001/01/14 21:55","delay":-3,"distance":480,"origin":"SAN","destination":"SMF"}x)",
          R"({"date":"2001/01/14 21:55","delay":-3,"distance":480,"origin":"SAN","destination":"SMF")",
          R"({"date":"2001/01/14 21:55","delay":-,"distance":480,"origin":"SAN","destination":"SMF"})",
      }) {
    CAPTURE(text);
    CHECK_FALSE(canonical(text));
    CHECK(any_path(text) == json_path(text));
  }
  // Canonical texts with a bad date: the fast path gives simdjson's reason.
  for (const std::string text : {
           R"({"date":"2001/02/29 21:55","delay":-3,"distance":480,"origin":"SAN","destination":"SMF"})",
           R"({"date":"2001-01-14 21:55","delay":-3,"distance":480,"origin":"SAN","destination":"SMF"})",
           R"({"date":"","delay":-0,"distance":0,"origin":"SAN","destination":"SMF"})",
       }) {
    CAPTURE(text);
    CHECK(any_path(text) == json_path(text));
  }
  CHECK(any_path(R"({"date":"2001/01/14 21:55","delay":-0,"distance":0,"origin":"A","destination":"B"})") ==
        json_path(R"({"date":"2001/01/14 21:55","delay":-0,"distance":0,"origin":"A","destination":"B"})"));
}

TEST_CASE("a window line writes the average as std::to_chars writes the rounded mean") {
  flights::EtlInput input;
  input.states = {"CA"};
  const auto avg_of = [](const std::string& line) {
    const std::size_t from = line.find(R"("avg_delay":)") + 12;
    return line.substr(from, line.find(',', from) - from);
  };
  std::size_t differ = 0;
  // Every cent around zero, then sparser up to means past 10,000 (where the form changes).
  for (const std::uint64_t count : {std::uint64_t{1}, std::uint64_t{7}, std::uint64_t{400}}) {
    for (std::int64_t sum = -3'000'000; sum <= 5'000'000; sum += sum > -8000 && sum < 8000 ? 1 : 4999) {
      flights::StateWindow w{0, 86400, 0, {}};
      w.stats.flights = count;
      w.stats.delay_sum = sum;
      std::array<char, 64> text{};
      const auto end =
          std::to_chars(text.data(), text.data() + text.size(), flights::rounded_mean(sum, count));
      const std::string expected(text.data(), end.ptr);
      if (avg_of(flights::window_line(input, w)) != expected && ++differ < 5) {
        CAPTURE(sum);
        CAPTURE(count);
        CHECK(avg_of(flights::window_line(input, w)) == expected);
      }
    }
  }
  CHECK(differ == 0);
  flights::StateWindow big{0, 86400, 0, {}};
  big.stats.flights = 1;
  big.stats.delay_sum = 100000;
  CHECK(avg_of(flights::window_line(input, big)) == "1e+05");
}

TEST_CASE("loading gives airports and states ids that sort as their codes, and replays move the dates") {
  const TempFile airports("ids_airports.csv",
                          "iata,name,city,state,country,latitude,longitude\n"
                          "SFO,a,b,CA,USA,1,1\nJFK,a,b,NY,USA,1,1\nLAX,a,b,CA,USA,1,1\nBOS,a,b,MA,USA,1,1\n");
  const TempFile records(
      "ids_flights.json",
      R"([{"date":"2001/01/01 10:00","delay":5,"distance":300,"origin":"LAX","destination":"ZZZ"},)"
      R"({"date":"2001/01/02 10:00","delay":"5","distance":300,"origin":"LAX","destination":"SFO"},)"
      R"({"date":"2001/01/03 23:00","delay":-2,"distance":2500,"origin":"JFK","destination":"SFO"}])");
  flights::EtlOptions options;
  options.airports_path = airports.path();
  options.flights_path = records.path();
  options.repeat = 3;
  const flights::EtlInput input = flights::load_input(options);
  CHECK(input.states == std::vector<std::string>{"CA", "MA", "NY"});
  REQUIRE(input.airport_states.size() == 4);
  CHECK(input.airport_codes == std::vector<std::string>{"BOS", "JFK", "LAX", "SFO", "ZZZ"});
  CHECK(input.airport_states == std::vector<std::uint32_t>{1, 2, 0, 0});
  CHECK(input.shift_seconds == 3 * 86400);
  CHECK(input.total() == 9);
  // Copy 2 of record 2: index 8, the date six days later.
  const flights::FlightRecord f = input.replayed(8);
  CHECK(f.index == 8);
  CHECK(flights::format_utc(f.time) == "2001-01-09T23:00:00Z");
  CHECK(f.delay == -2);
  CHECK(f.distance == 2500);
  CHECK(input.airport_codes[f.origin] == "JFK");
  CHECK(input.airport_codes[f.destination] == "SFO");
  CHECK(input.airport_codes[input.replayed(3).destination] == "ZZZ");
  // Record 1 is unusable in every copy, with the reason of its parse.
  for (const std::uint64_t i : {1U, 4U, 7U}) {
    CAPTURE(i);
    CHECK_THROWS_WITH_AS(static_cast<void>(input.replayed(i)), "wrong type: delay", flights::RecordError);
  }
}

// ---------------------------------------------------------------------------
// Hostile input

namespace {

/// `levels` arrays nested in each other.
std::string nested(std::size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

/// The records of `text` fed to a RecordSplitter `piece` bytes at a time.
std::vector<flights::RawRecord> split_in_pieces(std::string_view text, std::size_t piece,
                                                std::size_t max_record = flights::max_record_bytes) {
  std::vector<flights::RawRecord> records;
  const flights::RecordSplitter::Emit keep = [&records](flights::RawRecord&& r) {
    records.push_back(std::move(r));
  };
  flights::RecordSplitter splitter("<pieces>", max_record);
  for (std::size_t at = 0; at < text.size(); at += piece) splitter.feed(text.substr(at, piece), keep);
  splitter.finish(keep);
  return records;
}

/// Whether `text` is valid UTF-8 as nlohmann::json sees it: a JSON string of it parses back.
bool parses_back(const std::string& json_text) {
  return !nlohmann::json::parse(json_text, nullptr, false).is_discarded();
}

}  // namespace

TEST_CASE("a record nested deeper than 64 levels is rejected as nesting too deep, 100,000 levels included") {
  CHECK(reason_for(nested(64)) == "not an object");
  CHECK(reason_for(nested(65)) == "nesting too deep");
  CHECK(reason_for(nested(100000)) == "nesting too deep");
  CHECK(reason_for(R"({"date":"2001/01/14 21:55","extra":)" + nested(100000) + "}") == "nesting too deep");
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  objects += '1';
  objects.append(100000, '}');
  CHECK(reason_for(objects) == "nesting too deep");
}

TEST_CASE("a record that names a field twice is rejected naming the field") {
  CHECK(reason_for(flight_with("delay", R"(1,"delay":2)")) == "duplicate field: delay");
  CHECK(reason_for(flight_with("delay", R"(1,"d\u0065lay":2)")) == "duplicate field: delay");
  CHECK(reason_for(flight_with("delay", R"(1,"x":1,"x":1)")) == "duplicate field: x");
  std::string many = flight_with("delay", "1");
  many.pop_back();
  for (int i = 0; i < 20; ++i) many += cat({R"(,"k)", std::to_string(i), R"(":0)"});
  CHECK(reason_for(many + "}").empty());
  CHECK(reason_for(many + R"(,"origin":"SAN"})") == "duplicate field: origin");
  CHECK(reason_for(flight_with("delay", R"(1,"x":{"a":1,"a":2})")).empty());  // other fields are not read
}

TEST_CASE(
    "is_safe_json accepts the JSON that nlohmann holds whole and refuses deep, repeated-key and bad text") {
  CHECK(flights::is_safe_json(flight_with("delay", "1")));
  CHECK(flights::is_safe_json(nested(64)));
  CHECK_FALSE(flights::is_safe_json(nested(65)));
  CHECK_FALSE(flights::is_safe_json(nested(100000)));
  CHECK_FALSE(flights::is_safe_json(R"({"a":1,"b":{"c":1,"c":2}})"));
  CHECK(flights::is_safe_json(R"([{"c":1},{"c":2}])"));
  CHECK_FALSE(flights::is_safe_json("{\"a\":\"\xE9\"}"));
  CHECK_FALSE(flights::is_safe_json(R"({"a":1} {"b":2})"));
  CHECK_FALSE(flights::is_safe_json(""));
}

TEST_CASE(
    "the dead letter of a record nested 100,000 levels deep holds its text, and other bad text stays valid "
    "JSON") {
  flights::EtlInput input;
  const std::string deep = nested(100000);
  const std::string twice = R"({"a":1,"a":2})";
  const std::string latin1 = "{\"date\":\"caf\xE9\"";
  input.records = {flights::RawRecord{0, deep}, flights::RawRecord{1, twice}, flights::RawRecord{2, latin1},
                   flights::RawRecord{3, std::string(300, 'x'), true},
                   flights::RawRecord{4, R"({"a":[1,2]})"}};
  const auto letter = [&](std::int64_t index) {
    const std::string line = flights::dead_letter_line(input, {index, "why \xFF"});
    const auto j = nlohmann::json::parse(line, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    return j;
  };
  CHECK(letter(0).at("record") == deep);
  CHECK(letter(1).at("record") == twice);
  CHECK(letter(2).at("record") == "{\"date\":\"caf\xEF\xBF\xBD\"");  // U+FFFD
  CHECK(letter(3).at("record") == std::string(300, 'x'));
  CHECK(letter(4).at("record") == nlohmann::json::parse(R"({"a":[1,2]})"));
  CHECK(letter(4).at("reason") == "why \xEF\xBF\xBD");
}

TEST_CASE("an airport row with a field that is not valid UTF-8 is refused with its line and field") {
  const auto message_for = [](std::string_view rows) {
    return input_error_of(
        [&] { (void)flights::AirportTable::from_csv(std::string(header) + std::string(rows), "a.csv"); });
  };
  CHECK(message_for("AAA,A,B,C,D,1,2\nBBB,S\xE3o Paulo,B,C,D,1,2\n") ==
        "a.csv: line 3: invalid UTF-8 in the name field");
  CHECK(message_for("AAA,A,B,\xC0\xAF,D,1,2\n") == "a.csv: line 2: invalid UTF-8 in the state field");
  CHECK(message_for("A\xED\xA0\x80,A,B,C,D,1,2\n") == "a.csv: line 2: invalid UTF-8 in the iata field");
  CHECK(flights::AirportTable::from_csv(std::string(header) + "GRU,S\xC3\xA3o Paulo,B,SP,BR,1,2\n")
            .find("GRU")
            ->name == "S\xC3\xA3o Paulo");
}

TEST_CASE("messages escape bytes outside ASCII as well as control bytes") {
  CHECK(flights::one_line("S\xC3\xA3o\tPaulo\x7f") == R"(S\xc3\xa3o\x09Paulo\x7f)");
  CHECK(reason_for(flight_with("date", "\"2001/01/14 21:5\xC3\xA9\"")) ==
        R"(malformed date: 2001/01/14 21:5\xc3\xa9)");
  const std::string message = input_error_of([] {
    (void)flights::AirportTable::from_csv("iata,n\xC3\xA1me,city,state,country,latitude,longitude\n", "x");
  });
  CHECK(message.find(R"(n\xc3\xa1me)") != std::string::npos);
}

TEST_CASE("JSON strings are written as valid UTF-8: a byte outside a valid sequence becomes U+FFFD") {
  const std::string fffd = "\xEF\xBF\xBD";
  const auto written = [](std::string_view text) {
    std::string out;
    flights::append_json_string(out, text);
    return out;
  };
  CHECK(written("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  CHECK(written("caf\xE9!") == "\"caf" + fffd + "!\"");
  CHECK(written("\xC0\xAF") == "\"" + fffd + fffd + "\"");                        // overlong
  CHECK(written("\xED\xA0\x80") == "\"" + fffd + fffd + fffd + "\"");             // surrogate
  CHECK(written("\xF4\x90\x80\x80") == "\"" + fffd + fffd + fffd + fffd + "\"");  // past U+10FFFF
  CHECK(written("\xE2\x82") == "\"" + fffd + fffd + "\"");                        // cut
  CHECK(written("a\"\x01\xFF") == "\"a\\\"\\u0001" + fffd + "\"");
  // The writers of the three files.
  flights::EtlInput input;
  input.states = {"N\xE9V", "CA"};
  const flights::StateWindow window{0, 86400, 0, {}};
  const flights::Route route{{0, 1}, {1, 5}};
  for (const std::string& line : {flights::window_line(input, window), flights::route_line(input, route)}) {
    CAPTURE(line);
    CHECK(flights::valid_utf8(line));
    CHECK(parses_back(line));
  }
}

TEST_CASE("records split from pieces of any size are those of the whole text") {
  const std::vector<std::string> texts = {
      "\xEF\xBB\xBF[ {\"a\":[1,2,{\"b\":\"x],\"}]} ,\r\n {\"s\":\"comma, \\\"quote\\\" \\\\\"} "
      ",{\"c\":{}}\n]\n",
      "[]",
      " [ \n ] \n",
      "[{\"a\":1},,{\"b\":2},]",
      "\xEF\xBB\xBF{\"a\":1}\r\n\n   \n{\"b\":[1,\n{\"c\":3}",
      "\n\n{\"a\":1}\n  {\"b\":2}  \n[3]\n\"x\"\n",
  };
  for (const auto& text : texts) {
    CAPTURE(text);
    const auto whole = flights::split_records(text);
    for (const std::size_t piece : {1U, 2U, 3U, 5U, 64U}) {
      CAPTURE(piece);
      const auto pieces = split_in_pieces(text, piece);
      REQUIRE(pieces.size() == whole.size());
      for (std::size_t i = 0; i < whole.size(); ++i) {
        CHECK(pieces[i].index == whole[i].index);
        CHECK(pieces[i].json == whole[i].json);
        CHECK_FALSE(pieces[i].too_large);
      }
    }
  }
}

TEST_CASE("the splitter names the line of data after an array's end and of an unterminated array's start") {
  CHECK(input_error_of([] { (void)flights::split_records("[{\"a\":1}]\n\n x", "f"); }) ==
        "f: line 3: unexpected data after the closing ']'");
  CHECK(input_error_of([] { (void)flights::split_records("\n\n[{\"a\":1},\n", "f"); }) ==
        "f: line 3: unterminated JSON array");
  CHECK(input_error_of([] { (void)split_in_pieces("\xEF\xBB", 1); }).find(R"(found '\xef')") !=
        std::string::npos);
  CHECK(input_error_of([] { (void)split_in_pieces(std::string(3, '\0'), 1); }).find(R"(found '\x00')") !=
        std::string::npos);
}

TEST_CASE(
    "a record longer than the maximum keeps only its first bytes, fails as too large, and the next is read") {
  const std::string big = R"({"a":")" + std::string(5000, 'x') + R"("})";
  const std::string small = R"({"b":1})";
  for (const std::string& text : {big + "\n" + small + "\n", "[" + big + ",\n" + small + "]"}) {
    CAPTURE(text.substr(0, 10));
    for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, text.size()}) {
      const auto records = split_in_pieces(text, piece, 1000);
      REQUIRE(records.size() == 2);
      CHECK(records[0].too_large);
      CHECK(records[0].json == big.substr(0, flights::too_large_prefix));
      CHECK_FALSE(records[1].too_large);
      CHECK(records[1].json == small);
      CHECK(records[1].index == 1);
    }
  }
  // A record of exactly the maximum is whole.
  const auto exact = split_in_pieces(big, 3, big.size());
  REQUIRE(exact.size() == 1);
  CHECK_FALSE(exact[0].too_large);
  CHECK(exact[0].json == big);
  CHECK(reason_for(big).empty() == false);
  CHECK_THROWS_WITH_AS((void)flights::parse_flight(flights::RawRecord{0, flight_with("delay", "1"), true}),
                       "too large: more than 1048576 bytes", flights::RecordError);
}

TEST_CASE("dead letters beyond the buffer go to sorted runs on disk and come back in index order") {
  flights::DeadLetters letters(1024);
  constexpr std::int64_t count = 40000;
  // Two threads add the odd and the even indexes, each in a scrambled order.
  const auto add = [&letters](std::int64_t parity) {
    for (std::int64_t k = 0; k < count / 2; ++k) {
      const std::int64_t index = ((k * 7919) % (count / 2)) * 2 + parity;
      letters.add(index,
                  std::string(static_cast<std::size_t>(index % 50), static_cast<char>('a' + index % 26)));
    }
  };
  std::thread odd(add, 1);
  add(0);
  odd.join();
  CHECK(letters.size() == count);
  CHECK(letters.runs() >= 1);
  CHECK(letters.runs() <= 33);  // merged once there are more
  std::int64_t expected = 0;
  std::size_t wrong = 0;
  letters.for_each([&](const flights::DeadLetterEntry& e) {
    const std::string reason(static_cast<std::size_t>(expected % 50), static_cast<char>('a' + expected % 26));
    wrong += e.index != expected || e.reason != reason ? 1 : 0;
    ++expected;
  });
  CHECK(expected == count);
  CHECK(wrong == 0);
}

TEST_CASE("dead letters that come in index order are written as one run") {
  flights::DeadLetters letters(256);
  for (std::int64_t i = 0; i < 5000; ++i) letters.add(i * 3, "malformed json");
  CHECK(letters.runs() == 1);
  std::int64_t next = 0;
  letters.for_each([&next](const flights::DeadLetterEntry& e) {
    CHECK(e.index == next);
    next += 3;
  });
  CHECK(next == 15000);
  flights::DeadLetters small;
  small.add(2, "b");
  small.add(1, "a");
  std::string order;
  small.for_each([&order](const flights::DeadLetterEntry& e) { order += e.reason; });
  CHECK(order == "ab");
  CHECK(small.runs() == 0);
}
