#pragma once
/// \file buffer: groups items into vectors of up to n for sinks that want big writes.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "weir/detail/runtime.hpp"

namespace weir::ops {

/// Collects items into a std::vector<T> of `size` items, emitted when full, when its first item has
/// waited `max_delay` since it left its source (checked as batches arrive, by their source stamps,
/// and on the pipeline's timer, by the clock), and at end of input. Serial: one pending vector.
template <class T>
class BufferKernel final : public detail::Kernel {
 public:
  BufferKernel(std::size_t size, std::chrono::nanoseconds max_delay) : size_(size), max_delay_(max_delay) {}

  [[nodiscard]] bool stateless() const noexcept override { return false; }
  [[nodiscard]] bool wants_timer() const noexcept override { return max_delay_.count() > 0; }
  [[nodiscard]] bool uses_stamps() const noexcept override { return max_delay_.count() > 0; }

  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally&) override {
    auto& items = static_cast<Batch<T>&>(*in).items;
    const bool own = in.use_count() == 1;
    const std::chrono::nanoseconds now{in->stamp_ns};
    std::shared_ptr<Batch<std::vector<T>>> out;
    for (auto& x : items) {
      if (pending_.empty()) {
        pending_.reserve(size_);
        first_ = now;
      }
      if (own) {
        pending_.push_back(std::move(x));
      } else {
        pending_.push_back(x);
      }
      if (pending_.size() >= size_) emit(out, st, now);
    }
    if (!pending_.empty() && now - first_ >= max_delay_ && max_delay_.count() > 0) emit(out, st, now);
    return out;
  }

  detail::BatchPtr on_timer(std::uint32_t, detail::Stage& st, detail::BatchTally&) override {
    const auto now = clock_ns(st);
    std::shared_ptr<Batch<std::vector<T>>> out;
    if (!pending_.empty() && now - first_ >= max_delay_) emit(out, st, now);
    return out;
  }

  detail::BatchPtr flush(std::uint32_t, detail::Stage& st, detail::BatchTally&) override {
    std::shared_ptr<Batch<std::vector<T>>> out;
    if (!pending_.empty()) emit(out, st, std::max(first_, clock_ns(st)));
    return out;
  }

 private:
  static std::chrono::nanoseconds clock_ns(const detail::Stage& st) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(st.clock->system_now().time_since_epoch());
  }

  void emit(std::shared_ptr<Batch<std::vector<T>>>& out, detail::Stage& st,
            std::chrono::nanoseconds now) {
    if (!out) out = std::make_shared<Batch<std::vector<T>>>();
    if (st.listens()) st.emit(events::BufferFlushed{pending_.size(), now - first_});
    out->items.push_back(std::move(pending_));
    pending_ = {};
  }

  std::size_t size_;
  std::chrono::nanoseconds max_delay_;
  std::vector<T> pending_;
  std::chrono::nanoseconds first_{0};  ///< source stamp of the first pending item
};

}  // namespace weir::ops
