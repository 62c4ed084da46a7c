#pragma once
/// \file The windowed stream-stream join: items of two streams with equal keys in the same
/// event-time tumbling window are paired.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weir/detail/runtime.hpp"
#include "weir/ops/key_by.hpp"

namespace weir {

/// The window of a stream-stream `join_by_key`: event-time tumbling windows of `size`, each side's
/// item time given by `time_a` / `time_b` (returning std::chrono::system_clock::time_point). The
/// watermark is the lower of the two sides' highest times, less `max_out_of_orderness`. With
/// `idle_after` (processing time), an input stream that sends nothing for that long is left out of
/// the watermark until it sends again (see the event-time windows' `event_time`).
template <class TsA, class TsB>
struct join_window {
  std::chrono::nanoseconds size;
  TsA time_a;
  TsB time_b;
  std::chrono::nanoseconds max_out_of_orderness{0};
  std::chrono::nanoseconds idle_after{0};
};
template <class TsA, class TsB>
join_window(std::chrono::nanoseconds, TsA, TsB) -> join_window<TsA, TsB>;
template <class TsA, class TsB>
join_window(std::chrono::nanoseconds, TsA, TsB, std::chrono::nanoseconds) -> join_window<TsA, TsB>;
template <class TsA, class TsB>
join_window(std::chrono::nanoseconds, TsA, TsB, std::chrono::nanoseconds, std::chrono::nanoseconds)
    -> join_window<TsA, TsB>;

}  // namespace weir

namespace weir::ops {

/// Keyed, partitioned like a window; input 0 is the left stream (T), input 1 the right one (R). When a
/// window closes, every pair of a left and a right item of one key gives `combine(const T&, const R&)`.
/// Each side's partitioner judges every item, in the order of its stream, against the stream's
/// watermark just before it (see KeyPartitioner) and sends the late ones apart; the partition counts
/// them late (StageReport::late) and drops them when the other streams' watermarks have passed them
/// too. So with one stream per side, what is late does not depend on batch boundaries or the
/// partition count. A failing
/// right-side item cannot reach a dead-letter sink (it takes the left type): under a dead-letter
/// policy it is counted as skipped, its error in the run's errors. Serial per partition.
template <class T, class R, class KA, class KB, class TsA, class TsB, class C>
class WindowJoinKernel final : public detail::Kernel {
  using K = key_t<KA, T>;

 public:
  using Out = std::remove_cvref_t<std::invoke_result_t<C&, const T&, const R&>>;

  WindowJoinKernel(KA key_a, KB key_b, join_window<TsA, TsB> w, C combine)
      : key_a_(std::move(key_a)),
        key_b_(std::move(key_b)),
        w_(std::move(w)),
        combine_(std::move(combine)),
        size_(w_.size.count()),
        ooo_(w_.max_out_of_orderness.count()) {}

  [[nodiscard]] bool stateless() const noexcept override { return false; }
  /// Ticks check the input streams' idleness (the runtime does; a watermark that moves reaches apply()
  /// as an empty batch).
  [[nodiscard]] bool wants_timer() const noexcept override { return idle_after_ns() > 0; }
  [[nodiscard]] std::int64_t idle_after_ns() const noexcept override { return w_.idle_after.count(); }
  void open(detail::Stage& st) override {
    parts_.clear();
    parts_.resize(static_cast<std::size_t>(std::max(1, st.info.parallelism)));
  }

  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally& tally) override {
    auto& part = parts_[in->partition];
    const std::size_t side = (in->port & ~late_items_port) == 0 ? 0 : 1;
    // Items the partitioner found late against their own stream's watermark are late here when they
    // are against the other input streams' too (those of both sides): with one stream per side, when
    // the other side has got as far.
    const std::int64_t late_below = (in->port & late_items_port) != 0
                                        ? in->others_high_ns - ooo_
                                        : std::numeric_limits<std::int64_t>::min();
    if (side == 0) {
      add<0>(part, static_cast<Batch<T>&>(*in).items, key_a_, w_.time_a, late_below, st, tally);
    } else {
      add<1>(part, static_cast<Batch<R>&>(*in).items, key_b_, w_.time_b, late_below, st, tally);
    }
    if (tally.late > 0 && st.listens()) st.emit(events::LateItems{tally.late, false});
    // The partition's highest time: the lowest over its input streams, of both sides.
    part.high = std::max(part.high, in->time_high_ns);
    auto out = detail::derived_batch<Out>(*in, 0);
    fire(part, watermark(part), *out, st);
    if (out->items.empty()) return nullptr;
    return out;
  }

