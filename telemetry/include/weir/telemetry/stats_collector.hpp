#pragma once
/// \file StatsCollector: keeps every metrics event in memory as named per-stage values.

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "weir/telemetry/metrics.hpp"

namespace weir::telemetry {

/// Sums every event per pipeline and stage under names such as "batches", "items_in", "retries",
/// "dead_letters", "filter_passed" (the full list is in docs/metrics.md); pipeline-level values
/// ("runs_started", "runs_ended", "runs_completed", "runs_failed", "runs_cancelled",
/// "wall_seconds") use the stage name "".
/// Thread-safe: every callback takes one mutex, so it suits tests and reports, not a hot benchmark.
class StatsCollector final : public MetricsCollector {
 public:
  /// The value called `key` of a stage (0 when never recorded).
  [[nodiscard]] double value(std::string_view pipeline, std::string_view stage, std::string_view key) const;
  /// Every value of a stage.
  [[nodiscard]] std::map<std::string, double> stage(std::string_view pipeline, std::string_view stage) const;
  /// Custom events in arrival order, as "stage: name: detail".
  [[nodiscard]] std::vector<std::string> custom_events() const;

  void on_pipeline_started(const RunInfo&) override;
  void on_pipeline_completed(const RunInfo&, const RunReport&) override;
  void on_stage_started(const StageInfo&) override;
  void on_stage_completed(const StageInfo&, const StageReport&) override;
  void on_stage_error(const StageInfo&, std::string_view, std::string_view) override;
  void on_worker_concurrency(const StageInfo&, int) override;
  void on_batch(const StageInfo&, const BatchStats&) override;
  void on_item_processed(const StageInfo&, std::chrono::nanoseconds) override;
  void on_items_skipped(const StageInfo&, std::uint64_t) override;
  void on_error_sent(const StageInfo&, std::string_view, std::string_view) override;
  void on_backpressure(const StageInfo&, std::chrono::nanoseconds) override;
  void on_retry_attempt(const StageInfo&, int, std::chrono::nanoseconds, std::string_view) override;
  void on_dead_letter_sent(const StageInfo&, std::string_view, int) override;
  void on_dead_letter_handler_error(const StageInfo&, std::string_view, std::string_view) override;
  void on_buffer_batch(const StageInfo&, std::size_t) override;
  void on_fan_out_started(const StageInfo&, std::size_t, std::size_t) override;
  void on_fan_out_completed(const StageInfo&, std::size_t, std::chrono::nanoseconds) override;
  void on_fan_in_started(const StageInfo&, std::size_t, std::size_t) override;
  void on_fan_in_completed(const StageInfo&, std::size_t, std::chrono::nanoseconds) override;
  void on_window_emitted(const StageInfo&, std::size_t) override;
  void on_late_item(const StageInfo&, std::uint64_t) override;
  void on_watermark(const StageInfo&, std::chrono::nanoseconds) override;
  void on_windows_open(const StageInfo&, std::size_t) override;
  void on_timeout(const StageInfo&, std::chrono::nanoseconds, std::chrono::nanoseconds) override;
  void on_circuit_state_changed(const StageInfo&, weir::CircuitState, weir::CircuitState) override;
  void on_circuit_rejected(const StageInfo&, std::uint64_t) override;
  void on_circuit_failure(const StageInfo&, std::uint64_t) override;
  void on_circuit_success(const StageInfo&, std::uint64_t) override;
  void on_routes_selected(const StageInfo&, std::size_t) override;
  void on_no_route(const StageInfo&, std::uint64_t) override;
  void on_route_processed(const StageInfo&, std::string_view, std::size_t, std::chrono::nanoseconds) override;
  void on_map_items(const StageInfo&, std::uint64_t, std::uint64_t) override;
  void on_map_concurrency(const StageInfo&, int) override;
  void on_mapreduce_phase(const StageInfo&, MapReducePhase, std::chrono::nanoseconds) override;
  void on_mapreduce_keys(const StageInfo&, std::size_t) override;
  void on_mapreduce_key_group(const StageInfo&, std::size_t) override;
  void on_filter_items(const StageInfo&, std::uint64_t, std::uint64_t, std::uint64_t) override;
  void on_join_group_created(const StageInfo&) override;
  void on_join_group_completed(const StageInfo&, std::size_t) override;
  void on_custom_metric(const StageInfo&, std::string_view, double, CustomKind) override;
  void on_custom_event(const StageInfo&, std::string_view, std::string_view) override;

 private:
  using Values = std::map<std::string, double, std::less<>>;
  /// Adds (or with `set`, stores) `v` under `key` for the stage; the caller holds no lock.
  void add(const std::string& pipeline, const std::string& stage, std::string_view key, double v,
           bool set = false);
  void add(const StageInfo& s, std::string_view key, double v, bool set = false) {
    add(s.pipeline, s.name, key, v, set);
  }

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Values, std::less<>> values_;
  std::vector<std::string> events_;
};

}  // namespace weir::telemetry
