#include "weir/telemetry/logging_collector.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "weir/telemetry/json_fields.hpp"

namespace weir::telemetry {

namespace {
double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
}  // namespace

// Formats a line only when its level is enabled.
#define WEIR_LOG_LINE(level, stage, run, ...)                                       \
  do {                                                                              \
    if (log_.should_log(level)) write(level, stage, run, fmt::format(__VA_ARGS__)); \
  } while (false)

LoggingCollector::LoggingCollector(std::shared_ptr<spdlog::logger> logger, LogFormat format)
    : log_(std::move(logger), format) {}

void LoggingCollector::write(LogLevel level, const StageInfo* s, const RunInfo* r, const std::string& text,
                             const nlohmann::json& fields) const {
  if (log_.format() == LogFormat::text) {
    log_.log(level, {}, text);
    return;
  }
  const std::string& pipeline = s != nullptr ? s->pipeline : r->pipeline;
  RunIds ids;
  if (r != nullptr) {
    ids = RunIds{r->run_id, r->trace.trace_id.hex(), r->trace.span_id.hex()};
  } else {
    const std::lock_guard lock(mutex_);
    if (const auto it = runs_.find(pipeline); it != runs_.end()) ids = it->second;
  }
  const std::string span = s != nullptr ? s->span_id.hex() : ids.span_id;
  log_.log(level,
           LogContext{ids.run_id, pipeline, s != nullptr ? std::string_view(s->name) : std::string_view{},
                      ids.trace_id, span},
           text, fields);
}

void LoggingCollector::on_pipeline_started(const RunInfo& r) {
  {
    const std::lock_guard lock(mutex_);
    runs_[r.pipeline] = RunIds{r.run_id, r.trace.trace_id.hex(), r.trace.span_id.hex()};
  }
  WEIR_LOG_LINE(LogLevel::info, nullptr, &r, "pipeline {} run {} started", r.pipeline, r.run_id);
}
void LoggingCollector::on_pipeline_completed(const RunInfo& r, const RunReport& rep) {
  const auto level = rep.status == RunStatus::failed ? LogLevel::error : LogLevel::info;
  WEIR_LOG_LINE(level, nullptr, &r, "pipeline {} run {} {} in {:.3f} ms ({} error kinds)", r.pipeline,
                r.run_id, to_string(rep.status), ms(rep.wall), rep.errors.size());
  // One line per error summary, with the fields events carry.
  const auto err_level = rep.status == RunStatus::failed ? LogLevel::error : LogLevel::warn;
  if (log_.should_log(err_level)) {
    for (const auto& e : rep.errors) {
      write(err_level, nullptr, &r,
            fmt::format("pipeline {} run {} error in stage {}: {}: {} ({} {}{}, first seen {}, last seen {})",
                        r.pipeline, r.run_id, e.stage, e.type, e.message, e.count,
                        e.count == 1 ? "time" : "times", e.retryable ? ", retried" : "",
                        format_rfc3339(e.first_seen), format_rfc3339(e.last_seen)),
            nlohmann::json{{"error", to_json(e)}});
    }
  }
  const std::lock_guard lock(mutex_);
  runs_.erase(r.pipeline);
}
void LoggingCollector::on_stage_started(const StageInfo& s) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} ({}) started, parallelism {}", s.pipeline,
                s.name, s.kind, s.parallelism);
}
void LoggingCollector::on_stage_completed(const StageInfo& s, const StageReport& r) {
  WEIR_LOG_LINE(
      LogLevel::info, &s, nullptr,
      "pipeline {} stage {} completed: in {} out {} filtered {} errors {} skipped {} dead letters {}",
      s.pipeline, s.name, r.items_in, r.items_out, r.filtered, r.errors, r.skipped, r.dead_lettered);
}
void LoggingCollector::on_stage_error(const StageInfo& s, std::string_view type, std::string_view message) {
  WEIR_LOG_LINE(LogLevel::error, &s, nullptr, "pipeline {} stage {} failed: {}: {}", s.pipeline, s.name, type,
                message);
}
void LoggingCollector::on_batch(const StageInfo& s, const BatchStats& b) {
  WEIR_LOG_LINE(LogLevel::trace, &s, nullptr,
                "pipeline {} stage {} batch: in {} out {} errors {} in {:.3f} ms", s.pipeline, s.name,
                b.items_in, b.items_out, b.errors, ms(b.duration));
}
void LoggingCollector::on_error_sent(const StageInfo& s, std::string_view type, std::string_view action) {
  WEIR_LOG_LINE(LogLevel::warn, &s, nullptr, "pipeline {} stage {} item failed with {} ({})", s.pipeline,
                s.name, type, action);
}
void LoggingCollector::on_backpressure(const StageInfo& s, std::chrono::nanoseconds d) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} waited {:.3f} ms for room downstream",
                s.pipeline, s.name, ms(d));
}
void LoggingCollector::on_retry_attempt(const StageInfo& s, int attempt, std::chrono::nanoseconds backoff,
                                        std::string_view type) {
  WEIR_LOG_LINE(LogLevel::warn, &s, nullptr,
                "pipeline {} stage {} retry attempt {} after {} (backoff {:.3f} ms)", s.pipeline, s.name,
                attempt, type, ms(backoff));
}
void LoggingCollector::on_dead_letter_sent(const StageInfo& s, std::string_view type, int attempts) {
  WEIR_LOG_LINE(LogLevel::warn, &s, nullptr, "pipeline {} stage {} dead letter: {} after {} attempts",
                s.pipeline, s.name, type, attempts);
}
void LoggingCollector::on_dead_letter_handler_error(const StageInfo& s, std::string_view type,
                                                    std::string_view message) {
  WEIR_LOG_LINE(LogLevel::error, &s, nullptr, "pipeline {} stage {} dead-letter handler failed: {}: {}",
                s.pipeline, s.name, type, message);
}
void LoggingCollector::on_buffer_batch(const StageInfo& s, std::size_t items) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} buffered batch of {}", s.pipeline, s.name,
                items);
}
void LoggingCollector::on_fan_out_started(const StageInfo& s, std::size_t branches, std::size_t items) {
  WEIR_LOG_LINE(LogLevel::trace, &s, nullptr, "pipeline {} stage {} fan-out of {} items to {} branches",
                s.pipeline, s.name, items, branches);
}
void LoggingCollector::on_fan_in_started(const StageInfo& s, std::size_t inputs, std::size_t items) {
  WEIR_LOG_LINE(LogLevel::trace, &s, nullptr, "pipeline {} stage {} fan-in of {} items from one of {} inputs",
                s.pipeline, s.name, items, inputs);
}
void LoggingCollector::on_window_emitted(const StageInfo& s, std::size_t items) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} window emitted with {} items", s.pipeline,
                s.name, items);
}
void LoggingCollector::on_late_item(const StageInfo& s, std::uint64_t n) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} {} late items", s.pipeline, s.name, n);
}
void LoggingCollector::on_timeout(const StageInfo& s, std::chrono::nanoseconds configured,
                                  std::chrono::nanoseconds actual) {
  WEIR_LOG_LINE(LogLevel::warn, &s, nullptr,
                "pipeline {} stage {} timed out after {:.3f} ms (limit {:.3f} ms)", s.pipeline, s.name,
                ms(actual), ms(configured));
}
void LoggingCollector::on_circuit_state_changed(const StageInfo& s, weir::CircuitState from,
                                                weir::CircuitState to) {
  WEIR_LOG_LINE(LogLevel::warn, &s, nullptr, "pipeline {} stage {} circuit {} -> {}", s.pipeline, s.name,
                to_string(from), to_string(to));
}
void LoggingCollector::on_circuit_rejected(const StageInfo& s, std::uint64_t n) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} circuit rejected {} items", s.pipeline,
                s.name, n);
}
void LoggingCollector::on_no_route(const StageInfo& s, std::uint64_t n) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} {} items matched no route", s.pipeline,
                s.name, n);
}
void LoggingCollector::on_mapreduce_phase(const StageInfo& s, MapReducePhase p, std::chrono::nanoseconds d) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} {} phase took {:.3f} ms", s.pipeline,
                s.name, to_string(p), ms(d));
}
void LoggingCollector::on_join_group_completed(const StageInfo& s, std::size_t size) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} join group of {} completed", s.pipeline,
                s.name, size);
}
void LoggingCollector::on_custom_metric(const StageInfo& s, std::string_view name, double v, CustomKind) {
  WEIR_LOG_LINE(LogLevel::debug, &s, nullptr, "pipeline {} stage {} metric {} = {}", s.pipeline, s.name, name,
                v);
}
void LoggingCollector::on_custom_event(const StageInfo& s, std::string_view name, std::string_view detail) {
  WEIR_LOG_LINE(LogLevel::info, &s, nullptr, "pipeline {} stage {} event {}: {}", s.pipeline, s.name, name,
                detail);
}

#undef WEIR_LOG_LINE

}  // namespace weir::telemetry
