#pragma once
/// \file PrometheusCollector: Weir's metrics in the Prometheus exposition format.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <weir/snapshot.hpp>

#include "weir/telemetry/metrics.hpp"
#include "weir/telemetry/trace.hpp"  // Tracer

namespace prometheus {
class Registry;
}

namespace weir::telemetry {

/// Settings of a PrometheusCollector.
struct PrometheusOptions {
  /// The application's own metrics, exposed after Weir's (null: none).
  std::shared_ptr<prometheus::Registry> registry;
  /// Expose process_cpu_seconds_total, process_resident_memory_bytes and process_start_time_seconds.
  bool process_metrics = true;
};

/// One pipeline's stage as /health reports it. A plain value.
struct StageHealth {
  std::string name;
  std::string state;    ///< "idle", "running", "failing", "circuit_open", "done" or "failed"
  std::string circuit;  ///< the circuit breaker's state ("closed", "open", "half_open"); empty without one
};

/// A collector that turns Weir's metrics into Prometheus families (see docs/metrics.md).
/// Per-stage counters, busy and backpressure time and the batch-duration histogram are read from the
/// engine's per-thread counters when scraped (nothing is written per batch for them); the events
/// (dead letters by error type, item-time samples, windows, circuits, routers, joins, map-reduce,
/// custom metrics) are tallied as they arrive, on their slow paths. Thread-safe; a scrape never
/// blocks a pipeline's threads.
class PrometheusCollector final : public MetricsCollector, public prometheus::Collectable {
 public:
  explicit PrometheusCollector(PrometheusOptions options = {});
  ~PrometheusCollector() override;
  PrometheusCollector(const PrometheusCollector&) = delete;
  PrometheusCollector& operator=(const PrometheusCollector&) = delete;

  /// Exposes a pipeline's live counters; `attach` calls it. A view with the name of one already
  /// watched replaces it (its counters then restart, which Prometheus reads as a counter reset).
  void watch(std::shared_ptr<const LiveView> view);
  /// Exposes a tracer's span counters (weir_spans_exported_total, weir_spans_dropped_total), summed
  /// over every tracer watched; watching one twice counts it once.
  void watch(std::shared_ptr<const Tracer> tracer);
  /// The pipelines watched, in the order they were first watched.
  [[nodiscard]] std::vector<std::shared_ptr<const LiveView>> pipelines() const;
  /// Per-stage state of one pipeline snapshot: its phase, the stages' failed items and their circuit
  /// breakers' live state (the snapshot's; no metrics interceptor needed).
  [[nodiscard]] static std::vector<StageHealth> stage_health(const Snapshot& snapshot);
  /// The latest value of an event-fed family (e.g. "weir_window_open", "weir_watermark_lag_seconds")
  /// for each stage of one pipeline that has reported it, by stage name; series of a stage that differ
  /// in other labels are summed.
  [[nodiscard]] std::map<std::string, double> stage_values(std::string_view family,
                                                           std::string_view pipeline) const;

  /// Every family: Weir's, the process's and the application registry's.
  std::vector<prometheus::MetricFamily> Collect() const override;
  /// Collect() in the Prometheus text format 0.0.4.
  [[nodiscard]] std::string render() const;

  void on_attach(Observable&) override;
  void on_pipeline_completed(const RunInfo&, const RunReport&) override;
  void on_item_processed(const StageInfo&, std::chrono::nanoseconds) override;
  void on_dead_letter_sent(const StageInfo&, std::string_view, int) override;
  void on_buffer_batch(const StageInfo&, std::size_t) override;
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
  void on_mapreduce_phase(const StageInfo&, MapReducePhase, std::chrono::nanoseconds) override;
  void on_mapreduce_keys(const StageInfo&, std::size_t) override;
  void on_mapreduce_key_group(const StageInfo&, std::size_t) override;
  void on_join_group_created(const StageInfo&) override;
  void on_join_group_completed(const StageInfo&, std::size_t) override;
  void on_custom_metric(const StageInfo&, std::string_view, double, CustomKind) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The families a PrometheusCollector can expose: name, type ("counter", "gauge", "histogram"),
/// labels and help, in exposition order. docs/metrics.md lists the same set.
struct FamilyInfo {
  const char* name;
  const char* type;
  const char* labels;
  const char* help;
};
[[nodiscard]] const std::vector<FamilyInfo>& prometheus_families();

/// Items handed to stage `i` of a snapshot that it has not finished yet: what its inputs passed on
/// minus what it took in (0 for sources and stages fused with their input between batches).
[[nodiscard]] double queue_depth(const Snapshot& snapshot, std::size_t i);

}  // namespace weir::telemetry
