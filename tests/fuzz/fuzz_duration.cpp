// Fuzz target: the example's text-to-time parsers, on the same input: parse_duration (--window)
// and parse_date (the "date" of a flight record). Checks each against what it documents:
// - parse_duration accepts exactly a positive decimal number and one unit s, m, h, d or w, gives
//   the number times the unit's seconds when that fits in 64 bits, and otherwise throws
//   std::invalid_argument with a one-line message;
// - parse_date accepts exactly "YYYY/MM/DD HH:MM" with a date that exists, and gives the Unix
//   seconds that format_utc writes back as the same date; anything else is a one-line RecordError.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "flights.hpp"
#include "fuzz_check.hpp"

namespace {

/// The seconds of `text` by the grammar of parse_duration, computed independently; -1 when the
/// text is not a duration or its seconds do not fit in an int64.
std::int64_t expected_duration(std::string_view text) {
  if (text.size() < 2) return -1;
  std::int64_t scale = 0;
  switch (text.back()) {
    case 's':
      scale = 1;
      break;
    case 'm':
      scale = 60;
      break;
    case 'h':
      scale = 3600;
      break;
    case 'd':
      scale = 86400;
      break;
    case 'w':
      scale = 604800;
      break;
    default:
      return -1;
  }
  unsigned __int128 value = 0;
  for (const char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > std::numeric_limits<std::int64_t>::max()) return -1;
  }
  value *= static_cast<unsigned>(scale);
  if (value == 0 || value > std::numeric_limits<std::int64_t>::max()) return -1;
  return static_cast<std::int64_t>(value);
}

void check_duration(std::string_view text) {
  const std::int64_t expected = expected_duration(text);
  try {
    const std::int64_t seconds = flights::parse_duration(text);
    WEIR_FUZZ_CHECK(seconds == expected, text);
  } catch (const std::invalid_argument& e) {
    WEIR_FUZZ_CHECK(expected == -1, text);
    const std::string_view what = e.what();
    WEIR_FUZZ_CHECK(what.starts_with("invalid duration '"), what);
    WEIR_FUZZ_CHECK(weir_fuzz::is_one_line(what), what);
  }
}

bool date_shaped(std::string_view text) {
  constexpr std::string_view shape = "dddd/dd/dd dd:dd";
  if (text.size() != shape.size()) return false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (shape[i] == 'd' ? !digit : text[i] != shape[i]) return false;
  }
  return true;
}

void check_date(std::string_view text) {
  try {
    const std::int64_t seconds = flights::parse_date(text);
    WEIR_FUZZ_CHECK(date_shaped(text), text);
    // format_utc writes the same date and time, with ":00" seconds.
    std::string written = flights::format_utc(seconds);
    WEIR_FUZZ_CHECK(written.substr(16) == ":00Z", written);
    written = written.substr(0, 16);
    written[4] = '/';
    written[7] = '/';
    written[10] = ' ';
    WEIR_FUZZ_CHECK(written == text, written);
  } catch (const flights::RecordError& e) {
    const std::string_view what = e.what();
    WEIR_FUZZ_CHECK(what.starts_with(date_shaped(text) ? "impossible date: " : "malformed date: "), what);
    WEIR_FUZZ_CHECK(weir_fuzz::is_one_line(what), what);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_duration(text);
  check_date(text);
  return 0;
}
