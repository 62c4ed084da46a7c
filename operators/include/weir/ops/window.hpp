#pragma once
/// \file Keyed tumbling windows: processing time, event time with a bounded-out-of-orderness
/// watermark and allowed lateness, and count windows; count, reduce and aggregate.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weir/detail/runtime.hpp"
#include "weir/ops/key_by.hpp"

namespace weir {

/// Tumbling windows of a fixed length of time: processing time (the time each batch left its
/// source) unless the windowed stream is given an event-time timestamp.
struct tumbling {
  std::chrono::nanoseconds size;
};

/// Tumbling windows of a fixed number of items per key.
struct tumbling_count {
  std::uint64_t size;
};

/// One result of a window: its key, the aggregate, the window's bounds and how many items it saw.
/// Time windows are [start, end); a count window spans the arrival of its first and last item.
template <class K, class V>
struct WindowResult {
  K key;
  V value;
  std::chrono::system_clock::time_point start{};
  std::chrono::system_clock::time_point end{};
  std::uint64_t items = 0;
  friend bool operator==(const WindowResult&, const WindowResult&) = default;
};

/// A timestamp function for event-time windows: takes a const T& and returns a
/// std::chrono::system_clock::time_point.
template <class F, class T>
concept TimestampFn = std::copy_constructible<F> && std::invocable<F&, const T&> &&
    std::convertible_to<std::invoke_result_t<F&, const T&>, std::chrono::system_clock::time_point>;

}  // namespace weir

namespace weir::ops {

/// Counts the items of a window.
struct CountAgg {
  using acc = std::uint64_t;
  [[nodiscard]] acc init() const noexcept { return 0; }
  template <class T>
  void add(acc& a, const T&) const noexcept {
    ++a;
  }
  [[nodiscard]] std::uint64_t result(acc a) const noexcept { return a; }
};

/// Folds the items of a window with `fn(T accumulated, const T& next) -> T`.
template <class T, class F>
struct ReduceAgg {
  using acc = std::optional<T>;
  F fn;
  [[nodiscard]] acc init() const { return std::nullopt; }
  void add(acc& a, const T& x) {
    if (a) {
      // The accumulated value is passed as const&: a function that throws leaves it intact.
      a.emplace(std::invoke(fn, std::as_const(*a), x));
    } else {
      a.emplace(x);
    }
  }
  [[nodiscard]] T result(acc&& a) { return std::move(*a); }
};

/// Starts each window at a copy of `init`, calls `add(A&, const T&)` per item and `result(const A&)`
/// when the window closes.
template <class A, class Add, class Res>
struct AggregateAgg {
  using acc = A;
  A initial;
  Add add_fn;
  Res result_fn;
  [[nodiscard]] acc init() const { return initial; }
  template <class T>
  void add(acc& a, const T& x) {
    std::invoke(add_fn, a, x);
  }
  [[nodiscard]] auto result(acc&& a) { return std::invoke(result_fn, std::as_const(a)); }
};

/// Returns the accumulator itself as the result.
struct Identity {
  template <class A>
  A operator()(const A& a) const {
    return a;
  }
};

/// How a window stage assigns items to windows.
struct WindowSpec {
  enum class Kind { processing_time, event_time, count };
  Kind kind = Kind::processing_time;
  std::int64_t size_ns = 0;
  std::uint64_t count = 0;
  std::int64_t out_of_orderness_ns = 0;
  std::int64_t lateness_ns = 0;
  /// Event time: an input stream that sends nothing for this long (processing time) is left out of
  /// the watermark until it sends again; 0: never.
  std::int64_t idle_after_ns = 0;
};

/// Lets the builder switch the late-item output on after the stage exists.
class WindowControl {
 public:
  virtual ~WindowControl() = default;
  virtual void send_late_items(bool on) noexcept = 0;
};

/// A keyed tumbling window stage. State lives in one partition per serial node (no locks on it). Each
/// partition's watermark is the highest time seen, by it or by the partitioner upstream up to the
/// batch at hand, less the out-of-orderness bound: it moves with the data, so the results do not
/// depend on how partitions are scheduled. Output 0 carries the results, output 1 the late items (when
/// asked for).
template <class T, class KeyF, class Agg, class TsF = NoTimestamp>
class WindowKernel final : public detail::Kernel, public WindowControl {
  using K = key_t<KeyF, T>;
  using Acc = typename Agg::acc;

