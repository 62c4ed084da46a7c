// PrometheusCollector: the family table, the collector's state, its callbacks and the exposition.
// One file of about 590 lines on purpose: the table, the state and the rendering share private
// types (FamilyInfo, Hist, EventFamily, State) that would otherwise need a header of their own.
#include "weir/telemetry/prometheus.hpp"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <weir/observable.hpp>

#include "weir/telemetry/sdk/span_processor.hpp"  // SpanStats

#ifndef WEIR_VERSION
#define WEIR_VERSION "unknown"
#endif

namespace weir::telemetry {

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

const std::vector<FamilyInfo> families = {
    {"weir_pipeline_runs_total", "counter", "pipeline,status", "Runs of the pipeline that ended, by status."},
    {"weir_pipeline_running", "gauge", "pipeline", "1 while the pipeline runs, else 0."},
    {"weir_pipeline_duration_seconds", "gauge", "pipeline",
     "Wall time of the pipeline's run so far (its whole run once it ended)."},
    {"weir_stage_items_in_total", "counter", "pipeline,stage", "Items that entered the stage."},
    {"weir_stage_items_out_total", "counter", "pipeline,stage",
     "Items the stage passed on (for sinks: delivered)."},
    {"weir_stage_errors_total", "counter", "pipeline,stage,error_type",
     "Items whose call failed for good (after retries), by exception type."},
    {"weir_stage_items_skipped_total", "counter", "pipeline,stage",
     "Failed items dropped by the skip policy."},
    {"weir_stage_batches_total", "counter", "pipeline,stage", "Batches the stage processed."},
    {"weir_stage_batch_duration_seconds", "histogram", "pipeline,stage",
     "Time the stage spent on one batch."},
    {"weir_stage_item_duration_seconds", "histogram", "pipeline,stage",
     "Mean item time of sampled batches (one batch in MetricsOptions::item_sample_every)."},
    {"weir_stage_busy_seconds_total", "counter", "pipeline,stage", "Time spent processing batches."},
    {"weir_stage_backpressure_seconds_total", "counter", "pipeline,stage",
     "Time spent waiting for room downstream."},
    {"weir_stage_concurrency", "gauge", "pipeline,stage", "Threads that may run the stage at once."},
    {"weir_stage_queue_depth", "gauge", "pipeline,stage",
     "Items handed to the stage that it has not finished yet (queued or in progress)."},
    {"weir_stage_retries_total", "counter", "pipeline,stage", "Extra calls made by the retry policy."},
    {"weir_stage_timeouts_total", "counter", "pipeline,stage", "Calls that exceeded the stage's timeout."},
    {"weir_stage_dead_letters_total", "counter", "pipeline,stage,error_type",
     "Failed items delivered to the dead-letter sink, by exception type."},
    {"weir_dead_letter_handler_errors_total", "counter", "pipeline,stage",
     "Failed items whose dead-letter sink failed as well."},
    {"weir_filter_items_passed_total", "counter", "pipeline,stage", "Items a filter kept."},
    {"weir_filter_items_dropped_total", "counter", "pipeline,stage", "Items a filter's predicate dropped."},
    {"weir_filter_predicate_errors_total", "counter", "pipeline,stage",
     "Items whose filter predicate failed."},
    {"weir_fanout_items_total", "counter", "pipeline,stage",
     "Items a fan-out passed to all of its branches."},
    {"weir_fanin_items_total", "counter", "pipeline,stage", "Items a merge received from all of its inputs."},
    {"weir_buffer_batches_total", "counter", "pipeline,stage", "Batches a buffer stage released."},
    {"weir_buffer_batch_size", "histogram", "pipeline,stage", "Items per batch a buffer stage released."},
    {"weir_window_emitted_total", "counter", "pipeline,stage", "Windows emitted."},
    {"weir_window_items", "histogram", "pipeline,stage", "Items per emitted window."},
    {"weir_window_late_items_total", "counter", "pipeline,stage",
     "Items that arrived after their window closed."},
    {"weir_window_open", "gauge", "pipeline,stage", "Windows currently open."},
    {"weir_watermark_lag_seconds", "gauge", "pipeline,stage",
     "How far the watermark trails the newest event time seen."},
    {"weir_router_routes_selected", "histogram", "pipeline,stage", "Routes selected per routed item."},
    {"weir_router_no_route_total", "counter", "pipeline,stage", "Items that matched no route."},
    {"weir_router_route_items_total", "counter", "pipeline,stage,route", "Items processed per route."},
    {"weir_router_route_duration_seconds", "histogram", "pipeline,stage,route",
     "Time a route took per batch of items."},
    {"weir_circuit_state", "gauge", "pipeline,stage",
     "Circuit breaker state: 0 closed, 1 half-open, 2 open."},
    {"weir_circuit_state_changes_total", "counter", "pipeline,stage,from,to",
     "Circuit breaker state changes, by states."},
    {"weir_circuit_rejected_total", "counter", "pipeline,stage", "Items rejected by an open circuit."},
    {"weir_circuit_failures_total", "counter", "pipeline,stage", "Failures recorded by a circuit breaker."},
    {"weir_circuit_successes_total", "counter", "pipeline,stage", "Successes recorded by a circuit breaker."},
    {"weir_mapreduce_phase_duration_seconds", "histogram", "pipeline,stage,phase",
     "Duration of map-reduce phases (map, shuffle, reduce)."},
    {"weir_mapreduce_keys", "gauge", "pipeline,stage", "Distinct keys in the last map-reduce round."},
    {"weir_mapreduce_key_group_size", "histogram", "pipeline,stage", "Items per key group in map-reduce."},
    {"weir_join_groups_created_total", "counter", "pipeline,stage", "Join groups created."},
    {"weir_join_group_size", "histogram", "pipeline,stage", "Items per completed join group."},
    {"weir_join_completed_total", "counter", "pipeline,stage", "Join groups completed."},
    {"weir_spans_exported_total", "counter", "", "Spans the tracers' exporters delivered."},
    {"weir_spans_dropped_total", "counter", "reason",
     "Spans dropped: the export queue was full (queue_full) or the export failed for good (export_failed)."},
    {"weir_traceparent_rejected_total", "counter", "",
     "Malformed traceparent headers that extract() ignored (a new trace started instead)."},
    {"weir_build_info", "gauge", "version", "Weir build information; the value is 1."},
    {"process_cpu_seconds_total", "counter", "", "User and system CPU time of the process."},
    {"process_resident_memory_bytes", "gauge", "", "Resident memory of the process."},
    {"process_start_time_seconds", "gauge", "", "Start time of the process since the Unix epoch."},
};

const std::vector<double> seconds_bounds = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10};
const std::vector<double> size_bounds = {1, 2, 4, 8, 16, 64, 256, 1024, 4096, 16384};

