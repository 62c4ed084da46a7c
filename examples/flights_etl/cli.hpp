// The command line of flights_etl: its flags, their defaults and their checks (CLI11), apart from
// the program so that tests and the fuzz target parse exactly what the program parses.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "etl.hpp"

namespace flights {

/// Every setting of a flights_etl command line, each checked against its documented range (see the
/// example's README). A plain value.
struct CommandLine {
  /// --flights, --airports, --window (as seconds), --repeat (1 to 1,000,000) and --parallelism (1 to
  /// 256); `configure` and `fast_path` keep their defaults.
  EtlOptions etl;
  std::filesystem::path out_dir = "out/flights";  ///< --out
  int metrics_port = -1;                          ///< --metrics-port, 0 to 65535; -1 when absent
  bool keep_serving = false;                      ///< --keep-serving (only with --metrics-port)
  std::filesystem::path events_file;              ///< --events-file; empty when absent
  std::string log_format;                         ///< --log-format: "text" or "json"; empty when absent
  std::string log_level;      ///< --log-level: trace, debug, info, warn, error or off; empty when absent
  std::string trace_file;     ///< --trace-file; empty when absent
  std::string otlp_endpoint;  ///< --otlp-endpoint: an http or https URL with a host; empty when absent
  double trace_sample = 1.0;  ///< --trace-sample, from 0 to 1
};

/// What parse_command_line gives: the settings, or what CLI11 prints instead of running (the help,
/// or the error and "Run with --help for more information.") with the exit code it asks for. A plain
/// value.
struct ParsedCommandLine {
  std::optional<CommandLine> settings;  ///< set when the program should run
  int exit_code = 0;                    ///< when there are no settings: 0 for --help, else CLI11's code
  std::string out;                      ///< for stdout (the help)
  std::string err;                      ///< for stderr (the error)
};

/// Parses and checks the command line `argv[0..argc)` (argv[0]: the program's name, shown in the
/// help). Never exits and never prints; a wrong command line or --help comes back as the result's
/// exit code and texts, and no exception leaves it other than std::bad_alloc.
[[nodiscard]] ParsedCommandLine parse_command_line(int argc, const char* const* argv);

}  // namespace flights
