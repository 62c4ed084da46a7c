// wordcount competitor "weir": flat_map split -> map_reduce (word, 1) summed
// per word. The split, the map and the shuffle run at parallelism = cores on
// oneTBB's threads (the source thread only copies line views into batches);
// the reduce has one partition per core.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <weir/weir.hpp>

#include "wordcount/wordcount.hpp"

WordcountResult run_weir(const WordcountInput& in) {
  const int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  WordCounts out;
  weir::Pipeline p("wordcount");
  p.source(in.lines)  // viewed: the line views are copied into batches
      .flat_map([](std::string_view line) { return Words{line}; })
      .name("split")
      .parallelism(cores)  // the order of the words does not matter to a count
      .map_reduce(
          [](std::string_view word) {
            return std::pair<std::string, std::uint64_t>{word, 1};
          },
          std::plus<std::uint64_t>{})
      .name("count")
      .parallelism(cores)
      .sink(weir::collect_into(out));

  const weir::bench::Stopwatch watch;
  const weir::bench::CpuStopwatch cpu;
  (void)p.run();
  const double seconds = watch.seconds();
  return WordcountResult{in.words, seconds, cpu.seconds(), std::move(out)};
}
