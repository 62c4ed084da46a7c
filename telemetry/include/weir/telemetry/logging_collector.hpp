#pragma once
/// \file LoggingCollector: writes metrics events to an spdlog logger.

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "weir/telemetry/metrics.hpp"
#include "weir/telemetry/structured_logger.hpp"

namespace weir::telemetry {

/// Logs lifecycle events at info, failures at warn/error, per-batch figures at trace and other
/// operator events at debug: one line per batch or event, never per item, and nothing is formatted
/// for a level the logger filters out. Every line names the pipeline and the stage; a run's end
/// adds one line per error summary. With LogFormat::json each line is a JSON object carrying the
/// run id, pipeline, stage, trace id and span id (see StructuredLogger). Thread-safe (spdlog
/// loggers are); runs of pipelines with the same name must not overlap.
class LoggingCollector final : public MetricsCollector {
 public:
  /// Logs to `logger`, or to spdlog's default logger when null, in `format`.
  explicit LoggingCollector(std::shared_ptr<spdlog::logger> logger = nullptr,
                            LogFormat format = LogFormat::text);

  void on_pipeline_started(const RunInfo&) override;
  void on_pipeline_completed(const RunInfo&, const RunReport&) override;
  void on_stage_started(const StageInfo&) override;
  void on_stage_completed(const StageInfo&, const StageReport&) override;
  void on_stage_error(const StageInfo&, std::string_view, std::string_view) override;
  void on_batch(const StageInfo&, const BatchStats&) override;
  void on_error_sent(const StageInfo&, std::string_view, std::string_view) override;
  void on_backpressure(const StageInfo&, std::chrono::nanoseconds) override;
  void on_retry_attempt(const StageInfo&, int, std::chrono::nanoseconds, std::string_view) override;
  void on_dead_letter_sent(const StageInfo&, std::string_view, int) override;
  void on_dead_letter_handler_error(const StageInfo&, std::string_view, std::string_view) override;
  void on_buffer_batch(const StageInfo&, std::size_t) override;
  void on_fan_out_started(const StageInfo&, std::size_t, std::size_t) override;
  void on_fan_in_started(const StageInfo&, std::size_t, std::size_t) override;
  void on_window_emitted(const StageInfo&, std::size_t) override;
  void on_late_item(const StageInfo&, std::uint64_t) override;
  void on_timeout(const StageInfo&, std::chrono::nanoseconds, std::chrono::nanoseconds) override;
  void on_circuit_state_changed(const StageInfo&, weir::CircuitState, weir::CircuitState) override;
  void on_circuit_rejected(const StageInfo&, std::uint64_t) override;
  void on_no_route(const StageInfo&, std::uint64_t) override;
  void on_mapreduce_phase(const StageInfo&, MapReducePhase, std::chrono::nanoseconds) override;
  void on_join_group_completed(const StageInfo&, std::size_t) override;
  void on_custom_metric(const StageInfo&, std::string_view, double, CustomKind) override;
  void on_custom_event(const StageInfo&, std::string_view, std::string_view) override;

 private:
  struct RunIds {
    std::string run_id, trace_id, span_id;
  };
  void write(LogLevel level, const StageInfo* stage, const RunInfo* run, const std::string& text,
             const nlohmann::json& fields = nullptr) const;
  StructuredLogger log_;
  mutable std::mutex mutex_;
  std::map<std::string, RunIds, std::less<>> runs_;  ///< by pipeline, while a run goes on
};

}  // namespace weir::telemetry
