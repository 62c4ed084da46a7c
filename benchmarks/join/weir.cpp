// join competitor "weir": the lookup join at parallelism = cores, into a sum sink.
#include <algorithm>
#include <cstdint>
#include <thread>
#include <weir/weir.hpp>

#include "join/join.hpp"

JoinResult run_weir(const JoinInput& in) {
  const int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::uint64_t matched = 0;
  std::uint64_t sum = 0;
  weir::Pipeline p("join");
  p.source(in.items)  // viewed: the items are copied into batches
      .join_by_key(
          weir::table{in.rows}, [](const JoinItem& x) { return x.key; },
          [](const JoinRow& r) { return r.key; },
          [](const JoinItem& x, const JoinRow& r) { return join_combine(x, r); })
      .name("lookup")
      .parallelism(cores)
      .sink([&](const Joined& j) {
        ++matched;
        sum += join_fold(j);
      })
      .name("fold");

  const weir::bench::Stopwatch watch;
  const weir::bench::CpuStopwatch cpu;
  (void)p.run();
  const double seconds = watch.seconds();
  return JoinResult{in.items.size(), seconds, cpu.seconds(), matched, sum};
}
