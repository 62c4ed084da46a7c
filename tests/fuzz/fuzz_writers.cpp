// Fuzz target: the JSON-lines writers of the flights example, round trip. From the input it makes
// the values a line is written from (state names, window bounds and figures, a route, a flight, a
// dead letter's record and reason), writes each line, parses it back with nlohmann::json and
// checks that it is one line of JSON that gives back what was written:
// - window_line (state_windows.jsonl) and route_line (routes.jsonl), averages as rounded_mean;
// - append_json (an enriched flight), which also must be the text of to_json(flight).dump();
// - dead_letter_line (dead_letters.jsonl), the record as JSON when it is JSON nested at most
//   max_json_depth deep without a repeated key and not too large, else as text.
// Strings are any bytes: every line must be valid UTF-8 JSON, a string that is valid UTF-8 reads
// back as itself, and in the lines written with append_json_string every byte outside a valid
// UTF-8 sequence reads back as U+FFFD.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dead_letter_check.hpp"
#include "etl.hpp"
#include "flights.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr std::int64_t earliest_utc = -62167219200;  // 0000-01-01T00:00:00Z
constexpr std::int64_t latest_utc = 253402300799;    // 9999-12-31T23:59:59Z

std::string text(FuzzedDataProvider& in, std::size_t max = 64) {
  return in.ConsumeRandomLengthString(max);
}

/// Unix seconds, mostly within the years format_utc writes.
std::int64_t seconds(FuzzedDataProvider& in) {
  if (in.ConsumeIntegralInRange(0, 15) == 0) return in.ConsumeIntegral<std::int64_t>();
  return in.ConsumeIntegralInRange(earliest_utc, latest_utc);
}

nlohmann::json parse_line(const std::string& line) {
  WEIR_FUZZ_CHECK(line.find('\n') == std::string::npos, line);
  WEIR_FUZZ_CHECK(weir_fuzz::is_utf8(line), line);
  auto parsed = nlohmann::json::parse(line, nullptr, false);
  WEIR_FUZZ_CHECK(!parsed.is_discarded() && parsed.is_object(), line);
  return parsed;
}

/// A string written with append_json_string reads back as `written` with every byte outside a
/// valid UTF-8 sequence replaced by U+FFFD.
void check_string(const nlohmann::json& value, const std::string& written, const std::string& line) {
  WEIR_FUZZ_CHECK(value.is_string(), line);
  WEIR_FUZZ_CHECK(value.get<std::string>() == weir_fuzz::to_utf8(written, "\xEF\xBF\xBD"), line);
}

bool in_utc_range(std::int64_t t) {
  return t >= earliest_utc && t <= latest_utc;
}

void check_window(const flights::EtlInput& input, FuzzedDataProvider& in) {
  flights::StateWindow w;
  w.start = seconds(in);
  const bool tumbling = in.ConsumeBool() && in_utc_range(w.start);
  w.end = tumbling ? w.start + in.ConsumeIntegralInRange<std::int64_t>(1, 315360000) : seconds(in);
  w.state = in.ConsumeIntegralInRange<std::uint32_t>(0, static_cast<std::uint32_t>(input.states.size() - 1));
  w.stats.flights = in.ConsumeIntegral<std::uint64_t>();
  w.stats.delayed = in.ConsumeIntegral<std::uint64_t>();
  w.stats.delay_sum = in.ConsumeIntegral<std::int64_t>();
  w.stats.max_delay = in.ConsumeIntegral<std::int32_t>();
  w.stats.total_distance = in.ConsumeIntegral<std::int64_t>();
  std::string line;
  try {
    line = flights::window_line(input, w);
  } catch (const std::out_of_range&) {
    WEIR_FUZZ_CHECK(!in_utc_range(w.start) || !in_utc_range(w.end));
    return;
  }
  WEIR_FUZZ_CHECK(in_utc_range(w.start) && in_utc_range(w.end), line);
  const auto j = parse_line(line);
  WEIR_FUZZ_CHECK(j.size() == 8, line);
  WEIR_FUZZ_CHECK(j.at("window_start") == flights::format_utc(w.start), line);
  WEIR_FUZZ_CHECK(j.at("window_end") == flights::format_utc(w.end), line);
  check_string(j.at("state"), input.states[w.state], line);
  WEIR_FUZZ_CHECK(j.at("flights") == w.stats.flights, line);
  WEIR_FUZZ_CHECK(j.at("delayed") == w.stats.delayed, line);
  WEIR_FUZZ_CHECK(
      j.at("avg_delay").get<double>() == flights::rounded_mean(w.stats.delay_sum, w.stats.flights), line);
  WEIR_FUZZ_CHECK(j.at("max_delay") == w.stats.max_delay, line);
  WEIR_FUZZ_CHECK(j.at("total_distance") == w.stats.total_distance, line);
}

