// chain competitor "tbb_per_item": a raw tbb::flow graph carrying one item per
// message. input_node -> limiter_node -> map1 -> filter -> map2 -> serial sum;
// the sum node and the filter's drop port both decrement the limiter, so at
// most `in_flight` items exist at any time. The limiter's decrement port takes
// an integer: a continue_msg port would wait for a message from every
// predecessor before it decremented once.
#include <cstdint>
#include <tuple>

#include <oneapi/tbb/flow_graph.h>

#include "chain/chain.hpp"
#include "common/bench.hpp"

namespace flow = oneapi::tbb::flow;

ChainResult run_tbb_per_item(std::uint64_t n) {
  constexpr std::size_t in_flight = 4096;
  using Decrement = int;
  using Filter = flow::multifunction_node<std::uint64_t, std::tuple<std::uint64_t, Decrement>>;

  const weir::bench::Stopwatch watch;
  flow::graph g;
  std::uint64_t next = 0;
  std::uint64_t sum = 0;

  flow::input_node<std::uint64_t> source{g, [&next, n](oneapi::tbb::flow_control& control) -> std::uint64_t {
                                           if (next == n) {
                                             control.stop();
                                             return 0;
                                           }
                                           return next++;
                                         }};
  flow::limiter_node<std::uint64_t, Decrement> limiter{g, in_flight};
  flow::function_node<std::uint64_t, std::uint64_t> map1{g, flow::unlimited,
                                                         [](std::uint64_t x) { return chain_map1(x); }};
  Filter filter{g, flow::unlimited, [](std::uint64_t x, Filter::output_ports_type& ports) {
                  if (chain_keep(x)) {
                    std::get<0>(ports).try_put(x);
                  } else {
                    std::get<1>(ports).try_put(Decrement{1});
                  }
                }};
  flow::function_node<std::uint64_t, std::uint64_t> map2{g, flow::unlimited,
                                                         [](std::uint64_t x) { return chain_map2(x); }};
  flow::function_node<std::uint64_t, Decrement> sink{g, flow::serial, [&sum](std::uint64_t x) {
                                                       sum += x;
                                                       return Decrement{1};
                                                     }};

  flow::make_edge(source, limiter);
  flow::make_edge(limiter, map1);
  flow::make_edge(map1, filter);
  flow::make_edge(flow::output_port<0>(filter), map2);
  flow::make_edge(flow::output_port<1>(filter), limiter.decrementer());
  flow::make_edge(map2, sink);
  flow::make_edge(sink, limiter.decrementer());

  source.activate();
  g.wait_for_all();
  return ChainResult{n, watch.seconds(), sum};
}
