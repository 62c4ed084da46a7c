#include "weir/telemetry/tracing.hpp"

#include <oneapi/tbb/enumerable_thread_specific.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <weir/observable.hpp>
#include <weir/report.hpp>

namespace weir::telemetry {

const AttributeValue* SpanData::attribute(std::string_view key) const noexcept {
  for (const auto& a : attributes) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------------
// Samplers

namespace {

/// TraceContext::valid(), with the ids read as machine words (no call, no memcmp): it is asked
/// several times for every span.
bool has_ids(const TraceContext& c) noexcept {
  std::uint64_t t0 = 0;
  std::uint64_t t1 = 0;
  std::uint64_t s = 0;
  std::memcpy(&t0, c.trace_id.bytes.data(), sizeof t0);
  std::memcpy(&t1, c.trace_id.bytes.data() + sizeof t0, sizeof t1);
  std::memcpy(&s, c.span_id.bytes.data(), sizeof s);
  return (t0 | t1) != 0 && s != 0;
}

class AlwaysOn final : public Sampler {
 public:
  bool should_sample(const TraceContext&, const TraceId&) const noexcept override { return true; }
  std::string description() const override { return "AlwaysOnSampler"; }
};

class AlwaysOff final : public Sampler {
 public:
  bool should_sample(const TraceContext&, const TraceId&) const noexcept override { return false; }
  std::string description() const override { return "AlwaysOffSampler"; }
};

class Ratio final : public Sampler {
 public:
  explicit Ratio(double ratio) : ratio_(ratio) {
    if (!(ratio >= 0.0 && ratio <= 1.0))
      throw std::invalid_argument("ratio_sampler: the ratio must be in [0, 1]");
    // Sampled when the trace id's last 8 bytes, as a number, are below ratio * 2^64.
    if (ratio >= 1.0) {
      all_ = true;
    } else {
      threshold_ = static_cast<std::uint64_t>(std::ldexp(ratio, 64));
    }
  }
  bool should_sample(const TraceContext&, const TraceId& id) const noexcept override {
    if (all_) return true;
    std::uint64_t v = 0;
    for (std::size_t i = 8; i < 16; ++i) v = (v << 8) | id.bytes[i];
    return v < threshold_;
  }
  std::string description() const override { return "TraceIdRatioBased{" + std::to_string(ratio_) + "}"; }

 private:
  double ratio_;
  bool all_ = false;
  std::uint64_t threshold_ = 0;
};

class ParentBased final : public Sampler {
 public:
  explicit ParentBased(std::shared_ptr<const Sampler> root) : root_(std::move(root)) {
    if (!root_) throw std::invalid_argument("parent_based_sampler: the root sampler cannot be null");
  }
  bool should_sample(const TraceContext& parent, const TraceId& id) const noexcept override {
    if (has_ids(parent)) return parent.sampled();
    return root_->should_sample(parent, id);
  }
  std::string description() const override { return "ParentBased{root=" + root_->description() + "}"; }

 private:
  std::shared_ptr<const Sampler> root_;
};

}  // namespace

std::shared_ptr<const Sampler> always_on_sampler() {
  static const auto s = std::make_shared<const AlwaysOn>();
  return s;
}
std::shared_ptr<const Sampler> always_off_sampler() {
  static const auto s = std::make_shared<const AlwaysOff>();
  return s;
}
std::shared_ptr<const Sampler> ratio_sampler(double ratio) {
  return std::make_shared<const Ratio>(ratio);
}
std::shared_ptr<const Sampler> parent_based_sampler(std::shared_ptr<const Sampler> root) {
  return std::make_shared<const ParentBased>(std::move(root));
}

// ---------------------------------------------------------------------------------------------------
// Span

Span::Span(Span&& other) noexcept
    : tracer_(other.tracer_),
      data_(std::move(other.data_)),
      attribute_count_(other.attribute_count_),
      context_(std::move(other.context_)) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    tracer_ = other.tracer_;
    data_ = std::move(other.data_);
    attribute_count_ = other.attribute_count_;
    context_ = std::move(other.context_);
  }
  return *this;
}

void Span::set_value(std::string_view key, AttributeValue value) {
  auto& attributes = data_->attributes;
  const auto live = attributes.begin() + attribute_count_;
  for (auto it = attributes.begin(); it != live; ++it) {
    if (it->key == key) {
      it->value = std::move(value);
      return;
    }
  }
  if (attribute_count_ < attributes.size()) {
    // Reused storage: assigning keeps the key's buffer.
    auto& a = attributes[attribute_count_];
    a.key.assign(key);
    a.value = std::move(value);
  } else {
    attributes.push_back(Attribute{std::string(key), std::move(value)});
  }
  ++attribute_count_;
}

