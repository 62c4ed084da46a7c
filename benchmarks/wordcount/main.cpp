// bench_wordcount: N words from a Zipf vocabulary, in lines, split and
// counted per word by each competitor in turn. The input is generated once,
// before any timing. hand_loop runs first in every round and gives the
// reference counts; any competitor whose counts differ stops the run with
// exit status 1.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bench.hpp"
#include "wordcount/wordcount.hpp"

namespace {

constexpr std::string_view scenario = "wordcount";

struct Variant {
  std::string name;
  std::function<WordcountResult(const WordcountInput&)> run;
};

/// A wrapping hash of the sorted counts (word bytes and count).
std::uint64_t checksum(const WordCounts& counts) {
  std::uint64_t h = 0;
  for (const auto& [word, count] : counts) {
    for (const char c : word) {
      h = h * 0x100000001B3ULL + static_cast<unsigned char>(c);
    }
    h = h * 0x100000001B3ULL + count;
  }
  return h;
}

std::uint64_t total(const WordCounts& counts) {
  std::uint64_t n = 0;
  for (const auto& [word, count] : counts) {
    n += count;
  }
  return n;
}

WordcountResult run_measured(const Variant& variant, const WordcountInput& input, std::int64_t& peak_rss) {
  weir::bench::release_free_memory();
  weir::bench::reset_peak_rss();
  WordcountResult result = variant.run(input);
  peak_rss = weir::bench::peak_rss_bytes();
  std::sort(result.counts.begin(), result.counts.end());
  return result;
}

void print_result(const std::string& variant, const WordcountResult& result, std::int64_t peak_rss) {
  weir::bench::JsonLine line{scenario, variant};
  line.add_throughput(result.items, result.seconds);
  if (result.cpu_seconds >= 0.0) {
    line.add("cpu_seconds", result.cpu_seconds);
  }
  if (peak_rss >= 0) {
    line.add("peak_rss_bytes", peak_rss);
  }
  line.add("distinct_words", static_cast<std::uint64_t>(result.counts.size()));
  line.add("checksum", checksum(result.counts));
  line.print();
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const std::uint64_t n = options.quick ? 5'000'000 : 50'000'000;

  const std::vector<Variant> competitors = {
#if defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR
    {"weir", run_weir},
#endif
  };

  weir::bench::log(scenario, "N=" + std::to_string(n) + " words" + (options.quick ? " (quick)" : "") +
                                 ", repeat=" + std::to_string(options.repeat));
#if !(defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR)
  weir::bench::log(scenario, "built without wordcount/weir.cpp: weir variant skipped");
#endif
  const weir::bench::Stopwatch generating;
  const WordcountInput input = make_wordcount_input(n);
  weir::bench::log(scenario, "input generated in " + std::to_string(generating.seconds()) +
                                 " s: " + std::to_string(input.lines.size()) + " lines, " +
                                 std::to_string(input.text.size()) + " bytes");

  WordCounts expected;  // hand_loop's counts from the first round, sorted

  for (int round = 0; round < options.repeat; ++round) {
    const Variant hand_loop{"hand_loop", run_hand_loop};
    std::int64_t peak_rss = -1;
    const WordcountResult reference = run_measured(hand_loop, input, peak_rss);
    if (round == 0) {
      expected = reference.counts;
      if (total(expected) != n) {
        weir::bench::log(scenario, "error: hand_loop counted " + std::to_string(total(expected)) +
                                       " words, the input has " + std::to_string(n));
        return EXIT_FAILURE;
      }
      weir::bench::log(scenario, std::to_string(expected.size()) + " distinct words");
    } else if (reference.counts != expected) {
      weir::bench::log(scenario, "error: hand_loop counts changed between rounds");
      return EXIT_FAILURE;
    }
    print_result(hand_loop.name, reference, peak_rss);

    for (const Variant& variant : competitors) {
      if (!options.selected(variant.name)) {
        continue;
      }
      weir::bench::log(scenario, "running " + variant.name);
      const WordcountResult result = run_measured(variant, input, peak_rss);
      if (result.items != n || result.counts != expected) {
        weir::bench::log(
            scenario, "error: variant " + variant.name + " returned items=" + std::to_string(result.items) +
                          " distinct=" + std::to_string(result.counts.size()) + " total=" +
                          std::to_string(total(result.counts)) + ", expected items=" + std::to_string(n) +
                          " distinct=" + std::to_string(expected.size()) +
                          " total=" + std::to_string(total(expected)) + " (hand_loop)");
        return EXIT_FAILURE;
      }
      print_result(variant.name, result, peak_rss);
    }
  }
  return EXIT_SUCCESS;
}
