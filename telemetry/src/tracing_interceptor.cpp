#include "weir/telemetry/tracing_interceptor.hpp"

#include <oneapi/tbb/enumerable_thread_specific.h>

#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>
#include <weir/observable.hpp>
#include <weir/report.hpp>

#include "weir/telemetry/sdk/sampler.hpp"

namespace weir::telemetry {

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