/// A histogram observed on slow paths (events), under the collector's mutex.
struct Hist {
  const std::vector<double>* bounds = &seconds_bounds;
  std::vector<std::uint64_t> counts;  // per bound, not cumulative
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double v) {
    if (counts.empty()) counts.assign(bounds->size(), 0);
    for (std::size_t i = 0; i < bounds->size(); ++i) {
      if (v <= (*bounds)[i]) {
        ++counts[i];
        break;
      }
    }
    ++count;
    sum += v;
  }
};

/// Event-fed series of one family.
struct EventFamily {
  std::map<Labels, double> values;
  std::map<Labels, Hist> hists;
};

ClientMetric metric(const Labels& labels) {
  ClientMetric m;
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  return m;
}

ClientMetric histogram_metric(const Labels& labels, const Hist& h) {
  auto m = metric(labels);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bounds->size(); ++i) {
    cumulative += h.counts.empty() ? 0 : h.counts[i];
    m.histogram.bucket.push_back({cumulative, (*h.bounds)[i]});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum;
  return m;
}

MetricType type_of(const FamilyInfo& f) {
  const std::string t = f.type;
  return t == "counter" ? MetricType::Counter : t == "gauge" ? MetricType::Gauge : MetricType::Histogram;
}

/// The value set on a ClientMetric of the given type.
void set_value(ClientMetric& m, MetricType t, double v) {
  if (t == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
}

/// Keeps [a-z0-9_] and maps the rest to '_' so user metric names are valid and cannot escape the prefix.
std::string sanitize(std::string_view name) {
  std::string out;
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
    out += ok ? ch : (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : '_';
  }
  return out.empty() ? std::string("unnamed") : out;
}

constexpr std::size_t max_user_families = 256;

/// process_* figures from /proc.
struct ProcessFigures {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double start_time_seconds = 0;
};

ProcessFigures read_process() {
  ProcessFigures p;
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (!std::getline(stat, line)) return p;
  // Fields after the command name (which may contain spaces) start at state (field 3).
  const auto close = line.rfind(')');
  if (close == std::string::npos) return p;
  std::istringstream in(line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; in >> x;) f.push_back(x);
  // f[0] is field 3; utime = 14, stime = 15, starttime = 22, rss = 24.
  if (f.size() < 22) return p;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  p.resident_bytes = std::stod(f[21]) * page;
  std::ifstream proc_stat("/proc/stat");
  for (std::string key; proc_stat >> key;) {
    if (key == "btime") {
      double btime = 0;
      proc_stat >> btime;
      p.start_time_seconds = btime + std::stod(f[19]) / ticks;
      break;
    }
    std::getline(proc_stat, line);
  }
  return p;
}

}  // namespace

