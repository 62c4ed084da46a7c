// TelemetryEvent and the event sinks: no-op, logging, JSON-lines file, fan-out and bounded.
#include "weir/telemetry/events.hpp"

#include <blockingconcurrentqueue.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>

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

}  // namespace weir::telemetry
