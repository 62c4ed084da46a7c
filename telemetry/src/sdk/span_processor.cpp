#include "weir/telemetry/sdk/span_processor.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace weir::telemetry {

// ---------------------------------------------------------------------------------------------------
// BatchSpanProcessor
//
// Each thread that ends spans has a Lane of its own: a ring of `max_queue_size` SpanData slots that
// only that thread writes (it publishes each span with one release store of `head`) and only the
// export thread reads (it releases slots with a store of `tail`). Nothing on the recording thread is
// shared with other recording threads: no shared counter, lock or queue. The export thread exports
// a lane's spans where they lie (a contiguous run of slots) when one lane has spans waiting, and
// gathers them (by swapping, so that no span is copied) when several have. A finished span is
// swapped into its slot, so that the span's box comes back with the storage of a span exported
// earlier: strings and vectors keep their buffers, and a thread that records spans of a steady shape
// allocates nothing.

namespace {
std::atomic<std::uint64_t> next_processor_id{1};

/// A recording thread's ring of spans (see above).
struct Lane {
  explicit Lane(std::size_t c) : capacity(c) {}

  const std::size_t capacity;
  std::vector<SpanData> slots;  ///< `capacity` of them from the first span that ends on the thread

  alignas(64) std::atomic<std::uint64_t> head{0};  ///< spans published (written by the owner)
  std::atomic<std::uint64_t> dropped{0};           ///< spans that found the ring full (owner only writes)
  // Owner thread only.
  std::uint64_t cached_tail = 0;
  std::size_t head_slot = 0;
  std::uint64_t last_wake = 0;
  std::vector<std::unique_ptr<SpanData>> spare;  ///< boxes to hand out by make_span_data

  alignas(64) std::atomic<std::uint64_t> tail{0};  ///< spans released (written by the export thread)
  std::size_t tail_slot = 0;                       // export thread only
  std::atomic<bool> orphaned{false};               ///< its thread has exited
  std::atomic<bool> closed{false};                 ///< its processor is gone

  [[nodiscard]] std::uint64_t pending() const noexcept {
    return head.load(std::memory_order_acquire) - tail.load(std::memory_order_relaxed);
  }
};

/// This thread's lanes, by processor id; the first is the one used last.
struct ThreadLanes {
  struct Ref {
    std::uint64_t owner;
    std::shared_ptr<Lane> lane;
  };
  std::vector<Ref> refs;
  ThreadLanes() = default;
  ThreadLanes(const ThreadLanes&) = delete;
  ThreadLanes& operator=(const ThreadLanes&) = delete;
  ~ThreadLanes();
};

/// Set once this thread's ThreadLanes is destroyed: a span ending later (in another thread_local's
/// destructor) is dropped and counted.
thread_local bool thread_lanes_gone = false;

ThreadLanes::~ThreadLanes() {
  thread_lanes_gone = true;
  for (auto& r : refs) r.lane->orphaned.store(true, std::memory_order_release);
}

thread_local ThreadLanes thread_lanes;

/// Exchanges two spans member by member (cheaper than std::swap's three moves).
void swap_spans(SpanData& a, SpanData& b) noexcept {
  using std::swap;
  swap(a.trace_id, b.trace_id);
  swap(a.span_id, b.span_id);
  swap(a.parent_span_id, b.parent_span_id);
  swap(a.flags, b.flags);
  a.trace_state.swap(b.trace_state);
  a.name.swap(b.name);
  swap(a.kind, b.kind);
  swap(a.start_unix_nano, b.start_unix_nano);
  swap(a.end_unix_nano, b.end_unix_nano);
  a.attributes.swap(b.attributes);
  a.events.swap(b.events);
  swap(a.dropped_events, b.dropped_events);
  swap(a.status, b.status);
  a.status_message.swap(b.status_message);
}

/// Boxes kept per lane for make_span_data; more (spans that start on one thread and end on another)
/// are freed.
constexpr std::size_t max_spare = 64;

}  // namespace

struct BatchSpanProcessor::Impl {
  std::shared_ptr<SpanExporter> exporter;
  BatchSpanProcessorOptions options;
  const std::uint64_t id = next_processor_id.fetch_add(1, std::memory_order_relaxed);
  std::atomic<bool> stopped{false};
  std::atomic<bool> wake_requested{false};
  std::atomic<std::uint64_t> exported{0}, dropped_failed{0};
  /// Drops not counted in a lane: those of lanes let go of, and spans that found no lane.
  std::atomic<std::uint64_t> dropped_other{0};

  mutable std::mutex lanes_mutex;
  std::vector<std::shared_ptr<Lane>> lanes;  // guarded by lanes_mutex

  std::mutex shutdown_mutex;  ///< one shutdown at a time
  mutable std::mutex mutex;
  std::condition_variable wake;       ///< the export thread waits on it
  std::condition_variable done;       ///< flushers wait on it
  std::uint64_t flush_requested = 0;  // guarded by mutex
  std::uint64_t flush_done = 0;       // guarded by mutex
  bool stop = false;                  // guarded by mutex
  bool joined = false;                // guarded by mutex
  std::thread worker;