 public:
  using Value = std::remove_cvref_t<decltype(std::declval<Agg&>().result(std::declval<Acc&&>()))>;
  using Result = WindowResult<K, Value>;

  WindowKernel(KeyF key, Agg agg, WindowSpec spec, TsF ts = {})
      : key_(std::move(key)), agg_(std::move(agg)), ts_(std::move(ts)), spec_(spec) {}

  [[nodiscard]] bool stateless() const noexcept override { return false; }
  [[nodiscard]] std::size_t outputs() const noexcept override { return 2; }
  [[nodiscard]] bool uses_stamps() const noexcept override {
    return spec_.kind != WindowSpec::Kind::event_time;
  }
  void send_late_items(bool on) noexcept override { late_output_ = on; }
  [[nodiscard]] bool wants_timer() const noexcept override {
    return spec_.kind == WindowSpec::Kind::processing_time || idle_after_ns() > 0;
  }
  /// Ticks of an event-time stage check its input streams' idleness (the runtime does; a watermark
  /// that moves reaches apply() as an empty batch).
  [[nodiscard]] std::int64_t idle_after_ns() const noexcept override {
    return spec_.kind == WindowSpec::Kind::event_time ? spec_.idle_after_ns : 0;
  }

  /// How far behind the clock a timer tick moves a processing-time watermark: batches stamped just
  /// before the tick may still be on their way.
  static constexpr std::int64_t timer_grace_ns = 100'000'000;

  /// Processing time goes on when no batch comes: windows whose end has passed on the clock close.
  detail::BatchPtr on_timer(std::uint32_t partition, detail::Stage& st,
                            detail::BatchTally& tally) override {
    if (partition >= parts_.size() || spec_.kind != WindowSpec::Kind::processing_time) return nullptr;
    auto& part = parts_[partition];
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::nanoseconds>(st.clock->system_now().time_since_epoch())
            .count();
    // Items stamped before this point that arrive later are late, so a window never closes twice.
    part.seen = std::max(part.seen, now - timer_grace_ns);
    Out out;
    fire(part, part.seen - spec_.lateness_ns, out, st);
    report_open(part, st);
    return out.finish(st, tally, late_output_);
  }

  void open(detail::Stage& st) override {
    parts_.clear();
    parts_.resize(static_cast<std::size_t>(std::max(1, st.info.parallelism)));
    const std::lock_guard lock(open_mutex_);
    open_total_ = 0;
  }

  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally& tally) override {
    auto& items = static_cast<Batch<T>&>(*in).items;
    auto& part = parts_[in->partition];
    Out out(*in);
    if (spec_.kind == WindowSpec::Kind::count) {
      for (auto& x : items) count_item(part, x, in->stamp_ns, out, st, tally);
      report_open(part, st);
      return out.finish(st, tally, late_output_);
    }
    // Items the partitioner found late against their own stream's watermark are late for the stage
    // when they are late against the other input streams' too (the partition's watermark is the
    // lowest of its streams'); with one input stream, all of them are.
    const bool candidates = (in->port & late_items_port) != 0;
    // This catches what the partitioner cannot know: windows a timer tick closed (processing time).
    // Late: the window's end plus the allowed lateness is at or below the watermark as it stood
    // before the batch.
    const std::int64_t before = std::max(part.seen, in->time_before_ns);
    const std::int64_t closed_below = before - spec_.out_of_orderness_ns - spec_.lateness_ns;
    const std::int64_t others_below = in->others_high_ns - spec_.out_of_orderness_ns - spec_.lateness_ns;
    for (auto& x : items) {
      try {
        const std::int64_t ts = timestamp(x, in->stamp_ns);
        // Consecutive items mostly fall in one window: its bounds are kept, so the division that
        // finds a window's start runs only when an item falls outside them.
        if (ts < part.span_start || ts >= part.span_end) {
          part.span_start = floor_to(ts);
          part.span_end = part.span_start + spec_.size_ns;
        }
        const std::int64_t start = part.span_start;
        if (start + spec_.size_ns <= closed_below || (candidates && start + spec_.size_ns <= others_below)) {
          out.late(x, late_output_, tally);
          continue;
        }
        auto& cell = cell_for(part, start, std::invoke(key_, std::as_const(x)));
        agg_.add(cell.acc, std::as_const(x));
        ++cell.items;
      } catch (...) {
        st.fail_item(&x, typeid(T), std::current_exception(), 1, tally);
      }
    }
    // The partition's watermark: its input streams' highest times, the lowest of them, less the bound.
    part.seen = std::max(part.seen, in->time_high_ns);
    const std::int64_t wm = part.seen - spec_.out_of_orderness_ns;
    if (wm > part.watermark) {
      part.watermark = wm;
      // (Every input stream having ended is no watermark to report.)
      if (st.listens() && spec_.kind == WindowSpec::Kind::event_time && part.seen < detail::highest_time)
        st.emit(events::WatermarkAdvanced{to_time(wm)});
    }
    fire(part, wm - spec_.lateness_ns, out, st);
    report_open(part, st);
    return out.finish(st, tally, late_output_);
  }

