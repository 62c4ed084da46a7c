// wordcount competitor "hand_loop": one loop on one thread splitting every
// line with Words and counting into a std::unordered_map, then the counts
// copied out as pairs (what the Weir pipeline delivers).
#include <cstdint>
#include <string_view>
#include <unordered_map>

#include "common/bench.hpp"
#include "wordcount/wordcount.hpp"

WordcountResult run_hand_loop(const WordcountInput& in) {
  const weir::bench::Stopwatch watch;
  std::unordered_map<std::string_view, std::uint64_t> counts;
  for (const std::string_view line : in.lines) {
    for (const std::string_view word : Words{line}) {
      ++counts[word];
    }
  }
  WordcountResult result{in.words, 0.0, WordCounts(counts.begin(), counts.end())};
  result.seconds = watch.seconds();
  return result;
}
