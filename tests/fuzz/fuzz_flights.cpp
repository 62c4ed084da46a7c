// Fuzz target: the flights record parser on a whole input file (a JSON array or JSON lines), as
// flights_etl reads it: split_records, then parse_flight on every record, and the dead letter of
// every record that fails. Checks that
// - splitting a valid JSON array gives its elements, and JSON lines give their non-blank lines;
// - parse_flight (fast path first) and parse_flight_json agree on every record, flight or reason;
// - a parsed flight is valid (airports non-empty, distance not negative, the date writes back);
// - every reason and input error is one line;
// - every dead letter line is JSON that gives back the index, the reason and the record.
// An input file that fails here is a flights file: `flights_etl --flights FILE` reads it the same way.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl.hpp"
#include "flights.hpp"
#include "fuzz_check.hpp"

namespace {

std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

void check_split(std::string_view text, const std::vector<flights::RawRecord>& records) {
  for (std::size_t i = 0; i < records.size(); ++i)
    WEIR_FUZZ_CHECK(records[i].index == static_cast<std::int64_t>(i));
  std::string_view body = text;
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  body = trim(body);
  if (body.starts_with('[')) {
    // A valid JSON array splits into exactly its elements (compared when not too deep to compare).
    if (weir_fuzz::nesting_depth(body) > weir_fuzz::max_compared_depth) return;
    const auto array = nlohmann::json::parse(body, nullptr, false);
    if (array.is_discarded()) return;
    WEIR_FUZZ_CHECK(array.is_array());
    WEIR_FUZZ_CHECK(records.size() == array.size(), body);
    for (std::size_t i = 0; i < records.size(); ++i) {
      const auto element = nlohmann::json::parse(records[i].json, nullptr, false);
      WEIR_FUZZ_CHECK(!element.is_discarded(), records[i].json);
      WEIR_FUZZ_CHECK(element == array[i], records[i].json);
    }
    return;
  }
  // JSON lines: one record per non-blank line, without its surrounding white space.
  std::size_t k = 0;
  std::size_t pos = 0;
  while (pos <= body.size()) {
    std::size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view line = trim(body.substr(pos, end - pos));
    if (!line.empty()) {
      WEIR_FUZZ_CHECK(k < records.size(), line);
      WEIR_FUZZ_CHECK(records[k].json == line, records[k].json);
      ++k;
    }
    pos = end + 1;
  }
  WEIR_FUZZ_CHECK(k == records.size());
}

/// "YYYY-MM-DDTHH:MM:SSZ" as parse_date reads it: "YYYY/MM/DD HH:MM".
std::string as_input_date(const std::string& utc) {
  std::string out = utc.substr(0, 16);
  out[4] = '/';
  out[7] = '/';
  out[10] = ' ';
  return out;
}

void check_flight(const flights::Flight& f, const flights::RawRecord& record) {
  WEIR_FUZZ_CHECK(f.index == record.index);
  WEIR_FUZZ_CHECK(!f.origin.empty() && !f.destination.empty(), record.json);
  WEIR_FUZZ_CHECK(f.distance >= 0, record.json);
  const std::string utc = flights::format_utc(f.time);  // throws outside the years 0000 to 9999
  WEIR_FUZZ_CHECK(utc.substr(16) == ":00Z", utc);
  WEIR_FUZZ_CHECK(flights::parse_date(as_input_date(utc)) == f.time, utc);
}

bool same_flight(const flights::Flight& a, const flights::Flight& b) {
  return a.index == b.index && a.time == b.time && a.delay == b.delay && a.distance == b.distance &&
         a.origin == b.origin && a.destination == b.destination;
}

void check_dead_letter(const flights::EtlInput& input, std::int64_t index, const std::string& reason) {
  const std::string line = flights::dead_letter_line(input, flights::DeadLetterEntry{index, reason});
  WEIR_FUZZ_CHECK(line.find('\n') == std::string::npos, line);
  const auto parsed = nlohmann::json::parse(line, nullptr, false);
  WEIR_FUZZ_CHECK(!parsed.is_discarded() && parsed.is_object(), line);
  WEIR_FUZZ_CHECK(parsed.size() == 3, line);
  WEIR_FUZZ_CHECK(parsed.at("index") == index, line);
  if (weir_fuzz::is_utf8(reason)) WEIR_FUZZ_CHECK(parsed.at("reason") == reason, line);
  // The record as JSON when it is JSON, else as the text it was.
  const std::string& raw = input.raw(index).json;
  if (weir_fuzz::nesting_depth(raw) > weir_fuzz::max_compared_depth) return;
  const auto record = nlohmann::json::parse(raw, nullptr, false);
  if (!record.is_discarded()) {
    WEIR_FUZZ_CHECK(parsed.at("record") == record, line);
  } else if (weir_fuzz::is_utf8(raw)) {
    WEIR_FUZZ_CHECK(parsed.at("record") == raw, line);
  } else {
    WEIR_FUZZ_CHECK(parsed.at("record").is_string(), line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flights::EtlInput input;
  try {
    input.records = flights::split_records(text, "flights.json");
  } catch (const flights::InputError& e) {
    const std::string_view what = e.what();
    WEIR_FUZZ_CHECK(what.starts_with("flights.json: "), what);
    WEIR_FUZZ_CHECK(weir_fuzz::is_one_line(what), what);
    return 0;
  }
  check_split(text, input.records);

  for (const auto& record : input.records) {
    std::optional<flights::Flight> fast;
    std::string fast_reason;
    try {
      fast = flights::parse_flight(record);
    } catch (const flights::RecordError& e) {
      fast_reason = e.what();
    }
    std::optional<flights::Flight> full;
    std::string full_reason;
    try {
      full = flights::parse_flight_json(record);
    } catch (const flights::RecordError& e) {
      full_reason = e.what();
    }
    WEIR_FUZZ_CHECK(fast.has_value() == full.has_value(), record.json);
    if (fast) {
      WEIR_FUZZ_CHECK(same_flight(*fast, *full), record.json);
      check_flight(*fast, record);
    } else {
      WEIR_FUZZ_CHECK(fast_reason == full_reason, fast_reason + " / " + full_reason);
      WEIR_FUZZ_CHECK(!fast_reason.empty() && weir_fuzz::is_one_line(fast_reason), fast_reason);
      check_dead_letter(input, record.index, fast_reason);
    }
  }
  return 0;
}