void check_route(const flights::EtlInput& input, FuzzedDataProvider& in) {
  const auto last = static_cast<std::uint32_t>(input.states.size() - 1);
  flights::Route r;
  r.states.origin_state = in.ConsumeIntegralInRange<std::uint32_t>(0, last);
  r.states.destination_state = in.ConsumeIntegralInRange<std::uint32_t>(0, last);
  r.stats.flights = in.ConsumeIntegral<std::uint64_t>();
  r.stats.delay_sum = in.ConsumeIntegral<std::int64_t>();
  const std::string line = flights::route_line(input, r);
  const auto j = parse_line(line);
  WEIR_FUZZ_CHECK(j.size() == 4, line);
  check_string(j.at("origin_state"), input.states[r.states.origin_state], line);
  check_string(j.at("destination_state"), input.states[r.states.destination_state], line);
  WEIR_FUZZ_CHECK(j.at("flights") == r.stats.flights, line);
  WEIR_FUZZ_CHECK(
      j.at("avg_delay").get<double>() == flights::rounded_mean(r.stats.delay_sum, r.stats.flights), line);
}

void check_flight(FuzzedDataProvider& in) {
  flights::EnrichedFlight f{
      flights::Flight{in.ConsumeIntegral<std::int64_t>(), seconds(in), in.ConsumeIntegral<std::int32_t>(),
                      in.ConsumeIntegral<std::int32_t>(), text(in, 8), text(in, 8)},
      text(in, 16), text(in, 16)};
  std::string line;
  try {
    flights::append_json(line, f);
  } catch (const std::out_of_range&) {
    WEIR_FUZZ_CHECK(!in_utc_range(f.flight.time));
    return;
  }
  const auto j = parse_line(line);
  WEIR_FUZZ_CHECK(j.size() == 8, line);
  WEIR_FUZZ_CHECK(j.at("index") == f.flight.index, line);
  WEIR_FUZZ_CHECK(j.at("date") == flights::format_utc(f.flight.time), line);
  WEIR_FUZZ_CHECK(j.at("delay") == f.flight.delay, line);
  WEIR_FUZZ_CHECK(j.at("distance") == f.flight.distance, line);
  check_string(j.at("origin"), f.flight.origin, line);
  check_string(j.at("destination"), f.flight.destination, line);
  check_string(j.at("origin_state"), f.origin_state, line);
  check_string(j.at("destination_state"), f.destination_state, line);
  const bool utf8 = weir_fuzz::is_utf8(f.flight.origin) && weir_fuzz::is_utf8(f.flight.destination) &&
                    weir_fuzz::is_utf8(f.origin_state) && weir_fuzz::is_utf8(f.destination_state);
  if (utf8) WEIR_FUZZ_CHECK(flights::to_json(f).dump() == line, line);
}

void check_dead_letter(FuzzedDataProvider& in) {
  flights::EtlInput input;
  const std::int64_t index = in.ConsumeIntegralInRange<std::int64_t>(0, 1'000'000);
  const std::string reason = text(in, 96);
  const bool too_large = in.ConsumeIntegralInRange(0, 7) == 0;
  input.records.push_back(flights::RawRecord{0, text(in, 1024), too_large});
  weir_fuzz::check_dead_letter_line(input, index, reason);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  flights::EtlInput input;
  const int states = in.ConsumeIntegralInRange(1, 3);
  for (int i = 0; i < states; ++i) input.states.push_back(text(in, 24));
  check_window(input, in);
  check_route(input, in);
  check_flight(in);
  check_dead_letter(in);
  return 0;
}