void Span::add_event(std::string_view name, std::vector<Attribute> attributes) {
  if (!data_) return;
  if (data_->events.size() >= tracer_->max_events_per_span()) {
    ++data_->dropped_events;
    return;
  }
  data_->events.push_back(SpanEvent{std::string(name), tracer_->now_unix_nano(), std::move(attributes)});
}

void Span::set_status(StatusCode code, std::string_view message) {
  if (!data_) return;
  data_->status = code;
  data_->status_message = code == StatusCode::error ? std::string(message) : std::string();
}

void Span::record_error(std::string_view type, std::string_view message) {
  if (!data_) return;
  add_event("exception",
            {{"exception.type", std::string(type)}, {"exception.message", std::string(message)}});
  set_status(StatusCode::error, message);
}

void Span::end() noexcept {
  if (!data_) return;
  auto& attributes = data_->attributes;
  if (attributes.size() > attribute_count_)
    attributes.erase(attributes.begin() + attribute_count_, attributes.end());
  data_->end_unix_nano = tracer_->now_unix_nano();
  tracer_->processor().on_end(std::move(data_));
  data_.reset();
}

// ---------------------------------------------------------------------------------------------------
// Tracer

Tracer::Tracer(std::shared_ptr<SpanProcessor> processor, TracerOptions options)
    : processor_(std::move(processor)), options_(std::move(options)) {
  if (!processor_) throw std::invalid_argument("Tracer: the processor cannot be null");
  sampler_ = options_.sampler ? options_.sampler : parent_based_sampler(always_on_sampler());
  if (!options_.clock) options_.clock = system_clock();
  clock_ = options_.clock.get();
}

Tracer::~Tracer() = default;

std::int64_t Tracer::now_unix_nano() const noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->system_now().time_since_epoch())
      .count();
}

Span Tracer::start_span(std::string_view name, const TraceContext& parent, SpanKind kind) const {
  Span s;
  TraceContext& self = s.context_;
  const bool has_parent = has_ids(parent);
  if (has_parent) {
    self.trace_id = parent.trace_id;
    self.span_id = SpanId::random();
    self.flags = parent.flags;
    self.trace_state = parent.trace_state;
  } else {
    self.trace_id = TraceId::random();
    self.span_id = SpanId::random();
    self.flags = 0;
  }
  const bool sampled = sampler_->should_sample(parent, self.trace_id);
  begin(s, name, has_parent ? parent.span_id : SpanId{}, sampled, kind, 0);
  return s;
}

Span Tracer::start_span_with_context(std::string_view name, const TraceContext& self, SpanId parent,
                                     bool sampled, SpanKind kind, std::int64_t start_unix_nano) const {
  Span s;
  s.context_ = self;
  begin(s, name, parent, sampled, kind, start_unix_nano);
  return s;
}

void Tracer::begin(Span& s, std::string_view name, SpanId parent, bool sampled, SpanKind kind,
                   std::int64_t start_unix_nano) const {
  s.tracer_ = this;
  const TraceContext& self = s.context_;
  s.context_.flags = static_cast<std::uint8_t>(sampled ? (self.flags | 0x01U) : (self.flags & ~0x01U));
  if (!sampled) return;
  // Possibly the storage of an exported span: every field is overwritten, and its attributes are
  // reused in place (see Span::set_value) so that their keys keep their buffers.
  auto d = processor_->make_span_data();
  if (!d) d = std::make_unique<SpanData>();
  d->trace_id = self.trace_id;
  d->span_id = self.span_id;
  d->parent_span_id = parent;
  d->flags = self.flags;
  d->trace_state.assign(self.trace_state);
  d->name.assign(name);
  d->kind = kind;
  d->end_unix_nano = 0;
  // Reused storage keeps its capacity, so growing is paid once per slot: start small.
  if (d->attributes.capacity() == 0) d->attributes.reserve(4);
  d->events.clear();
  d->dropped_events = 0;
  d->status = StatusCode::unset;
  d->status_message.clear();
  d->start_unix_nano = start_unix_nano != 0 ? start_unix_nano : now_unix_nano();
  s.data_ = std::move(d);
  s.attribute_count_ = 0;
}

// ---------------------------------------------------------------------------------------------------
// Propagation

