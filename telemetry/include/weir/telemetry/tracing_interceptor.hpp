#pragma once
/// \file The tracing interceptor and `trace`, the one call that traces a pipeline's runs, stages and
/// sampled batches with a Tracer. See docs/tracing.md.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <weir/interceptor.hpp>

#include "weir/telemetry/trace.hpp"

namespace weir {
class Observable;
}

namespace weir::telemetry {

/// How a TracingInterceptor traces a pipeline. A plain value.
struct TracingOptions {
  /// One batch in this many, per stage and thread, gets a span (the first one included);
  /// 0 records no batch spans. Unsampled batches cost one per-thread counter increment.
  std::uint32_t batch_sample_every = 1024;
  /// At the end of each run, wait this long for its spans to be exported; 0 does not wait.
  std::chrono::milliseconds flush_timeout{2000};
  /// Position in each stage's chain (see Pipeline::intercept).
  int priority = -900;
};

/// Records a span per run (id RunInfo::trace.span_id, parent RunInfo::parent_span), a span per stage
/// for its lifetime (id StageInfo::span_id, parent the run span) and sampled batch spans (children of
/// their stage span), with the stage's operator events as span events and failures as status error.
/// Which runs are recorded is the tracer's sampler's decision (stage and batch spans follow their
/// run). Thread-safe; per batch it only bumps a per-thread counter unless the batch is sampled.
class TracingInterceptor final : public Interceptor {
 public:
  explicit TracingInterceptor(std::shared_ptr<Tracer> tracer, TracingOptions options = {});
  ~TracingInterceptor() override;
  [[nodiscard]] const std::shared_ptr<Tracer>& tracer() const noexcept { return tracer_; }

  void on_run_start(const RunInfo&) override;
  void on_run_stop(const RunInfo&, const RunReport&) override;
  void on_stage_start(const StageInfo&) override;
  void on_stage_stop(const StageInfo&, const StageReport&) override;
  void after_batch(const StageInfo&, const BatchStats&) override;
  void on_event(const StageInfo&, const Event&) override;

 private:
  struct RunState;
  struct StageState;
  struct BatchCounters;
  void record_batch(const StageInfo& s, const BatchStats& b);

  std::shared_ptr<Tracer> tracer_;
  TracingOptions options_;
  std::unique_ptr<BatchCounters> counters_;  ///< per thread, by stage index
  std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<RunState>> runs_;  // by run id
  std::unordered_map<std::uint64_t, StageState*> stages_;            // by stage span id
};

/// Traces every stage of `pipeline` with `tracer` (call it while building, before `run`/`start`).
/// Returns the interceptor it registered, or null in a build with `-DWEIR_TELEMETRY=OFF`.
std::shared_ptr<TracingInterceptor> trace(Observable& pipeline, std::shared_ptr<Tracer> tracer,
                                          TracingOptions options = {});

}  // namespace weir::telemetry
