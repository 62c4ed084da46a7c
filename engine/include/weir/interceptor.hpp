#pragma once
/// \file The interceptor chain: hooks around every stage, batch and operator event.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

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
};

/// Identity of a run as interceptors see it.
struct RunInfo {
  std::string pipeline;
  std::string run_id;
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
}  // namespace events

/// Every operator event, as one variant; stateful operators add their own alternatives.
using Event = std::variant<events::RetryAttempt, events::ItemFailed, events::DeadLetterSent,
                           events::DeadLetterHandlerError, events::Backpressure, events::FanOut,
                           events::FanIn, events::TimeoutOccurred, events::CircuitStateChanged,
                           events::CircuitRejected, events::CircuitFailure, events::CircuitSuccess>;

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
