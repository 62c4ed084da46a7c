// keyed_window competitors "weir" and "weir_batch_1024": filter -> lookup join
// -> key_by campaign -> tumbling event-time window count, with one window
// partition per core. The filter and the join run on the source's thread, so
// the windows see the events in order.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>
#include <weir/weir.hpp>

#include "keyed_window/keyed_window.hpp"

KeyedWindowResult run_weir(const KeyedWindowInput& in, std::size_t batch_size) {
  const int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::vector<weir::WindowResult<std::uint32_t, std::uint64_t>> out;
  weir::PipelineOptions options;
  options.batch_size = batch_size;
  weir::Pipeline p("keyed_window", options);
  p.source(in.events)  // viewed: the events are copied into batches
      .filter([](const AdEvent& e) { return keyed_window_is_view(e); })
      .name("views")
      .join_by_key(
          weir::table{in.ads}, [](const AdEvent& e) { return e.ad_id; },
          [](const AdCampaign& a) { return a.ad_id; },
          [](const AdEvent& e, const AdCampaign& a) {
            return CampaignView{a.campaign_id, e.event_time_ns};
          })
      .name("campaign")
      .key_by([](const CampaignView& v) { return v.campaign_id; })
      .window(weir::tumbling{std::chrono::nanoseconds{keyed_window_size_ns}})
      .event_time(
          [](const CampaignView& v) {
            return std::chrono::system_clock::time_point{
                std::chrono::duration_cast<std::chrono::system_clock::duration>(
                    std::chrono::nanoseconds{v.event_time_ns})};
          },
          std::chrono::nanoseconds{keyed_window_out_of_orderness_ns})
      .count()
      .name("views_per_campaign")
      .parallelism(cores)
      .sink(weir::collect_into(out));

  const weir::bench::Stopwatch watch;
  const weir::bench::CpuStopwatch cpu;
  (void)p.run();
  const double seconds = watch.seconds();
  const double cpu_seconds = cpu.seconds();

  KeyedWindowResult result{in.events.size(), seconds, cpu_seconds, {}};
  result.windows.reserve(out.size());
  for (const auto& w : out) {
    result.windows.push_back(CampaignWindow{
        w.key, std::chrono::duration_cast<std::chrono::nanoseconds>(w.start.time_since_epoch()).count(),
        w.value});
  }
  return result;
}
