#pragma once
/// \file What the builder asks of the engine: one run of a pipeline's logical graph. Not API.

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "weir/detail/logical_node.hpp"
#include "weir/options.hpp"
#include "weir/report.hpp"
#include "weir/trace_context.hpp"

namespace weir::detail {

class Execution;  // the engine's side of a run (core/src/execution.hpp)

/// One run of a pipeline: plans the stages, deploys them on a oneTBB flow graph and runs them on a
/// thread of its own. start() once, then wait() once; cancel() from any thread.
class Run {
 public:
  /// Plans the run (throws std::logic_error for a graph that cannot run). `nodes` and `hooks` must
  /// outlive the run.
  Run(std::string pipeline, const PipelineOptions& options, std::vector<std::unique_ptr<LogicalNode>>& nodes,
      const std::vector<LogicalNode::Hook>& hooks, const TraceContext& parent);
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;
  /// Cancels a run still going and waits for it.
  ~Run();

  /// Starts the run on a thread of its own.
  void start();
  /// Waits for the run; returns its report, or throws PipelineError when it failed.
  RunReport wait();
  /// Stops the sources; what is in flight drains to the sinks.
  void cancel() noexcept;
  /// Cancels the run if it is still going and waits for its thread.
  void stop() noexcept;
  /// The engine's side, for LiveView.
  [[nodiscard]] const Execution* execution() const noexcept { return exec_.get(); }

 private:
  std::string pipeline_;
  std::unique_ptr<Execution> exec_;
  std::thread runner_;
  std::exception_ptr error_;
  std::optional<RunReport> report_;
};

}  // namespace weir::detail
