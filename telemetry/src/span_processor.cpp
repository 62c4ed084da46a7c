#include <spdlog/spdlog.h>

#include <concurrentqueue.h>
#include <atomic>
#include <condition_variable>
#include <stdexcept>
#include <thread>
#include <utility>

#include "weir/telemetry/tracing.hpp"

namespace weir::telemetry {

// ---------------------------------------------------------------------------------------------------
// BatchSpanProcessor

struct BatchSpanProcessor::Impl {
  std::shared_ptr<SpanExporter> exporter;
  BatchSpanProcessorOptions options;
  moodycamel::ConcurrentQueue<std::unique_ptr<SpanData>> queue;
  std::atomic<std::size_t> queued{0};  ///< spans admitted and not dequeued yet (bounds the queue)
  std::atomic<bool> stopped{false};
  std::atomic<std::uint64_t> exported{0}, dropped_full{0}, dropped_failed{0};

  std::mutex shutdown_mutex;  ///< one shutdown at a time
  std::mutex mutex;
  std::condition_variable wake;       ///< the export thread waits on it
  std::condition_variable done;       ///< flushers wait on it
  std::uint64_t flush_requested = 0;  // guarded by mutex
  std::uint64_t flush_done = 0;       // guarded by mutex
  bool stop = false;                  // guarded by mutex
  bool joined = false;                // guarded by mutex
  std::thread worker;

  // Export thread only.
  std::chrono::steady_clock::time_point last_warning{};
  std::uint64_t failed_since_warning = 0;

  Impl(std::shared_ptr<SpanExporter> e, BatchSpanProcessorOptions o)
      : exporter(std::move(e)), options(o), queue(o.max_queue_size) {}

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait_for(lock, options.schedule_delay, [&] {
        return stop || flush_requested > flush_done ||
               queued.load(std::memory_order_relaxed) >= options.max_export_batch_size;
      });
      const bool stopping = stop;
      const std::uint64_t target = flush_requested;
      lock.unlock();
      drain();
      lock.lock();
      flush_done = std::max(flush_done, target);
      done.notify_all();
      if (stopping) return;
    }
  }

  /// Exports everything queued, in batches of at most max_export_batch_size.
  void drain() {
    std::vector<std::unique_ptr<SpanData>> taken(
        std::min(options.max_export_batch_size, options.max_queue_size));
    std::vector<SpanData> batch;
    for (;;) {
      const std::size_t n = queue.try_dequeue_bulk(taken.begin(), taken.size());
      if (n == 0) return;
      queued.fetch_sub(n, std::memory_order_relaxed);
      batch.clear();
      batch.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(*taken[i]));
        taken[i].reset();
      }
      ExportResult r = ExportResult::failure;
      try {
        r = exporter->export_spans(batch);
      } catch (...) {
        r = ExportResult::failure;
      }
      if (r == ExportResult::success) {
        exported.fetch_add(n, std::memory_order_relaxed);
      } else {
        dropped_failed.fetch_add(n, std::memory_order_relaxed);
        warn_failed(n);
      }
    }
  }

  /// At most one warning every 10 s, with the spans dropped since the last one.
  void warn_failed(std::size_t n) {
    failed_since_warning += n;
    const auto now = std::chrono::steady_clock::now();
    if (last_warning != std::chrono::steady_clock::time_point{} &&
        now - last_warning < std::chrono::seconds{10})
      return;
    spdlog::warn("tracing: span export failed; {} spans dropped ({} in all)", failed_since_warning,
                 dropped_failed.load(std::memory_order_relaxed));
    last_warning = now;
    failed_since_warning = 0;
  }
};

BatchSpanProcessor::BatchSpanProcessor(std::shared_ptr<SpanExporter> exporter,
                                       BatchSpanProcessorOptions options) {
  if (!exporter) throw std::invalid_argument("BatchSpanProcessor: the exporter cannot be null");
  if (options.max_queue_size == 0)
    throw std::invalid_argument("BatchSpanProcessor: max_queue_size must be > 0");
  if (options.max_export_batch_size == 0) options.max_export_batch_size = options.max_queue_size;
  if (options.schedule_delay.count() <= 0) options.schedule_delay = std::chrono::milliseconds{1};
  impl_ = std::make_unique<Impl>(std::move(exporter), options);
  impl_->worker = std::thread([this] { impl_->run(); });
}

