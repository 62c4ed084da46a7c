#pragma once
/// \file The tracer API: Span, Tracer, and W3C `traceparent` extraction and injection (extract,
/// inject, continue_trace). What instrumented code calls; a Tracer hands finished spans to a
/// SpanProcessor and asks a Sampler which traces to record, both from the SDK (sdk/). A span that is
/// not sampled (and a default-constructed Span) is the no-op: it records nothing and costs no clock
/// read, but still has a context to pass on. See docs/tracing.md.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <weir/clock.hpp>
#include <weir/trace_context.hpp>

#include "weir/telemetry/span_data.hpp"

namespace weir::telemetry {

/// Record headers (Kafka-style or HTTP): name -> value. `extract` and `inject` read and write
/// `traceparent` and `tracestate` in it.
using Headers = std::map<std::string, std::string>;

class Sampler;        // sdk/sampler.hpp
class SpanProcessor;  // sdk/span_processor.hpp
struct SpanStats;     // sdk/span_processor.hpp
class Tracer;

/// A span being recorded, owned by one thread at a time: set attributes, add events, set a status,
/// then `end()` (the destructor ends it too) hands it to the tracer's processor. A span that was not
/// sampled records nothing and costs no clock read, but still has a context to pass on. Move-only;
/// it must end before its tracer is destroyed.
class Span {
 public:
  Span() = default;
  Span(Span&& other) noexcept;
  Span& operator=(Span&& other) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span() { end(); }

  /// True when the span is sampled and not ended: what is set on it is exported.
  [[nodiscard]] bool recording() const noexcept { return data_ != nullptr; }
  /// The span's own context (trace id, span id, flags with the sampled bit as decided, trace state).
  [[nodiscard]] const TraceContext& context() const noexcept { return context_; }

  template <class V>
  void set_attribute(std::string_view key, V&& value) {
    if (data_) set_value(key, attribute_value(std::forward<V>(value)));
  }
  void add_event(std::string_view name, std::vector<Attribute> attributes = {});
  void set_status(StatusCode code, std::string_view message = {});
  /// An "exception" event with the error's type and message, and status error with the message.
  void record_error(std::string_view type, std::string_view message);
  /// Ends the span now (its end time is read here) and hands it to the processor; then a no-op.
  void end() noexcept;

 private:
  friend class Tracer;
  void set_value(std::string_view key, AttributeValue value);
  const Tracer* tracer_ = nullptr;
  std::unique_ptr<SpanData> data_;
  /// Attributes set so far: the first ones of data_->attributes; the elements past them are reused
  /// storage (their strings keep their capacity), trimmed when the span ends.
  std::uint32_t attribute_count_ = 0;
  TraceContext context_;
};

/// Settings of a Tracer. A plain value.
struct TracerOptions {
  /// Decides which traces are recorded; null means parent_based_sampler(always_on_sampler()).
  std::shared_ptr<const Sampler> sampler;
  /// Span timestamps come from its system_now(); null means the system clock.
  std::shared_ptr<Clock> clock;
  std::uint32_t max_events_per_span = 128;  ///< later events are counted as dropped
};

/// Starts spans and hands finished ones to its processor (a SpanProcessor of the SDK, e.g.
/// BatchSpanProcessor); its sampler (sdk/sampler.hpp) decides which traces are recorded. Thread-safe;
/// share it (std::shared_ptr) between the pipelines and threads that trace.
class Tracer {
 public:
  explicit Tracer(std::shared_ptr<SpanProcessor> processor, TracerOptions options = {});
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  /// A new span: a child of `parent` (in its trace) when it is valid, else the root of a new trace.
  [[nodiscard]] Span start_span(std::string_view name, const TraceContext& parent = {},
                                SpanKind kind = SpanKind::internal) const;
  /// A span with a given context (the engine's run and stage spans have their ids before they are
  /// traced): `self` is its context, `parent` its parent's span id (invalid for a root) and
  /// `sampled` the decision already taken.
  [[nodiscard]] Span start_span_with_context(std::string_view name, const TraceContext& self, SpanId parent,
                                             bool sampled, SpanKind kind = SpanKind::internal,
                                             std::int64_t start_unix_nano = 0) const;
  [[nodiscard]] const Sampler& sampler() const noexcept { return *sampler_; }
  [[nodiscard]] SpanProcessor& processor() const noexcept { return *processor_; }
  /// The processor's counters (SpanStats is in sdk/span_processor.hpp).
  [[nodiscard]] SpanStats stats() const noexcept;
  /// The processor's force_flush: exports every span ended before the call, within `timeout`.
  bool force_flush(std::chrono::milliseconds timeout);
  /// The processor's shutdown: flushes within `timeout`, then drops later spans.
  bool shutdown(std::chrono::milliseconds timeout);
  /// Now, from the tracer's clock, in nanoseconds since the Unix epoch.
  [[nodiscard]] std::int64_t now_unix_nano() const noexcept;
  [[nodiscard]] std::uint32_t max_events_per_span() const noexcept { return options_.max_events_per_span; }

 private:
  /// Starts `s`, whose context is set: its sampled flag, and when sampled its data.
  void begin(Span& s, std::string_view name, SpanId parent, bool sampled, SpanKind kind,
             std::int64_t start_unix_nano) const;

  std::shared_ptr<SpanProcessor> processor_;
  TracerOptions options_;
  std::shared_ptr<const Sampler> sampler_;
  Clock* clock_;
};

// ---------------------------------------------------------------------------------------------------
// Propagation

/// The upstream context in `headers` (`traceparent`, with `tracestate` passed through); invalid when
/// there is none. A malformed `traceparent` is ignored (the caller starts a new root) and counted in
/// propagation_stats().rejected, never an error. Thread-safe.
[[nodiscard]] TraceContext extract(const Headers& headers) noexcept;
/// Writes `ctx` as `traceparent` (and its trace state as `tracestate`, removed when empty); does
/// nothing for an invalid context.
void inject(const TraceContext& ctx, Headers& headers);

/// What extract() saw, process-wide. A plain value.
struct PropagationStats {
  std::uint64_t extracted = 0;  ///< valid `traceparent` headers
  std::uint64_t rejected = 0;   ///< malformed ones, ignored
};
[[nodiscard]] PropagationStats propagation_stats() noexcept;

/// Continues a record's trace through a stage: starts a span that is the child of the context in
/// `headers` (a new root when there is none or it is malformed) and writes the span's own context
/// back into `headers`, so that the record leaves with it. Call it in a map or sink, once per record;
/// end the span (or let it go out of scope) when the record is done.
[[nodiscard]] Span continue_trace(const Tracer& tracer, std::string_view name, Headers& headers,
                                  SpanKind kind = SpanKind::consumer);

}  // namespace weir::telemetry
