// backpressure competitor "threads_moodycamel": a producer thread pushing
// blocks of 256 items into a bounded moodycamel queue (it yields while the
// queue is over its bound) and a consumer thread running the 1 us sink.
#include <algorithm>
#include <array>
#include <cstdint>
#include <thread>

#include "backpressure/backpressure.hpp"
#include "common/bench.hpp"
#include "common/concurrent_queue.hpp"

namespace {

constexpr std::size_t block_size = 256;
// Items the queue may hold before the producer waits (256 KiB of items).
constexpr std::size_t queue_bound = 4096;

using Queue = weir::bench::BoundedSpscQueue<BackpressureItem>;
using Block = std::array<BackpressureItem, block_size>;

}  // namespace

BackpressureResult run_threads_moodycamel_backpressure(std::uint64_t n) {
  Queue queue{queue_bound};
  std::uint64_t received = 0;
  std::uint64_t checksum = 0;

  const weir::bench::Stopwatch watch;
  {
    std::jthread producer{[&queue, n] {
      auto token = queue.producer_token();
      Block block{};
      for (std::uint64_t next = 0; next < n;) {
        const std::uint64_t end = std::min<std::uint64_t>(n, next + block_size);
        std::size_t count = 0;
        for (; next < end; ++next) {
          block[count++] = make_backpressure_item(next);
        }
        queue.push_bulk(token, block.data(), count);
      }
      queue.close();
    }};
    std::jthread consumer{[&queue, &received, &checksum] {
      auto token = queue.consumer_token();
      Block block{};
      while (const std::size_t got = queue.pop_bulk(token, block.data(), block.size())) {
        for (std::size_t i = 0; i < got; ++i) {
          sink_work_1us();
          checksum += block[i].seq;
        }
        received += got;
      }
    }};
  }  // joins both
  return BackpressureResult{received, watch.seconds(), checksum};
}
