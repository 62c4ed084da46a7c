// Variant "hand_loop": the same job as one plain loop on one thread, with the example's loading
// (each record of the file parsed once, airports and states as ids), replay, airport table and
// writers, and hash maps for the aggregates. It closes no window early (the input is in date order,
// so nothing is late) and is the ceiling the pipeline is measured against.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "etl.hpp"
#include "flights/flights.hpp"

namespace {

double cpu_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct WindowKey {
  std::int64_t start;
  std::uint32_t state;
  bool operator==(const WindowKey&) const = default;
};
struct WindowKeyHash {
  std::size_t operator()(const WindowKey& k) const noexcept {
    return std::size_t{k.state} ^ (static_cast<std::size_t>(k.start) * 0x9e3779b97f4a7c15ULL);
  }
};

}  // namespace

FlightsResult run_hand_loop(const FlightsWorkload& w) {
  flights::EtlOptions options;
  options.flights_path = w.flights;
  options.airports_path = w.airports;
  options.repeat = w.repeat;
  const double cpu0 = cpu_now();
  const auto t0 = std::chrono::steady_clock::now();
  const auto input = flights::load_input(options);
  const std::int64_t window = options.window_seconds;

  std::unordered_map<WindowKey, flights::StateStats, WindowKeyHash> windows;
  std::unordered_map<flights::StatePair, flights::RouteStats> routes;
  flights::EtlResult result;
  const std::size_t known = input.airport_states.size();
  for (std::uint64_t i = 0; i < input.total(); ++i) {
    try {
      const flights::FlightRecord f = input.replayed(i);
      if (f.origin >= known || f.destination >= known) {
        result.dead_letters.add(f.index, "airport not in the table");
        continue;
      }
      const std::uint32_t origin = input.airport_states[f.origin];
      const std::uint32_t destination = input.airport_states[f.destination];
      std::int64_t start = f.time / window * window;
      if (start > f.time) start -= window;
      auto& s = windows[WindowKey{start, origin}];
      ++s.flights;
      s.delayed += f.delay >= flights::delayed_minutes ? 1 : 0;
      s.delay_sum += f.delay;
      s.max_delay = std::max(s.max_delay, f.delay);
      s.total_distance += f.distance;
      auto& r = routes[flights::StatePair{origin, destination}];
      ++r.flights;
      r.delay_sum += f.delay;
    } catch (const flights::RecordError& e) {
      result.dead_letters.add(static_cast<std::int64_t>(i), e.what());
    }
  }
  for (auto& [key, stats] : windows)
    result.windows.push_back({key.start, key.start + window, key.state, stats});
  for (auto& [key, stats] : routes) result.routes.push_back({key, stats});
  // State ids sort as the states do.
  std::sort(result.windows.begin(), result.windows.end(), [](const auto& a, const auto& b) {
    return std::tie(a.start, a.state) < std::tie(b.start, b.state);
  });
  std::sort(result.routes.begin(), result.routes.end(), [](const auto& a, const auto& b) {
    return std::tie(b.stats.flights, a.states.origin_state, a.states.destination_state) <
           std::tie(a.stats.flights, b.states.origin_state, b.states.destination_state);
  });
  flights::write_outputs(input, result, w.out_dir);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uint64_t windowed = 0;
  for (const auto& x : result.windows) windowed += x.stats.flights;
  return {input.total(), s, cpu_now() - cpu0, windowed + 1000 * result.dead_letters.size()};
}
