#pragma once
/// \file The metrics API: MetricsCollector (one callback per engine event), the collectors every
/// build has (no-op, fan-out to several), the interceptor that feeds a collector from a pipeline's
/// interceptor chain, and `attach`, the one call that wires a collector to a pipeline.
///
/// Callbacks are made per batch and per event, never per item: item counts arrive summed per
/// batch, and per-item durations are sampled. They run on the pipeline's threads, several at once
/// for a parallel stage, so every collector must be thread-safe and quick.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>
#include <weir/interceptor.hpp>
#include <weir/report.hpp>

namespace weir {
class Observable;
}

namespace weir::telemetry {

/// Phase of a map-reduce stage, for `on_mapreduce_phase`.
enum class MapReducePhase { map, shuffle, reduce };

/// How a custom metric's value is meant: added to a counter, or set as a gauge.
enum class CustomKind { counter, gauge };

[[nodiscard]] std::string_view to_string(MapReducePhase p) noexcept;

/// A circuit breaker's state as the number the `weir_circuit_state` gauge (and StatsCollector's
/// "circuit_state") shows: 0 closed, 1 half-open, 2 open, in order of severity (docs/metrics.md).
[[nodiscard]] constexpr int circuit_state_value(weir::CircuitState s) noexcept {
  switch (s) {
    case weir::CircuitState::closed:
      return 0;
    case weir::CircuitState::half_open:
      return 1;
    case weir::CircuitState::open:
      return 2;
  }
  return 0;
}

/// Receives every metrics event of the engine. Every callback has an empty default, so a collector
/// overrides what it needs. Events of operators that a build does not have are simply never
/// called. Implementations must be thread-safe; callbacks must not throw.
class MetricsCollector {
 public:
  virtual ~MetricsCollector() = default;

  /// `attach` hands the collector the pipeline it is attached to (before the run), so that backends
  /// that read live counters (Prometheus) can find them.
  virtual void on_attach(Observable& /*pipeline*/) {}

  // Pipeline
  virtual void on_pipeline_started(const RunInfo&) {}
  /// The run ended: status, duration (`report.wall`) and error summaries are in the report.
  virtual void on_pipeline_completed(const RunInfo&, const RunReport&) {}

  // Stage
  virtual void on_stage_started(const StageInfo&) {}
  virtual void on_stage_completed(const StageInfo&, const StageReport&) {}
  /// An item failed for good with the `fail` policy: the stage stops the run.
  virtual void on_stage_error(const StageInfo&, std::string_view /*error_type*/,
                              std::string_view /*message*/) {}

  // Worker
  /// The number of threads that may run the stage at once (its parallelism), at stage start.
  virtual void on_worker_concurrency(const StageInfo&, int /*workers*/) {}
  /// Every batch of every stage: items in and out, filtered, failed, skipped, dead-lettered, duration.
  virtual void on_batch(const StageInfo&, const BatchStats&) {}
  /// A sampled item duration (the mean item time of a sampled batch; see MetricsOptions).
  virtual void on_item_processed(const StageInfo&, std::chrono::nanoseconds /*duration*/) {}
  /// Failed items dropped by the skip policy, per batch.
  virtual void on_items_skipped(const StageInfo&, std::uint64_t /*count*/) {}
  /// An item that failed for good was handed to the stage's error policy (`action`: "fail", "skip",
  /// "dead_letter").
  virtual void on_error_sent(const StageInfo&, std::string_view /*error_type*/, std::string_view /*action*/) {
  }
  /// A source or async sink waited for room downstream.
  virtual void on_backpressure(const StageInfo&, std::chrono::nanoseconds /*blocked*/) {}

  // Retry and dead letters
  virtual void on_retry_attempt(const StageInfo&, int /*attempt*/, std::chrono::nanoseconds /*backoff*/,
                                std::string_view /*error_type*/) {}
  virtual void on_dead_letter_sent(const StageInfo&, std::string_view /*error_type*/, int /*attempts*/) {}
  virtual void on_dead_letter_handler_error(const StageInfo&, std::string_view /*error_type*/,
                                            std::string_view /*message*/) {}

  // Buffer
  virtual void on_buffer_batch(const StageInfo&, std::size_t /*items*/) {}

  // Fan-out and fan-in
  virtual void on_fan_out_started(const StageInfo&, std::size_t /*branches*/, std::size_t /*items*/) {}
  virtual void on_fan_out_completed(const StageInfo&, std::size_t /*items*/, std::chrono::nanoseconds) {}
  virtual void on_fan_in_started(const StageInfo&, std::size_t /*inputs*/, std::size_t /*items*/) {}
  virtual void on_fan_in_completed(const StageInfo&, std::size_t /*items*/, std::chrono::nanoseconds) {}

  // Windows
  virtual void on_window_emitted(const StageInfo&, std::size_t /*items*/) {}
  virtual void on_late_item(const StageInfo&, std::uint64_t /*count*/) {}
  /// The stage's watermark moved; `lag` is how far it trails the newest event time seen.
  virtual void on_watermark(const StageInfo&, std::chrono::nanoseconds /*lag*/) {}
  /// The windows the stage holds open now, over all its partitions (sent when the count changes).
  virtual void on_windows_open(const StageInfo&, std::size_t /*open*/) {}

