// Scenario "keyed_window": a job like the Yahoo Streaming Benchmark. Generated
// ad events (user, page, ad, event type, event time) -> keep the views -> join
// ad -> campaign (100 campaigns x 10 ads) -> count per campaign in tumbling
// 10 s event-time windows. Every competitor uses the types and functions
// below, so they all do the same work and must produce the same windows.
#pragma once

#include <algorithm>
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/bench.hpp"

/// What a user did with an ad.
enum class AdEventType : std::uint8_t { view, click, purchase };

/// One generated ad event; times are system-clock nanoseconds since the epoch.
struct AdEvent {
  std::uint64_t user_id;
  std::uint64_t page_id;
  std::uint64_t ad_id;
  std::int64_t event_time_ns;
  AdEventType type;
};

/// A row of the join table: which campaign an ad belongs to.
struct AdCampaign {
  std::uint64_t ad_id;
  std::uint32_t campaign_id;
};

/// The join's output: a view of a campaign at a time.
struct CampaignView {
  std::uint32_t campaign_id;
  std::int64_t event_time_ns;
};

/// One closed window: views of a campaign in [window_start_ns, window_start_ns + window size).
struct CampaignWindow {
  std::uint32_t campaign_id;
  std::int64_t window_start_ns;
  std::uint64_t views;
  friend auto operator<=>(const CampaignWindow&, const CampaignWindow&) = default;
};

inline constexpr std::uint32_t keyed_window_campaigns = 100;
inline constexpr std::uint32_t keyed_window_ads_per_campaign = 10;
inline constexpr std::int64_t keyed_window_size_ns = 10'000'000'000;  // 10 s
/// Event time advances by this much per event: 100'000 events per second of event time, so 20M
/// events span 200 s (20 windows per campaign).
inline constexpr std::int64_t keyed_window_event_spacing_ns = 10'000;
/// Each event's time is earlier than its place in the sequence by up to this much (uniform), and the
/// watermark trails the highest time seen by the same bound, so no event is late.
inline constexpr std::int64_t keyed_window_out_of_orderness_ns = 5'000'000;  // 5 ms
/// 2023-11-14T22:13:20Z: the event time of the first event.
inline constexpr std::int64_t keyed_window_start_ns = 1'700'000'000'000'000'000;

[[nodiscard]] inline bool keyed_window_is_view(const AdEvent& e) noexcept {
  return e.type == AdEventType::view;
}

/// The start of the tumbling window holding time `t` (floor, also for negative times).
[[nodiscard]] inline std::int64_t keyed_window_start_of(std::int64_t t) noexcept {
  std::int64_t q = t / keyed_window_size_ns;
  if (t % keyed_window_size_ns < 0) --q;
  return q * keyed_window_size_ns;
}

/// The generated input: events and the join table, made before any timing.
struct KeyedWindowInput {
  std::vector<AdEvent> events;
  std::vector<AdCampaign> ads;
};

/// `n` events with a fixed seed: ads uniform over the table, event types uniform over view, click
/// and purchase (a third are views), users and pages random.
[[nodiscard]] inline KeyedWindowInput make_keyed_window_input(std::uint64_t n) {
  weir::bench::SplitMix64 rng{0x5eed'0001};
  KeyedWindowInput in;
  in.ads.reserve(std::size_t{keyed_window_campaigns} * keyed_window_ads_per_campaign);
  for (std::uint32_t c = 0; c < keyed_window_campaigns; ++c) {
    for (std::uint32_t a = 0; a < keyed_window_ads_per_campaign; ++a) {
      in.ads.push_back(AdCampaign{rng.next(), c});  // random 64-bit ids: distinct with this seed
    }
  }
  in.events.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    AdEvent e{};
    e.user_id = rng.next();
    e.page_id = rng.next();
    e.ad_id = in.ads[rng.below(in.ads.size())].ad_id;
    e.type = static_cast<AdEventType>(rng.below(3));
    e.event_time_ns = keyed_window_start_ns + static_cast<std::int64_t>(i) * keyed_window_event_spacing_ns -
                      static_cast<std::int64_t>(rng.below(keyed_window_out_of_orderness_ns));
    in.events.push_back(e);
  }
  return in;
}

/// Outcome of one run: input events, wall seconds of the run, and every window it emitted (any order).
struct KeyedWindowResult {
  std::uint64_t items;
  double seconds;
  double cpu_seconds;  ///< CPU time of the process during the run (every thread)
  std::vector<CampaignWindow> windows;
  int passes = 1;  ///< runs over the input summed in items, seconds and cpu_seconds
};

/// One loop on the calling thread: filter, hash-map join, hash-map counts per open window.
KeyedWindowResult run_hand_loop(const KeyedWindowInput& in);
/// The Weir pipeline (keyed_window/weir.cpp) with `batch_size` as PipelineOptions::batch_size: 0 (the
/// default, which lets the engine size batches and slices) is variant "weir", 1024 is "weir_batch_1024".
KeyedWindowResult run_weir(const KeyedWindowInput& in, std::size_t batch_size);
