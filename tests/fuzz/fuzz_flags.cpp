// Fuzz target: the flights_etl command line (flights::parse_command_line, the CLI11 flags the program
// runs with). The input is the words after the program's name: one per line, or, when the input
// starts with a NUL byte, the rest split at NUL bytes (so that a word can hold a newline). A word is
// passed as a C string, as a real argv is, so in the newline form it ends at its first NUL. Checks
// - nothing but the result reports a wrong command line: no exception, no crash;
// - a refused command line has no settings, CLI11's exit code for a parse error and its message on
//   stderr ending with "Run with --help for more information."; a refused value names its flag;
//   --help gives exit code 0 and the help on stdout;
// - accepted settings are in their documented ranges: --repeat 1 to 1,000,000, --parallelism 1 to
//   256, --metrics-port absent (-1) or 0 to 65535, --keep-serving only with a port, --window from 1 s
//   to 3650 days, --trace-sample a number from 0 to 1, --otlp-endpoint an http or https URL with a
//   host that otlp_endpoint_error accepts and never with --trace-file, --log-format and --log-level
//   from their sets;
// - the accepted settings written back as flags (`--flag=value`, or `--flag` and an empty word) parse
//   to the same settings.
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <weir/telemetry/otlp_endpoint.hpp>

#include "cli.hpp"
#include "fuzz_check.hpp"

