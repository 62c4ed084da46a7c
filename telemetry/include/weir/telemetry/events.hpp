#pragma once
/// \file Telemetry events: `TelemetryEvent`, the `EventSink` family (no-op, logging, bounded with a
/// background thread, JSON-lines file, fan-out) and `emit_events`, the one call that turns a
/// pipeline's hooks into lifecycle, operator and wide events. docs/events.md lists every type.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <weir/clock.hpp>
#include <weir/error.hpp>
#include <weir/interceptor.hpp>
#include <weir/report.hpp>

#include "weir/telemetry/json_fields.hpp"        // format_rfc3339, to_json(ErrorSummary)
#include "weir/telemetry/structured_logger.hpp"  // LogLevel

namespace weir {
class Observable;
}

namespace weir::telemetry {

/// One event: what happened (`type`, e.g. "stage.completed"), when, in which run, pipeline and stage,
/// with the W3C trace and span ids of the run (or of the stage's span for stage events) and a data
/// object whose fields depend on the type (see docs/events.md). A plain value.
struct TelemetryEvent {
  std::string type;
  std::chrono::system_clock::time_point time{};
  std::string run_id;
  std::string pipeline;
  std::string stage;     ///< empty for run events
  std::string trace_id;  ///< 32 hex digits
  std::string span_id;   ///< 16 hex digits
  nlohmann::json data = nlohmann::json::object();

  /// {"type", "time" (RFC 3339, UTC, microseconds), "run_id", "pipeline", "stage" (stage events
  /// only), "trace_id", "span_id", "data"}.
  [[nodiscard]] nlohmann::json to_json() const;
  /// `to_json()` on one line, without a newline.
  [[nodiscard]] std::string to_json_line() const;
};

/// Receives telemetry events. `emit` may block (a file write, a full queue); `try_emit` never
/// blocks and returns false when the event was not taken (it would have had to wait, or it was
/// dropped). Implementations are thread-safe and never throw from `emit`, `try_emit` or `flush`.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void emit(const TelemetryEvent& event) = 0;
  [[nodiscard]] virtual bool try_emit(const TelemetryEvent& event) = 0;
  /// Hands on what the sink holds (written to disk, delivered by a background thread); may block.
  virtual void flush() {}
};

/// Drops every event (`try_emit` returns true: nothing was refused). Stateless, thread-safe.
class NoopSink final : public EventSink {
 public:
  void emit(const TelemetryEvent&) override {}
  [[nodiscard]] bool try_emit(const TelemetryEvent&) override { return true; }
};

/// Writes each event as one JSON line (`TelemetryEvent::to_json_line`) to an spdlog logger at a
/// fixed level. `try_emit` logs too: with spdlog's asynchronous loggers it does not wait, with a
/// synchronous one it takes as long as the logger's sinks do. Thread-safe (spdlog loggers are).
class LoggingSink final : public EventSink {
 public:
  /// Logs to `logger`, or to spdlog's default logger when null, at `level`.
  explicit LoggingSink(std::shared_ptr<spdlog::logger> logger = nullptr, LogLevel level = LogLevel::info);
  void emit(const TelemetryEvent& event) override;
  [[nodiscard]] bool try_emit(const TelemetryEvent& event) override;
  void flush() override;

 private:
  std::shared_ptr<spdlog::logger> logger_;
  LogLevel level_;
};

/// Appends each event as one JSON line to a file. Writes are serialised by a mutex; `try_emit`
/// returns false instead of waiting when another thread is writing. The file is flushed by
/// `flush()` and when the sink is destroyed. Thread-safe.
class JsonLinesFileSink final : public EventSink {
 public:
  /// Opens (creates or truncates; appends with `append`) `path`; throws std::runtime_error when it
  /// cannot.
  explicit JsonLinesFileSink(const std::filesystem::path& path, bool append = false);
  ~JsonLinesFileSink() override;
  JsonLinesFileSink(const JsonLinesFileSink&) = delete;
  JsonLinesFileSink& operator=(const JsonLinesFileSink&) = delete;

  void emit(const TelemetryEvent& event) override;
  [[nodiscard]] bool try_emit(const TelemetryEvent& event) override;
  void flush() override;
  /// Lines that could not be written (a full disk, ...).
  [[nodiscard]] std::uint64_t write_errors() const noexcept { return write_errors_.load(); }

 private:
  void write(const std::string& line);
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
  std::atomic<std::uint64_t> write_errors_{0};
};

/// Passes every event to each of its sinks, in order. `try_emit` offers the event to every sink
/// and returns true only when all of them took it. The list is fixed at construction; thread-safe
/// when its sinks are.
class FanOutSink final : public EventSink {
 public:
  explicit FanOutSink(std::vector<std::shared_ptr<EventSink>> sinks);
  void emit(const TelemetryEvent& event) override;
  [[nodiscard]] bool try_emit(const TelemetryEvent& event) override;
  void flush() override;

 private:
  std::vector<std::shared_ptr<EventSink>> sinks_;
};

/// What a BoundedSink does with an event when its queue is full.
enum class OverflowPolicy {
  drop_newest,  ///< refuse the new event (the default)
  drop_oldest,  ///< evict the oldest queued event and take the new one
  block,        ///< `emit` waits up to `BoundedSinkOptions::block_timeout` for room, then drops the event;
                ///< `try_emit` refuses at once
};

/// Settings of a BoundedSink.
struct BoundedSinkOptions {
  std::size_t capacity = 4096;  ///< events held at most
  OverflowPolicy policy = OverflowPolicy::drop_newest;
  std::chrono::milliseconds block_timeout{100};   ///< OverflowPolicy::block: longest wait in emit
  std::chrono::milliseconds flush_timeout{5000};  ///< longest wait in flush() and stop(true)
};

