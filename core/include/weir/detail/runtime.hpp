#pragma once
/// \file Runtime pieces shared by the builder, the operators and the engine. Not API.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "weir/batch.hpp"
#include "weir/clock.hpp"
#include "weir/detail/stage_policy.hpp"
#include "weir/detail/user_scratch.hpp"
#include "weir/error.hpp"
#include "weir/interceptor.hpp"
#include "weir/user_metrics.hpp"

namespace weir::detail {

/// Per-batch tallies of the rare outcomes, kept in locals and folded into the stage counters per batch.
/// No member initialisers, so arrays of them cost nothing until used: always value-initialise (`BatchTally
/// t{};`).
struct BatchTally {
  std::uint64_t filtered;
  std::uint64_t errors;
  std::uint64_t skipped;
  std::uint64_t dead_lettered;
  std::uint64_t dead_letter_failures;
  std::uint64_t retries;
  std::uint64_t late;       ///< windows: items that arrived after their window closed
  std::uint64_t delivered;  ///< sinks: items written
  std::uint64_t timeouts;   ///< calls that timed out (guarded stages)
  std::uint64_t circuit_rejected, circuit_failures, circuit_successes;  ///< breaker outcomes, per batch
};

class RunControl;
class CallGuard;  // weir/detail/call_guard.hpp
class StageRuntime;  // core/src/stage_runtime.hpp: the engine's side of a stage

/// What an operator sees of the stage it runs in: identity, error policy, clock, the outcome counters
/// it adds to and the interceptor chain it tells. Shared by every thread running the stage. The engine's
/// side (per-thread counter slots, the chain itself, run control) is StageRuntime, private to weir_core,
/// the only class derived from this one.
class Stage {
 public:
  StageInfo info;
  ErrorPolicy policy;
  const Clock* clock = nullptr;
  /// Retries and circuit breaker (the resilience layer's); null for most stages.
  std::shared_ptr<StagePolicy> resilience;
  std::shared_ptr<CallGuard> guard;  ///< timeout and circuit breaker; null for most stages

  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;