  // Export thread only.
  std::vector<SpanData> gathered;
  std::chrono::steady_clock::time_point last_warning{};
  std::uint64_t failed_since_warning = 0;

  Impl(std::shared_ptr<SpanExporter> e, BatchSpanProcessorOptions o)
      : exporter(std::move(e)), options(std::move(o)) {}

  ~Impl() {
    // Threads may keep a reference to their lane: let go of its storage now.
    const std::lock_guard lock(lanes_mutex);
    for (auto& l : lanes) {
      l->closed.store(true, std::memory_order_release);
      std::vector<SpanData>().swap(l->slots);
      std::vector<std::unique_ptr<SpanData>>().swap(l->spare);
    }
  }

  /// The calling thread's lane (created on its first span); null when the thread is exiting.
  Lane* lane() {
    if (thread_lanes_gone) return nullptr;
    auto& refs = thread_lanes.refs;
    if (!refs.empty() && refs.front().owner == id) return refs.front().lane.get();
    return &lane_slow();
  }

  Lane& lane_slow() {
    auto& refs = thread_lanes.refs;
    std::erase_if(refs,
                  [](const ThreadLanes::Ref& r) { return r.lane->closed.load(std::memory_order_acquire); });
    auto it =
        std::find_if(refs.begin(), refs.end(), [&](const ThreadLanes::Ref& r) { return r.owner == id; });
    if (it == refs.end()) {
      auto l = std::make_shared<Lane>(options.max_queue_size);
      {
        const std::lock_guard lock(lanes_mutex);
        lanes.push_back(l);
      }
      refs.push_back(ThreadLanes::Ref{id, std::move(l)});
      it = refs.end() - 1;
    }
    std::rotate(refs.begin(), it, it + 1);
    return *refs.front().lane;
  }

  std::vector<std::shared_ptr<Lane>> lanes_snapshot() const {
    const std::lock_guard lock(lanes_mutex);
    return lanes;
  }

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait_for(lock, options.schedule_delay, [&] {
        return stop || flush_requested > flush_done || wake_requested.load(std::memory_order_relaxed);
      });
      wake_requested.store(false, std::memory_order_relaxed);
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

  /// Exports every span published before the call, in batches of at most max_export_batch_size.
  void drain() {
    const auto all = lanes_snapshot();
    std::vector<std::uint64_t> upto(all.size());
    for (std::size_t i = 0; i < all.size(); ++i) upto[i] = all[i]->head.load(std::memory_order_acquire);
    for (;;) {
      std::size_t busy = 0;
      std::size_t last = 0;
      for (std::size_t i = 0; i < all.size(); ++i) {
        if (upto[i] != all[i]->tail.load(std::memory_order_relaxed)) {
          ++busy;
          last = i;
        }
      }
      if (busy == 0) break;
      if (busy == 1) {
        export_in_place(*all[last], upto[last]);
      } else {
        export_gathered(all, upto);
      }
    }
    retire_orphans();
  }

  /// Exports one lane's spans up to `upto` from their slots.
  void export_in_place(Lane& l, std::uint64_t upto) {
    const std::size_t capacity = l.capacity;
    std::uint64_t t = l.tail.load(std::memory_order_relaxed);
    while (t != upto) {
      const std::size_t n =
          std::min<std::uint64_t>({upto - t, capacity - l.tail_slot, options.max_export_batch_size});
      export_batch(std::span<const SpanData>(l.slots.data() + l.tail_slot, n));
      t += n;
      l.tail_slot += n;
      if (l.tail_slot == capacity) l.tail_slot = 0;
      l.tail.store(t, std::memory_order_release);
    }
  }

  /// Swaps up to max_export_batch_size spans from the lanes into one batch and exports it.
  void export_gathered(const std::vector<std::shared_ptr<Lane>>& all,
                       const std::vector<std::uint64_t>& upto) {
    const std::size_t room = options.max_export_batch_size;
    if (gathered.size() < room) gathered.resize(room);
    std::size_t n = 0;
    for (std::size_t i = 0; i < all.size() && n < room; ++i) {
      Lane& l = *all[i];
      const std::size_t capacity = l.capacity;
      std::uint64_t t = l.tail.load(std::memory_order_relaxed);
      while (t != upto[i] && n < room) {
        swap_spans(gathered[n++], l.slots[l.tail_slot]);
        ++t;
        if (++l.tail_slot == capacity) l.tail_slot = 0;
      }
      l.tail.store(t, std::memory_order_release);
    }
    export_batch(std::span<const SpanData>(gathered.data(), n));
  }

