#pragma once
/// \file A pipeline's live state, readable from any thread while it runs (telemetry backends use it).

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "weir/report.hpp"

namespace weir {

class Pipeline;
namespace detail {
class Execution;
}

/// Where a pipeline is in its life: built but not started, running, or ended.
enum class RunPhase { idle, running, finished };

[[nodiscard]] std::string_view to_string(RunPhase p) noexcept;

/// Log2 buckets of a stage's batch-duration histogram: bucket b counts batches that took less than
/// 2^b ns (and at least 2^(b-1) ns).
inline constexpr int batch_histogram_buckets = 48;

/// A pipeline at one moment: the run so far as a RunReport (status, wall time since the start,
/// per-stage totals summed from the live counters, errors), plus what a dashboard needs beyond it.
/// A plain value.
struct Snapshot {
  RunPhase phase = RunPhase::idle;
  RunReport report;  ///< empty stages before the run starts
  /// Per stage (same order as report.stages): the stages it reads from, one entry per edge.
  std::vector<std::vector<int>> inputs;
  /// Per stage: batches by log2 duration bucket (see batch_histogram_buckets).
  std::vector<std::array<std::uint64_t, batch_histogram_buckets>> batch_histogram;
};

/// A window on one pipeline's live counters, shared with telemetry backends. It may outlive its
/// pipeline: it then answers with the last snapshot taken before the pipeline was destroyed.
/// Thread-safe; a snapshot reads the per-thread counters without stopping or locking the
/// pipeline's threads.
class LiveView {
  struct Token {};

 public:
  LiveView(Token, std::string pipeline) : pipeline_(std::move(pipeline)) {}
  /// The pipeline's name.
  [[nodiscard]] const std::string& pipeline() const noexcept { return pipeline_; }
  /// The pipeline as it is now.
  [[nodiscard]] Snapshot snapshot() const;

 private:
  friend class Pipeline;
  void bind(const detail::Execution* e);
  void unbind();

  std::string pipeline_;
  mutable std::mutex mutex_;
  const detail::Execution* exec_ = nullptr;
  Snapshot last_;
};

}  // namespace weir
