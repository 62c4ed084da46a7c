#pragma once
/// \file Sources: a range, a generator, a file of lines, and a push source fed by other threads.

#include <blockingconcurrentqueue.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "weir/clock.hpp"
#include "weir/detail/fusion.hpp"
#include "weir/detail/runtime.hpp"

namespace weir::ops {

template <class R>
inline constexpr bool is_owning_view = false;
template <class C>
inline constexpr bool is_owning_view<std::ranges::owning_view<C>> = true;

/// Emits the elements of a range in order: a container it owns (elements are moved out) or a view
/// (elements are copied; the viewed data must outlive the run).
template <class R>
class RangeSource final : public detail::SourceBase {
  static constexpr bool owns_elements =
      is_owning_view<R> && std::is_lvalue_reference_v<std::ranges::range_reference_t<R>>;

 public:
  using T = std::remove_cvref_t<std::ranges::range_reference_t<R>>;
  explicit RangeSource(R range) : range_(std::move(range)) {}

  void run(detail::SourceContext& ctx) override {
    if constexpr (std::ranges::random_access_range<R> && std::ranges::sized_range<R>) {
      if (auto* c = dynamic_cast<detail::RangeConsumer<R>*>(ctx.direct())) {
        run_direct(ctx, *c);
        return;
      }
    }
    const std::size_t cap = ctx.batch_size();
    auto it = std::ranges::begin(range_);
    auto end = std::ranges::end(range_);
    while (it != end && !ctx.stopping()) {
      auto batch = detail::source_batch<T>(ctx);
      auto& items = batch->items;
      if constexpr (std::ranges::random_access_range<R> && std::ranges::sized_range<R>) {
        const auto left = static_cast<std::size_t>(end - it);
        const auto take = left < cap ? left : cap;
        if constexpr (owns_elements) {
          std::ranges::copy(std::make_move_iterator(it),
                            std::make_move_iterator(it + static_cast<std::ptrdiff_t>(take)),
                            std::back_inserter(items));
        } else if constexpr (std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>) {
          items.resize(take);
          T* const d = items.data();
          for (std::size_t k = 0; k < take; ++k) d[k] = it[static_cast<std::ptrdiff_t>(k)];
        } else {
          for (std::size_t k = 0; k < take; ++k) items.push_back(it[static_cast<std::ptrdiff_t>(k)]);
        }
        it += static_cast<std::ptrdiff_t>(take);
      } else {
        for (; it != end && items.size() < cap; ++it) items.push_back(*it);
      }
      ctx.emit(std::move(batch));
    }
  }

 private:
  /// The fused chain after the source reads slices of the range in place: no batch is filled.
  void run_direct(detail::SourceContext& ctx, detail::RangeConsumer<R>& consumer) {
    using It = std::ranges::iterator_t<R>;
    struct Slice {
      detail::RangeConsumer<R>* consumer;
      It first;
      It last;
    };
    constexpr bool movable = owns_elements || !std::is_lvalue_reference_v<std::ranges::range_reference_t<R>>;
    const std::size_t slice = ctx.direct_slice();
    auto it = std::ranges::begin(range_);
    const auto end = std::ranges::end(range_);
    while (it != end && !ctx.stopping()) {
      const auto left = static_cast<std::size_t>(end - it);
      const auto take = left < slice ? left : slice;
      Slice s{&consumer, it, it + static_cast<std::ptrdiff_t>(take)};
      ctx.emit_direct(take, detail::DirectRun{&s, [](void* self, detail::Stage* const* stages,
                                                     detail::BatchTally* tallies, std::uint64_t* counts) {
                                                auto& sl = *static_cast<Slice*>(self);
                                                return sl.consumer->run_range(sl.first, sl.last, movable,
                                                                              stages, tallies, counts);
                                              }});
      it = s.last;
    }
  }

  R range_;
};

/// Calls `F` (returning std::optional<T>) until it returns std::nullopt.
template <class F>
class GeneratorSource final : public detail::SourceBase {
 public:
  using T = typename std::invoke_result_t<F&>::value_type;
  explicit GeneratorSource(F fn) : fn_(std::move(fn)) {}
  void run(detail::SourceContext& ctx) override {
    detail::pull_batches<T>(ctx, [this](std::vector<T>& out) {
      auto v = std::invoke(fn_);
      if (!v) return false;
      out.push_back(std::move(*v));
      return true;
    });
  }

 private:
  F fn_;
};

/// Emits the lines of a text file (without the line end; a final "\r" is removed too).
class LinesSource final : public detail::SourceBase {
 public:
  explicit LinesSource(std::filesystem::path path) : path_(std::move(path)) {}
  void run(detail::SourceContext& ctx) override {
    std::ifstream in(path_, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path_.string() + ": " + std::strerror(errno));
    std::string line;
    detail::pull_batches<std::string>(ctx, [&in, &line](std::vector<std::string>& out) {
      if (!std::getline(in, line)) return false;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      out.push_back(line);
      return true;
    });
    if (in.bad()) throw std::runtime_error("cannot read " + path_.string());
  }

