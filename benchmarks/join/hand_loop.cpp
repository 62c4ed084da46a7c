// join competitor "hand_loop": one loop on one thread looking every item up in
// a std::unordered_map of the table, which is built before the clock starts
// (as Weir indexes its table when the pipeline is built).
#include <cstdint>
#include <unordered_map>

#include "common/bench.hpp"
#include "join/join.hpp"

JoinResult run_hand_loop(const JoinInput& in) {
  std::unordered_map<std::uint64_t, JoinRow> table;
  table.reserve(in.rows.size());
  for (const JoinRow& r : in.rows) {
    table.emplace(r.key, r);
  }

  const weir::bench::Stopwatch watch;
  const weir::bench::CpuStopwatch cpu;
  std::uint64_t matched = 0;
  std::uint64_t sum = 0;
  for (const JoinItem& item : in.items) {
    const auto it = table.find(item.key);
    if (it == table.end()) {
      continue;
    }
    ++matched;
    sum += join_fold(join_combine(item, it->second));
  }
  const double seconds = watch.seconds();
  return JoinResult{in.items.size(), seconds, cpu.seconds(), matched, sum};
}
