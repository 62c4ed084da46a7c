#pragma once
/// \file The interceptor chain: hooks around every stage, batch and operator event.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "weir/trace_context.hpp"

namespace weir {

struct RunReport;
struct StageReport;

/// Identity of a stage as interceptors see it. Stable for the whole run.
struct StageInfo {
  std::string pipeline;
  std::string name;
  std::string kind;
  int index = 0;  ///< position in the pipeline's stage list
  int node = 0;   ///< physical node (fused group)
  int parallelism = 1;
  SpanId
      span_id;  ///< the id of the stage's span in the run's trace (valid whether or not a tracer records it)
};

/// Identity of a run as interceptors see it.
struct RunInfo {
  std::string pipeline;
  std::string run_id;
  /// The run span's context: the parent's trace id (or a new one), the run's own span id, and the
  /// parent's flags and trace state (a root run is flagged sampled; a tracer's sampler decides what it
  /// records).
  TraceContext trace;
  SpanId parent_span;  ///< the span of the caller that started the run; invalid for a root run
};

/// What one batch invocation of a stage did.
struct BatchStats {
  std::uint64_t items_in = 0;
  std::uint64_t items_out = 0;
  std::uint64_t filtered = 0;
  std::uint64_t errors = 0;
  std::uint64_t skipped = 0;
  std::uint64_t dead_lettered = 0;
  std::chrono::nanoseconds duration{0};
};

/// The state of a stage's circuit breaker (see weir::CircuitBreakerOptions).
enum class CircuitState { closed, open, half_open };

[[nodiscard]] constexpr std::string_view to_string(CircuitState s) noexcept {
  switch (s) {
    case CircuitState::closed:
      return "closed";
    case CircuitState::open:
      return "open";
    case CircuitState::half_open:
      return "half_open";
  }
  return "unknown";
}

/// How a custom metric's value is meant: added to a counter, or set as a gauge.
enum class CustomMetricKind { counter, gauge };

/// Operator events, one struct per kind. Strings are views valid during the call only.
namespace events {
/// A failed call is about to be retried.
struct RetryAttempt {
  int attempt = 0;  ///< the attempt about to be made (2 = first retry)
  std::chrono::nanoseconds backoff{0};
  std::string_view error_type;
  std::string_view message;
};
/// A call failed for good (after retries); `action` says what the policy did with the item.
struct ItemFailed {
  std::string_view error_type;
  std::string_view message;
  std::string_view action;  ///< "fail", "skip" or "dead_letter"
};
/// A failed item reached the dead-letter sink.
struct DeadLetterSent {
  std::string_view error_type;
  int attempts = 1;
};
/// The dead-letter sink itself threw.
struct DeadLetterHandlerError {
  std::string_view error_type;
  std::string_view message;
};
/// A source or async sink waited for room downstream.
struct Backpressure {
  std::chrono::nanoseconds blocked{0};
};
/// A batch was handed to every branch of a fan-out.
struct FanOut {
  std::size_t branches = 0;
  std::size_t items = 0;
};
/// A batch arrived at a merge from one of its inputs.
struct FanIn {
  std::size_t inputs = 0;
  std::size_t items = 0;
};
/// A window closed and its results left the stage (one event per window and partition).
struct WindowEmitted {
  std::size_t keys = 0;     ///< results emitted, one per key
  std::uint64_t items = 0;  ///< items aggregated into them
  std::chrono::system_clock::time_point start{};
  std::chrono::system_clock::time_point end{};
};
/// Items of a batch arrived after their window had closed (counted per batch).
struct LateItems {
  std::uint64_t count = 0;
  bool side_output = false;  ///< they went to the stage's late-item output rather than being dropped
};
/// The event-time watermark of a window stage moved forward (at most once per batch).
struct WatermarkAdvanced {
  std::chrono::system_clock::time_point watermark{};
};
/// The number of windows a window stage holds open changed: `count` is the stage's total over its
/// partitions (time windows: one per window start and partition; count windows: one per key). Sent at
/// most once per batch, timer tick or end-of-input flush of a partition, and only when it changed.
struct WindowsOpen {
  std::size_t count = 0;
};
/// A route sent items of a batch to one of its branches (per branch and batch).
struct RouteSelected {
  std::string_view route;
  std::size_t items = 0;
};
/// A route's branch finished a batch of the route's items: sent to the *route* stage's chain by the
/// branch's first stage (from its thread), with the time that stage's fused loop took on the batch
/// (zero when batches are not timed). Only for branches whose first stage reads that one route
/// output alone (not a merge of several inputs).
struct RouteProcessed {
  std::string_view route;
  std::size_t items = 0;
  std::chrono::nanoseconds duration{0};
};
/// Items of a batch that no route accepted and that had no `otherwise` branch: dropped.
struct NoRoute {
  std::size_t items = 0;
};
/// A buffer stage emitted a vector of items.
struct BufferFlushed {
  std::size_t size = 0;
  std::chrono::nanoseconds waited{0};  ///< from its first item to its emission
};
/// A phase of a map-reduce finished ("map", "shuffle": once per run; "reduce": once per partition).
struct MapReducePhase {
  std::string_view phase;
  std::uint64_t items = 0;               ///< items mapped, pairs shuffled, pairs reduced
  std::size_t keys = 0;                  ///< reduce: distinct keys of the partition
  std::chrono::nanoseconds duration{0};  ///< time spent in the phase, summed over threads
};
/// How many values the keys of a reduce partition had: log2 buckets (bucket b counts keys with
/// 2^b to 2^(b+1)-1 values), never one series per key.
struct KeyGroupSizes {
  std::array<std::uint64_t, 32> log2_counts{};
};
/// A join built a group: for a lookup join, its table (groups = distinct keys, size = rows), once per run;
/// for a windowed join, the items of one key in one window on both sides.
struct JoinGroupCreated {
  std::size_t groups = 0;
  std::size_t size = 0;
};
/// A join finished a batch (lookup) or a window (windowed join): keys matched and items emitted.
struct JoinCompleted {
  std::size_t keys = 0;
  std::size_t items = 0;
};
/// A call did not finish within its stage's timeout (`actual` is 0 when no thread was free to start it).
struct TimeoutOccurred {
  std::chrono::nanoseconds configured{0};
  std::chrono::nanoseconds actual{0};
};
/// A stage's circuit breaker changed state; sent when it happens.
struct CircuitStateChanged {
  CircuitState from = CircuitState::closed;
  CircuitState to = CircuitState::closed;
};
/// Calls the open circuit rejected during one batch (sent once per batch, when not zero).
struct CircuitRejected {
  std::uint64_t count = 0;
};
/// Failed calls the circuit breaker recorded during one batch (once per batch, when not zero).
struct CircuitFailure {
  std::uint64_t count = 0;
};
/// Successful calls the circuit breaker recorded during one batch (once per batch, when not zero).
struct CircuitSuccess {
  std::uint64_t count = 0;
};
/// What user code in the stage recorded with weir::metric::add / set during one batch (see
/// weir/user_metrics.hpp): one event per name and batch, the counter's sum or the gauge's last value.
struct CustomMetric {
  std::string_view name;
  double value = 0;
  CustomMetricKind kind = CustomMetricKind::counter;
};
/// An event user code in the stage recorded with weir::emit_event; sent when its batch ends.
struct CustomEvent {
  std::string_view name;
  std::string_view detail;
};
}  // namespace events

/// Every operator event, as one variant; stateful operators add their own alternatives.
using Event =
    std::variant<events::RetryAttempt, events::ItemFailed, events::DeadLetterSent,
                 events::DeadLetterHandlerError, events::Backpressure, events::FanOut, events::FanIn,
                 events::WindowEmitted, events::LateItems, events::WatermarkAdvanced, events::WindowsOpen,
                 events::RouteSelected, events::RouteProcessed, events::NoRoute, events::BufferFlushed,
                 events::MapReducePhase, events::KeyGroupSizes, events::JoinGroupCreated,
                 events::JoinCompleted, events::TimeoutOccurred, events::CircuitStateChanged,
                 events::CircuitRejected, events::CircuitFailure, events::CircuitSuccess,
                 events::CustomMetric, events::CustomEvent>;

/// Observes stages, batches and operator events. Register one on a pipeline (every stage) or on one stage.
/// Hooks run on the thread running the stage, possibly on several threads at once for a parallel stage,
/// so implementations must be thread-safe. They are called per batch and per event, never per item.
class Interceptor {
 public:
  virtual ~Interceptor() = default;
  virtual void on_run_start(const RunInfo&) {}
  virtual void on_run_stop(const RunInfo&, const RunReport&) {}
  virtual void on_stage_start(const StageInfo&) {}
  virtual void on_stage_stop(const StageInfo&, const StageReport&) {}
  virtual void before_batch(const StageInfo&, std::size_t /*items_in*/) {}
  virtual void after_batch(const StageInfo&, const BatchStats&) {}
  virtual void on_event(const StageInfo&, const Event&) {}
};

}  // namespace weir
