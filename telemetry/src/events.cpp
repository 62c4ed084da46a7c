#include "weir/telemetry/events.hpp"

#include <blockingconcurrentqueue.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <weir/observable.hpp>

namespace weir::telemetry {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------------
// TelemetryEvent

json TelemetryEvent::to_json() const {
  json j{{"type", type}, {"time", format_rfc3339(time)}, {"run_id", run_id}, {"pipeline", pipeline}};
  if (!stage.empty()) j["stage"] = stage;
  j["trace_id"] = trace_id;
  j["span_id"] = span_id;
  j["data"] = data;
  return j;
}

std::string TelemetryEvent::to_json_line() const {
  // The envelope's fields in the order people read them; invalid UTF-8 in a message (an
  // exception's what()) is replaced rather than thrown on.
  nlohmann::ordered_json j{
      {"type", type}, {"time", format_rfc3339(time)}, {"run_id", run_id}, {"pipeline", pipeline}};
  if (!stage.empty()) j["stage"] = stage;
  j["trace_id"] = trace_id;
  j["span_id"] = span_id;
  j["data"] = data;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------------
// Sinks

LoggingSink::LoggingSink(std::shared_ptr<spdlog::logger> logger, LogLevel level)
    : logger_(logger ? std::move(logger) : spdlog::default_logger()), level_(level) {}

void LoggingSink::emit(const TelemetryEvent& event) {
  const auto lvl = static_cast<spdlog::level::level_enum>(level_);
  if (!logger_->should_log(lvl)) return;
  try {
    logger_->log(lvl, "{}", event.to_json_line());
  } catch (...) {
  }
}

bool LoggingSink::try_emit(const TelemetryEvent& event) {
  emit(event);
  return true;
}

void LoggingSink::flush() {
  try {
    logger_->flush();
  } catch (...) {
  }
}

JsonLinesFileSink::JsonLinesFileSink(const std::filesystem::path& path, bool append)
    : file_(std::fopen(path.c_str(), append ? "ab" : "wb")) {
  if (file_ == nullptr)
    throw std::runtime_error("cannot open events file " + path.string() + ": " + std::strerror(errno));
}

JsonLinesFileSink::~JsonLinesFileSink() {
  if (file_ != nullptr) std::fclose(file_);
}

void JsonLinesFileSink::write(const std::string& line) {
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fputc('\n', file_) == EOF)
    write_errors_.fetch_add(1);
}

void JsonLinesFileSink::emit(const TelemetryEvent& event) {
  try {
    const std::string line = event.to_json_line();
    const std::lock_guard lock(mutex_);
    write(line);
  } catch (...) {
    write_errors_.fetch_add(1);
  }
}

bool JsonLinesFileSink::try_emit(const TelemetryEvent& event) {
  try {
    const std::string line = event.to_json_line();
    const std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    write(line);
    return true;
  } catch (...) {
    write_errors_.fetch_add(1);
    return false;
  }
}

void JsonLinesFileSink::flush() {
  const std::lock_guard lock(mutex_);
  if (std::fflush(file_) != 0) write_errors_.fetch_add(1);
}

FanOutSink::FanOutSink(std::vector<std::shared_ptr<EventSink>> sinks) : sinks_(std::move(sinks)) {
  for (const auto& s : sinks_) {
    if (!s) throw std::invalid_argument("FanOutSink: a sink cannot be null");
  }
}

void FanOutSink::emit(const TelemetryEvent& event) {
  for (const auto& s : sinks_) s->emit(event);
}

bool FanOutSink::try_emit(const TelemetryEvent& event) {
  bool all = true;
  for (const auto& s : sinks_) all = s->try_emit(event) && all;
  return all;
}

void FanOutSink::flush() {
  for (const auto& s : sinks_) s->flush();
}

// ---------------------------------------------------------------------------------------------------
// BoundedSink

/// The queue and what the worker needs to deliver in order. Every event taken gets the next
/// sequence number; the worker delivers them in that order, so events that happen one after the
/// other, on any threads, reach the inner sink in that order (moodycamel keeps order per producing
/// thread only).
struct BoundedSink::Queue {
  struct Item {
    std::uint64_t seq = 0;
    TelemetryEvent event;
  };
  explicit Queue(std::size_t capacity)
      : events(capacity), free(static_cast<moodycamel::LightweightSemaphore::ssize_t>(capacity)) {}

  void lose(std::uint64_t seq) {
    const std::lock_guard lock(lost_mutex);
    lost.push_back(seq);
  }
  /// True (and forgotten) when `seq` was evicted or could not be queued.
  bool take_lost(std::uint64_t seq) {
    const std::lock_guard lock(lost_mutex);
    const auto it = std::find(lost.begin(), lost.end(), seq);
    if (it == lost.end()) return false;
    lost.erase(it);
    return true;
  }

