#pragma once
/// \file The samplers a Tracer asks whether to record a new span: always on, always off, a ratio of
/// traces by trace id, and parent-based. Part of the tracing SDK.

#include <memory>
#include <string>
#include <weir/trace_context.hpp>

namespace weir::telemetry {

/// Decides whether a new span is recorded. Implementations are immutable and thread-safe.
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// `parent` is the new span's parent context (invalid for a root), `trace_id` its trace.
  [[nodiscard]] virtual bool should_sample(const TraceContext& parent,
                                           const TraceId& trace_id) const noexcept = 0;
  /// E.g. "TraceIdRatioBased{0.25}".
  [[nodiscard]] virtual std::string description() const = 0;
};

/// Records every span.
[[nodiscard]] std::shared_ptr<const Sampler> always_on_sampler();
/// Records no span.
[[nodiscard]] std::shared_ptr<const Sampler> always_off_sampler();
/// Records a fraction `ratio` (0 to 1) of traces, decided from the trace id (its last 8 bytes read
/// as a number), so that every span of a trace decides the same way wherever it is sampled.
[[nodiscard]] std::shared_ptr<const Sampler> ratio_sampler(double ratio);
/// Follows the parent's sampled flag when there is a parent; asks `root` for root spans.
[[nodiscard]] std::shared_ptr<const Sampler> parent_based_sampler(std::shared_ptr<const Sampler> root);

}  // namespace weir::telemetry
