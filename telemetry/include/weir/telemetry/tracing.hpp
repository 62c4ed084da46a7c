#pragma once
/// \file Weir's tracer: spans, samplers, the batch span processor, the exporters (OTLP/HTTP JSON,
/// JSON lines, memory), W3C `traceparent` extraction and injection, and the tracing interceptor with
/// `trace`, the one call that traces a pipeline's runs, stages and sampled batches.
///
/// A span is recorded on the thread that owns it and handed to the processor when it ends; the
/// processor's bounded queues (one per recording thread) are drained by a thread of its own that
/// calls the exporter, so a slow or unreachable collector never blocks a pipeline: a full queue
/// drops spans and counts them.
/// See docs/tracing.md.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>
#include <weir/clock.hpp>
#include <weir/interceptor.hpp>
#include <weir/telemetry/logs.hpp>
#include <weir/telemetry/otlp_endpoint.hpp>  // otlp_endpoint_error
#include <weir/trace_context.hpp>

namespace weir {
class Observable;
}

namespace weir::telemetry {

/// Record headers (Kafka-style or HTTP): name -> value. `extract` and `inject` read and write
/// `traceparent` and `tracestate` in it.
using Headers = std::map<std::string, std::string>;

/// What a span stands for, as OTLP numbers it.
enum class SpanKind : int {
  unspecified = 0,
  internal = 1,
  server = 2,
  client = 3,
  producer = 4,
  consumer = 5
};

/// A span's status, as OTLP numbers it: unset (the default), ok, or error with a message.
enum class StatusCode : int { unset = 0, ok = 1, error = 2 };

/// The value of an attribute: a string, an integer, a floating-point number or a bool.
using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;

/// A key and its value. A plain value.
struct Attribute {
  std::string key;
  AttributeValue value;
};

/// Turns integers, floating-point numbers, bools and strings into an AttributeValue.
template <class V>
[[nodiscard]] AttributeValue attribute_value(V&& v) {
  using D = std::remove_cvref_t<V>;
  if constexpr (std::is_same_v<D, bool>) {
    return AttributeValue{v};
  } else if constexpr (std::is_integral_v<D>) {
    return AttributeValue{static_cast<std::int64_t>(v)};
  } else if constexpr (std::is_floating_point_v<D>) {
    return AttributeValue{static_cast<double>(v)};
  } else {
    return AttributeValue{std::string(std::string_view(std::forward<V>(v)))};
  }
}

/// Something that happened during a span, with its time. A plain value.
struct SpanEvent {
  std::string name;
  std::int64_t time_unix_nano = 0;
  std::vector<Attribute> attributes;
};

/// A finished span as exporters receive it. A plain value.
struct SpanData {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  ///< invalid for a root span
  std::uint8_t flags = 0x01U;
  std::string trace_state;
  std::string name;
  SpanKind kind = SpanKind::internal;
  std::int64_t start_unix_nano = 0;
  std::int64_t end_unix_nano = 0;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  std::uint32_t dropped_events = 0;  ///< events past the tracer's per-span limit
  StatusCode status = StatusCode::unset;
  std::string status_message;

  /// The attribute called `key`, or null.
  [[nodiscard]] const AttributeValue* attribute(std::string_view key) const noexcept;
};

// ---------------------------------------------------------------------------------------------------
// Samplers

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

// ---------------------------------------------------------------------------------------------------
// Exporters and the processor

/// What an exporter did with a batch.
enum class ExportResult { success, failure };

/// Sends finished spans somewhere. The processor calls `export_spans` from its one export thread;
/// `shutdown` may be called from another thread to cut retries short.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  virtual ExportResult export_spans(std::span<const SpanData> spans) noexcept = 0;
  /// Stops waiting (backoffs) and refuses further exports.
  virtual void shutdown() noexcept {}
};

/// What a processor did so far. A plain value.
struct SpanStats {
  std::uint64_t exported = 0;            ///< spans the exporter accepted
  std::uint64_t dropped_queue_full = 0;  ///< spans that found their queue full (or the processor shut down)
  std::uint64_t dropped_export_failed = 0;  ///< spans whose export failed for good
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_queue_full + dropped_export_failed; }
};

/// Receives spans as they end. Thread-safe: `make_span_data` and `on_end` are called on any thread,
/// concurrently.
class SpanProcessor {
 public:
  virtual ~SpanProcessor() = default;
  /// Storage for a sampled span that starts on the calling thread; the tracer resets every field
  /// (it reuses the attribute list's elements and trims the unused ones when the span ends) before
  /// the span comes back through `on_end`. The default allocates a new SpanData; a processor may
  /// hand out the storage of spans it has exported, to save allocations.
  [[nodiscard]] virtual std::unique_ptr<SpanData> make_span_data() { return std::make_unique<SpanData>(); }
  /// Takes a finished span; never blocks.
  virtual void on_end(std::unique_ptr<SpanData> span) noexcept = 0;
  /// Exports every span ended before the call; false when `timeout` passed first.
  virtual bool force_flush(std::chrono::milliseconds timeout) = 0;
  /// Flushes (within `timeout`), stops the export thread and the exporter; later spans are dropped.
  virtual bool shutdown(std::chrono::milliseconds timeout) = 0;
  [[nodiscard]] virtual SpanStats stats() const noexcept = 0;
};

/// Settings of a BatchSpanProcessor. A plain value.
struct BatchSpanProcessorOptions {
  /// Spans waiting for export, per recording thread; more are dropped and counted.
  std::size_t max_queue_size = 2048;
  std::size_t max_export_batch_size = 512;  ///< spans per export call; this many queued wake the thread
  std::chrono::milliseconds schedule_delay{1000};  ///< the thread exports at least this often
  /// Where the warning about failed exports goes.
  StructuredLogger logger = StructuredLogger(stderr_logger());
};

