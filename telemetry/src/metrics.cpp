#include "weir/telemetry/metrics.hpp"

#include <array>
#include <atomic>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <weir/observable.hpp>

namespace weir::telemetry {

std::string_view to_string(MapReducePhase p) noexcept {
  switch (p) {
    case MapReducePhase::map:
      return "map";
    case MapReducePhase::shuffle:
      return "shuffle";
    case MapReducePhase::reduce:
      return "reduce";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------------
// MultiCollector

MultiCollector::MultiCollector(std::vector<std::shared_ptr<MetricsCollector>> collectors)
    : collectors_(std::move(collectors)) {
  for (const auto& c : collectors_) {
    if (!c) throw std::invalid_argument("MultiCollector: a collector cannot be null");
  }
}

void MultiCollector::on_attach(Observable& a0) {
  for (const auto& c : collectors_) c->on_attach(a0);
}

void MultiCollector::on_pipeline_started(const RunInfo& a0) {
  for (const auto& c : collectors_) c->on_pipeline_started(a0);
}

void MultiCollector::on_pipeline_completed(const RunInfo& a0, const RunReport& a1) {
  for (const auto& c : collectors_) c->on_pipeline_completed(a0, a1);
}

void MultiCollector::on_stage_started(const StageInfo& a0) {
  for (const auto& c : collectors_) c->on_stage_started(a0);
}

void MultiCollector::on_stage_completed(const StageInfo& a0, const StageReport& a1) {
  for (const auto& c : collectors_) c->on_stage_completed(a0, a1);
}

void MultiCollector::on_stage_error(const StageInfo& a0, std::string_view a1, std::string_view a2) {
  for (const auto& c : collectors_) c->on_stage_error(a0, a1, a2);
}

void MultiCollector::on_worker_concurrency(const StageInfo& a0, int a1) {
  for (const auto& c : collectors_) c->on_worker_concurrency(a0, a1);
}

void MultiCollector::on_batch(const StageInfo& a0, const BatchStats& a1) {
  for (const auto& c : collectors_) c->on_batch(a0, a1);
}

void MultiCollector::on_item_processed(const StageInfo& a0, std::chrono::nanoseconds a1) {
  for (const auto& c : collectors_) c->on_item_processed(a0, a1);
}

void MultiCollector::on_items_skipped(const StageInfo& a0, std::uint64_t a1) {
  for (const auto& c : collectors_) c->on_items_skipped(a0, a1);
}

void MultiCollector::on_error_sent(const StageInfo& a0, std::string_view a1, std::string_view a2) {
  for (const auto& c : collectors_) c->on_error_sent(a0, a1, a2);
}

void MultiCollector::on_backpressure(const StageInfo& a0, std::chrono::nanoseconds a1) {
  for (const auto& c : collectors_) c->on_backpressure(a0, a1);
}

void MultiCollector::on_retry_attempt(const StageInfo& a0, int a1, std::chrono::nanoseconds a2,
                                      std::string_view a3) {
  for (const auto& c : collectors_) c->on_retry_attempt(a0, a1, a2, a3);
}

void MultiCollector::on_dead_letter_sent(const StageInfo& a0, std::string_view a1, int a2) {
  for (const auto& c : collectors_) c->on_dead_letter_sent(a0, a1, a2);
}

void MultiCollector::on_dead_letter_handler_error(const StageInfo& a0, std::string_view a1,
                                                  std::string_view a2) {
  for (const auto& c : collectors_) c->on_dead_letter_handler_error(a0, a1, a2);
}

void MultiCollector::on_buffer_batch(const StageInfo& a0, std::size_t a1) {
  for (const auto& c : collectors_) c->on_buffer_batch(a0, a1);
}

void MultiCollector::on_fan_out_started(const StageInfo& a0, std::size_t a1, std::size_t a2) {
  for (const auto& c : collectors_) c->on_fan_out_started(a0, a1, a2);
}

void MultiCollector::on_fan_out_completed(const StageInfo& a0, std::size_t a1, std::chrono::nanoseconds a2) {
  for (const auto& c : collectors_) c->on_fan_out_completed(a0, a1, a2);
}

void MultiCollector::on_fan_in_started(const StageInfo& a0, std::size_t a1, std::size_t a2) {
  for (const auto& c : collectors_) c->on_fan_in_started(a0, a1, a2);
}

void MultiCollector::on_fan_in_completed(const StageInfo& a0, std::size_t a1, std::chrono::nanoseconds a2) {
  for (const auto& c : collectors_) c->on_fan_in_completed(a0, a1, a2);
}

void MultiCollector::on_window_emitted(const StageInfo& a0, std::size_t a1) {
  for (const auto& c : collectors_) c->on_window_emitted(a0, a1);
}

void MultiCollector::on_late_item(const StageInfo& a0, std::uint64_t a1) {
  for (const auto& c : collectors_) c->on_late_item(a0, a1);
}

void MultiCollector::on_watermark(const StageInfo& a0, std::chrono::nanoseconds a1) {
  for (const auto& c : collectors_) c->on_watermark(a0, a1);
}

void MultiCollector::on_windows_open(const StageInfo& a0, std::size_t a1) {
  for (const auto& c : collectors_) c->on_windows_open(a0, a1);
}

void MultiCollector::on_timeout(const StageInfo& a0, std::chrono::nanoseconds a1,
                                std::chrono::nanoseconds a2) {
  for (const auto& c : collectors_) c->on_timeout(a0, a1, a2);
}

void MultiCollector::on_circuit_state_changed(const StageInfo& a0, weir::CircuitState a1,
                                              weir::CircuitState a2) {
  for (const auto& c : collectors_) c->on_circuit_state_changed(a0, a1, a2);
}

void MultiCollector::on_circuit_rejected(const StageInfo& a0, std::uint64_t a1) {
  for (const auto& c : collectors_) c->on_circuit_rejected(a0, a1);
}

void MultiCollector::on_circuit_failure(const StageInfo& a0, std::uint64_t a1) {
  for (const auto& c : collectors_) c->on_circuit_failure(a0, a1);
}

void MultiCollector::on_circuit_success(const StageInfo& a0, std::uint64_t a1) {
  for (const auto& c : collectors_) c->on_circuit_success(a0, a1);
}

void MultiCollector::on_routes_selected(const StageInfo& a0, std::size_t a1) {
  for (const auto& c : collectors_) c->on_routes_selected(a0, a1);
}

void MultiCollector::on_no_route(const StageInfo& a0, std::uint64_t a1) {
  for (const auto& c : collectors_) c->on_no_route(a0, a1);
}

void MultiCollector::on_route_processed(const StageInfo& a0, std::string_view a1, std::size_t a2,
                                        std::chrono::nanoseconds a3) {
  for (const auto& c : collectors_) c->on_route_processed(a0, a1, a2, a3);
}

void MultiCollector::on_map_items(const StageInfo& a0, std::uint64_t a1, std::uint64_t a2) {
  for (const auto& c : collectors_) c->on_map_items(a0, a1, a2);
}

void MultiCollector::on_map_concurrency(const StageInfo& a0, int a1) {
  for (const auto& c : collectors_) c->on_map_concurrency(a0, a1);
}

void MultiCollector::on_mapreduce_phase(const StageInfo& a0, MapReducePhase a1, std::chrono::nanoseconds a2) {
  for (const auto& c : collectors_) c->on_mapreduce_phase(a0, a1, a2);
}

void MultiCollector::on_mapreduce_keys(const StageInfo& a0, std::size_t a1) {
  for (const auto& c : collectors_) c->on_mapreduce_keys(a0, a1);
}

void MultiCollector::on_mapreduce_key_group(const StageInfo& a0, std::size_t a1) {
  for (const auto& c : collectors_) c->on_mapreduce_key_group(a0, a1);
}

void MultiCollector::on_filter_items(const StageInfo& a0, std::uint64_t a1, std::uint64_t a2,
                                     std::uint64_t a3) {
  for (const auto& c : collectors_) c->on_filter_items(a0, a1, a2, a3);
}

void MultiCollector::on_join_group_created(const StageInfo& a0) {
  for (const auto& c : collectors_) c->on_join_group_created(a0);
}

void MultiCollector::on_join_group_completed(const StageInfo& a0, std::size_t a1) {
  for (const auto& c : collectors_) c->on_join_group_completed(a0, a1);
}

void MultiCollector::on_custom_metric(const StageInfo& a0, std::string_view a1, double a2, CustomKind a3) {
  for (const auto& c : collectors_) c->on_custom_metric(a0, a1, a2, a3);
}

void MultiCollector::on_custom_event(const StageInfo& a0, std::string_view a1, std::string_view a2) {
  for (const auto& c : collectors_) c->on_custom_event(a0, a1, a2);
}

// ---------------------------------------------------------------------------------------------------
// MetricsInterceptor

namespace {

/// Ids of metrics interceptors, never reused: a thread's sample counts belong to one interceptor.
std::atomic<std::uint64_t> next_interceptor_id{1};

/// The batch counts per stage index that one interceptor keeps on the calling thread. A thread keeps
/// the counts of the last few interceptors it served (usually one or two: one per attached
/// collector); an interceptor whose counts were evicted starts again at zero, which samples its next
/// batch. A scan of at most `slots` ids, once per batch.
std::vector<std::uint32_t>& sample_counts(std::uint64_t id) {
  constexpr std::size_t slots = 8;
  struct Counts {
    std::uint64_t id = 0;
    std::vector<std::uint32_t> seen;
  };
  thread_local std::array<Counts, slots> counts;
  thread_local std::size_t next_victim = 0;
  for (auto& c : counts) {
    if (c.id == id) return c.seen;
  }
  auto& c = counts[next_victim];
  next_victim = (next_victim + 1) % slots;
  c.id = id;
  c.seen.clear();
  return c.seen;
}

}  // namespace

MetricsInterceptor::MetricsInterceptor(std::shared_ptr<MetricsCollector> collector, MetricsOptions options)
    : collector_(std::move(collector)),
      options_(options),
      id_(next_interceptor_id.fetch_add(1, std::memory_order_relaxed)) {
  if (!collector_) throw std::invalid_argument("MetricsInterceptor: the collector cannot be null");
}

void MetricsInterceptor::on_run_start(const RunInfo& info) {
  collector_->on_pipeline_started(info);
}

void MetricsInterceptor::on_run_stop(const RunInfo& info, const RunReport& report) {
  collector_->on_pipeline_completed(info, report);
}

void MetricsInterceptor::on_stage_start(const StageInfo& s) {
  collector_->on_stage_started(s);
  collector_->on_worker_concurrency(s, s.parallelism);
  if (s.kind == "map") collector_->on_map_concurrency(s, s.parallelism);
}

void MetricsInterceptor::on_stage_stop(const StageInfo& s, const StageReport& r) {
  collector_->on_stage_completed(s, r);
}

void MetricsInterceptor::after_batch(const StageInfo& s, const BatchStats& b) {
  auto& c = *collector_;
  c.on_batch(s, b);
  if (b.skipped != 0) c.on_items_skipped(s, b.skipped);
  if (s.kind == "filter") {
    c.on_filter_items(s, b.items_out, b.filtered, b.errors);
  } else if (s.kind == "map") {
    c.on_map_items(s, b.items_out, b.errors);
  } else if (s.kind == "fan_out") {
    c.on_fan_out_completed(s, b.items_in, b.duration);
  } else if (s.kind == "merge") {
    c.on_fan_in_completed(s, b.items_in, b.duration);
  }
  // Item durations are sampled: the first batch of a stage on a thread, then one in every N, counted
  // by this interceptor alone (other interceptors on the same stage keep counts of their own).
  if (options_.item_sample_every != 0 && b.items_in != 0) {
    auto& seen = sample_counts(id_);
    const auto idx = static_cast<std::size_t>(s.index);
    if (seen.size() <= idx) seen.resize(idx + 1, 0);
    if (seen[idx]++ % options_.item_sample_every == 0) {
      c.on_item_processed(s, b.duration / static_cast<std::int64_t>(b.items_in));
    }
  }
}

void MetricsInterceptor::on_event(const StageInfo& s, const Event& e) {
  auto& c = *collector_;
  std::visit(
      [&](const auto& ev) {
        using E = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<E, events::RetryAttempt>) {
          c.on_retry_attempt(s, ev.attempt, ev.backoff, ev.error_type);
        } else if constexpr (std::is_same_v<E, events::ItemFailed>) {
          c.on_error_sent(s, ev.error_type, ev.action);
          if (ev.action == "fail") c.on_stage_error(s, ev.error_type, ev.message);
        } else if constexpr (std::is_same_v<E, events::DeadLetterSent>) {
          c.on_dead_letter_sent(s, ev.error_type, ev.attempts);
        } else if constexpr (std::is_same_v<E, events::DeadLetterHandlerError>) {
          c.on_dead_letter_handler_error(s, ev.error_type, ev.message);
        } else if constexpr (std::is_same_v<E, events::Backpressure>) {
          c.on_backpressure(s, ev.blocked);
        } else if constexpr (std::is_same_v<E, events::FanOut>) {
          c.on_fan_out_started(s, ev.branches, ev.items);
        } else if constexpr (std::is_same_v<E, events::FanIn>) {
          c.on_fan_in_started(s, ev.inputs, ev.items);
        } else if constexpr (std::is_same_v<E, events::WindowEmitted>) {
          c.on_window_emitted(s, static_cast<std::size_t>(ev.items));
        } else if constexpr (std::is_same_v<E, events::LateItems>) {
          c.on_late_item(s, ev.count);
        } else if constexpr (std::is_same_v<E, events::WatermarkAdvanced>) {
          // Lag against the wall clock: how far event time trails now (per batch, never per item).
          c.on_watermark(s, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now() - ev.watermark));
        } else if constexpr (std::is_same_v<E, events::WindowsOpen>) {
          c.on_windows_open(s, ev.count);
        } else if constexpr (std::is_same_v<E, events::RouteSelected>) {
          c.on_routes_selected(s, 1);
          c.on_route_processed(s, ev.route, ev.items, std::chrono::nanoseconds{0});
        } else if constexpr (std::is_same_v<E, events::RouteProcessed>) {
          c.on_route_processed(s, ev.route, 0, ev.duration);
        } else if constexpr (std::is_same_v<E, events::NoRoute>) {
          c.on_no_route(s, ev.items);
        } else if constexpr (std::is_same_v<E, events::BufferFlushed>) {
          c.on_buffer_batch(s, ev.size);
        } else if constexpr (std::is_same_v<E, events::MapReducePhase>) {
          const auto phase = ev.phase == "map"       ? MapReducePhase::map
                             : ev.phase == "shuffle" ? MapReducePhase::shuffle
                                                     : MapReducePhase::reduce;
          c.on_mapreduce_phase(s, phase, ev.duration);
          if (phase == MapReducePhase::reduce) c.on_mapreduce_keys(s, ev.keys);
        } else if constexpr (std::is_same_v<E, events::KeyGroupSizes>) {
          // Once per reduce partition at the end of a run: one observation per key, at the low end of
          // its log2 bucket.
          for (std::size_t b = 0; b < ev.log2_counts.size(); ++b) {
            for (std::uint64_t k = 0; k < ev.log2_counts[b]; ++k)
              c.on_mapreduce_key_group(s, std::size_t{1} << b);
          }
        } else if constexpr (std::is_same_v<E, events::JoinGroupCreated>) {
          for (std::size_t g = 0; g < ev.groups; ++g) c.on_join_group_created(s);
        } else if constexpr (std::is_same_v<E, events::JoinCompleted>) {
          c.on_join_group_completed(s, ev.items);
        } else if constexpr (std::is_same_v<E, events::TimeoutOccurred>) {
          c.on_timeout(s, ev.configured, ev.actual);
        } else if constexpr (std::is_same_v<E, events::CircuitStateChanged>) {
          c.on_circuit_state_changed(s, ev.from, ev.to);
        } else if constexpr (std::is_same_v<E, events::CircuitRejected>) {
          c.on_circuit_rejected(s, ev.count);
        } else if constexpr (std::is_same_v<E, events::CircuitFailure>) {
          c.on_circuit_failure(s, ev.count);
        } else if constexpr (std::is_same_v<E, events::CircuitSuccess>) {
          c.on_circuit_success(s, ev.count);
        } else if constexpr (std::is_same_v<E, events::CustomMetric>) {
          c.on_custom_metric(s, ev.name, ev.value,
                             ev.kind == CustomMetricKind::gauge ? CustomKind::gauge : CustomKind::counter);
        } else if constexpr (std::is_same_v<E, events::CustomEvent>) {
          c.on_custom_event(s, ev.name, ev.detail);
        }
        // Events this adapter does not know yet are ignored, so new operators compile before they
        // are mapped here.
      },
      e);
}

// ---------------------------------------------------------------------------------------------------
// attach

std::shared_ptr<MetricsInterceptor> attach(Observable& pipeline, std::shared_ptr<MetricsCollector> collector,
                                           MetricsOptions options) {
  if (!collector) throw std::invalid_argument("attach: the collector cannot be null");
#if defined(WEIR_TELEMETRY) && WEIR_TELEMETRY
  auto interceptor = std::make_shared<MetricsInterceptor>(collector, options);
  pipeline.intercept(interceptor, options.priority);
  collector->on_attach(pipeline);
  return interceptor;
#else
  (void)options;
  collector->on_attach(pipeline);
  return nullptr;
#endif
}

}  // namespace weir::telemetry