  /// The calling thread's counter slot index (threads in the run's arena each have their own; every
  /// other thread shares the last one).
  [[nodiscard]] std::size_t slot_index() const noexcept;
  /// Adds time the stage spent waiting for room downstream.
  void add_blocked(std::chrono::nanoseconds d);
  /// Items a stage delivered after its batch was counted (the async sink's own thread): adds the
  /// outcome and the busy time without counting another batch or calling the hooks again.
  void add_delivered(std::uint64_t out, const BatchTally& t, std::int64_t busy_ns);
  /// Tells the stage's interceptors of an operator event (nothing when none listens).
  void emit(const Event& e);
  [[nodiscard]] bool stopping() const noexcept;
  /// Whether batches are timed (a constant false without telemetry).
  [[nodiscard]] bool timed() const noexcept { return telemetry_compiled && timing_; }
  /// Whether interceptors listen to the stage (a constant false without telemetry).
  [[nodiscard]] bool listens() const noexcept { return telemetry_compiled && listening_; }
  /// Whether a batch needs clock reads or hooks at all.
  [[nodiscard]] bool hooks() const noexcept { return timed() || listens(); }
  /// The scratchpad where user code running the stage on the thread of `slot` records metrics and
  /// events (see weir/user_metrics.hpp); null when nothing listens to the stage.
  [[nodiscard]] UserScratch* user_scratch(std::size_t slot) const noexcept {
    return listens() ? scratch_[slot].get() : nullptr;
  }
  /// Sends what user code recorded in the scratchpad of `slot` to the chain, as events::CustomMetric
  /// and events::CustomEvent, and empties it. Once per batch, on the thread of `slot`.
  void flush_user(std::size_t slot) {
    if (UserScratch* s = user_scratch(slot); s != nullptr && s->dirty()) flush_user(*s);
  }
  /// The same for a scratchpad of the caller's (drained on the calling thread).
  void flush_user(UserScratch& s);
  [[nodiscard]] std::int64_t now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock->steady_now().time_since_epoch())
        .count();
  }
  [[nodiscard]] bool keeps_failed_items() const noexcept {
    return resilience != nullptr || guard != nullptr || policy.kind == ErrorPolicy::Kind::retry ||
           policy.kind == ErrorPolicy::Kind::dead_letter;
  }

  /// Applies the error policy to `item`, whose call threw the exception being handled.
  /// `call` repeats the call (it must not consume `item`). Returns true when a retry succeeded.
  template <class T, class Call>
  bool recover(const T& item, Call&& call, BatchTally& tally) {
    std::exception_ptr err = std::current_exception();
    int attempts = 1;
    if (resilience != nullptr) {
      while (attempts < resilience->max_attempts() && !stopping() && resilience->retryable(err)) {
        const auto wait = resilience->next_backoff(attempts);
        note_retry(err, attempts + 1, wait);
        if (!backoff(wait)) break;  // the run is stopping
        ++attempts;
        ++tally.retries;
        try {
          call();
          return true;
        } catch (...) {
          err = std::current_exception();
        }
      }
    }
    fail_item(&item, typeid(T), err, attempts, tally);
    return false;
  }

  /// Notifies `n` when the run stops (at once if it is stopping), until unwatch_stop(n).
  void watch_stop(Notification& n);
  void unwatch_stop(Notification& n) noexcept;

  /// Applies the final policy (fail, skip, dead letter) to an item that failed for good. Under a
  /// dead-letter policy, an item of a type the sink does not take (a windowed join's right input) is
  /// skipped instead: counted in `errors` and `skipped`, its error in the run's errors.
  void fail_item(const void* item, const std::type_info& type, std::exception_ptr err, int attempts,
                 BatchTally& tally);

 private:
  friend class StageRuntime;
  Stage();
  ~Stage();
  [[nodiscard]] StageRuntime& self() noexcept;
  [[nodiscard]] const StageRuntime& self() const noexcept;
  void note_retry(std::exception_ptr err, int attempt, std::chrono::nanoseconds backoff);
  /// Waits `d` on the clock; false when the run started stopping meanwhile (cancel cuts it short).
  bool backoff(std::chrono::nanoseconds d);

  bool listening_ = false;  ///< the chain is not empty (never without telemetry)
  bool timing_ = true;      ///< built-in counting measures time (never without telemetry)
  std::vector<std::unique_ptr<UserScratch>> scratch_;  ///< one per counter slot
};

/// Demangled exception type and message of an exception_ptr.
struct ErrorText {
  std::string type;
  std::string message;
};
[[nodiscard]] ErrorText describe(std::exception_ptr e);

/// One logical operator that transforms batches; stateless ones can be fused into one node.
class Kernel {
 public:
  virtual ~Kernel() = default;
  /// Before the first batch; may throw to fail the run (e.g. a file that cannot be opened).
  virtual void open(Stage&) {}
  /// Transforms one batch; returns the output batch or nullptr when nothing goes on.
  virtual BatchPtr apply(BatchPtr in, Stage& st, BatchTally& tally) = 0;
  /// At end of input, once per partition, after every upstream stage has flushed: returns what the
  /// stage still holds (open windows, a partial buffer) to send downstream, or nullptr. Runs serialised
  /// with apply() on that partition.
  virtual BatchPtr flush(std::uint32_t /*partition*/, Stage&, BatchTally&) { return nullptr; }
  /// While the run goes on, every PipelineOptions::timer_interval when wants_timer() (processing-time
  /// windows, buffers with a maximum delay): returns what is due, or nullptr. Serialised with apply().
  virtual BatchPtr on_timer(std::uint32_t /*partition*/, Stage&, BatchTally&) { return nullptr; }
  [[nodiscard]] virtual bool wants_timer() const noexcept { return false; }
  /// A keyed event-time stage: the processing time after which an input stream that has sent nothing
  /// is left out of a partition's watermark until it sends again, checked on timer ticks (so the
  /// kernel wants the timer); 0, the default, for never.
  [[nodiscard]] virtual std::int64_t idle_after_ns() const noexcept { return 0; }
  /// After the last batch and the flush (close files, join threads); cannot send anything on.
  virtual void close(Stage&) {}
  /// Stateless kernels run in parallel and fuse with their neighbours. A stateful kernel runs as one
  /// serial node, or as one serial node per partition when its inputs are keyed.
  [[nodiscard]] virtual bool stateless() const noexcept { return true; }
  /// Outputs of the stage; with more than one, apply() and flush() return a MultiBatch.
  [[nodiscard]] virtual std::size_t outputs() const noexcept { return 1; }
  /// The name of output `k` when its outputs are named (a route's branches), else empty.
  [[nodiscard]] virtual std::string_view output_name(std::size_t /*k*/) const noexcept { return {}; }
  /// The stage reads AnyBatch::stamp_ns, so sources must stamp their batches.
  [[nodiscard]] virtual bool uses_stamps() const noexcept { return false; }
};

