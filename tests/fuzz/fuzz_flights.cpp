// Fuzz target: the flights record parser on a whole input file (a JSON array or JSON lines), as
// flights_etl reads it: split_records, then parse_flight on every record, and the dead letter of
// every record that fails. Checks that
// - splitting a valid JSON array gives its elements, and JSON lines give their non-blank lines;
// - a RecordSplitter fed the input in pieces of any size (empty ones too) gives the same records,
//   or the same error, as split_records; with a small record limit, exactly the records longer
//   than it are cut to their first bytes and marked too large, and parse_flight rejects them;
// - parse_flight (fast path first) and parse_flight_json agree on every record, flight or reason;
// - a parsed flight is valid (airports non-empty, distance not negative, the date writes back);
// - every reason and input error is one line;
// - every dead letter line is JSON that gives back the index, the reason and the record (as JSON
//   when it is JSON nested at most max_json_depth deep without a repeated key, else as text).
// An input file that fails here is a flights file: `flights_etl --flights FILE` reads it the same way.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dead_letter_check.hpp"
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

/// The record limit of the second splitter: records longer than this are cut (it is above
/// too_large_prefix, so that a cut record keeps exactly that prefix).
constexpr std::size_t small_limit = flights::too_large_prefix + 44;

/// What a RecordSplitter gives for `text` fed in pieces: the records, or the InputError's message.
struct Split {
  std::vector<flights::RawRecord> records;
  std::string error;
};

/// Feeds `text` to a RecordSplitter with record limit `max_record` in pieces of 0 to 64 bytes whose
/// sizes come from `seed`.
Split split_in_pieces(std::string_view text, std::size_t max_record, std::uint32_t seed) {
  Split out;
  flights::RecordSplitter splitter("flights.json", max_record);
  const flights::RecordSplitter::Emit keep = [&out](flights::RawRecord&& record) {
    out.records.push_back(std::move(record));
  };
  std::minstd_rand pieces(seed);
  try {
    while (!text.empty()) {
      const std::size_t size = std::min<std::size_t>(text.size(), pieces() % 65);
      splitter.feed(text.substr(0, size), keep);
      text.remove_prefix(size);
    }
    splitter.finish(keep);
  } catch (const flights::InputError& e) {
    out.error = e.what();
  }
  return out;
}

bool json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool same_record(const flights::RawRecord& a, const flights::RawRecord& b) {
  return a.index == b.index && a.json == b.json && a.too_large == b.too_large;
}

/// Checks the splitter fed in pieces against split_records' `whole` result (or `error`), with the
/// default record limit and with small_limit. Returns the records cut as too large.
std::vector<flights::RawRecord> check_pieces(std::string_view text,
                                             const std::vector<flights::RawRecord>& whole,
                                             const std::string& error) {
  const auto seed = static_cast<std::uint32_t>(std::hash<std::string_view>{}(text) | 1U);
  const Split same_limit = split_in_pieces(text, flights::max_record_bytes, seed);
  WEIR_FUZZ_CHECK(same_limit.error == error, same_limit.error + " / " + error);
  WEIR_FUZZ_CHECK(same_limit.records.size() == whole.size() || !error.empty());
  if (!error.empty()) return {};
  for (std::size_t i = 0; i < whole.size(); ++i)
    WEIR_FUZZ_CHECK(same_record(same_limit.records[i], whole[i]), same_limit.records[i].json);

  Split small = split_in_pieces(text, small_limit, seed + 1);
  WEIR_FUZZ_CHECK(small.error.empty(), small.error);
  WEIR_FUZZ_CHECK(small.records.size() == whole.size());
  std::vector<flights::RawRecord> cut;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    const flights::RawRecord& full = whole[i];
    flights::RawRecord& record = small.records[i];
    WEIR_FUZZ_CHECK(record.index == full.index);
    WEIR_FUZZ_CHECK(!full.too_large);
    if (!record.too_large) {
      WEIR_FUZZ_CHECK(full.json.size() <= small_limit && record.json == full.json, full.json);
      continue;
    }
    // Cut: the first too_large_prefix bytes from the record's first non-blank byte, which may
    // include blanks after its last (the limit counts every byte up to the record's end).
    const std::size_t common = std::min(record.json.size(), full.json.size());
    WEIR_FUZZ_CHECK(
        record.json.size() == flights::too_large_prefix || full.json.size() < flights::too_large_prefix,
        record.json);
    WEIR_FUZZ_CHECK(record.json.size() <= flights::too_large_prefix, record.json);
    WEIR_FUZZ_CHECK(record.json.compare(0, common, full.json, 0, common) == 0, record.json);
    const std::string_view rest = std::string_view(record.json).substr(common);
    WEIR_FUZZ_CHECK(std::all_of(rest.begin(), rest.end(), json_space), record.json);
    cut.push_back(std::move(record));
  }
  return cut;
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flights::EtlInput input;
  std::string error;
  try {
    input.records = flights::split_records(text, "flights.json");
  } catch (const flights::InputError& e) {
    error = e.what();
    WEIR_FUZZ_CHECK(error.starts_with("flights.json: "), error);
    WEIR_FUZZ_CHECK(weir_fuzz::is_one_line(error), error);
  }
  flights::EtlInput cut;
  cut.records = check_pieces(text, input.records, error);
  if (!error.empty()) return 0;
  check_split(text, input.records);

  // A record cut as too large fails as "too large: ..." and is dead-lettered as text.
  for (std::size_t i = 0; i < cut.records.size(); ++i) {
    std::string reason;
    try {
      (void)flights::parse_flight(cut.records[i]);
    } catch (const flights::RecordError& e) {
      reason = e.what();
    }
    WEIR_FUZZ_CHECK(reason.starts_with("too large"), reason);
    weir_fuzz::check_dead_letter_line(cut, static_cast<std::int64_t>(i), reason);
  }

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
      weir_fuzz::check_dead_letter_line(input, record.index, fast_reason);
    }
  }
  return 0;
}