  detail::BatchPtr flush(std::uint32_t partition, detail::Stage& st,
                         detail::BatchTally& tally) override {
    if (partition >= parts_.size()) return nullptr;
    auto& part = parts_[partition];
    Out out;
    fire(part, std::numeric_limits<std::int64_t>::max(), out, st);
    for (auto& [key, cell] : part.counting) {
      emit_count(key, cell, out);
      if (st.listens())
        st.emit(events::WindowEmitted{1, cell.items, to_time(cell.first_ns), to_time(cell.last_ns)});
    }
    part.counting.clear();
    report_open(part, st);
    return out.finish(st, tally, late_output_);
  }

 private:
  struct Cell {
    Acc acc;
    std::uint64_t items = 0;
    std::int64_t first_ns = 0;  ///< count windows: stamps of the first and the latest item
    std::int64_t last_ns = 0;
  };
  using Keys = std::unordered_map<K, Cell, KeyHash<K>>;
  struct Part {
    std::map<std::int64_t, Keys> windows;  ///< open time windows by start
    std::int64_t last_start = std::numeric_limits<std::int64_t>::min();
    Keys* last = nullptr;         ///< the window of the previous item (usually the next one's too)
    std::int64_t span_start = 0;  ///< bounds [start, end) of the window of the previous item; empty at first
    std::int64_t span_end = 0;
    Keys counting;                            ///< count windows: the open window of each key
    std::int64_t seen = detail::lowest_time;  ///< the partition's highest time: the lowest over its streams
    std::int64_t watermark = std::numeric_limits<std::int64_t>::min();
    std::size_t reported_open = 0;  ///< the open windows of this partition in the last WindowsOpen
  };

  /// The output of one apply or flush: results and late items.
  class Out {
   public:
    Out() = default;
    explicit Out(const detail::AnyBatch& from) : from_(&from) {}
    Batch<Result>& results() {
      if (!results_) results_ = make<Result>();
      return *results_;
    }
    void late(const T& x, bool keep, detail::BatchTally& tally) {
      ++tally.late;
      if (!keep) return;
      if (!late_) late_ = make<T>();
      late_->items.push_back(x);
    }
    detail::BatchPtr finish(detail::Stage& st, detail::BatchTally& tally, bool late_output) {
      if (tally.late > 0 && st.listens()) st.emit(events::LateItems{tally.late, late_output});
      if (!results_ && !late_) return nullptr;
      auto m = std::make_shared<detail::MultiBatch>(2);
      m->outputs[0] = std::move(results_);
      m->outputs[1] = std::move(late_);
      return m;
    }

   private:
    template <class U>
    std::shared_ptr<Batch<U>> make() const {
      return from_ != nullptr ? detail::derived_batch<U>(*from_, 16) : std::make_shared<Batch<U>>();
    }
    const detail::AnyBatch* from_ = nullptr;
    std::shared_ptr<Batch<Result>> results_;
    std::shared_ptr<Batch<T>> late_;
  };

