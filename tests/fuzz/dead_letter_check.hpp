// The check of a dead letter line that fuzz_flights and fuzz_writers share: dead_letter_line's
// promise, read from an independent account of which records it writes as JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl.hpp"
#include "flights.hpp"
#include "fuzz_check.hpp"

namespace weir_fuzz {

/// Whether a dead letter writes `text` as JSON: one JSON value that nlohmann::json parses, nested
/// at most flights::max_json_depth deep, with no object naming a key twice. Then `value` is it.
inline bool written_as_json(std::string_view text, nlohmann::json& value) {
  if (nesting_depth(text) > flights::max_json_depth) return false;
  std::vector<std::set<std::string>> objects;  // the keys of each open object
  bool repeated = false;
  const nlohmann::json::parser_callback_t note_keys =
      [&objects, &repeated](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using event_t = nlohmann::json::parse_event_t;
        if (event == event_t::object_start) {
          objects.emplace_back();
        } else if (event == event_t::object_end) {
          objects.pop_back();
        } else if (event == event_t::key && !objects.back().insert(parsed.get<std::string>()).second) {
          repeated = true;
        }
        return true;
      };
  value = nlohmann::json::parse(text, note_keys, false);
  return !value.is_discarded() && !repeated;
}

/// Checks dead_letter_line for the record behind `index`: one line of UTF-8 JSON with exactly the
/// index, the reason (as written when it is valid UTF-8) and the record, as JSON when
/// written_as_json accepts its text and it was not too large, else as a string (the text itself
/// when that is valid UTF-8).
inline void check_dead_letter_line(const flights::EtlInput& input, std::int64_t index,
                                   const std::string& reason) {
  const std::string line = flights::dead_letter_line(input, flights::DeadLetterEntry{index, reason});
  WEIR_FUZZ_CHECK(line.find('\n') == std::string::npos, line);
  WEIR_FUZZ_CHECK(is_utf8(line), line);
  const auto parsed = nlohmann::json::parse(line, nullptr, false);
  WEIR_FUZZ_CHECK(!parsed.is_discarded() && parsed.is_object(), line);
  WEIR_FUZZ_CHECK(parsed.size() == 3, line);
  WEIR_FUZZ_CHECK(parsed.at("index") == index, line);
  WEIR_FUZZ_CHECK(parsed.at("reason").is_string(), line);
  if (is_utf8(reason)) WEIR_FUZZ_CHECK(parsed.at("reason") == reason, line);
  const flights::RawRecord& raw = input.raw(index);
  nlohmann::json record;
  if (!raw.too_large && written_as_json(raw.json, record)) {
    WEIR_FUZZ_CHECK(parsed.at("record") == record, line);
    return;
  }
  WEIR_FUZZ_CHECK(parsed.at("record").is_string(), line);
  if (is_utf8(raw.json)) WEIR_FUZZ_CHECK(parsed.at("record") == raw.json, line);
}

}  // namespace weir_fuzz