namespace {
std::atomic<std::uint64_t> extracted_count{0};
std::atomic<std::uint64_t> rejected_count{0};

/// The header called `name`, matched exactly first, then ignoring case (HTTP header names).
const std::string* find_header(const Headers& h, std::string_view name) {
  if (auto it = h.find(std::string(name)); it != h.end()) return &it->second;
  for (const auto& [k, v] : h) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        }))
      return &v;
  }
  return nullptr;
}
}  // namespace

TraceContext extract(const Headers& headers) noexcept {
  try {
    const std::string* tp = find_header(headers, "traceparent");
    if (tp == nullptr) return {};
    const std::string* ts = find_header(headers, "tracestate");
    auto ctx = parse_traceparent(*tp, ts != nullptr ? std::string_view(*ts) : std::string_view{});
    if (!ctx) {
      rejected_count.fetch_add(1, std::memory_order_relaxed);
      return {};
    }
    extracted_count.fetch_add(1, std::memory_order_relaxed);
    return *ctx;
  } catch (...) {  // allocation failure: treat as no context
    return {};
  }
}

void inject(const TraceContext& ctx, Headers& headers) {
  if (!ctx.valid()) return;
  headers["traceparent"] = format_traceparent(ctx);
  if (ctx.trace_state.empty()) {
    headers.erase("tracestate");
  } else {
    headers["tracestate"] = ctx.trace_state;
  }
}

PropagationStats propagation_stats() noexcept {
  return PropagationStats{extracted_count.load(std::memory_order_relaxed),
                          rejected_count.load(std::memory_order_relaxed)};
}

Span continue_trace(const Tracer& tracer, std::string_view name, Headers& headers, SpanKind kind) {
  Span span = tracer.start_span(name, extract(headers), kind);
  inject(span.context(), headers);
  return span;
}

// ---------------------------------------------------------------------------------------------------
// TracingInterceptor

