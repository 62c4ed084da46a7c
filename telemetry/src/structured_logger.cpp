#include "weir/telemetry/structured_logger.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "weir/telemetry/json_fields.hpp"

namespace weir::telemetry {

using json = nlohmann::json;

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
  if (name == "trace") return LogLevel::trace;
  if (name == "debug") return LogLevel::debug;
  if (name == "info") return LogLevel::info;
  if (name == "warn" || name == "warning") return LogLevel::warn;
  if (name == "error") return LogLevel::error;
  if (name == "critical") return LogLevel::critical;
  if (name == "off") return LogLevel::off;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view name) noexcept {
  if (name == "text") return LogFormat::text;
  if (name == "json") return LogFormat::json;
  return std::nullopt;
}

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::critical:
      return "critical";
    case LogLevel::off:
      return "off";
  }
  return "unknown";
}

namespace {
spdlog::level::level_enum spd(LogLevel l) noexcept {
  return static_cast<spdlog::level::level_enum>(static_cast<int>(l));
}
static_assert(static_cast<int>(LogLevel::off) == static_cast<int>(spdlog::level::off));
static_assert(static_cast<int>(LogLevel::warn) == static_cast<int>(spdlog::level::warn));
}  // namespace

std::shared_ptr<spdlog::logger> make_logger(const LogOptions& options) {
  auto sink = options.sink ? options.sink : std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(options.name, std::move(sink));
  logger->set_level(spd(options.level));
  logger->set_pattern(options.format == LogFormat::json ? "%v" : "[%Y-%m-%d %H:%M:%S.%f] [%l] %v");
  return logger;
}

std::shared_ptr<spdlog::logger> make_logger(LogFormat format, LogLevel level) {
  LogOptions o;
  o.format = format;
  o.level = level;
  return make_logger(o);
}

std::shared_ptr<spdlog::logger> stderr_logger() {
  static const std::shared_ptr<spdlog::logger> logger = make_logger();
  return logger;
}

StructuredLogger::StructuredLogger(std::shared_ptr<spdlog::logger> logger, LogFormat format)
    : logger_(logger ? std::move(logger) : spdlog::default_logger()), format_(format) {}

bool StructuredLogger::should_log(LogLevel level) const noexcept {
  return logger_->should_log(spd(level));
}

void StructuredLogger::log(LogLevel level, const LogContext& c, std::string_view message,
                           const json& fields) const {
  if (!should_log(level)) return;
  try {
    if (format_ == LogFormat::json) {
      nlohmann::ordered_json j{{"time", format_rfc3339(std::chrono::system_clock::now())},
                               {"level", to_string(level)},
                               {"message", message}};
      auto put = [&](const char* key, std::string_view v) {
        if (!v.empty()) j[key] = v;
      };
      put("run_id", c.run_id);
      put("pipeline", c.pipeline);
      put("stage", c.stage);
      put("trace_id", c.trace_id);
      put("span_id", c.span_id);
      if (fields.is_object()) {
        for (const auto& [k, v] : fields.items()) j[k] = v;
      }
      logger_->log(spd(level), "{}", j.dump(-1, ' ', false, json::error_handler_t::replace));
      return;
    }
    std::string line(message);
    if (fields.is_object()) {
      for (const auto& [k, v] : fields.items()) {
        line += ' ';
        line += k;
        line += '=';
        line += v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, json::error_handler_t::replace);
      }
    }
    logger_->log(spd(level), "{}", line);
  } catch (...) {
    // Logging never fails the caller.
  }
}

}  // namespace weir::telemetry