  moodycamel::ConcurrentQueue<Item> events;
  moodycamel::LightweightSemaphore free;    ///< slots left (queued or held by the worker count)
  moodycamel::LightweightSemaphore queued;  ///< wakes the worker
  std::atomic<std::size_t> pending{0};      ///< taken and not yet delivered or dropped
  std::atomic<std::uint64_t> next_seq{0};
  std::mutex lost_mutex;
  std::vector<std::uint64_t> lost;  ///< sequence numbers that will never arrive (overflow only)
};

BoundedSink::BoundedSink(std::shared_ptr<EventSink> inner, BoundedSinkOptions options)
    : inner_(std::move(inner)), options_(options) {
  if (!inner_) throw std::invalid_argument("BoundedSink: the inner sink cannot be null");
  if (options_.capacity < 1) throw std::invalid_argument("BoundedSink: capacity must be at least 1");
  queue_ = std::make_unique<Queue>(options_.capacity);
  worker_ = std::thread([this] { run(); });
}

BoundedSink::~BoundedSink() {
  stop(true);
}

bool BoundedSink::offer(const TelemetryEvent& event, bool may_block) {
  emitted_.fetch_add(1, std::memory_order_relaxed);
  auto& q = *queue_;
  auto refuse = [this] {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  };
  if (stopping_.load(std::memory_order_acquire)) return refuse();
  std::optional<TelemetryEvent> copy;
  try {
    copy.emplace(event);
  } catch (...) {
    return refuse();
  }
  bool have_slot = q.free.tryWait();
  bool evicted = false;  // took the slot (and the pending count) of an evicted event
  if (!have_slot) {
    switch (options_.policy) {
      case OverflowPolicy::drop_newest:
        return refuse();
      case OverflowPolicy::block:
        if (!may_block) return refuse();
        have_slot = q.free.wait(
            std::chrono::duration_cast<std::chrono::microseconds>(options_.block_timeout).count());
        if (!have_slot) return refuse();
        break;
      case OverflowPolicy::drop_oldest: {
        // Evict the oldest event still queued (the queue is FIFO per producing thread); events the
        // worker already holds cannot be evicted.
        Queue::Item old;
        for (int attempt = 0; attempt < 8 && !have_slot && !evicted; ++attempt) {
          if (q.events.try_dequeue(old)) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            q.lose(old.seq);
            evicted = true;
          } else {
            have_slot = q.free.tryWait();  // the worker took them meanwhile
          }
        }
        if (!have_slot && !evicted) return refuse();
        break;
      }
    }
  }
  if (!evicted) q.pending.fetch_add(1);
  const std::uint64_t seq = q.next_seq.fetch_add(1);
  if (!q.events.enqueue(Queue::Item{seq, std::move(*copy)})) {
    q.lose(seq);
    q.pending.fetch_sub(1);
    q.free.signal();
    return refuse();
  }
  q.queued.signal();
  return true;
}

void BoundedSink::emit(const TelemetryEvent& event) {
  (void)offer(event, true);
}

bool BoundedSink::try_emit(const TelemetryEvent& event) {
  return offer(event, false);
}

void BoundedSink::run() {
  auto& q = *queue_;
  std::map<std::uint64_t, TelemetryEvent> held;  // taken off the queue, waiting for their turn
  std::uint64_t next = 0;
  auto done_one = [&] {
    q.free.signal();
    if (q.pending.fetch_sub(1) == 1) {
      const std::lock_guard lock(done_mutex_);
      done_cv_.notify_all();
    }
  };
  for (;;) {
    // While an event is missing (taken by a thread that has not queued it yet) poll quickly;
    // otherwise sleep until woken, checking every 20 ms.
    (void)q.queued.wait(held.empty() ? 20'000 : 50);
    Queue::Item item;
    while (q.events.try_dequeue(item)) held.emplace(item.seq, std::move(item.event));
    const bool discard = discard_.load(std::memory_order_acquire);
    if (discard) {
      for (auto& h : held) {
        (void)h;
        dropped_.fetch_add(1, std::memory_order_relaxed);
        done_one();
      }
      held.clear();
    }
    while (!held.empty() && !discard_.load(std::memory_order_acquire)) {
      auto it = held.begin();
      if (it->first != next) {
        if (!q.take_lost(next)) break;  // still on its way
        ++next;
        continue;
      }
      const TelemetryEvent e = std::move(it->second);
      held.erase(it);
      ++next;
      q.free.signal();  // the event being delivered no longer takes room in the queue
      try {
        inner_->emit(e);
      } catch (...) {
        failed_.fetch_add(1, std::memory_order_relaxed);
      }
      delivered_.fetch_add(1, std::memory_order_relaxed);
      if (q.pending.fetch_sub(1) == 1) {
        const std::lock_guard lock(done_mutex_);
        done_cv_.notify_all();
      }
    }
    if (held.empty() && stopping_.load(std::memory_order_acquire) && discard) return;
  }
}

void BoundedSink::flush() {
  {
    std::unique_lock lock(done_mutex_);
    done_cv_.wait_for(lock, options_.flush_timeout, [this] { return queue_->pending.load() == 0; });
  }
  inner_->flush();
}

void BoundedSink::stop(bool drain) {
  const std::lock_guard stop_lock(stop_mutex_);
  if (!worker_.joinable()) return;
  if (drain) {
    std::unique_lock lock(done_mutex_);
    done_cv_.wait_for(lock, options_.flush_timeout, [this] { return queue_->pending.load() == 0; });
  }
  discard_.store(true, std::memory_order_release);  // before stopping_: a refused offer implies both
  stopping_.store(true, std::memory_order_release);
  queue_->queued.signal();
  worker_.join();
  // Events offered while the worker stopped.
  Queue::Item item;
  while (queue_->events.try_dequeue(item)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    queue_->pending.fetch_sub(1);
  }
  inner_->flush();
}

BoundedSinkStats BoundedSink::stats() const noexcept {
  BoundedSinkStats s;
  s.emitted = emitted_.load();
  s.dropped = dropped_.load();
  s.delivered = delivered_.load();
  s.failed = failed_.load();
  return s;
}

std::size_t BoundedSink::size() const noexcept {
  return queue_->pending.load();
}

// ---------------------------------------------------------------------------------------------------
// EventsInterceptor

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
