// wordcount competitor "hand_loop": one loop on one thread splitting every
// line with Words and counting into a std::unordered_map<std::string,
// std::uint64_t>. The map is looked up by string_view (a transparent hash), so
// a std::string is made only for a word seen for the first time. The counts
// are then moved out as pairs (what the Weir pipeline delivers).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/bench.hpp"
#include "wordcount/wordcount.hpp"

namespace {

struct WordHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view w) const noexcept { return std::hash<std::string_view>{}(w); }
};

}  // namespace

WordcountResult run_hand_loop(const WordcountInput& in) {
  const weir::bench::Stopwatch watch;
  const weir::bench::CpuStopwatch cpu;
  std::unordered_map<std::string, std::uint64_t, WordHash, std::equal_to<>> counts;
  for (const std::string_view line : in.lines) {
    for (const std::string_view word : Words{line}) {
      const auto it = counts.find(word);
      if (it != counts.end()) {
        ++it->second;
      } else {
        counts.emplace(word, 1);
      }
    }
  }
  WordcountResult result{in.words, 0.0, 0.0, {}};
  result.counts.reserve(counts.size());
  for (auto& node : counts) {
    result.counts.emplace_back(node.first, node.second);
  }
  result.seconds = watch.seconds();
  result.cpu_seconds = cpu.seconds();
  return result;
}