/// Queues finished spans on a bounded single-producer ring per recording thread and exports them
/// from a thread of its own every `schedule_delay` or as soon as a thread has ended
/// `max_export_batch_size` more. A full ring drops the span and counts it; a failed export drops
/// its spans, counts them and logs a warning (at most one every 10 s). Exported spans' storage is
/// reused for later spans of the same thread. Thread-safe.
class BatchSpanProcessor final : public SpanProcessor {
 public:
  explicit BatchSpanProcessor(std::shared_ptr<SpanExporter> exporter, BatchSpanProcessorOptions options = {});
  /// Shuts down with a 5 s timeout when not shut down yet (an export request in progress still
  /// finishes).
  ~BatchSpanProcessor() override;
  BatchSpanProcessor(const BatchSpanProcessor&) = delete;
  BatchSpanProcessor& operator=(const BatchSpanProcessor&) = delete;

  [[nodiscard]] std::unique_ptr<SpanData> make_span_data() override;
  void on_end(std::unique_ptr<SpanData> span) noexcept override;
  bool force_flush(std::chrono::milliseconds timeout) override;
  bool shutdown(std::chrono::milliseconds timeout) override;
  [[nodiscard]] SpanStats stats() const noexcept override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Keeps every exported span in memory, for tests. Thread-safe.
class InMemoryExporter final : public SpanExporter {
 public:
  ExportResult export_spans(std::span<const SpanData> spans) noexcept override;
  /// A copy of the spans exported so far, in export order.
  [[nodiscard]] std::vector<SpanData> spans() const;
  /// Export calls so far.
  [[nodiscard]] std::size_t export_calls() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::vector<SpanData> spans_;
  std::size_t calls_ = 0;
};

/// The `resource` of exported spans: who produced them. A plain value.
struct Resource {
  std::string service_name = "weir";
  std::string service_version;        ///< empty: Weir's version
  std::vector<Attribute> attributes;  ///< more resource attributes
};

/// `spans` as one OTLP/HTTP JSON request body (ExportTraceServiceRequest): resourceSpans ->
/// scopeSpans (scope "weir") -> spans, built with nlohmann::json. See docs/tracing.md for the mapping.
[[nodiscard]] std::string otlp_json(std::span<const SpanData> spans, const Resource& resource);
/// Appends the same bytes as `otlp_json(spans, resource)` to `out`, written directly (no JSON tree):
/// what the exporters use. Reuse `out` across calls to avoid reallocating it.
void append_otlp_json(std::string& out, std::span<const SpanData> spans, const Resource& resource);

/// Writes each export as one OTLP JSON request body on a line of a file (JSON lines). Thread-safe.
class JsonLinesFileExporter final : public SpanExporter {
 public:
  /// Opens (creates or truncates, or with `append` appends to) `path`; throws std::runtime_error
  /// when it cannot.
  explicit JsonLinesFileExporter(std::filesystem::path path, Resource resource = {}, bool append = false);
  ~JsonLinesFileExporter() override;
  ExportResult export_spans(std::span<const SpanData> spans) noexcept override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Settings of an OtlpHttpExporter. A plain value.
struct OtlpHttpOptions {
  /// The collector's base URL; spans are POSTed to `<endpoint>/v1/traces`. Checked by the
  /// exporter's constructor (see otlp_endpoint_error).
  std::string endpoint = "http://127.0.0.1:4318";
  Headers headers;  ///< extra request headers (e.g. authorization)
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{10000};  ///< one request, connection included
  /// One export in all (every request and every wait between them): it never takes longer.
  std::chrono::milliseconds export_timeout{30000};
  int max_attempts = 5;                            ///< attempts per batch, the first included
  std::chrono::milliseconds initial_backoff{200};  ///< before the first retry; doubled each retry
  /// The longest wait between attempts, a server's `Retry-After` included.
  std::chrono::milliseconds max_backoff{5000};
  Resource resource;
  /// Where a failed export is logged (at debug, with its cause).
  StructuredLogger logger = StructuredLogger(stderr_logger());
};

/// POSTs spans as OTLP/HTTP JSON with libcurl, retrying connection errors, 429 and 5xx with
/// exponential backoff, or after the `Retry-After` a 429 or 503 asks for (capped by `max_backoff`),
/// within `export_timeout` per export; only the processor's export thread waits. `shutdown` ends a
/// backoff and aborts a request in flight at once. Thread-safe.
class OtlpHttpExporter final : public SpanExporter {
 public:
  /// Throws std::invalid_argument naming the problem when `options.endpoint` is not an http or
  /// https URL (see otlp_endpoint_error).
  explicit OtlpHttpExporter(OtlpHttpOptions options);
  ~OtlpHttpExporter() override;
  ExportResult export_spans(std::span<const SpanData> spans) noexcept override;
  void shutdown() noexcept override;
  /// HTTP requests made so far (retries included).
  [[nodiscard]] std::uint64_t requests() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------------
// Tracer and spans

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

/// Starts spans and hands finished ones to its processor. Thread-safe; share it (std::shared_ptr)
/// between the pipelines and threads that trace.
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
  /// The processor's counters.
  [[nodiscard]] SpanStats stats() const noexcept { return processor_->stats(); }
  bool force_flush(std::chrono::milliseconds timeout) { return processor_->force_flush(timeout); }
  bool shutdown(std::chrono::milliseconds timeout) { return processor_->shutdown(timeout); }
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

// ---------------------------------------------------------------------------------------------------
// The interceptor

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