 private:
  std::filesystem::path path_;
};

/// A source that other threads feed with `push` (waits when full) or `try_push` (fails when full),
/// through a bounded lock-free queue; `close()` ends the stream once the queued items are drained.
/// Thread-safe: any number of threads may push at once. Share it with std::shared_ptr.
template <class T>
class PushSource final : public detail::SourceBase {
 public:
  explicit PushSource(std::size_t capacity = 4096)
      : capacity_(capacity < 1 ? 1 : capacity), free_(static_cast<ssize_t>(capacity_)) {}

  /// Queues `item`, waiting while the queue is full. Returns false when the source is closed.
  bool push(T item) {
    while (!free_.wait(10'000)) {
      if (closed_.load(std::memory_order_acquire)) return false;
    }
    return enqueue(std::move(item));
  }
  /// Queues `item` when there is room; false when full or closed.
  bool try_push(T item) {
    if (!free_.tryWait()) return false;
    return enqueue(std::move(item));
  }
  /// Ends the stream: items already queued are still delivered; later pushes fail.
  void close() noexcept {
    closed_.store(true, std::memory_order_release);
    queue_.enqueue(std::nullopt);
  }
  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  /// How long, in real time, an empty source waits for items before it looks at the run again (the
  /// close and cancel markers wake it at once), and how often a partial batch on a clock other than
  /// the system's re-reads the clock for its linger deadline.
  static constexpr std::chrono::microseconds idle_wait{100'000};
  static constexpr std::chrono::microseconds recheck{1'000};

  void run(detail::SourceContext& ctx) override {
    const std::size_t cap = ctx.batch_size();
    const Clock& clock = ctx.clock();
    const std::chrono::nanoseconds linger = ctx.linger();
    // The linger is measured on the pipeline's clock. The system clock's deadline is also the real
    // time to wait until; another clock (a ManualClock) moves as it is told, so the wait only bounds
    // how often it is read again.
    const bool real_time = dynamic_cast<const SystemClock*>(&clock) != nullptr;
    std::vector<std::optional<T>> got(cap);
    bool open = true;
    // Moves what `wait` dequeued into the batch; a nullopt is the close (or wake) marker.
    auto take = [&](Batch<T>& batch, std::size_t n) {
      for (std::size_t k = 0; k < n; ++k) {
        if (got[k]) {
          batch.items.push_back(std::move(*got[k]));
          got[k].reset();
          free_.signal();
        } else {
          open = false;
        }
      }
    };
    while (open && !ctx.stopping()) {
      auto batch = detail::source_batch<T>(ctx);
      auto deadline = clock.steady_now() + linger;
      while (open && batch->items.size() < cap && !ctx.stopping()) {
        const auto want = cap - batch->items.size();
        if (batch->items.empty()) {
          take(*batch, queue_.wait_dequeue_bulk_timed(got.begin(), want, idle_wait.count()));
          deadline = clock.steady_now() + linger;  // the linger starts with the first item
        } else {
          const auto left = deadline - clock.steady_now();
          if (left.count() <= 0) break;
          auto wait = std::chrono::ceil<std::chrono::microseconds>(left);
          if (!real_time) wait = std::min(wait, recheck);
          take(*batch, queue_.wait_dequeue_bulk_timed(got.begin(), want, wait.count()));
        }
      }
      if (!batch->items.empty()) ctx.emit(std::move(batch));
    }
    if (ctx.stopping()) return;
    // Closed: wait for pushes that passed the closed check, then deliver what is left.
    while (pushing_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    for (;;) {
      auto batch = std::make_shared<Batch<T>>();
      batch->items.reserve(cap);
      take(*batch, queue_.try_dequeue_bulk(got.begin(), cap));
      if (batch->items.empty() && queue_.size_approx() == 0) return;
      if (!batch->items.empty()) ctx.emit(std::move(batch));
    }
  }
  /// The run is stopping: later pushes fail, a waiting push returns false, the source stops waiting.
  void wake() noexcept override {
    closed_.store(true, std::memory_order_release);
    queue_.enqueue(std::nullopt);
  }

 private:
  bool enqueue(T&& item) {
    pushing_.fetch_add(1, std::memory_order_acq_rel);
    const bool ok = !closed_.load(std::memory_order_acquire);
    if (ok) {
      queue_.enqueue(std::optional<T>(std::move(item)));
    } else {
      free_.signal();
    }
    pushing_.fetch_sub(1, std::memory_order_acq_rel);
    return ok;
  }

  std::size_t capacity_;
  moodycamel::LightweightSemaphore free_;
  moodycamel::BlockingConcurrentQueue<std::optional<T>> queue_;
  std::atomic<bool> closed_{false};
  std::atomic<int> pushing_{0};
};

}  // namespace weir::ops