/// The time a stream's watermark starts from before any item (far from overflow when a bound is
/// subtracted).
inline constexpr std::int64_t lowest_time = std::numeric_limits<std::int64_t>::min() / 4;
/// The highest time of a stream that has ended, or of a partition with no other input stream.
inline constexpr std::int64_t highest_time = std::numeric_limits<std::int64_t>::max() / 4;
/// The bits of AnyBatch::port that number a stage's input; the others are flags of the operator's.
inline constexpr std::uint32_t input_port_mask = 0x0FFF'FFFFU;

/// Splits the batches on one input of a keyed stage into one batch per partition, by key hash, so
/// that every item of a key reaches the same partition. Holds no state of its own: what a sending
/// stream has seen (its highest item time) is passed in by the caller, who calls split() for one
/// stream at a time. Thread-safe for different streams when the key and time functions are.
class Partitioner {
 public:
  virtual ~Partitioner() = default;
  /// Adds the items of `in` whose key hashes to p to `out[p]` (one slot per partition), tagged with
  /// `port`; moves the items when `in` is not shared. A slot that is null on entry gets a new batch;
  /// one that holds a batch on entry (made by an earlier split for the same stream, port and stamp,
  /// owned by the caller alone) gets the items appended. `high` is the stream's highest item time so
  /// far: split() raises it, and tags the parts with it before and after the batch (held parts'
  /// time_high_ns too). Items late against the stream's own watermark, and items that need a batch of
  /// their own (failed items), go in batches pushed past the partition count, with the partition they
  /// are for in AnyBatch::partition.
  virtual void split(BatchPtr in, std::vector<BatchPtr>& out, std::uint32_t port,
                     std::int64_t& high) const = 0;
  /// An empty batch of the input's type, which carries a stream's watermark to a partition it has no
  /// items for.
  [[nodiscard]] virtual BatchPtr marker() const = 0;
  /// sizeof one item of the batches split() makes (what a partition's batch costs per item held).
  [[nodiscard]] virtual std::size_t item_bytes() const noexcept = 0;
  /// The stretch of event time a partition's watermark is in when the highest time split so far is
  /// `time_high_ns`: when it changes, a window may close, so batches held back to fill up go on at
  /// once. The lowest int64 for partitioners without windows in time (nothing waits on a watermark).
  [[nodiscard]] virtual std::int64_t epoch(std::int64_t /*time_high_ns*/) const noexcept {
    return std::numeric_limits<std::int64_t>::min();
  }
};

/// The partition of a key hash among `n` (n < 2^32; the hash is mixed first: std::hash of an integer
/// is the integer itself). A multiply-shift maps the mixed hash's high 32 bits onto [0, n) without a
/// division, which matters once per item.
[[nodiscard]] inline std::size_t partition_of(std::size_t hash, std::size_t n) noexcept {
  const std::uint64_t h = static_cast<std::uint64_t>(hash) * 0x9E3779B97F4A7C15ULL;
  return static_cast<std::size_t>(((h >> 32) * static_cast<std::uint64_t>(n)) >> 32);
}

/// A call that runs a slice of a source's range through the fused chain after it (see
/// RangeConsumer): `call(self, stages, tallies, counts)` returns the chain's output batch or null.
struct DirectRun {
  void* self;
  BatchPtr (*call)(void* self, Stage* const* stages, BatchTally* tallies, std::uint64_t* counts);
};

class RangeConsumerBase;

