#include "weir/telemetry/stats_collector.hpp"

#include <string>

namespace weir::telemetry {

namespace {
double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}
double num(std::uint64_t v) {
  return static_cast<double>(v);
}
}  // namespace

void StatsCollector::add(const std::string& pipeline, const std::string& stage, std::string_view key,
                         double v, bool set) {
  const std::lock_guard lock(mutex_);
  auto& values = values_[{pipeline, stage}];
  auto it = values.find(key);
  if (it == values.end()) it = values.emplace(std::string(key), 0.0).first;
  it->second = set ? v : it->second + v;
}

double StatsCollector::value(std::string_view pipeline, std::string_view stage, std::string_view key) const {
  const std::lock_guard lock(mutex_);
  const auto s = values_.find(std::pair{std::string(pipeline), std::string(stage)});
  if (s == values_.end()) return 0.0;
  const auto v = s->second.find(key);
  return v == s->second.end() ? 0.0 : v->second;
}

std::map<std::string, double> StatsCollector::stage(std::string_view pipeline, std::string_view stage) const {
  const std::lock_guard lock(mutex_);
  const auto s = values_.find(std::pair{std::string(pipeline), std::string(stage)});
  if (s == values_.end()) return {};
  return {s->second.begin(), s->second.end()};
}

std::vector<std::string> StatsCollector::custom_events() const {
  const std::lock_guard lock(mutex_);
  return events_;
}