  // Timeouts
  virtual void on_timeout(const StageInfo&, std::chrono::nanoseconds /*configured*/,
                          std::chrono::nanoseconds /*actual*/) {}

  // Circuit breakers
  virtual void on_circuit_state_changed(const StageInfo&, weir::CircuitState /*from*/,
                                        weir::CircuitState /*to*/) {}
  virtual void on_circuit_rejected(const StageInfo&, std::uint64_t /*count*/) {}
  /// Failed and successful calls a circuit breaker recorded during one batch.
  virtual void on_circuit_failure(const StageInfo&, std::uint64_t /*count*/) {}
  virtual void on_circuit_success(const StageInfo&, std::uint64_t /*count*/) {}

  // Routers
  /// How many routes one item (or batch) was sent to.
  virtual void on_routes_selected(const StageInfo&, std::size_t /*routes*/) {}
  virtual void on_no_route(const StageInfo&, std::uint64_t /*count*/) {}
  /// A route (a name from the pipeline's code, never from data) processed `items` in `duration`; a zero
  /// duration means it was not measured. The engine calls it twice per branch and batch: with the
  /// items when the route stage sends them (duration zero), and with the time the branch's first
  /// stage took on them when it is done (items zero; see events::RouteProcessed).
  virtual void on_route_processed(const StageInfo&, std::string_view /*route*/, std::size_t /*items*/,
                                  std::chrono::nanoseconds /*duration*/) {}

  // Map
  /// Per batch of a map stage: items mapped and items whose call failed.
  virtual void on_map_items(const StageInfo&, std::uint64_t /*processed*/, std::uint64_t /*errors*/) {}
  virtual void on_map_concurrency(const StageInfo&, int /*workers*/) {}

  // Map-reduce
  virtual void on_mapreduce_phase(const StageInfo&, MapReducePhase, std::chrono::nanoseconds) {}
  virtual void on_mapreduce_keys(const StageInfo&, std::size_t /*keys*/) {}
  virtual void on_mapreduce_key_group(const StageInfo&, std::size_t /*size*/) {}

  // Filter
  /// Per batch of a filter stage: items kept, items dropped by the predicate, predicate failures.
  virtual void on_filter_items(const StageInfo&, std::uint64_t /*passed*/, std::uint64_t /*dropped*/,
                               std::uint64_t /*errors*/) {}

  // Joins
  virtual void on_join_group_created(const StageInfo&) {}
  virtual void on_join_group_completed(const StageInfo&, std::size_t /*size*/) {}

  // Custom
  /// A metric recorded by user code; `name` is a snake_case name chosen in code (Prometheus shows it
  /// as `weir_user_<name>`).
  virtual void on_custom_metric(const StageInfo&, std::string_view /*name*/, double /*value*/, CustomKind) {}
  virtual void on_custom_event(const StageInfo&, std::string_view /*name*/, std::string_view /*detail*/) {}
};

/// A collector that ignores everything. Stateless, thread-safe.
class NoopCollector final : public MetricsCollector {};

/// Passes every event to each of its collectors, in order. The list is fixed at construction;
/// thread-safe when its collectors are.
class MultiCollector final : public MetricsCollector {
 public:
  explicit MultiCollector(std::vector<std::shared_ptr<MetricsCollector>> collectors);
  [[nodiscard]] const std::vector<std::shared_ptr<MetricsCollector>>& collectors() const noexcept {
    return collectors_;
  }

  void on_attach(Observable&) override;
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
  std::vector<std::shared_ptr<MetricsCollector>> collectors_;
};

/// How a MetricsInterceptor feeds its collector.
struct MetricsOptions {
  /// One batch in this many (per stage and thread, counted by each interceptor on its own) reports
  /// its mean item time through `on_item_processed`; 0 turns item samples off.
  std::uint32_t item_sample_every = 16;
  /// Position of the metrics interceptor in each stage's chain (see Pipeline::intercept).
  int priority = -1000;
};

/// Adapts the interceptor chain to a MetricsCollector: lifecycle hooks, per-batch stats and
/// operator events become collector callbacks. Thread-safe when its collector is; adds no per-item
/// work.
class MetricsInterceptor final : public Interceptor {
 public:
  explicit MetricsInterceptor(std::shared_ptr<MetricsCollector> collector, MetricsOptions options = {});
  [[nodiscard]] const std::shared_ptr<MetricsCollector>& collector() const noexcept { return collector_; }

  void on_run_start(const RunInfo&) override;
  void on_run_stop(const RunInfo&, const RunReport&) override;
  void on_stage_start(const StageInfo&) override;
  void on_stage_stop(const StageInfo&, const StageReport&) override;
  void after_batch(const StageInfo&, const BatchStats&) override;
  void on_event(const StageInfo&, const Event&) override;

 private:
  std::shared_ptr<MetricsCollector> collector_;
  MetricsOptions options_;
  std::uint64_t id_;  ///< keys this interceptor's per-thread item sample counts
};

/// Attaches `collector` to every stage of `pipeline` (call it while building, before `run`/`start`).
/// Returns the interceptor it registered, or null in a build with `-DWEIR_TELEMETRY=OFF`, where no
/// hook is installed and the collector only gets `on_attach` (live counters stay readable).
std::shared_ptr<MetricsInterceptor> attach(Observable& pipeline, std::shared_ptr<MetricsCollector> collector,
                                           MetricsOptions options = {});

}  // namespace weir::telemetry