BatchSpanProcessor::~BatchSpanProcessor() {
  shutdown(std::chrono::seconds{5});
}

void BatchSpanProcessor::on_end(std::unique_ptr<SpanData> span) noexcept {
  auto& m = *impl_;
  if (!span) return;
  if (m.stopped.load(std::memory_order_relaxed)) {
    m.dropped_full.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::size_t before = m.queued.fetch_add(1, std::memory_order_relaxed);
  if (before >= m.options.max_queue_size) {
    m.queued.fetch_sub(1, std::memory_order_relaxed);
    m.dropped_full.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  bool ok = false;
  try {
    ok = m.queue.enqueue(std::move(span));
  } catch (...) {
    ok = false;
  }
  if (!ok) {
    m.queued.fetch_sub(1, std::memory_order_relaxed);
    m.dropped_full.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // A full export batch wakes the thread (without the lock: a wake-up lost to a race only waits for
  // the next scheduled export).
  if (before + 1 == m.options.max_export_batch_size) m.wake.notify_one();
}

bool BatchSpanProcessor::force_flush(std::chrono::milliseconds timeout) {
  auto& m = *impl_;
  std::unique_lock lock(m.mutex);
  if (m.joined) return m.queued.load() == 0;
  const std::uint64_t ticket = ++m.flush_requested;
  m.wake.notify_one();
  return m.done.wait_for(lock, timeout, [&] { return m.flush_done >= ticket; });
}

bool BatchSpanProcessor::shutdown(std::chrono::milliseconds timeout) {
  auto& m = *impl_;
  const std::lock_guard once(m.shutdown_mutex);
  std::unique_lock lock(m.mutex);
  if (m.joined) return true;
  m.stopped.store(true);
  m.stop = true;
  const std::uint64_t ticket = ++m.flush_requested;
  m.wake.notify_one();
  const bool flushed = m.done.wait_for(lock, timeout, [&] { return m.flush_done >= ticket; });
  lock.unlock();
  // Past the timeout: cut the exporter's retries short so the thread ends soon.
  if (!flushed) m.exporter->shutdown();
  if (m.worker.joinable()) m.worker.join();
  m.exporter->shutdown();
  // Spans that arrived while stopping: dropped.
  std::unique_ptr<SpanData> left;
  while (m.queue.try_dequeue(left)) {
    m.queued.fetch_sub(1, std::memory_order_relaxed);
    m.dropped_full.fetch_add(1, std::memory_order_relaxed);
  }
  lock.lock();
  m.joined = true;
  return flushed;
}

SpanStats BatchSpanProcessor::stats() const noexcept {
  const auto& m = *impl_;
  return SpanStats{m.exported.load(std::memory_order_relaxed), m.dropped_full.load(std::memory_order_relaxed),
                   m.dropped_failed.load(std::memory_order_relaxed)};
}

// ---------------------------------------------------------------------------------------------------
// InMemoryExporter

ExportResult InMemoryExporter::export_spans(std::span<const SpanData> spans) noexcept {
  try {
    const std::lock_guard lock(mutex_);
    spans_.insert(spans_.end(), spans.begin(), spans.end());
    ++calls_;
    return ExportResult::success;
  } catch (...) {
    return ExportResult::failure;
  }
}

std::vector<SpanData> InMemoryExporter::spans() const {
  const std::lock_guard lock(mutex_);
  return spans_;
}

std::size_t InMemoryExporter::export_calls() const {
  const std::lock_guard lock(mutex_);
  return calls_;
}

void InMemoryExporter::clear() {
  const std::lock_guard lock(mutex_);
  spans_.clear();
  calls_ = 0;
}

}  // namespace weir::telemetry
