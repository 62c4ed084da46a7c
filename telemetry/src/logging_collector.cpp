#include "weir/telemetry/logging_collector.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace weir::telemetry {

namespace {
double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
}  // namespace

LoggingCollector::LoggingCollector(std::shared_ptr<spdlog::logger> logger)
    : logger_(logger ? std::move(logger) : spdlog::default_logger()) {}

void LoggingCollector::on_pipeline_started(const RunInfo& r) {
  logger_->info("pipeline {} run {} started", r.pipeline, r.run_id);
}
void LoggingCollector::on_pipeline_completed(const RunInfo& r, const RunReport& rep) {
  const auto level = rep.status == RunStatus::failed ? spdlog::level::err : spdlog::level::info;
  logger_->log(level, "pipeline {} run {} {} in {:.3f} ms ({} error kinds)", r.pipeline, r.run_id,
               to_string(rep.status), ms(rep.wall), rep.errors.size());
}
void LoggingCollector::on_stage_started(const StageInfo& s) {
  logger_->debug("pipeline {} stage {} ({}) started, parallelism {}", s.pipeline, s.name, s.kind,
                 s.parallelism);
}
void LoggingCollector::on_stage_completed(const StageInfo& s, const StageReport& r) {
  logger_->info(
      "pipeline {} stage {} completed: in {} out {} filtered {} errors {} skipped {} dead letters {}",
      s.pipeline, s.name, r.items_in, r.items_out, r.filtered, r.errors, r.skipped, r.dead_lettered);
}
void LoggingCollector::on_stage_error(const StageInfo& s, std::string_view type, std::string_view message) {
  logger_->error("pipeline {} stage {} failed: {}: {}", s.pipeline, s.name, type, message);
}
void LoggingCollector::on_batch(const StageInfo& s, const BatchStats& b) {
  logger_->trace("pipeline {} stage {} batch: in {} out {} errors {} in {:.3f} ms", s.pipeline, s.name,
                 b.items_in, b.items_out, b.errors, ms(b.duration));
}
void LoggingCollector::on_error_sent(const StageInfo& s, std::string_view type, std::string_view action) {
  logger_->warn("pipeline {} stage {} item failed with {} ({})", s.pipeline, s.name, type, action);
}
void LoggingCollector::on_backpressure(const StageInfo& s, std::chrono::nanoseconds d) {
  logger_->debug("pipeline {} stage {} waited {:.3f} ms for room downstream", s.pipeline, s.name, ms(d));
}
void LoggingCollector::on_retry_attempt(const StageInfo& s, int attempt, std::chrono::nanoseconds backoff,
                                        std::string_view type) {
  logger_->warn("pipeline {} stage {} retry attempt {} after {} (backoff {:.3f} ms)", s.pipeline, s.name,
                attempt, type, ms(backoff));
}
void LoggingCollector::on_dead_letter_sent(const StageInfo& s, std::string_view type, int attempts) {
  logger_->warn("pipeline {} stage {} dead letter: {} after {} attempts", s.pipeline, s.name, type, attempts);
}
void LoggingCollector::on_dead_letter_handler_error(const StageInfo& s, std::string_view type,
                                                    std::string_view message) {
  logger_->error("pipeline {} stage {} dead-letter handler failed: {}: {}", s.pipeline, s.name, type,
                 message);
}
void LoggingCollector::on_buffer_batch(const StageInfo& s, std::size_t items) {
  logger_->debug("pipeline {} stage {} buffered batch of {}", s.pipeline, s.name, items);
}
void LoggingCollector::on_fan_out_started(const StageInfo& s, std::size_t branches, std::size_t items) {
  logger_->trace("pipeline {} stage {} fan-out of {} items to {} branches", s.pipeline, s.name, items,
                 branches);
}
void LoggingCollector::on_fan_in_started(const StageInfo& s, std::size_t inputs, std::size_t items) {
  logger_->trace("pipeline {} stage {} fan-in of {} items from one of {} inputs", s.pipeline, s.name, items,
                 inputs);
}
void LoggingCollector::on_window_emitted(const StageInfo& s, std::size_t items) {
  logger_->debug("pipeline {} stage {} window emitted with {} items", s.pipeline, s.name, items);
}
void LoggingCollector::on_late_item(const StageInfo& s, std::uint64_t n) {
  logger_->debug("pipeline {} stage {} {} late items", s.pipeline, s.name, n);
}
void LoggingCollector::on_timeout(const StageInfo& s, std::chrono::nanoseconds configured,
                                  std::chrono::nanoseconds actual) {
  logger_->warn("pipeline {} stage {} timed out after {:.3f} ms (limit {:.3f} ms)", s.pipeline, s.name,
                ms(actual), ms(configured));
}
void LoggingCollector::on_circuit_state_changed(const StageInfo& s, CircuitState from, CircuitState to) {
  logger_->warn("pipeline {} stage {} circuit {} -> {}", s.pipeline, s.name, to_string(from), to_string(to));
}
void LoggingCollector::on_circuit_rejected(const StageInfo& s, std::uint64_t n) {
  logger_->debug("pipeline {} stage {} circuit rejected {} items", s.pipeline, s.name, n);
}
void LoggingCollector::on_no_route(const StageInfo& s, std::uint64_t n) {
  logger_->debug("pipeline {} stage {} {} items matched no route", s.pipeline, s.name, n);
}
void LoggingCollector::on_mapreduce_phase(const StageInfo& s, MapReducePhase p, std::chrono::nanoseconds d) {
  logger_->debug("pipeline {} stage {} {} phase took {:.3f} ms", s.pipeline, s.name, to_string(p), ms(d));
}
void LoggingCollector::on_join_group_completed(const StageInfo& s, std::size_t size) {
  logger_->debug("pipeline {} stage {} join group of {} completed", s.pipeline, s.name, size);
}
void LoggingCollector::on_custom_metric(const StageInfo& s, std::string_view name, double v, CustomKind) {
  logger_->debug("pipeline {} stage {} metric {} = {}", s.pipeline, s.name, name, v);
}
void LoggingCollector::on_custom_event(const StageInfo& s, std::string_view name, std::string_view detail) {
  logger_->info("pipeline {} stage {} event {}: {}", s.pipeline, s.name, name, detail);
}

}  // namespace weir::telemetry