const std::vector<FamilyInfo>& prometheus_families() {
  return families;
}

double queue_depth(const Snapshot& snap, std::size_t i) {
  const auto& stages = snap.report.stages;
  if (i >= snap.inputs.size() || i >= stages.size() || snap.inputs[i].empty()) return 0;
  // Unknown, so 0, where a stage's input is not its producers' whole output: behind a route or a
  // window (stages with several outputs), and in front of a map-reduce (it counts pairs).
  if (stages[i].kind == "map_reduce") return 0;
  double handed = 0;
  for (int in : snap.inputs[i]) {
    const auto& up = stages.at(static_cast<std::size_t>(in));
    if (up.kind == "route" || up.kind == "window") return 0;
    handed += static_cast<double>(up.items_out);
  }
  return std::max(0.0, handed - static_cast<double>(stages[i].items_in));
}

struct PrometheusCollector::State {
  PrometheusOptions options;
  mutable std::mutex mutex;
  std::vector<std::shared_ptr<const LiveView>> views;
  std::vector<std::shared_ptr<const Tracer>> tracers;
  std::map<std::string, EventFamily> events;  // by family name
  std::map<std::string, std::pair<MetricType, EventFamily>> user;

  void add(const char* family, Labels labels, double v) {
    const std::lock_guard lock(mutex);
    events[family].values[std::move(labels)] += v;
  }
  void set(const char* family, Labels labels, double v) {
    const std::lock_guard lock(mutex);
    events[family].values[std::move(labels)] = v;
  }
  void observe(const char* family, Labels labels, double v, const std::vector<double>& bounds) {
    const std::lock_guard lock(mutex);
    auto& h = events[family].hists[std::move(labels)];
    h.bounds = &bounds;
    h.observe(v);
  }
};

namespace {
Labels stage_labels(const StageInfo& s) {
  return {{"pipeline", s.pipeline}, {"stage", s.name}};
}
Labels stage_labels(const StageInfo& s, const char* key, std::string_view value) {
  return {{"pipeline", s.pipeline}, {"stage", s.name}, {key, std::string(value)}};
}
double secs(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}
}  // namespace

