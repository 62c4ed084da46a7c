// moodycamel::ConcurrentQueue for the hand-written thread competitors, plus
// the small bounded-queue protocol they share.
#pragma once

// Debian 12 installs the headers as <concurrentqueue/concurrentqueue.h>
// (weir::concurrentqueue puts that folder on the include path); newer
// packages use <concurrentqueue/moodycamel/concurrentqueue.h>.
// GCC 12 reports -Wnull-dereference inside the queue's producer-list walk
// once it is inlined here, system header or not; the pointers it flags are
// never null when a token exists. The pragma covers the header's lines and
// this file's, where that code is inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#if __has_include(<moodycamel/concurrentqueue.h>)
#include <moodycamel/concurrentqueue.h>
#elif __has_include(<concurrentqueue.h>)
#include <concurrentqueue.h>
#else
#error "moodycamel concurrentqueue.h not found: link weir::concurrentqueue"
#endif

#include <atomic>
#include <cstddef>
#include <thread>

namespace weir::bench {

/// A moodycamel queue with one producer, one consumer, a soft bound and an
/// end-of-stream flag. Thread safe for exactly one producer thread and one
/// consumer thread.
template <class T>
class BoundedSpscQueue {
 public:
  explicit BoundedSpscQueue(std::size_t bound) : queue_{bound + 1024}, bound_{bound} {}

  /// Enqueues `count` items, first yielding while the queue holds more than the bound.
  void push_bulk(moodycamel::ProducerToken& token, const T* items, std::size_t count) {
    while (queue_.size_approx() > bound_) {
      std::this_thread::yield();
    }
    while (!queue_.enqueue_bulk(token, items, count)) {
      std::this_thread::yield();  // allocation failure: wait for the consumer
    }
  }

  /// Marks the end of the stream; call once, after the last push.
  void close() noexcept { closed_.store(true, std::memory_order_release); }

  /// Dequeues up to `max` items into `out`, yielding while the queue is empty.
  /// Returns 0 only once the stream is closed and drained.
  std::size_t pop_bulk(moodycamel::ConsumerToken& token, T* out, std::size_t max) {
    for (;;) {
      if (const std::size_t got = queue_.try_dequeue_bulk(token, out, max); got != 0) {
        return got;
      }
      if (closed_.load(std::memory_order_acquire)) {
        // Every push happened before close(): one more look sees the rest.
        return queue_.try_dequeue_bulk(token, out, max);
      }
      std::this_thread::yield();
    }
  }

  [[nodiscard]] moodycamel::ProducerToken producer_token() { return moodycamel::ProducerToken{queue_}; }
  [[nodiscard]] moodycamel::ConsumerToken consumer_token() { return moodycamel::ConsumerToken{queue_}; }

 private:
  moodycamel::ConcurrentQueue<T> queue_;
  std::size_t bound_;
  std::atomic<bool> closed_{false};
};

}  // namespace weir::bench

#pragma GCC diagnostic pop
