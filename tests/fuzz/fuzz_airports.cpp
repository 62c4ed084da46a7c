// Fuzz target: the airports CSV reader (AirportTable::from_csv, what AirportTable::load reads a file
// with). Checks that
// - an unusable input throws InputError with one line that names the source;
// - a loaded table finds each of its rows by code, with coordinates in range;
// - the table written back as RFC 4180 CSV (every field quoted) loads as the same table.
// An input that fails here is an airports file for `flights_etl --airports FILE`.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flights.hpp"
#include "fuzz_check.hpp"

namespace {

void append_quoted(std::string& out, std::string_view field) {
  out += '"';
  for (const char c : field) {
    out += c;
    if (c == '"') out += '"';
  }
  out += '"';
}

void append_double(std::string& out, double value) {
  std::array<char, 32> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), result.ptr);
}

std::vector<flights::Airport> sorted_rows(const flights::AirportTable& table) {
  auto rows = table.rows();
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.iata < b.iata; });
  return rows;
}

bool same(const flights::Airport& a, const flights::Airport& b) {
  return a.iata == b.iata && a.name == b.name && a.city == b.city && a.state == b.state &&
         a.country == b.country && a.latitude == b.latitude && a.longitude == b.longitude &&
         std::signbit(a.latitude) == std::signbit(b.latitude) &&
         std::signbit(a.longitude) == std::signbit(b.longitude);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flights::AirportTable table;
  try {
    table = flights::AirportTable::from_csv(text, "airports.csv");
  } catch (const flights::InputError& e) {
    const std::string_view what = e.what();
    WEIR_FUZZ_CHECK(what.starts_with("airports.csv: "), what);
    WEIR_FUZZ_CHECK(weir_fuzz::is_one_line(what), what);
    return 0;
  }

  const auto rows = sorted_rows(table);
  WEIR_FUZZ_CHECK(rows.size() == table.size());
  WEIR_FUZZ_CHECK(table.empty() == rows.empty());
  for (const auto& row : rows) {
    WEIR_FUZZ_CHECK(!row.iata.empty());
    const flights::Airport* found = table.find(row.iata);
    WEIR_FUZZ_CHECK(found != nullptr && same(*found, row), row.iata);
    WEIR_FUZZ_CHECK(row.latitude >= -90 && row.latitude <= 90);
    WEIR_FUZZ_CHECK(row.longitude >= -180 && row.longitude <= 180);
  }

  // Written back, every field quoted, it loads as the same table.
  std::string csv(flights::AirportTable::expected_header);
  csv += '\n';
  for (const auto& row : rows) {
    for (const std::string* field : {&row.iata, &row.name, &row.city, &row.state, &row.country}) {
      append_quoted(csv, *field);
      csv += ',';
    }
    append_double(csv, row.latitude);
    csv += ',';
    append_double(csv, row.longitude);
    csv += "\r\n";
  }
  flights::AirportTable again;
  try {
    again = flights::AirportTable::from_csv(csv, "again.csv");
  } catch (const flights::InputError& e) {
    weir_fuzz::fail(__FILE__, __LINE__, "the table written back does not load", e.what());
  }
  const auto rows_again = sorted_rows(again);
  WEIR_FUZZ_CHECK(rows_again.size() == rows.size(), csv);
  for (std::size_t i = 0; i < rows.size(); ++i) WEIR_FUZZ_CHECK(same(rows[i], rows_again[i]), csv);
  return 0;
}