/// What a source's thread uses to hand batches to the graph.
class SourceContext {
 public:
  virtual ~SourceContext() = default;
  /// Hands a batch to the graph (waits for an in-flight slot first).
  virtual void emit(BatchPtr batch) = 0;
  [[nodiscard]] virtual bool stopping() const noexcept = 0;
  [[nodiscard]] virtual std::size_t batch_size() const noexcept = 0;
  [[nodiscard]] virtual std::chrono::nanoseconds linger() const noexcept = 0;
  [[nodiscard]] virtual const Clock& clock() const noexcept = 0;
  [[nodiscard]] virtual Stage& stage() noexcept = 0;
  /// A batch of this source's type that came back unreferenced from the last emit, or null.
  virtual BatchPtr take_spare() noexcept { return nullptr; }
  /// The fused chain that follows the source on its thread, when it can read the source's range
  /// directly (no batch in between), or null.
  [[nodiscard]] virtual RangeConsumerBase* direct() noexcept { return nullptr; }
  /// Items per direct() slice: larger than a batch when nothing leaves the source's thread.
  [[nodiscard]] virtual std::size_t direct_slice() const noexcept { return batch_size(); }
  /// Hands `n` items to the graph through direct(): `run` feeds them to the chain.
  virtual void emit_direct(std::size_t /*n*/, DirectRun /*run*/) {}
};

/// An empty batch for a source: the one its last emit gave back, or a new one.
template <class T>
std::shared_ptr<Batch<T>> source_batch(SourceContext& ctx) {
  if (auto spare = ctx.take_spare()) {
    auto b = std::static_pointer_cast<Batch<T>>(std::move(spare));
    b->items.clear();
    return b;
  }
  auto b = std::make_shared<Batch<T>>();
  b->items.reserve(ctx.batch_size());
  return b;
}

/// A source: runs on a thread of its own until exhausted or told to stop.
class SourceBase {
 public:
  virtual ~SourceBase() = default;
  virtual void run(SourceContext& ctx) = 0;
  /// Wakes a source that waits for input (push sources) when the run stops.
  virtual void wake() noexcept {}
};

/// Pulls items from `next(std::vector<T>&) -> bool` (which appends one item or returns false) into batches;
/// flushes full batches at once and partial ones when the linger time has passed (the clock is read every few
/// items, more often when items trickle in).
template <class T, class Next>
void pull_batches(SourceContext& ctx, Next&& next) {
  const std::size_t cap = ctx.batch_size();
  const auto linger = ctx.linger();
  std::size_t stride = 1;  // items between clock reads
  while (!ctx.stopping()) {
    auto batch = source_batch<T>(ctx);
    auto& items = batch->items;
    auto deadline = ctx.clock().steady_now() + linger;
    bool more = true;
    bool full = true;
    while (items.size() < cap) {
      if (!next(items)) {
        more = false;
        break;
      }
      if (items.size() % stride == 0 && ctx.clock().steady_now() >= deadline) {
        full = false;
        break;
      }
    }
    stride = full ? 64 : 1;
    if (!items.empty()) ctx.emit(std::move(batch));
    if (!more) return;
  }
}

}  // namespace weir::detail

namespace weir::detail {

/// How a kernel passes an item to the user's function: moved when the batch is its own and the
/// policy does not need the item after a failure, otherwise as const& (or a copy when the
/// function insists on an rvalue).
template <class F, class T>
decltype(auto) pass_kept(F&, const T& x) {
  if constexpr (user_invocable<F&, const T&>) {
    return x;
  } else {
    return T(x);
  }
}

/// Runs `one(i)` for items [i, n) with a try/catch per item, calling `failed(i)` for those that throw.
/// Kernels use it after the first failure in a batch; the fast path before it has no per-item try.
template <class One, class Failed>
void per_item_slow_path(std::size_t i, std::size_t n, One&& one, Failed&& failed) {
  for (; i < n; ++i) {
    try {
      one(i);
    } catch (...) {
      failed(i);
    }
  }
}

/// A batch for `U` that shares the input's ticket.
template <class U>
std::shared_ptr<Batch<U>> derived_batch(const AnyBatch& from, std::size_t reserve) {
  auto out = std::make_shared<Batch<U>>();
  out->ticket = from.ticket;
  out->stamp_ns = from.stamp_ns;
  out->stream = from.stream;
  out->items.reserve(reserve);
  return out;
}

}  // namespace weir::detail