  static std::chrono::system_clock::time_point to_time(std::int64_t ns) {
    return std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds{ns})};
  }

  std::int64_t timestamp(const T& x, std::int64_t stamp) {
    if constexpr (std::is_same_v<TsF, NoTimestamp>) {
      return stamp;
    } else {
      const std::chrono::system_clock::time_point t = std::invoke(ts_, x);
      return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    }
  }

  [[nodiscard]] std::int64_t floor_to(std::int64_t ts) const noexcept {
    std::int64_t q = ts / spec_.size_ns;
    if (ts % spec_.size_ns < 0) --q;
    return q * spec_.size_ns;
  }

  template <class Key>
  Cell& cell_for(Part& part, std::int64_t start, const Key& key) {
    if (part.last == nullptr || part.last_start != start) {
      part.last = &part.windows[start];
      part.last_start = start;
    }
    auto it = part.last->find(key);
    if (it == part.last->end()) it = part.last->try_emplace(K(key), Cell{agg_.init(), 0, 0, 0}).first;
    return it->second;
  }

  /// Emits every window of the partition whose end is at or below `limit`, oldest first.
  void fire(Part& part, std::int64_t limit, Out& out, detail::Stage& st) {
    while (!part.windows.empty()) {
      auto it = part.windows.begin();
      const std::int64_t start = it->first;
      if (start > limit - spec_.size_ns) break;
      std::uint64_t items = 0;
      auto& res = out.results().items;
      for (auto& [key, cell] : it->second) {
        items += cell.items;
        res.push_back(Result{key, agg_.result(std::move(cell.acc)), to_time(start),
                             to_time(start + spec_.size_ns), cell.items});
      }
      if (st.listens())
        st.emit(
            events::WindowEmitted{it->second.size(), items, to_time(start), to_time(start + spec_.size_ns)});
      if (part.last == &it->second) part.last = nullptr;
      part.windows.erase(it);
    }
  }

  void count_item(Part& part, T& x, std::int64_t stamp, Out& out, detail::Stage& st,
                  detail::BatchTally& tally) {
    try {
      const auto& key = std::invoke(key_, std::as_const(x));
      auto it = part.counting.find(key);
      if (it == part.counting.end())
        it = part.counting.try_emplace(K(key), Cell{agg_.init(), 0, stamp, stamp}).first;
      auto& cell = it->second;
      agg_.add(cell.acc, std::as_const(x));
      cell.last_ns = stamp;
      if (++cell.items < spec_.count) return;
      emit_count(it->first, cell, out);
      if (st.listens()) st.emit(events::WindowEmitted{1, cell.items, to_time(cell.first_ns), to_time(stamp)});
      part.counting.erase(it);
    } catch (...) {
      st.fail_item(&x, typeid(T), std::current_exception(), 1, tally);
    }
  }

  /// Sends the stage's open windows when this partition's count changed since it last did: once per
  /// batch, timer tick or flush at most. The lock orders the totals of concurrent partitions, so the
  /// last one sent is the stage's count.
  void report_open(Part& part, detail::Stage& st) {
    if (!st.listens()) return;
    const std::size_t now =
        spec_.kind == WindowSpec::Kind::count ? part.counting.size() : part.windows.size();
    if (now == part.reported_open) return;
    const std::lock_guard lock(open_mutex_);
    open_total_ = open_total_ + now - part.reported_open;
    part.reported_open = now;
    st.emit(events::WindowsOpen{open_total_});
  }

  void emit_count(const K& key, Cell& cell, Out& out) {
    out.results().items.push_back(Result{key, agg_.result(std::move(cell.acc)), to_time(cell.first_ns),
                                         to_time(cell.last_ns), cell.items});
  }

  KeyF key_;
  Agg agg_;
  TsF ts_;
  WindowSpec spec_;
  bool late_output_ = false;
  std::vector<Part> parts_;
  std::mutex open_mutex_;
  std::size_t open_total_ = 0;  ///< open windows over all partitions, as last sent; under open_mutex_
};

}  // namespace weir::ops
