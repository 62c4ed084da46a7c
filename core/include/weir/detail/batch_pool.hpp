#pragma once
// Not API: the item vectors a keyed exchange's batches are built in, kept for reuse.

#include <concurrentqueue.h>

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>
#include <weir/batch.hpp>

namespace weir::detail {

/// Keeps the item vectors of the batches a key partitioner makes (up to 256 KiB each, filled over
/// several splits and freed by a partition on another thread) for the next batches it makes, so
/// that a steady stream reuses memory instead of asking the kernel for fresh pages for every
/// partition batch. A batch made here gives its vector back when its last owner drops it, from any
/// thread; at most `keep` vectors wait, the rest are freed. Costs per batch: one dequeue, one
/// enqueue and the shared_ptr's own control block.
template <class T>
class BatchPool : public std::enable_shared_from_this<BatchPool<T>> {
 public:
  static constexpr std::size_t keep = 32;

  /// An empty batch with room for at least `reserve` items.
  std::shared_ptr<Batch<T>> make(std::size_t reserve) {
    std::vector<T> items;
    (void)spare_.try_dequeue(items);
    items.reserve(reserve);
    return std::shared_ptr<Batch<T>>(new Batch<T>(std::move(items)), Recycle{this->shared_from_this()});
  }

  /// An empty batch like derived_batch's: it shares `from`'s ticket, stamp and stream.
  std::shared_ptr<Batch<T>> derived(const AnyBatch& from, std::size_t reserve) {
    auto b = make(reserve);
    b->ticket = from.ticket;
    b->stamp_ns = from.stamp_ns;
    b->stream = from.stream;
    return b;
  }

  /// Vectors waiting for reuse now (approximate while batches are in flight).
  [[nodiscard]] std::size_t spare() const noexcept { return spare_.size_approx(); }

 private:
  struct Recycle {
    std::shared_ptr<BatchPool> pool;
    void operator()(Batch<T>* b) const noexcept {
      pool->give(std::move(b->items));
      delete b;
    }
  };

  void give(std::vector<T>&& items) noexcept {
    items.clear();
    if (items.capacity() == 0 || spare_.size_approx() >= keep) return;
    try {
      spare_.enqueue(std::move(items));
    } catch (...) {  // no memory for the queue's block: the vector is freed instead
    }
  }

  moodycamel::ConcurrentQueue<std::vector<T>> spare_;
};

}  // namespace weir::detail
