#pragma once
/// \file What a run did: per-stage totals and the run's status.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weir/error.hpp"
#include "weir/interceptor.hpp"

namespace weir {

/// Totals of one stage over one run. A plain value.
struct StageReport {
  std::string name;
  std::string kind;  ///< "source", "map", "filter", "flat_map", "fan_out", "merge", "sink", ...
  int node = 0;      ///< physical node (fused group) the stage ran in
  int parallelism = 1;
  std::uint64_t items_in = 0;
  std::uint64_t items_out = 0;
  std::uint64_t filtered = 0;              ///< dropped by a filter predicate
  std::uint64_t errors = 0;                ///< items whose call failed (after retries)
  std::uint64_t skipped = 0;               ///< failed items dropped by the skip policy
  std::uint64_t dead_lettered = 0;         ///< failed items delivered to the dead-letter sink
  std::uint64_t dead_letter_failures = 0;  ///< failed items whose dead-letter sink threw as well
  std::uint64_t retries = 0;               ///< extra attempts made by the retry policy
  std::uint64_t timeouts = 0;              ///< calls that did not finish within the stage's timeout
  std::uint64_t late = 0;                  ///< windows: items that arrived after their window closed
  std::uint64_t batches = 0;
  std::chrono::nanoseconds busy{0};     ///< time spent in the stage's batches
  std::chrono::nanoseconds blocked{0};  ///< time spent waiting on a full downstream
  std::chrono::nanoseconds wall{0};     ///< first batch start to last batch end
  std::chrono::nanoseconds batch_p50{0};
  std::chrono::nanoseconds batch_p99{0};
  std::optional<CircuitState> circuit;  ///< the circuit breaker's state at the end; none without one
};

/// How a run ended.
enum class RunStatus { completed, failed, cancelled };

[[nodiscard]] std::string_view to_string(RunStatus s) noexcept;

/// The result of one run of a pipeline: status, duration, per-stage reports and error summaries.
/// A plain value, safe to copy.
struct RunReport {
  std::string pipeline;
  std::string run_id;
  TraceContext trace;  ///< the run span's context (see RunInfo::trace)
  RunStatus status = RunStatus::completed;
  std::chrono::nanoseconds wall{0};
  std::vector<StageReport> stages;
  std::vector<ErrorSummary> errors;

  /// The stage called `name`; throws std::out_of_range when there is none.
  [[nodiscard]] const StageReport& stage(std::string_view name) const;
  /// A readable table, one line per stage.
  [[nodiscard]] std::string to_string() const;
};

}  // namespace weir