PrometheusCollector::PrometheusCollector(PrometheusOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
}

PrometheusCollector::~PrometheusCollector() = default;

void PrometheusCollector::watch(std::shared_ptr<const LiveView> view) {
  if (!view) throw std::invalid_argument("PrometheusCollector::watch: the view cannot be null");
  const std::lock_guard lock(state_->mutex);
  // Every status at 0 from the start, so that increase() and rate() see a pipeline's first failed run.
  for (const auto status : {RunStatus::completed, RunStatus::failed, RunStatus::cancelled}) {
    state_->events["weir_pipeline_runs_total"]
        .values[{{"pipeline", view->pipeline()}, {"status", std::string(to_string(status))}}] += 0;
  }
  for (auto& v : state_->views) {
    if (v->pipeline() == view->pipeline()) {
      v = std::move(view);
      return;
    }
  }
  state_->views.push_back(std::move(view));
}

void PrometheusCollector::watch(std::shared_ptr<const Tracer> tracer) {
  if (!tracer) throw std::invalid_argument("PrometheusCollector::watch: the tracer cannot be null");
  const std::lock_guard lock(state_->mutex);
  if (std::find(state_->tracers.begin(), state_->tracers.end(), tracer) == state_->tracers.end())
    state_->tracers.push_back(std::move(tracer));
}

std::vector<std::shared_ptr<const LiveView>> PrometheusCollector::pipelines() const {
  const std::lock_guard lock(state_->mutex);
  return state_->views;
}

std::vector<StageHealth> PrometheusCollector::stage_health(const Snapshot& snap) {
  std::vector<StageHealth> out;
  for (const auto& s : snap.report.stages) {
    StageHealth h{s.name, "idle", {}};
    if (s.circuit) h.circuit = std::string(weir::to_string(*s.circuit));
    const bool open = s.circuit == weir::CircuitState::open;
    bool failed_here = false;
    for (const auto& e : snap.report.errors) failed_here = failed_here || e.stage == s.name;
    if (snap.phase == RunPhase::running) {
      h.state = open ? "circuit_open" : s.errors > 0 ? "failing" : "running";
    } else if (snap.phase == RunPhase::finished) {
      h.state = snap.report.status == RunStatus::failed && failed_here ? "failed" : "done";
    }
    out.push_back(std::move(h));
  }
  return out;
}

std::map<std::string, double> PrometheusCollector::stage_values(std::string_view family,
                                                                std::string_view pipeline) const {
  std::map<std::string, double> out;
  const std::lock_guard lock(state_->mutex);
  const auto fam = state_->events.find(std::string(family));
  if (fam == state_->events.end()) return out;
  for (const auto& [labels, v] : fam->second.values) {
    const std::string* stage = nullptr;
    bool ours = false;
    for (const auto& [k, value] : labels) {
      if (k == "pipeline") ours = value == pipeline;
      if (k == "stage") stage = &value;
    }
    if (ours && stage != nullptr) out[*stage] += v;
  }
  return out;
}

void PrometheusCollector::on_attach(Observable& pipeline) {
  watch(pipeline.live());
}

