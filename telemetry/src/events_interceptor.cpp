// EventsInterceptor and emit_events: a pipeline's hooks as telemetry events (docs/events.md).
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>
#include <weir/observable.hpp>

#include "weir/telemetry/events.hpp"

namespace weir::telemetry {

using json = nlohmann::json;

namespace {

const std::vector<std::string_view> all_types{
    "pipeline.started", "pipeline.completed", "pipeline.failed",       "pipeline.cancelled",
    "pipeline.wide",    "stage.started",      "stage.completed",       "stage.failed",
    "stage.wide",       "item.failed",        "retry.attempt",         "dlq.item",
    "dlq.failed",       "stage.timeout",      "circuit.state_changed", "circuit.rejected",
    "window.emitted",   "window.late_item",   "route.no_match",        "stream.backpressure"};

std::int64_t ns(std::chrono::nanoseconds d) {
  return d.count();
}

constexpr std::string_view handler_prefix = "dead_letter_handler: ";

json summaries_of(const RunReport& r, const std::string* stage) {
  json out = json::array();
  for (const auto& e : r.errors) {
    if (stage == nullptr || e.stage == *stage) out.push_back(to_json(e));
  }
  return out;
}

json wide(const StageReport& s) {
  return json{{"kind", s.kind},
              {"node", s.node},
              {"parallelism", s.parallelism},
              {"items_in", s.items_in},
              {"items_out", s.items_out},
              {"filtered", s.filtered},
              {"errors", s.errors},
              {"skipped", s.skipped},
              {"dead_lettered", s.dead_lettered},
              {"dead_letter_failures", s.dead_letter_failures},
              {"retries", s.retries},
              {"timeouts", s.timeouts},
              {"late", s.late},
              {"batches", s.batches},
              {"busy_ns", ns(s.busy)},
              {"blocked_ns", ns(s.blocked)},
              {"wall_ns", ns(s.wall)},
              {"batch_p50_ns", ns(s.batch_p50)},
              {"batch_p99_ns", ns(s.batch_p99)},
              {"circuit", s.circuit ? json(std::string(weir::to_string(*s.circuit))) : json(nullptr)}};
}

}  // namespace

const std::vector<std::string_view>& event_types() {
  return all_types;
}

/// Per stage: what was stopped, whether an item failed the run, and the backpressure not yet sent.
struct EventsInterceptor::StageState {
  StageInfo info;
  std::optional<StageReport> report;
  std::atomic<bool> fatal{false};
  std::mutex mutex;  ///< guards the backpressure fields
  bool sent_any = false;
  std::chrono::steady_clock::time_point last_sent{};
  std::chrono::nanoseconds blocked{0};
  std::uint64_t waits = 0;
};

EventsInterceptor::EventsInterceptor(std::shared_ptr<EventSink> sink, EventOptions options)
    : sink_(std::move(sink)), options_(std::move(options)) {
  if (!sink_) throw std::invalid_argument("EventsInterceptor: the sink cannot be null");
  if (options_.backpressure_interval.count() < 0)
    throw std::invalid_argument("EventsInterceptor: backpressure_interval cannot be negative");
  clock_ = options_.clock ? options_.clock : system_clock();
}

EventsInterceptor::~EventsInterceptor() = default;

TelemetryEvent EventsInterceptor::make(std::string type, const StageInfo* stage) const {
  TelemetryEvent e;
  e.type = std::move(type);
  e.time = clock_->system_now();
  e.run_id = run_id_;
  e.pipeline = pipeline_;
  e.trace_id = trace_id_;
  if (stage != nullptr) {
    e.stage = stage->name;
    e.span_id = stage->span_id.hex();
  } else {
    e.span_id = span_id_;
  }
  return e;
}

void EventsInterceptor::offer(const TelemetryEvent& e) {
  if (!sink_->try_emit(e)) refused_.fetch_add(1, std::memory_order_relaxed);
}

EventsInterceptor::StageState* EventsInterceptor::state(const StageInfo& s) const noexcept {
  const auto i = static_cast<std::size_t>(s.index);
  return i < stages_.size() ? stages_[i].get() : nullptr;
}

void EventsInterceptor::on_run_start(const RunInfo& info) {
  run_id_ = info.run_id;
  pipeline_ = info.pipeline;
  trace_id_ = info.trace.trace_id.hex();
  span_id_ = info.trace.span_id.hex();
  stages_.clear();
  auto e = make("pipeline.started", nullptr);
  e.data = json{{"parent_span_id", info.parent_span.valid() ? json(info.parent_span.hex()) : json(nullptr)},
                {"sampled", info.trace.sampled()}};
  sink_->emit(e);
}

void EventsInterceptor::on_stage_start(const StageInfo& s) {
  const auto i = static_cast<std::size_t>(s.index);
  if (stages_.size() <= i) stages_.resize(i + 1);
  stages_[i] = std::make_unique<StageState>();
  stages_[i]->info = s;
  auto e = make("stage.started", &s);
  e.data = json{{"kind", s.kind}, {"index", s.index}, {"node", s.node}, {"parallelism", s.parallelism}};
  sink_->emit(e);
}

void EventsInterceptor::on_stage_stop(const StageInfo& s, const StageReport& r) {
  // Sent with the run's end, where the run's error summaries tell a failed stage from a completed one.
  if (auto* st = state(s)) st->report = r;
}

void EventsInterceptor::on_run_stop(const RunInfo&, const RunReport& r) {
  const bool failed = r.status == RunStatus::failed;
  for (const auto& st : stages_) {
    if (!st || !st->report) continue;
    const auto& rep = *st->report;
    // A stage failed the run when one of its items failed under the fail policy, or when it has
    // errors that no item accounts for (its kernel or source threw).
    std::uint64_t recorded = 0;
    for (const auto& er : r.errors) {
      if (er.stage == st->info.name && er.type.rfind(handler_prefix, 0) != 0) recorded += er.count;
    }
    const bool stage_failed = failed && (st->fatal.load() || recorded > rep.errors);
    auto end = make(stage_failed ? "stage.failed" : "stage.completed", &st->info);
    end.data = json{{"kind", rep.kind},
                    {"items_in", rep.items_in},
                    {"items_out", rep.items_out},
                    {"errors", rep.errors},
                    {"error_summaries", summaries_of(r, &st->info.name)}};
    sink_->emit(end);
    auto w = make("stage.wide", &st->info);
    w.data = wide(rep);
    w.data["error_summaries"] = summaries_of(r, &st->info.name);
    sink_->emit(w);
  }
  json totals{{"stages", r.stages.size()}};
  std::uint64_t read = 0;
  for (const char* field : {"filtered", "errors", "skipped", "dead_lettered", "dead_letter_failures",
                            "retries", "timeouts", "late", "batches"})
    totals[field] = 0;
  for (const auto& s : r.stages) {
    if (s.kind == "source") read += s.items_out;
    totals["filtered"] = totals["filtered"].get<std::uint64_t>() + s.filtered;
    totals["errors"] = totals["errors"].get<std::uint64_t>() + s.errors;
    totals["skipped"] = totals["skipped"].get<std::uint64_t>() + s.skipped;
    totals["dead_lettered"] = totals["dead_lettered"].get<std::uint64_t>() + s.dead_lettered;
    totals["dead_letter_failures"] =
        totals["dead_letter_failures"].get<std::uint64_t>() + s.dead_letter_failures;
    totals["retries"] = totals["retries"].get<std::uint64_t>() + s.retries;
    totals["timeouts"] = totals["timeouts"].get<std::uint64_t>() + s.timeouts;
    totals["late"] = totals["late"].get<std::uint64_t>() + s.late;
    totals["batches"] = totals["batches"].get<std::uint64_t>() + s.batches;
  }
  totals["items_read"] = read;
  auto w = make("pipeline.wide", nullptr);
  w.data = json{{"status", weir::to_string(r.status)}, {"duration_ns", ns(r.wall)}};
  w.data.update(totals);
  w.data["error_summaries"] = summaries_of(r, nullptr);
  sink_->emit(w);
  auto end = make("pipeline." + std::string(weir::to_string(r.status)), nullptr);
  end.data = json{{"status", weir::to_string(r.status)},
                  {"duration_ns", ns(r.wall)},
                  {"error_summaries", summaries_of(r, nullptr)}};
  sink_->emit(end);
  sink_->flush();
}

void EventsInterceptor::on_event(const StageInfo& s, const Event& ev) {
  std::visit(
      [&](const auto& x) {
        using E = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<E, events::ItemFailed>) {
          if (x.action == "fail") {
            if (auto* st = state(s)) st->fatal.store(true);
          }
          auto e = make("item.failed", &s);
          e.data = json{{"error_type", x.error_type}, {"message", x.message}, {"action", x.action}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::RetryAttempt>) {
          auto e = make("retry.attempt", &s);
          e.data = json{{"attempt", x.attempt},
                        {"backoff_ns", ns(x.backoff)},
                        {"error_type", x.error_type},
                        {"message", x.message}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::DeadLetterSent>) {
          auto e = make("dlq.item", &s);
          e.data = json{{"error_type", x.error_type}, {"attempts", x.attempts}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::DeadLetterHandlerError>) {
          auto e = make("dlq.failed", &s);
          e.data = json{{"error_type", x.error_type}, {"message", x.message}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::TimeoutOccurred>) {
          auto e = make("stage.timeout", &s);
          e.data = json{{"configured_ns", ns(x.configured)}, {"actual_ns", ns(x.actual)}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::CircuitStateChanged>) {
          auto e = make("circuit.state_changed", &s);
          e.data = json{{"from", weir::to_string(x.from)}, {"to", weir::to_string(x.to)}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::CircuitRejected>) {
          auto e = make("circuit.rejected", &s);
          e.data = json{{"count", x.count}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::WindowEmitted>) {
          auto e = make("window.emitted", &s);
          e.data = json{{"keys", x.keys},
                        {"items", x.items},
                        {"start", format_rfc3339(x.start)},
                        {"end", format_rfc3339(x.end)}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::LateItems>) {
          auto e = make("window.late_item", &s);
          e.data = json{{"count", x.count}, {"side_output", x.side_output}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::NoRoute>) {
          auto e = make("route.no_match", &s);
          e.data = json{{"items", x.items}};
          offer(e);
        } else if constexpr (std::is_same_v<E, events::Backpressure>) {
          auto* st = state(s);
          if (st == nullptr) return;
          std::chrono::nanoseconds blocked{0};
          std::uint64_t waits = 0;
          {
            const std::lock_guard lock(st->mutex);
            st->blocked += x.blocked;
            ++st->waits;
            const auto now = clock_->steady_now();
            if (st->sent_any && now - st->last_sent < options_.backpressure_interval) return;
            st->sent_any = true;
            st->last_sent = now;
            blocked = std::exchange(st->blocked, std::chrono::nanoseconds{0});
            waits = std::exchange(st->waits, 0);
          }
          auto e = make("stream.backpressure", &s);
          e.data = json{{"blocked_ns", ns(blocked)},
                        {"waits", waits},
                        {"interval_ns", ns(options_.backpressure_interval)}};
          offer(e);
        }
        // The other operator events (watermarks, routes taken, fan-out and fan-in, buffers,
        // map-reduce phases, joins, per-batch circuit outcomes) are metrics, not events.
      },
      ev);
}

std::shared_ptr<EventsInterceptor> emit_events(Observable& pipeline, std::shared_ptr<EventSink> sink,
                                               EventOptions options) {
  if (!sink) throw std::invalid_argument("emit_events: the sink cannot be null");
#if defined(WEIR_TELEMETRY) && WEIR_TELEMETRY
  if (!options.clock) options.clock = pipeline.clock();
  const int priority = options.priority;
  auto interceptor = std::make_shared<EventsInterceptor>(std::move(sink), std::move(options));
  pipeline.intercept(interceptor, priority);
  return interceptor;
#else
  (void)pipeline;
  (void)options;
  return nullptr;
#endif
}

}  // namespace weir::telemetry