  detail::BatchPtr flush(std::uint32_t partition, detail::Stage& st, detail::BatchTally&) override {
    if (partition >= parts_.size()) return nullptr;
    auto out = std::make_shared<Batch<Out>>();
    fire(parts_[partition], std::numeric_limits<std::int64_t>::max(), *out, st);
    if (out->items.empty()) return nullptr;
    return out;
  }

 private:
  struct Group {
    std::vector<T> a;
    std::vector<R> b;
  };
  struct Part {
    std::map<std::int64_t, std::unordered_map<K, Group, KeyHash<K>>> windows;
    std::int64_t high = lowest;           ///< the lowest over the input streams of their highest times
    std::int64_t emitted_below = lowest;  ///< windows ending at or below this have been emitted
  };
  static constexpr std::int64_t lowest = std::numeric_limits<std::int64_t>::min() / 4;

  [[nodiscard]] std::int64_t watermark(const Part& p) const noexcept { return p.high - ooo_; }

  template <std::size_t Side, class X, class KeyF, class TimeF>
  void add(Part& part, std::vector<X>& items, KeyF& key, TimeF& time, std::int64_t late_below,
           detail::Stage& st, detail::BatchTally& tally) {
    for (auto& x : items) {
      try {
        const std::chrono::system_clock::time_point t = std::invoke(time, std::as_const(x));
        const std::int64_t ts =
            std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
        std::int64_t start = ts / size_ * size_;
        if (ts % size_ < 0) start -= size_;
        // A window this partition has emitted takes no more items (a safety net: the exchange sends
        // no item on time for a window the partition's watermark has passed).
        if (start + size_ <= part.emitted_below || start + size_ <= late_below) {
          ++tally.late;
          continue;
        }
        auto& group = part.windows[start][K(std::invoke(key, std::as_const(x)))];
        if constexpr (Side == 0) {
          group.a.push_back(std::move(x));
        } else {
          group.b.push_back(std::move(x));
        }
      } catch (...) {
        // A right item under a dead-letter policy is counted as skipped (see Stage::fail_item).
        st.fail_item(&x, typeid(X), std::current_exception(), 1, tally);
      }
    }
  }

  void fire(Part& part, std::int64_t limit, Batch<Out>& out, detail::Stage& st) {
    part.emitted_below = std::max(part.emitted_below, limit);
    while (!part.windows.empty() && part.windows.begin()->first <= limit - size_) {
      auto it = part.windows.begin();
      std::size_t keys = 0;
      std::size_t items = 0;
      const std::size_t before = out.items.size();
      for (auto& [k, g] : it->second) {
        items += g.a.size() + g.b.size();
        if (g.a.empty() || g.b.empty()) continue;
        ++keys;
        for (const auto& a : g.a) {
          for (const auto& b : g.b) out.items.push_back(std::invoke(combine_, a, b));
        }
      }
      if (st.listens()) {
        st.emit(events::JoinGroupCreated{it->second.size(), items});
        st.emit(events::JoinCompleted{keys, out.items.size() - before});
      }
      part.windows.erase(it);
    }
  }

  KA key_a_;
  KB key_b_;
  join_window<TsA, TsB> w_;
  C combine_;
  std::int64_t size_;
  std::int64_t ooo_;
  std::vector<Part> parts_;
};

}  // namespace weir::ops