namespace {

/// The argv words of the input (see the file's comment).
std::vector<std::string> words_of(std::string_view input) {
  char separator = '\n';
  if (!input.empty() && input.front() == '\0') {
    separator = '\0';
    input.remove_prefix(1);
  }
  std::vector<std::string> words;
  std::size_t pos = 0;
  while (pos < input.size()) {
    std::size_t end = input.find(separator, pos);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view word = input.substr(pos, end - pos);
    words.emplace_back(word.substr(0, word.find('\0')));
    pos = end + 1;
  }
  return words;
}

flights::ParsedCommandLine parse(const std::vector<std::string>& words) {
  std::vector<const char*> argv{"flights_etl"};
  for (const std::string& w : words) argv.push_back(w.c_str());
  argv.push_back(nullptr);
  try {
    return flights::parse_command_line(static_cast<int>(argv.size() - 1), argv.data());
  } catch (const std::exception& e) {
    weir_fuzz::fail(__FILE__, __LINE__, "parse_command_line threw", e.what());
  } catch (...) {
    weir_fuzz::fail(__FILE__, __LINE__, "parse_command_line threw something that is not an exception");
  }
}

constexpr std::string_view run_with_help = "Run with --help for more information.\n";

constexpr std::array<std::string_view, 14> flags{
    "--flights",     "--airports",     "--out",           "--window",      "--repeat",
    "--parallelism", "--metrics-port", "--keep-serving",  "--events-file", "--log-format",
    "--log-level",   "--trace-file",   "--otlp-endpoint", "--trace-sample"};

bool names_a_flag(std::string_view message) {
  for (const std::string_view flag : flags) {
    if (message.starts_with(flag) && message.substr(flag.size()).starts_with(": ")) return true;
  }
  return false;
}

void check_refused(const flights::ParsedCommandLine& parsed) {
  if (parsed.exit_code == 0) {  // --help
    WEIR_FUZZ_CHECK(parsed.err.empty(), parsed.err);
    WEIR_FUZZ_CHECK(parsed.out.starts_with("Flights ETL: "), parsed.out);
    WEIR_FUZZ_CHECK(parsed.out.find("--otlp-endpoint") != std::string::npos, parsed.out);
    return;
  }
  // CLI11's parse errors: ConversionError (104) to ArgumentMismatch (114), HorribleError (112) aside.
  WEIR_FUZZ_CHECK(parsed.exit_code >= 104 && parsed.exit_code <= 114 && parsed.exit_code != 112,
                  std::to_string(parsed.exit_code) + " " + parsed.err);
  WEIR_FUZZ_CHECK(parsed.out.empty(), parsed.out);
  WEIR_FUZZ_CHECK(parsed.err.size() > run_with_help.size() && parsed.err.ends_with(run_with_help),
                  parsed.err);
  if (parsed.exit_code == 105) WEIR_FUZZ_CHECK(names_a_flag(parsed.err), parsed.err);  // ValidationError
}

bool one_of(std::string_view value, std::initializer_list<std::string_view> set) {
  for (const std::string_view s : set) {
    if (value == s) return true;
  }
  return false;
}

bool starts_with_ascii_case(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

void check_ranges(const flights::CommandLine& c) {
  const auto& e = c.etl;
  WEIR_FUZZ_CHECK(e.repeat >= 1 && e.repeat <= 1'000'000, std::to_string(e.repeat));
  WEIR_FUZZ_CHECK(e.parallelism >= 1 && e.parallelism <= 256, std::to_string(e.parallelism));
  WEIR_FUZZ_CHECK(e.window_seconds >= 1 && e.window_seconds <= std::int64_t{3650} * 86400,
                  std::to_string(e.window_seconds));
  WEIR_FUZZ_CHECK(e.fast_path && !e.configure);
  WEIR_FUZZ_CHECK(c.metrics_port >= -1 && c.metrics_port <= 65535, std::to_string(c.metrics_port));
  WEIR_FUZZ_CHECK(!c.keep_serving || c.metrics_port >= 0, std::to_string(c.metrics_port));
  WEIR_FUZZ_CHECK(std::isfinite(c.trace_sample) && c.trace_sample >= 0.0 && c.trace_sample <= 1.0,
                  std::to_string(c.trace_sample));
  WEIR_FUZZ_CHECK(one_of(c.log_format, {"", "text", "json"}), c.log_format);
  WEIR_FUZZ_CHECK(one_of(c.log_level, {"", "trace", "debug", "info", "warn", "error", "off"}), c.log_level);
  if (!c.otlp_endpoint.empty()) {
    const std::string_view url = c.otlp_endpoint;
    WEIR_FUZZ_CHECK(c.trace_file.empty(), c.trace_file);
    WEIR_FUZZ_CHECK(weir::telemetry::otlp_endpoint_error(url).empty(), url);
    const std::size_t host = starts_with_ascii_case(url, "http://")    ? 7
                             : starts_with_ascii_case(url, "https://") ? 8
                                                                       : 0;
    WEIR_FUZZ_CHECK(host != 0, url);
    WEIR_FUZZ_CHECK(url.size() > host && url[host] != '/', url);
    for (const char ch : url) {
      const auto byte = static_cast<unsigned char>(ch);
      WEIR_FUZZ_CHECK(byte > 0x20 && byte != 0x7f && ch != '?' && ch != '#', url);
    }
  }
}

std::string number(double value) {
  std::array<char, 64> text{};
  const auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(), value);
  WEIR_FUZZ_CHECK(ec == std::errc{});
  return {text.data(), end};
}

/// Appends `flag` with `value`: as `--flag=value`, so that a value may start with '-', but an empty
/// value as a word of its own (CLI11 takes `--flag=` as a flag without its value, which then comes
/// from the next word, whatever it is).
void add(std::vector<std::string>& words, std::string_view flag, std::string_view value) {
  if (value.empty()) {
    words.emplace_back(flag);
    words.emplace_back();
  } else {
    words.push_back(std::string(flag) + "=" + std::string(value));
  }
}

/// `c` as flags.
std::vector<std::string> as_flags(const flights::CommandLine& c) {
  std::vector<std::string> w;
  add(w, "--flights", c.etl.flights_path.native());
  add(w, "--airports", c.etl.airports_path.native());
  add(w, "--out", c.out_dir.native());
  add(w, "--window", std::to_string(c.etl.window_seconds) + "s");
  add(w, "--repeat", std::to_string(c.etl.repeat));
  add(w, "--parallelism", std::to_string(c.etl.parallelism));
  add(w, "--trace-sample", number(c.trace_sample));
  if (c.metrics_port >= 0) add(w, "--metrics-port", std::to_string(c.metrics_port));
  if (c.keep_serving) w.emplace_back("--keep-serving");
  if (!c.events_file.empty()) add(w, "--events-file", c.events_file.native());
  if (!c.log_format.empty()) add(w, "--log-format", c.log_format);
  if (!c.log_level.empty()) add(w, "--log-level", c.log_level);
  if (!c.trace_file.empty()) add(w, "--trace-file", c.trace_file);
  if (!c.otlp_endpoint.empty()) add(w, "--otlp-endpoint", c.otlp_endpoint);
  return w;
}

void check_same(const flights::CommandLine& a, const flights::CommandLine& b, std::string_view detail) {
  WEIR_FUZZ_CHECK(a.etl.flights_path.native() == b.etl.flights_path.native(), detail);
  WEIR_FUZZ_CHECK(a.etl.airports_path.native() == b.etl.airports_path.native(), detail);
  WEIR_FUZZ_CHECK(a.etl.window_seconds == b.etl.window_seconds, detail);
  WEIR_FUZZ_CHECK(a.etl.repeat == b.etl.repeat, detail);
  WEIR_FUZZ_CHECK(a.etl.parallelism == b.etl.parallelism, detail);
  WEIR_FUZZ_CHECK(a.out_dir.native() == b.out_dir.native(), detail);
  WEIR_FUZZ_CHECK(a.metrics_port == b.metrics_port, detail);
  WEIR_FUZZ_CHECK(a.keep_serving == b.keep_serving, detail);
  WEIR_FUZZ_CHECK(a.events_file.native() == b.events_file.native(), detail);
  WEIR_FUZZ_CHECK(a.log_format == b.log_format, detail);
  WEIR_FUZZ_CHECK(a.log_level == b.log_level, detail);
  WEIR_FUZZ_CHECK(a.trace_file == b.trace_file, detail);
  WEIR_FUZZ_CHECK(a.otlp_endpoint == b.otlp_endpoint, detail);
  WEIR_FUZZ_CHECK(
      a.trace_sample == b.trace_sample && std::signbit(a.trace_sample) == std::signbit(b.trace_sample),
      detail);
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) (out += w) += '\n';
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> words = words_of({reinterpret_cast<const char*>(data), size});
  const flights::ParsedCommandLine parsed = parse(words);
  if (!parsed.settings) {
    check_refused(parsed);
    return 0;
  }
  WEIR_FUZZ_CHECK(parsed.exit_code == 0 && parsed.out.empty() && parsed.err.empty(), parsed.err);
  const flights::CommandLine& settings = *parsed.settings;
  check_ranges(settings);

  const std::vector<std::string> again_words = as_flags(settings);
  const flights::ParsedCommandLine again = parse(again_words);
  WEIR_FUZZ_CHECK(again.settings.has_value(), joined(again_words) + again.err);
  check_same(settings, *again.settings, joined(again_words));
  return 0;
}
