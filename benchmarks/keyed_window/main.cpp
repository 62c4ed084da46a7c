// bench_keyed_window: N generated ad events through filter views -> join ad
// -> campaign -> count per campaign in tumbling 10 s event-time windows, for
// each competitor in turn. The input is generated once, before any timing.
// hand_loop runs first in every round and gives the reference windows; any
// competitor whose windows differ stops the run with exit status 1. Without
// --quick, a measurement repeats a competitor's run until it has lasted
// weir::bench::min_timed_seconds ("passes" in the result line).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bench.hpp"
#include "keyed_window/keyed_window.hpp"

namespace {

constexpr std::string_view scenario = "keyed_window";

struct Variant {
  std::string name;
  std::function<KeyedWindowResult(const KeyedWindowInput&)> run;
};

/// A wrapping hash of the sorted windows, printed so that runs can be compared at a glance.
std::uint64_t checksum(const std::vector<CampaignWindow>& windows) {
  std::uint64_t h = 0;
  for (const CampaignWindow& w : windows) {
    h = h * 0x100000001B3ULL + w.campaign_id;
    h = h * 0x100000001B3ULL + static_cast<std::uint64_t>(w.window_start_ns);
    h = h * 0x100000001B3ULL + w.views;
  }
  return h;
}

std::uint64_t total_views(const std::vector<CampaignWindow>& windows) {
  std::uint64_t n = 0;
  for (const CampaignWindow& w : windows) {
    n += w.views;
  }
  return n;
}

/// Runs `variant` over the input until the runs have lasted `min_seconds`, summing items, wall and
/// CPU seconds. The windows are the first run's, sorted, or those of the first later run that
/// differs (so the caller's check fails).
KeyedWindowResult run_measured(const Variant& variant, const KeyedWindowInput& input, double min_seconds,
                               std::int64_t& peak_rss) {
  weir::bench::release_free_memory();
  weir::bench::reset_peak_rss();
  KeyedWindowResult total = variant.run(input);
  std::sort(total.windows.begin(), total.windows.end());
  while (total.seconds < min_seconds) {
    KeyedWindowResult more = variant.run(input);
    std::sort(more.windows.begin(), more.windows.end());
    total.items += more.items;
    total.seconds += more.seconds;
    total.cpu_seconds += more.cpu_seconds;
    ++total.passes;
    if (more.windows != total.windows) {
      total.windows = std::move(more.windows);
      break;
    }
  }
  peak_rss = weir::bench::peak_rss_bytes();
  return total;
}

void print_result(const std::string& variant, const KeyedWindowResult& result, std::int64_t peak_rss) {
  weir::bench::JsonLine line{scenario, variant};
  line.add_throughput(result.items, result.seconds);
  if (result.cpu_seconds >= 0.0) {
    line.add("cpu_seconds", result.cpu_seconds);
  }
  line.add("passes", static_cast<std::uint64_t>(result.passes));
  if (peak_rss >= 0) {
    line.add("peak_rss_bytes", peak_rss);
  }
  line.add("windows", static_cast<std::uint64_t>(result.windows.size()));
  line.add("checksum", checksum(result.windows));
  line.print();
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const std::uint64_t n = options.quick ? 2'000'000 : 10'000'000;

  const std::vector<Variant> competitors = {
#if defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR
    {"weir", [](const KeyedWindowInput& in) { return run_weir(in, 0); }},
    {"weir_batch_1024", [](const KeyedWindowInput& in) { return run_weir(in, 1024); }},
#endif
  };

  weir::bench::log(scenario, "N=" + std::to_string(n) + (options.quick ? " (quick)" : "") +
                                 ", repeat=" + std::to_string(options.repeat));
#if !(defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR)
  weir::bench::log(scenario, "built without keyed_window/weir.cpp: weir variant skipped");
#endif
  const weir::bench::Stopwatch generating;
  const KeyedWindowInput input = make_keyed_window_input(n);
  weir::bench::log(scenario, "input generated in " + std::to_string(generating.seconds()) + " s");

  std::vector<CampaignWindow> expected;  // hand_loop's windows from the first round, sorted
  const double min_seconds = options.quick ? 0.0 : weir::bench::min_timed_seconds;

  for (int round = 0; round < options.repeat; ++round) {
    const Variant hand_loop{"hand_loop", run_hand_loop};
    std::int64_t peak_rss = -1;
    const KeyedWindowResult reference = run_measured(hand_loop, input, min_seconds, peak_rss);
    if (round == 0) {
      expected = reference.windows;
      weir::bench::log(scenario, std::to_string(expected.size()) + " windows, " +
                                     std::to_string(total_views(expected)) + " views");
    } else if (reference.windows != expected) {
      weir::bench::log(scenario, "error: hand_loop windows changed between rounds");
      return EXIT_FAILURE;
    }
    print_result(hand_loop.name, reference, peak_rss);

    for (const Variant& variant : competitors) {
      if (!options.selected(variant.name)) {
        continue;
      }
      weir::bench::log(scenario, "running " + variant.name);
      const KeyedWindowResult result = run_measured(variant, input, min_seconds, peak_rss);
      if (result.items != n * static_cast<std::uint64_t>(result.passes) || result.windows != expected) {
        weir::bench::log(
            scenario, "error: variant " + variant.name + " returned items=" + std::to_string(result.items) +
                          " windows=" + std::to_string(result.windows.size()) +
                          " views=" + std::to_string(total_views(result.windows)) + ", expected items=" +
                          std::to_string(n) + " windows=" + std::to_string(expected.size()) +
                          " views=" + std::to_string(total_views(expected)) + " (hand_loop)");
        return EXIT_FAILURE;
      }
      print_result(variant.name, result, peak_rss);
    }
  }
  return EXIT_SUCCESS;
}