/// Counts of a BoundedSink. `emitted` counts every event offered (emit and try_emit); each one ends
/// `delivered` to the inner sink, `dropped` (refused, evicted, or left queued by stop(false)), or is
/// still queued. `failed` counts deliveries the inner sink threw on (they count as delivered).
struct BoundedSinkStats {
  std::uint64_t emitted = 0;
  std::uint64_t dropped = 0;
  std::uint64_t delivered = 0;
  std::uint64_t failed = 0;
  /// dropped / emitted; 0 when nothing was emitted.
  [[nodiscard]] double drop_rate() const noexcept {
    return emitted == 0 ? 0.0 : static_cast<double>(dropped) / static_cast<double>(emitted);
  }
};

/// Puts events on a bounded lock-free queue (moodycamel) that a background thread delivers to an
/// inner sink with its blocking `emit`, so pipeline threads never wait on a slow sink: when the
/// queue is full the `OverflowPolicy` applies and drops are counted. Each event taken gets a sequence
/// number and the thread delivers in that order, so events that happen one after another, on any
/// threads, reach the inner sink in that order. Thread-safe; `stop` and the destructor must not
/// race with each other.
class BoundedSink final : public EventSink {
 public:
  explicit BoundedSink(std::shared_ptr<EventSink> inner, BoundedSinkOptions options = {});
  /// stop(true).
  ~BoundedSink() override;
  BoundedSink(const BoundedSink&) = delete;
  BoundedSink& operator=(const BoundedSink&) = delete;

  void emit(const TelemetryEvent& event) override;
  [[nodiscard]] bool try_emit(const TelemetryEvent& event) override;
  /// Waits (up to flush_timeout) until every event taken so far was delivered, then flushes the
  /// inner sink.
  void flush() override;
  /// Stops the background thread. With `drain`, it first delivers what is queued (up to
  /// flush_timeout); without, what is queued is dropped and counted. Events emitted afterwards are
  /// dropped. Idempotent.
  void stop(bool drain = true);
  /// True once stop() has begun (events offered from then on are dropped).
  [[nodiscard]] bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  [[nodiscard]] BoundedSinkStats stats() const noexcept;
  /// Events queued now.
  [[nodiscard]] std::size_t size() const noexcept;

 private:
  struct Queue;
  bool offer(const TelemetryEvent& event, bool may_block);
  void run();

  std::shared_ptr<EventSink> inner_;
  BoundedSinkOptions options_;
  std::unique_ptr<Queue> queue_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> discard_{false};
  std::atomic<std::uint64_t> emitted_{0}, dropped_{0}, delivered_{0}, failed_{0};
  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  std::mutex stop_mutex_;
  std::thread worker_;
};

/// How an EventsInterceptor emits.
struct EventOptions {
  /// Timestamps come from this clock; null: the pipeline's clock (PipelineOptions::clock), or the
  /// system clock.
  std::shared_ptr<Clock> clock;
  /// At most one stream.backpressure event per stage in this interval; it carries the blocked time
  /// summed since the stage's previous one. Zero: one event per wait.
  std::chrono::milliseconds backpressure_interval{1000};
  /// Position of the events interceptor in each stage's chain (see Pipeline::intercept).
  int priority = -900;
};

/// Turns a pipeline's hooks into telemetry events: lifecycle (pipeline.* and stage.*), operator
/// events (window.emitted, retry.attempt, circuit.state_changed, ...), rate-limited
/// stream.backpressure, and one wide event per stage and per run. Lifecycle and wide events go
/// through the sink's `emit`; operator events, sent from the pipeline's threads while it runs,
/// through `try_emit` (those it refuses are counted in `refused()`). At the end of a run the sink
/// is flushed, so a file sink is complete when `run()` returns. Thread-safe; one run at a time.
class EventsInterceptor final : public Interceptor {
 public:
  explicit EventsInterceptor(std::shared_ptr<EventSink> sink, EventOptions options = {});
  ~EventsInterceptor() override;
  EventsInterceptor(const EventsInterceptor&) = delete;
  EventsInterceptor& operator=(const EventsInterceptor&) = delete;

  [[nodiscard]] const std::shared_ptr<EventSink>& sink() const noexcept { return sink_; }
  /// Operator events the sink's try_emit refused.
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_.load(); }

  void on_run_start(const RunInfo&) override;
  void on_run_stop(const RunInfo&, const RunReport&) override;
  void on_stage_start(const StageInfo&) override;
  void on_stage_stop(const StageInfo&, const StageReport&) override;
  void on_event(const StageInfo&, const Event&) override;

 private:
  struct StageState;
  [[nodiscard]] TelemetryEvent make(std::string type, const StageInfo* stage) const;
  void offer(const TelemetryEvent& e);
  StageState* state(const StageInfo& s) const noexcept;

  std::shared_ptr<EventSink> sink_;
  EventOptions options_;
  std::shared_ptr<Clock> clock_;
  std::string run_id_, pipeline_, trace_id_, span_id_;  ///< set at run start, read-only while it runs
  std::vector<std::unique_ptr<StageState>> stages_;     ///< by stage index, sized at stage start
  std::atomic<std::uint64_t> refused_{0};
};

/// Registers an EventsInterceptor on every stage of `pipeline` (call it while building, before
/// `run`/`start`). Returns the interceptor, or null in a build with `-DWEIR_TELEMETRY=OFF`.
std::shared_ptr<EventsInterceptor> emit_events(Observable& pipeline, std::shared_ptr<EventSink> sink,
                                               EventOptions options = {});

/// Every event type emit_events can send, in the order docs/events.md lists them.
[[nodiscard]] const std::vector<std::string_view>& event_types();

}  // namespace weir::telemetry
