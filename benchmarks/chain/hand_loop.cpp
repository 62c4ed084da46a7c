// chain competitor "hand_loop": the whole chain fused into one loop.
#include "chain/chain.hpp"
#include "common/bench.hpp"

ChainResult run_hand_loop(std::uint64_t n) {
  // Hide n from the optimiser so the loop is never evaluated at compile time.
  weir::bench::do_not_optimize(n);
  const weir::bench::Stopwatch watch;
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t a = chain_map1(i);
    if (chain_keep(a)) {
      sum += chain_map2(a);
    }
  }
  weir::bench::do_not_optimize(sum);
  return ChainResult{n, watch.seconds(), sum};
}