void StatsCollector::on_pipeline_started(const RunInfo& r) {
  add(r.pipeline, "", "runs_started", 1);
}
void StatsCollector::on_pipeline_completed(const RunInfo& r, const RunReport& rep) {
  add(r.pipeline, "", "runs_ended", 1);
  add(r.pipeline, "", "runs_" + std::string(to_string(rep.status)), 1);
  add(r.pipeline, "", "wall_seconds", seconds(rep.wall), true);
}
void StatsCollector::on_stage_started(const StageInfo& s) {
  add(s, "stage_started", 1);
}
void StatsCollector::on_stage_completed(const StageInfo& s, const StageReport&) {
  add(s, "stage_completed", 1);
}
void StatsCollector::on_stage_error(const StageInfo& s, std::string_view, std::string_view) {
  add(s, "stage_errors", 1);
}
void StatsCollector::on_worker_concurrency(const StageInfo& s, int n) {
  add(s, "concurrency", n, true);
}
void StatsCollector::on_batch(const StageInfo& s, const BatchStats& b) {
  const std::lock_guard lock(mutex_);
  auto& v = values_[{s.pipeline, s.name}];
  auto bump = [&v](const char* key, double x) { v[key] += x; };
  bump("batches", 1);
  bump("items_in", num(b.items_in));
  bump("items_out", num(b.items_out));
  bump("filtered", num(b.filtered));
  bump("errors", num(b.errors));
  bump("skipped", num(b.skipped));
  bump("dead_lettered", num(b.dead_lettered));
  bump("batch_seconds", seconds(b.duration));
}
void StatsCollector::on_item_processed(const StageInfo& s, std::chrono::nanoseconds d) {
  add(s, "item_samples", 1);
  add(s, "item_seconds", seconds(d));
}
void StatsCollector::on_items_skipped(const StageInfo& s, std::uint64_t n) {
  add(s, "items_skipped", num(n));
}
void StatsCollector::on_error_sent(const StageInfo& s, std::string_view, std::string_view action) {
  add(s, "errors_sent", 1);
  add(s, "errors_sent_" + std::string(action), 1);
}
void StatsCollector::on_backpressure(const StageInfo& s, std::chrono::nanoseconds d) {
  add(s, "backpressure_events", 1);
  add(s, "backpressure_seconds", seconds(d));
}
void StatsCollector::on_retry_attempt(const StageInfo& s, int, std::chrono::nanoseconds, std::string_view) {
  add(s, "retries", 1);
}
void StatsCollector::on_dead_letter_sent(const StageInfo& s, std::string_view, int) {
  add(s, "dead_letters", 1);
}
void StatsCollector::on_dead_letter_handler_error(const StageInfo& s, std::string_view, std::string_view) {
  add(s, "dead_letter_handler_errors", 1);
}
void StatsCollector::on_buffer_batch(const StageInfo& s, std::size_t items) {
  add(s, "buffer_batches", 1);
  add(s, "buffer_items", num(items));
}
void StatsCollector::on_fan_out_started(const StageInfo& s, std::size_t branches, std::size_t) {
  add(s, "fan_out_started", 1);
  add(s, "fan_out_branches", num(branches), true);
}
void StatsCollector::on_fan_out_completed(const StageInfo& s, std::size_t items, std::chrono::nanoseconds) {
  add(s, "fan_out_completed", 1);
  add(s, "fan_out_items", num(items));
}
void StatsCollector::on_fan_in_started(const StageInfo& s, std::size_t inputs, std::size_t) {
  add(s, "fan_in_started", 1);
  add(s, "fan_in_inputs", num(inputs), true);
}
void StatsCollector::on_fan_in_completed(const StageInfo& s, std::size_t items, std::chrono::nanoseconds) {
  add(s, "fan_in_completed", 1);
  add(s, "fan_in_items", num(items));
}
void StatsCollector::on_window_emitted(const StageInfo& s, std::size_t items) {
  add(s, "windows_emitted", 1);
  add(s, "window_items", num(items));
}
void StatsCollector::on_late_item(const StageInfo& s, std::uint64_t n) {
  add(s, "late_items", num(n));
}
void StatsCollector::on_watermark(const StageInfo& s, std::chrono::nanoseconds lag) {
  add(s, "watermark_lag_seconds", seconds(lag), true);
}
void StatsCollector::on_windows_open(const StageInfo& s, std::size_t n) {
  add(s, "windows_open", num(n), true);
}
void StatsCollector::on_timeout(const StageInfo& s, std::chrono::nanoseconds, std::chrono::nanoseconds) {
  add(s, "timeouts", 1);
}
void StatsCollector::on_circuit_state_changed(const StageInfo& s, weir::CircuitState, weir::CircuitState to) {
  add(s, "circuit_state_changes", 1);
  add(s, "circuit_state", static_cast<double>(circuit_state_value(to)), true);
}
void StatsCollector::on_circuit_rejected(const StageInfo& s, std::uint64_t n) {
  add(s, "circuit_rejected", num(n));
}
void StatsCollector::on_circuit_failure(const StageInfo& s, std::uint64_t n) {
  add(s, "circuit_failures", num(n));
}
void StatsCollector::on_circuit_success(const StageInfo& s, std::uint64_t n) {
  add(s, "circuit_successes", num(n));
}
void StatsCollector::on_routes_selected(const StageInfo& s, std::size_t n) {
  add(s, "routes_selected", num(n));
}
void StatsCollector::on_no_route(const StageInfo& s, std::uint64_t n) {
  add(s, "no_route", num(n));
}
void StatsCollector::on_route_processed(const StageInfo& s, std::string_view route, std::size_t items,
                                        std::chrono::nanoseconds) {
  add(s, "route_items_" + std::string(route), num(items));
}
void StatsCollector::on_map_items(const StageInfo& s, std::uint64_t processed, std::uint64_t errors) {
  add(s, "map_processed", num(processed));
  add(s, "map_errors", num(errors));
}
void StatsCollector::on_map_concurrency(const StageInfo& s, int n) {
  add(s, "map_concurrency", n, true);
}
void StatsCollector::on_mapreduce_phase(const StageInfo& s, MapReducePhase p, std::chrono::nanoseconds d) {
  add(s, "mapreduce_" + std::string(to_string(p)) + "_seconds", seconds(d));
}
void StatsCollector::on_mapreduce_keys(const StageInfo& s, std::size_t n) {
  add(s, "mapreduce_keys", num(n), true);
}
void StatsCollector::on_mapreduce_key_group(const StageInfo& s, std::size_t) {
  add(s, "mapreduce_key_groups", 1);
}
void StatsCollector::on_filter_items(const StageInfo& s, std::uint64_t passed, std::uint64_t dropped,
                                     std::uint64_t errors) {
  add(s, "filter_passed", num(passed));
  add(s, "filter_dropped", num(dropped));
  add(s, "filter_errors", num(errors));
}
void StatsCollector::on_join_group_created(const StageInfo& s) {
  add(s, "join_groups_created", 1);
}
void StatsCollector::on_join_group_completed(const StageInfo& s, std::size_t) {
  add(s, "join_groups_completed", 1);
}
void StatsCollector::on_custom_metric(const StageInfo& s, std::string_view name, double v, CustomKind kind) {
  add(s, "user_" + std::string(name), v, kind == CustomKind::gauge);
}
void StatsCollector::on_custom_event(const StageInfo& s, std::string_view name, std::string_view detail) {
  const std::lock_guard lock(mutex_);
  events_.push_back(s.name + ": " + std::string(name) + ": " + std::string(detail));
}

}  // namespace weir::telemetry
