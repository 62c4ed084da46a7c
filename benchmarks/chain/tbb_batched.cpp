// chain competitor "tbb_batched": the tbb_per_item graph with 256-item
// vectors per message. A message is a shared_ptr to its vector, so stages
// work on it in place instead of copying it (function_node bodies receive
// const references). Map stages run unlimited, the sum serially; a
// limiter_node keeps at most `in_flight` batches alive.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include <oneapi/tbb/flow_graph.h>

#include "chain/chain.hpp"
#include "common/bench.hpp"

namespace flow = oneapi::tbb::flow;

namespace {

using Batch = std::shared_ptr<std::vector<std::uint64_t>>;

}  // namespace

ChainResult run_tbb_batched(std::uint64_t n) {
  constexpr std::size_t in_flight = 64;

  const weir::bench::Stopwatch watch;
  flow::graph g;
  std::uint64_t next = 0;
  std::uint64_t sum = 0;

  flow::input_node<Batch> source{g, [&next, n](oneapi::tbb::flow_control& control) -> Batch {
                                   if (next == n) {
                                     control.stop();
                                     return {};
                                   }
                                   const std::uint64_t end =
                                       std::min<std::uint64_t>(n, next + chain_batch_size);
                                   auto batch = std::make_shared<std::vector<std::uint64_t>>();
                                   batch->reserve(chain_batch_size);
                                   for (; next < end; ++next) {
                                     batch->push_back(next);
                                   }
                                   return batch;
                                 }};
  flow::limiter_node<Batch> limiter{g, in_flight};
  flow::function_node<Batch, Batch> map1{g, flow::unlimited, [](const Batch& batch) {
                                           for (std::uint64_t& x : *batch) {
                                             x = chain_map1(x);
                                           }
                                           return batch;
                                         }};
  flow::function_node<Batch, Batch> filter{g, flow::unlimited, [](const Batch& batch) {
                                             std::erase_if(*batch,
                                                           [](std::uint64_t x) { return !chain_keep(x); });
                                             return batch;
                                           }};
  flow::function_node<Batch, Batch> map2{g, flow::unlimited, [](const Batch& batch) {
                                           for (std::uint64_t& x : *batch) {
                                             x = chain_map2(x);
                                           }
                                           return batch;
                                         }};
  flow::function_node<Batch, flow::continue_msg> sink{g, flow::serial, [&sum](const Batch& batch) {
                                                        for (const std::uint64_t x : *batch) {
                                                          sum += x;
                                                        }
                                                        return flow::continue_msg{};
                                                      }};

  flow::make_edge(source, limiter);
  flow::make_edge(limiter, map1);
  flow::make_edge(map1, filter);
  flow::make_edge(filter, map2);
  flow::make_edge(map2, sink);
  flow::make_edge(sink, limiter.decrementer());

  source.activate();
  g.wait_for_all();
  return ChainResult{n, watch.seconds(), sum};
}