void PrometheusCollector::on_pipeline_completed(const RunInfo& r, const RunReport& rep) {
  state_->add("weir_pipeline_runs_total",
              {{"pipeline", r.pipeline}, {"status", std::string(to_string(rep.status))}}, 1);
}
void PrometheusCollector::on_item_processed(const StageInfo& s, std::chrono::nanoseconds d) {
  state_->observe("weir_stage_item_duration_seconds", stage_labels(s), secs(d), seconds_bounds);
}
void PrometheusCollector::on_dead_letter_sent(const StageInfo& s, std::string_view type, int) {
  state_->add("weir_stage_dead_letters_total", stage_labels(s, "error_type", type), 1);
}
void PrometheusCollector::on_buffer_batch(const StageInfo& s, std::size_t items) {
  state_->add("weir_buffer_batches_total", stage_labels(s), 1);
  state_->observe("weir_buffer_batch_size", stage_labels(s), static_cast<double>(items), size_bounds);
}
void PrometheusCollector::on_window_emitted(const StageInfo& s, std::size_t items) {
  state_->add("weir_window_emitted_total", stage_labels(s), 1);
  state_->observe("weir_window_items", stage_labels(s), static_cast<double>(items), size_bounds);
}
void PrometheusCollector::on_late_item(const StageInfo& s, std::uint64_t n) {
  state_->add("weir_window_late_items_total", stage_labels(s), static_cast<double>(n));
}
void PrometheusCollector::on_watermark(const StageInfo& s, std::chrono::nanoseconds lag) {
  state_->set("weir_watermark_lag_seconds", stage_labels(s), secs(lag));
}
void PrometheusCollector::on_windows_open(const StageInfo& s, std::size_t n) {
  state_->set("weir_window_open", stage_labels(s), static_cast<double>(n));
}
void PrometheusCollector::on_timeout(const StageInfo& s, std::chrono::nanoseconds, std::chrono::nanoseconds) {
  state_->add("weir_stage_timeouts_total", stage_labels(s), 1);
}
void PrometheusCollector::on_circuit_state_changed(const StageInfo& s, weir::CircuitState from,
                                                   weir::CircuitState to) {
  state_->set("weir_circuit_state", stage_labels(s), static_cast<double>(circuit_state_value(to)));
  state_->add("weir_circuit_state_changes_total",
              {{"pipeline", s.pipeline},
               {"stage", s.name},
               {"from", std::string(to_string(from))},
               {"to", std::string(to_string(to))}},
              1);
}
void PrometheusCollector::on_circuit_rejected(const StageInfo& s, std::uint64_t n) {
  state_->add("weir_circuit_rejected_total", stage_labels(s), static_cast<double>(n));
}
void PrometheusCollector::on_circuit_failure(const StageInfo& s, std::uint64_t n) {
  state_->add("weir_circuit_failures_total", stage_labels(s), static_cast<double>(n));
}
void PrometheusCollector::on_circuit_success(const StageInfo& s, std::uint64_t n) {
  state_->add("weir_circuit_successes_total", stage_labels(s), static_cast<double>(n));
}
void PrometheusCollector::on_routes_selected(const StageInfo& s, std::size_t n) {
  state_->observe("weir_router_routes_selected", stage_labels(s), static_cast<double>(n), size_bounds);
}
void PrometheusCollector::on_no_route(const StageInfo& s, std::uint64_t n) {
  state_->add("weir_router_no_route_total", stage_labels(s), static_cast<double>(n));
}
void PrometheusCollector::on_route_processed(const StageInfo& s, std::string_view route, std::size_t items,
                                             std::chrono::nanoseconds d) {
  state_->add("weir_router_route_items_total", stage_labels(s, "route", route), static_cast<double>(items));
  if (d.count() > 0) {  // zero: not measured, which a histogram of zeros would hide
    state_->observe("weir_router_route_duration_seconds", stage_labels(s, "route", route), secs(d),
                    seconds_bounds);
  }
}
void PrometheusCollector::on_mapreduce_phase(const StageInfo& s, MapReducePhase p,
                                             std::chrono::nanoseconds d) {
  state_->observe("weir_mapreduce_phase_duration_seconds", stage_labels(s, "phase", to_string(p)), secs(d),
                  seconds_bounds);
}
void PrometheusCollector::on_mapreduce_keys(const StageInfo& s, std::size_t n) {
  state_->set("weir_mapreduce_keys", stage_labels(s), static_cast<double>(n));
}
void PrometheusCollector::on_mapreduce_key_group(const StageInfo& s, std::size_t n) {
  state_->observe("weir_mapreduce_key_group_size", stage_labels(s), static_cast<double>(n), size_bounds);
}
void PrometheusCollector::on_join_group_created(const StageInfo& s) {
  state_->add("weir_join_groups_created_total", stage_labels(s), 1);
}
void PrometheusCollector::on_join_group_completed(const StageInfo& s, std::size_t n) {
  state_->add("weir_join_completed_total", stage_labels(s), 1);
  state_->observe("weir_join_group_size", stage_labels(s), static_cast<double>(n), size_bounds);
}
void PrometheusCollector::on_custom_metric(const StageInfo& s, std::string_view name, double v,
                                           CustomKind kind) {
  std::string family = "weir_user_" + sanitize(name);
  if (kind == CustomKind::counter && !family.ends_with("_total")) family += "_total";
  const std::lock_guard lock(state_->mutex);
  auto it = state_->user.find(family);
  if (it == state_->user.end()) {
    if (state_->user.size() >= max_user_families) return;  // bounded, whatever user code does
    it = state_->user
             .emplace(family, std::pair{kind == CustomKind::counter ? MetricType::Counter : MetricType::Gauge,
                                        EventFamily{}})
             .first;
  }
  auto& value = it->second.second.values[stage_labels(s)];
  value = kind == CustomKind::counter ? value + v : v;
}