namespace {

std::uint64_t key_of(const SpanId& id) noexcept {
  std::uint64_t k = 0;
  std::memcpy(&k, id.bytes.data(), sizeof k);
  return k;
}

std::string error_text(std::string_view type, std::string_view message) {
  std::string s(type);
  if (!message.empty()) {
    s += ": ";
    s += message;
  }
  return s;
}

std::int64_t ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::int64_t unix_nano(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct TracingInterceptor::StageState {
  Span span;
  TraceContext context;  ///< the stage span's context (sampled as its run)
};

struct TracingInterceptor::RunState {
  std::string pipeline;
  Span span;
  bool sampled = false;
  std::vector<std::unique_ptr<StageState>> stages;
};

/// Batch counters by stage index, one vector per thread, owned by the interceptor.
struct TracingInterceptor::BatchCounters {
  tbb::enumerable_thread_specific<std::vector<std::uint32_t>> per_thread;
};

namespace {
/// Per interceptor, the run whose stages are being started on this thread: a run's on_run_start and
/// on_stage_start calls are made one after the other on the thread that runs it, which also calls
/// on_run_stop (and forgets the entry).
thread_local std::vector<std::pair<const void*, const void*>> starting_runs;

void set_starting(const void* owner, const void* run) {
  for (auto& [o, r] : starting_runs) {
    if (o == owner) {
      r = run;
      return;
    }
  }
  starting_runs.emplace_back(owner, run);
}

const void* starting(const void* owner) {
  for (const auto& [o, r] : starting_runs) {
    if (o == owner) return r;
  }
  return nullptr;
}

void forget_starting(const void* owner, const void* run) {
  std::erase_if(starting_runs, [&](const auto& e) { return e.first == owner && e.second == run; });
}
}  // namespace

TracingInterceptor::TracingInterceptor(std::shared_ptr<Tracer> tracer, TracingOptions options)
    : tracer_(std::move(tracer)), options_(options), counters_(std::make_unique<BatchCounters>()) {
  if (!tracer_) throw std::invalid_argument("TracingInterceptor: the tracer cannot be null");
}

TracingInterceptor::~TracingInterceptor() = default;

void TracingInterceptor::on_run_start(const RunInfo& r) {
  auto run = std::make_unique<RunState>();
  TraceContext parent;
  if (r.parent_span.valid()) {
    parent = r.trace;
    parent.span_id = r.parent_span;
  }
  run->pipeline = r.pipeline;
  run->sampled = tracer_->sampler().should_sample(parent, r.trace.trace_id);
  run->span = tracer_->start_span_with_context("run " + r.pipeline, r.trace, r.parent_span, run->sampled);
  run->span.set_attribute("weir.pipeline", r.pipeline);
  run->span.set_attribute("weir.run_id", r.run_id);
  const std::lock_guard lock(mutex_);
  set_starting(this, run.get());
  runs_[r.run_id] = std::move(run);
}

void TracingInterceptor::on_stage_start(const StageInfo& s) {
  const std::lock_guard lock(mutex_);
  // The run this thread is starting; failing that (never expected), a run of the same pipeline.
  const void* mine = starting(this);
  RunState* found = nullptr;
  for (const auto& [id, r] : runs_) {
    if (r->pipeline != s.pipeline) continue;
    found = r.get();
    if (r.get() == mine) break;
  }
  if (found == nullptr) return;
  auto& run = *found;
  auto st = std::make_unique<StageState>();
  st->context = run.span.context();
  st->context.span_id = s.span_id;
  st->span = tracer_->start_span_with_context("stage " + s.name, st->context, run.span.context().span_id,
                                              run.sampled);
  st->span.set_attribute("weir.pipeline", s.pipeline);
  st->span.set_attribute("weir.stage", s.name);
  st->span.set_attribute("weir.stage.kind", s.kind);
  st->span.set_attribute("weir.stage.parallelism", s.parallelism);
  stages_[key_of(s.span_id)] = st.get();
  run.stages.push_back(std::move(st));
}

void TracingInterceptor::on_stage_stop(const StageInfo& s, const StageReport& rep) {
  const std::lock_guard lock(mutex_);
  auto it = stages_.find(key_of(s.span_id));
  if (it == stages_.end()) return;
  auto& span = it->second->span;
  span.set_attribute("weir.stage.items_in", rep.items_in);
  span.set_attribute("weir.stage.items_out", rep.items_out);
  span.set_attribute("weir.stage.batches", rep.batches);
  span.set_attribute("weir.stage.errors", rep.errors);
  if (rep.filtered != 0) span.set_attribute("weir.stage.filtered", rep.filtered);
  if (rep.skipped != 0) span.set_attribute("weir.stage.skipped", rep.skipped);
  if (rep.dead_lettered != 0) span.set_attribute("weir.stage.dead_lettered", rep.dead_lettered);
  if (rep.retries != 0) span.set_attribute("weir.stage.retries", rep.retries);
  if (rep.timeouts != 0) span.set_attribute("weir.stage.timeouts", rep.timeouts);
  span.end();
  stages_.erase(it);
}

void TracingInterceptor::on_run_stop(const RunInfo& r, const RunReport& rep) {
  std::unique_ptr<RunState> run;
  {
    const std::lock_guard lock(mutex_);
    auto it = runs_.find(r.run_id);
    if (it != runs_.end()) forget_starting(this, it->second.get());
    if (it == runs_.end()) return;
    run = std::move(it->second);
    runs_.erase(it);
    for (const auto& st : run->stages) stages_.erase(key_of(st->context.span_id));
  }
  // Stages that were not stopped (a run that failed while starting) end with the run.
  for (auto& st : run->stages) st->span.end();
  auto& span = run->span;
  span.set_attribute("weir.run.status", std::string(to_string(rep.status)));
  span.set_attribute("weir.run.stages", static_cast<std::int64_t>(rep.stages.size()));
  if (rep.status == RunStatus::failed) {
    std::string message = "run failed";
    if (!rep.errors.empty()) {
      const auto& e = rep.errors.front();
      message = e.stage + ": " + error_text(e.type, e.message);
    }
    span.set_status(StatusCode::error, message);
  }
  const bool sampled = run->sampled;
  span.end();
  if (sampled && options_.flush_timeout.count() > 0) tracer_->force_flush(options_.flush_timeout);
}

void TracingInterceptor::after_batch(const StageInfo& s, const BatchStats& b) {
  if (options_.batch_sample_every == 0) return;
  auto& counts = counters_->per_thread.local();
  const auto idx = static_cast<std::size_t>(s.index);
  if (counts.size() <= idx) counts.resize(idx + 1, 0);
  if (counts[idx]++ % options_.batch_sample_every != 0) return;
  record_batch(s, b);
}

void TracingInterceptor::record_batch(const StageInfo& s, const BatchStats& b) {
  TraceContext parent;
  {
    const std::lock_guard lock(mutex_);
    auto it = stages_.find(key_of(s.span_id));
    if (it == stages_.end() || !it->second->span.recording()) return;
    parent = it->second->context;
  }
  const std::int64_t end = tracer_->now_unix_nano();
  auto span = tracer_->start_span_with_context("batch " + s.name, parent.child(), parent.span_id, true,
                                               SpanKind::internal, end - b.duration.count());
  span.set_attribute("weir.pipeline", s.pipeline);
  span.set_attribute("weir.stage", s.name);
  span.set_attribute("weir.batch.items_in", b.items_in);
  span.set_attribute("weir.batch.items_out", b.items_out);
  span.set_attribute("weir.batch.errors", b.errors);
  if (b.filtered != 0) span.set_attribute("weir.batch.filtered", b.filtered);
  if (b.skipped != 0) span.set_attribute("weir.batch.skipped", b.skipped);
  if (b.dead_lettered != 0) span.set_attribute("weir.batch.dead_lettered", b.dead_lettered);
  span.end();
}

void TracingInterceptor::on_event(const StageInfo& s, const Event& e) {
  // Only the events worth a line in a trace; per-batch tallies (late items, routes, circuit counts)
  // are metrics.
  const bool wanted = std::holds_alternative<events::RetryAttempt>(e) ||
                      std::holds_alternative<events::ItemFailed>(e) ||
                      std::holds_alternative<events::DeadLetterSent>(e) ||
                      std::holds_alternative<events::DeadLetterHandlerError>(e) ||
                      std::holds_alternative<events::WindowEmitted>(e) ||
                      std::holds_alternative<events::TimeoutOccurred>(e) ||
                      std::holds_alternative<events::CircuitStateChanged>(e);
  if (!wanted) return;
  const std::lock_guard lock(mutex_);
  auto it = stages_.find(key_of(s.span_id));
  if (it == stages_.end() || !it->second->span.recording()) return;
  auto& span = it->second->span;
  std::visit(
      [&](const auto& ev) {
        using E = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<E, events::RetryAttempt>) {
          span.add_event("retry", {{"weir.retry.attempt", std::int64_t{ev.attempt}},
                                   {"weir.retry.backoff_ms", ms(ev.backoff)},
                                   {"exception.type", std::string(ev.error_type)},
                                   {"exception.message", std::string(ev.message)}});
        } else if constexpr (std::is_same_v<E, events::ItemFailed>) {
          if (ev.action == "fail") {
            span.record_error(ev.error_type, error_text(ev.error_type, ev.message));
          } else {
            span.add_event("item_failed", {{"exception.type", std::string(ev.error_type)},
                                           {"exception.message", std::string(ev.message)},
                                           {"weir.error.action", std::string(ev.action)}});
          }
        } else if constexpr (std::is_same_v<E, events::DeadLetterSent>) {
          span.add_event("dead_letter", {{"exception.type", std::string(ev.error_type)},
                                         {"weir.dead_letter.attempts", std::int64_t{ev.attempts}}});
        } else if constexpr (std::is_same_v<E, events::DeadLetterHandlerError>) {
          span.add_event("dead_letter_handler_error", {{"exception.type", std::string(ev.error_type)},
                                                       {"exception.message", std::string(ev.message)}});
        } else if constexpr (std::is_same_v<E, events::WindowEmitted>) {
          span.add_event("window_emitted", {{"weir.window.keys", static_cast<std::int64_t>(ev.keys)},
                                            {"weir.window.items", static_cast<std::int64_t>(ev.items)},
                                            {"weir.window.start_unix_nano", unix_nano(ev.start)},
                                            {"weir.window.end_unix_nano", unix_nano(ev.end)}});
        } else if constexpr (std::is_same_v<E, events::TimeoutOccurred>) {
          span.add_event("timeout", {{"weir.timeout.configured_ms", ms(ev.configured)},
                                     {"weir.timeout.actual_ms", ms(ev.actual)}});
        } else if constexpr (std::is_same_v<E, events::CircuitStateChanged>) {
          span.add_event("circuit_state_changed", {{"weir.circuit.from", std::string(to_string(ev.from))},
                                                   {"weir.circuit.to", std::string(to_string(ev.to))}});
        }
      },
      e);
}

std::shared_ptr<TracingInterceptor> trace(Observable& pipeline, std::shared_ptr<Tracer> tracer,
                                          TracingOptions options) {
  if (!tracer) throw std::invalid_argument("trace: the tracer cannot be null");
#if defined(WEIR_TELEMETRY) && WEIR_TELEMETRY
  auto interceptor = std::make_shared<TracingInterceptor>(std::move(tracer), options);
  pipeline.intercept(interceptor, options.priority);
  return interceptor;
#else
  (void)pipeline;
  (void)options;
  return nullptr;
#endif
}

}  // namespace weir::telemetry
