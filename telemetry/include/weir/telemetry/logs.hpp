#pragma once
/// \file Run logs: `RunLogger`, which logs a run's report as a table at its end, and `log_runs`, the
/// call that registers it. The logger itself (StructuredLogger, make_logger) is in
/// structured_logger.hpp, included here.

#include <memory>
#include <weir/interceptor.hpp>
#include <weir/report.hpp>

#include "weir/telemetry/structured_logger.hpp"

namespace weir {
class Observable;
}

namespace weir::telemetry {

/// Logs each run's report when it ends: `RunReport::to_string()` (the per-stage table: in, out,
/// errors, p50/p99 batch time, busy and blocked %), at info for a completed or cancelled run and at
/// error for a failed one; in JSON as one line with "status", "duration_ns", "report" (the table)
/// and "errors" (the error summaries, as in events). Logs nothing else. Thread-safe.
class RunLogger final : public Interceptor {
 public:
  explicit RunLogger(StructuredLogger logger = StructuredLogger{});
  void on_run_stop(const RunInfo&, const RunReport&) override;

 private:
  StructuredLogger logger_;
};

/// Registers a RunLogger on `pipeline` (while building). Returns it, or null in a build with
/// `-DWEIR_TELEMETRY=OFF`.
std::shared_ptr<RunLogger> log_runs(Observable& pipeline, StructuredLogger logger = StructuredLogger{});

}  // namespace weir::telemetry