std::vector<MetricFamily> PrometheusCollector::Collect() const {
  std::vector<std::shared_ptr<const LiveView>> views;
  std::vector<std::shared_ptr<const Tracer>> tracers;
  std::map<std::string, EventFamily> events;
  std::map<std::string, std::pair<MetricType, EventFamily>> user;
  {
    const std::lock_guard lock(state_->mutex);
    views = state_->views;
    tracers = state_->tracers;
    events = state_->events;
    user = state_->user;
  }
  std::vector<Snapshot> snaps;
  snaps.reserve(views.size());
  for (const auto& v : views) snaps.push_back(v->snapshot());  // outside the collector's lock

  std::map<std::string, MetricFamily> out;
  for (const auto& f : families) out[f.name] = MetricFamily{f.name, f.help, type_of(f), {}};
  auto put = [&](const char* family, const Labels& labels, double v) {
    auto& fam = out.at(family);
    auto m = metric(labels);
    set_value(m, fam.type, v);
    fam.metric.push_back(std::move(m));
  };

  for (const auto& snap : snaps) {
    const auto& r = snap.report;
    put("weir_pipeline_running", {{"pipeline", r.pipeline}}, snap.phase == RunPhase::running ? 1 : 0);
    if (snap.phase == RunPhase::idle) continue;
    put("weir_pipeline_duration_seconds", {{"pipeline", r.pipeline}}, secs(r.wall));
    for (std::size_t i = 0; i < r.stages.size(); ++i) {
      const auto& s = r.stages[i];
      const Labels l{{"pipeline", r.pipeline}, {"stage", s.name}};
      put("weir_stage_items_in_total", l, static_cast<double>(s.items_in));
      put("weir_stage_items_out_total", l, static_cast<double>(s.items_out));
      put("weir_stage_items_skipped_total", l, static_cast<double>(s.skipped));
      put("weir_stage_batches_total", l, static_cast<double>(s.batches));
      put("weir_stage_busy_seconds_total", l, secs(s.busy));
      put("weir_stage_backpressure_seconds_total", l, secs(s.blocked));
      put("weir_stage_concurrency", l, s.parallelism);
      put("weir_stage_retries_total", l, static_cast<double>(s.retries));
      put("weir_dead_letter_handler_errors_total", l, static_cast<double>(s.dead_letter_failures));
      put("weir_stage_queue_depth", l, queue_depth(snap, i));
      if (s.kind == "filter") {
        put("weir_filter_items_passed_total", l, static_cast<double>(s.items_out));
        put("weir_filter_items_dropped_total", l, static_cast<double>(s.filtered));
        put("weir_filter_predicate_errors_total", l, static_cast<double>(s.errors));
      } else if (s.kind == "fan_out") {
        put("weir_fanout_items_total", l, static_cast<double>(s.items_in));
      } else if (s.kind == "merge") {
        put("weir_fanin_items_total", l, static_cast<double>(s.items_in));
      }
      // Batch durations from the engine's log2 histogram: bucket b holds batches shorter than 2^b ns.
      if (i < snap.batch_histogram.size()) {
        const auto& h = snap.batch_histogram[i];
        auto m = metric(l);
        std::uint64_t cumulative = 0;
        std::size_t b = 0;
        for (int edge = 10; edge <= 34; edge += 2) {
          for (; b <= static_cast<std::size_t>(edge); ++b) cumulative += h[b];
          m.histogram.bucket.push_back({cumulative, std::ldexp(1e-9, edge)});
        }
        for (; b < h.size(); ++b) cumulative += h[b];
        m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
        m.histogram.sample_count = cumulative;
        m.histogram.sample_sum = secs(s.busy);
        out.at("weir_stage_batch_duration_seconds").metric.push_back(std::move(m));
      }
    }
    for (const auto& e : r.errors) {
      if (e.type.starts_with("dead_letter_handler: "))
        continue;  // counted by weir_dead_letter_handler_errors_total
      put("weir_stage_errors_total", {{"pipeline", r.pipeline}, {"stage", e.stage}, {"error_type", e.type}},
          static_cast<double>(e.count));
    }
  }

  for (const auto& [name, fam] : events) {
    auto& target = out.at(name);
    for (const auto& [labels, v] : fam.values) {
      auto m = metric(labels);
      set_value(m, target.type, v);
      target.metric.push_back(std::move(m));
    }
    for (const auto& [labels, h] : fam.hists) target.metric.push_back(histogram_metric(labels, h));
  }

  // Tracing: the watched tracers' processors, summed (read from their counters when scraped).
  if (!tracers.empty()) {
    SpanStats spans;
    for (const auto& t : tracers) {
      const auto st = t->stats();
      spans.exported += st.exported;
      spans.dropped_queue_full += st.dropped_queue_full;
      spans.dropped_export_failed += st.dropped_export_failed;
    }
    put("weir_spans_exported_total", {}, static_cast<double>(spans.exported));
    put("weir_spans_dropped_total", {{"reason", "queue_full"}},
        static_cast<double>(spans.dropped_queue_full));
    put("weir_spans_dropped_total", {{"reason", "export_failed"}},
        static_cast<double>(spans.dropped_export_failed));
  }
  put("weir_traceparent_rejected_total", {}, static_cast<double>(propagation_stats().rejected));
  put("weir_build_info", {{"version", WEIR_VERSION}}, 1);
  if (state_->options.process_metrics) {
    const auto p = read_process();
    put("process_cpu_seconds_total", {}, p.cpu_seconds);
    put("process_resident_memory_bytes", {}, p.resident_bytes);
    put("process_start_time_seconds", {}, p.start_time_seconds);
  }

  // Families in the documented order; those without series are left out.
  std::vector<MetricFamily> result;
  for (const auto& f : families) {
    auto& fam = out.at(f.name);
    if (!fam.metric.empty()) result.push_back(std::move(fam));
  }
  for (auto& [name, fam] : user) {
    MetricFamily mf{name, "User metric recorded by pipeline code.", fam.first, {}};
    for (const auto& [labels, v] : fam.second.values) {
      auto m = metric(labels);
      set_value(m, fam.first, v);
      mf.metric.push_back(std::move(m));
    }
    result.push_back(std::move(mf));
  }
  if (state_->options.registry) {
    auto more = state_->options.registry->Collect();
    result.insert(result.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return result;
}

std::string PrometheusCollector::render() const {
  std::ostringstream os;
  prometheus::TextSerializer{}.Serialize(os, Collect());
  return os.str();
}

}  // namespace weir::telemetry
