// keyed_window competitor "hand_loop": one loop on one thread. The join table
// is a std::unordered_map built before the clock starts (as Weir indexes its
// table when the pipeline is built); open windows are a std::map by start,
// each a std::unordered_map of counts per campaign; a window is emitted when
// the watermark (highest time seen less the out-of-orderness bound) passes
// its end, and the rest at the end of the input.
#include <cstdint>
#include <limits>
#include <map>
#include <unordered_map>

#include "common/bench.hpp"
#include "keyed_window/keyed_window.hpp"

KeyedWindowResult run_hand_loop(const KeyedWindowInput& in) {
  std::unordered_map<std::uint64_t, std::uint32_t> campaign_of;
  campaign_of.reserve(in.ads.size());
  for (const AdCampaign& a : in.ads) {
    campaign_of.emplace(a.ad_id, a.campaign_id);
  }

  KeyedWindowResult result{in.events.size(), 0.0, 0.0, {}};
  const weir::bench::Stopwatch watch;
  const weir::bench::CpuStopwatch cpu;
  using Counts = std::unordered_map<std::uint32_t, std::uint64_t>;
  std::map<std::int64_t, Counts> open;
  std::int64_t seen = std::numeric_limits<std::int64_t>::min() / 4;
  std::int64_t current_start = std::numeric_limits<std::int64_t>::min();
  Counts* current = nullptr;  // the window of the previous event, usually this one's too
  std::uint64_t late = 0;

  auto emit_up_to = [&](std::int64_t watermark) {
    while (!open.empty() && open.begin()->first + keyed_window_size_ns <= watermark) {
      const auto it = open.begin();
      for (const auto& [campaign, views] : it->second) {
        result.windows.push_back(CampaignWindow{campaign, it->first, views});
      }
      if (current == &it->second) {
        current = nullptr;
      }
      open.erase(it);
    }
  };

  for (const AdEvent& e : in.events) {
    if (!keyed_window_is_view(e)) {
      continue;
    }
    const auto ad = campaign_of.find(e.ad_id);
    if (ad == campaign_of.end()) {
      continue;
    }
    const std::int64_t t = e.event_time_ns;
    const std::int64_t start = keyed_window_start_of(t);
    if (t > seen) {
      seen = t;
      emit_up_to(seen - keyed_window_out_of_orderness_ns);
    }
    if (start + keyed_window_size_ns <= seen - keyed_window_out_of_orderness_ns) {
      ++late;  // never with the generated input
      continue;
    }
    if (current == nullptr || current_start != start) {
      current = &open[start];
      current_start = start;
    }
    ++(*current)[ad->second];
  }
  emit_up_to(std::numeric_limits<std::int64_t>::max());
  result.seconds = watch.seconds();
  result.cpu_seconds = cpu.seconds();
  weir::bench::do_not_optimize(late);
  return result;
}
