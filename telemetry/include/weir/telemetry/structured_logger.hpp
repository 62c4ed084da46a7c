#pragma once
/// \file Structured logs through spdlog: `StructuredLogger` writes text or JSON lines that carry the
/// run id, pipeline, stage and trace id; `make_logger` makes the spdlog logger behind it. The logging
/// API every part of the telemetry writes through (the interceptor that logs runs is in logs.hpp).

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
namespace sinks {
class sink;
}
}  // namespace spdlog

namespace weir::telemetry {

/// Severity of a log line, in spdlog's order.
enum class LogLevel { trace, debug, info, warn, error, critical, off };

/// How a log line is written: the readable message alone, or one JSON object per line.
enum class LogFormat { text, json };

/// "trace", "debug", "info", "warn" (or "warning"), "error", "critical", "off"; none otherwise.
[[nodiscard]] std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;
/// "text" or "json"; none otherwise.
[[nodiscard]] std::optional<LogFormat> parse_log_format(std::string_view name) noexcept;
[[nodiscard]] std::string_view to_string(LogLevel level) noexcept;

/// The ids a log line carries; empty fields are left out. Views valid during the call only.
struct LogContext {
  std::string_view run_id;
  std::string_view pipeline;
  std::string_view stage;
  std::string_view trace_id;
  std::string_view span_id;
};

/// Settings of a logger made by make_logger.
struct LogOptions {
  LogFormat format = LogFormat::text;
  LogLevel level = LogLevel::info;
  std::string name = "weir";
  /// Where lines go; null: standard error.
  std::shared_ptr<spdlog::sinks::sink> sink;
};

/// An spdlog logger for Weir's lines: with LogFormat::json its pattern is "%v" (a StructuredLogger
/// writes the whole JSON object, time and level included), with text "[time] [level] message". The
/// logger is not registered in spdlog's registry.
[[nodiscard]] std::shared_ptr<spdlog::logger> make_logger(const LogOptions& options = {});
/// The same, to standard error, with the given format and level.
[[nodiscard]] std::shared_ptr<spdlog::logger> make_logger(LogFormat format, LogLevel level = LogLevel::info);
/// The logger Weir's servers and exporters write to when none is given: text lines at info and
/// above to standard error (never standard output), made by make_logger on first use; one per
/// process, shared. Thread-safe.
[[nodiscard]] std::shared_ptr<spdlog::logger> stderr_logger();

/// An spdlog logger and the format of its lines. In JSON, a line is
/// {"time" (RFC 3339 UTC), "level", "message", "run_id", "pipeline", "stage", "trace_id", "span_id",
/// and any extra fields}; in text, the message followed by the extra fields as `key=value`. Callers
/// check `should_log` before building a line, so a filtered level costs one comparison.
/// Thread-safe (spdlog loggers are); a cheap value to copy.
class StructuredLogger {
 public:
  /// Logs to `logger`, or to spdlog's default logger when null.
  explicit StructuredLogger(std::shared_ptr<spdlog::logger> logger = nullptr,
                            LogFormat format = LogFormat::text);
  [[nodiscard]] bool should_log(LogLevel level) const noexcept;
  /// Writes one line (nothing when `level` is filtered out). `fields` is a JSON object or null.
  void log(LogLevel level, const LogContext& context, std::string_view message,
           const nlohmann::json& fields = nullptr) const;
  [[nodiscard]] const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }
  [[nodiscard]] LogFormat format() const noexcept { return format_; }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  LogFormat format_;
};

}  // namespace weir::telemetry
