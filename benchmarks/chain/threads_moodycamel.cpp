// chain competitor "threads_moodycamel": one std::thread per stage
// (generate, map1+filter, map2, sum) joined by bounded moodycamel queues,
// moving blocks of 256 items with bulk enqueue/dequeue.
#include <algorithm>
#include <array>
#include <cstdint>
#include <thread>

#include "chain/chain.hpp"
#include "common/bench.hpp"
#include "common/concurrent_queue.hpp"

namespace {

using Queue = weir::bench::BoundedSpscQueue<std::uint64_t>;
using Block = std::array<std::uint64_t, chain_batch_size>;

// Items a queue may hold before its producer waits.
constexpr std::size_t queue_bound = 16 * 1024;

void generate(std::uint64_t n, Queue& out) {
  auto token = out.producer_token();
  Block block{};
  for (std::uint64_t next = 0; next < n;) {
    const std::uint64_t end = std::min<std::uint64_t>(n, next + chain_batch_size);
    std::size_t count = 0;
    for (; next < end; ++next) {
      block[count++] = next;
    }
    out.push_bulk(token, block.data(), count);
  }
  out.close();
}

void map1_filter(Queue& in, Queue& out) {
  auto in_token = in.consumer_token();
  auto out_token = out.producer_token();
  Block input{};
  Block output{};
  while (const std::size_t got = in.pop_bulk(in_token, input.data(), input.size())) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < got; ++i) {
      const std::uint64_t a = chain_map1(input[i]);
      if (chain_keep(a)) {
        output[kept++] = a;
      }
    }
    if (kept != 0) {
      out.push_bulk(out_token, output.data(), kept);
    }
  }
  out.close();
}

void map2(Queue& in, Queue& out) {
  auto in_token = in.consumer_token();
  auto out_token = out.producer_token();
  Block block{};
  while (const std::size_t got = in.pop_bulk(in_token, block.data(), block.size())) {
    for (std::size_t i = 0; i < got; ++i) {
      block[i] = chain_map2(block[i]);
    }
    out.push_bulk(out_token, block.data(), got);
  }
  out.close();
}

std::uint64_t sum_all(Queue& in) {
  auto token = in.consumer_token();
  Block block{};
  std::uint64_t sum = 0;
  while (const std::size_t got = in.pop_bulk(token, block.data(), block.size())) {
    for (std::size_t i = 0; i < got; ++i) {
      sum += block[i];
    }
  }
  return sum;
}

}  // namespace

ChainResult run_threads_moodycamel(std::uint64_t n) {
  Queue generated{queue_bound};
  Queue filtered{queue_bound};
  Queue mapped{queue_bound};
  std::uint64_t sum = 0;

  const weir::bench::Stopwatch watch;
  {
    std::jthread generator{[&] { generate(n, generated); }};
    std::jthread stage1{[&] { map1_filter(generated, filtered); }};
    std::jthread stage2{[&] { map2(filtered, mapped); }};
    std::jthread sink{[&] { sum = sum_all(mapped); }};
  }  // joins all four
  return ChainResult{n, watch.seconds(), sum};
}