  void export_batch(std::span<const SpanData> batch) {
    ExportResult r = ExportResult::failure;
    try {
      r = exporter->export_spans(batch);
    } catch (...) {
      r = ExportResult::failure;
    }
    if (r == ExportResult::success) {
      exported.fetch_add(batch.size(), std::memory_order_relaxed);
    } else {
      dropped_failed.fetch_add(batch.size(), std::memory_order_relaxed);
      warn_failed(batch.size());
    }
  }

  /// Forgets the lanes of threads that have exited once they are drained.
  void retire_orphans() {
    const std::lock_guard lock(lanes_mutex);
    std::erase_if(lanes, [&](const std::shared_ptr<Lane>& l) {
      if (!l->orphaned.load(std::memory_order_acquire) || l->pending() != 0) return false;
      dropped_other.fetch_add(l->dropped.load(std::memory_order_relaxed), std::memory_order_relaxed);
      return true;
    });
  }

  /// At most one warning every 10 s, with the spans dropped since the last one.
  void warn_failed(std::size_t n) {
    failed_since_warning += n;
    const auto now = std::chrono::steady_clock::now();
    if (last_warning != std::chrono::steady_clock::time_point{} &&
        now - last_warning < std::chrono::seconds{10})
      return;
    try {
      options.logger.log(LogLevel::warn, {},
                         "tracing: span export failed; " + std::to_string(failed_since_warning) +
                             " spans dropped (" +
                             std::to_string(dropped_failed.load(std::memory_order_relaxed)) + " in all)");
    } catch (...) {  // a warning that cannot be written is lost, never the export thread
    }
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
  impl_ = std::make_unique<Impl>(std::move(exporter), std::move(options));
  impl_->worker = std::thread([this] { impl_->run(); });
}

BatchSpanProcessor::~BatchSpanProcessor() {
  shutdown(std::chrono::seconds{5});
}

std::unique_ptr<SpanData> BatchSpanProcessor::make_span_data() {
  Lane* l = impl_->lane();
  if (l == nullptr || l->spare.empty()) return std::make_unique<SpanData>();
  auto& spare = l->spare;
  auto d = std::move(spare.back());
  spare.pop_back();
  return d;
}

void BatchSpanProcessor::on_end(std::unique_ptr<SpanData> span) noexcept {
  auto& m = *impl_;
  if (!span) return;
  Lane* lp = nullptr;
  try {
    lp = m.lane();
    if (lp != nullptr && lp->slots.empty()) lp->slots.resize(lp->capacity);
  } catch (...) {
    lp = nullptr;
  }
  if (lp == nullptr) {  // no memory for a lane, or the thread is exiting: the span is lost, and counted
    m.dropped_other.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Lane& l = *lp;
  const std::uint64_t h = l.head.load(std::memory_order_relaxed);
  const std::size_t capacity = l.capacity;
  if (m.stopped.load(std::memory_order_relaxed) ||
      (h - l.cached_tail == capacity &&
       h - (l.cached_tail = l.tail.load(std::memory_order_acquire)) == capacity)) {
    l.dropped.store(l.dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    // The slot gets the span; the box gets the slot's exported span, to be reused.
    swap_spans(l.slots[l.head_slot], *span);
    if (++l.head_slot == capacity) l.head_slot = 0;
    l.head.store(h + 1, std::memory_order_release);
    // A batch's worth ended on this thread wakes the export thread (without the lock: a wake-up
    // lost to a race only waits for the next scheduled export).
    if (h + 1 - l.last_wake >= m.options.max_export_batch_size) {
      l.last_wake = h + 1;
      m.wake_requested.store(true, std::memory_order_relaxed);
      m.wake.notify_one();
    }
  }
  if (l.spare.size() < max_spare) {
    try {
      l.spare.push_back(std::move(span));
    } catch (...) {  // the box is freed instead
    }
  }
}

bool BatchSpanProcessor::force_flush(std::chrono::milliseconds timeout) {
  auto& m = *impl_;
  std::unique_lock lock(m.mutex);
  if (m.joined) {
    for (const auto& l : m.lanes_snapshot()) {
      if (l->pending() != 0) return false;
    }
    return true;
  }
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
  lock.lock();
  // Spans still in the rings (they arrived while stopping) count as dropped: see stats().
  m.joined = true;
  return flushed;
}

SpanStats BatchSpanProcessor::stats() const noexcept {
  const auto& m = *impl_;
  SpanStats s{m.exported.load(std::memory_order_relaxed), 0,
              m.dropped_failed.load(std::memory_order_relaxed)};
  bool joined = false;
  {
    const std::lock_guard lock(m.mutex);
    joined = m.joined;
  }
  const std::lock_guard lock(m.lanes_mutex);
  s.dropped_queue_full = m.dropped_other.load(std::memory_order_relaxed);
  for (const auto& l : m.lanes) {
    s.dropped_queue_full += l->dropped.load(std::memory_order_relaxed);
    // After shutdown nothing exports what is left: it is dropped.
    if (joined) s.dropped_queue_full += l->pending();
  }
  return s;
}

}  // namespace weir::telemetry
