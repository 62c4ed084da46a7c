#include "ui.hpp"

#include <civetweb.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace weir::telemetry::detail {

namespace {

double secs(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

double as_double(std::uint64_t n) {
  return static_cast<double>(n);
}

/// Per second between two counter readings `dt` seconds apart (0 when the clock did not move or the
/// counter went back, as after a restart).
double per_second(double before, double after, double dt) {
  return dt > 0 && after >= before ? (after - before) / dt : 0.0;
}

/// The share of `dt` seconds times `threads` spent, between two readings of a time counter; 0..1.
double fraction(double before, double after, double dt, int threads) {
  const double capacity = dt * std::max(threads, 1);
  return capacity > 0 && after >= before ? std::clamp((after - before) / capacity, 0.0, 1.0) : 0.0;
}

/// Rounds to 4 significant digits or so, to keep the JSON short.
double tidy(double v) {
  if (v == 0) return 0;
  const double scale = v >= 1000 ? 1 : v >= 1 ? 1000 : 1e6;
  return static_cast<double>(static_cast<std::int64_t>(v * scale + (v > 0 ? 0.5 : -0.5))) / scale;
}

StageSample sample_of(const StageReport& s, double queue) {
  return {as_double(s.items_in), as_double(s.items_out), as_double(s.errors),
          secs(s.busy),          secs(s.blocked),        queue};
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (url_decode(pair.substr(0, eq)) != name) continue;
    return eq == std::string_view::npos ? std::string{} : url_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

void StageHistory::record(Snapshot snap, std::map<std::string, double> windows_open,
                          std::map<std::string, double> watermark_lag, double at) {
  if (snap.report.run_id != run_id_) {  // a new run: its counters start from zero
    ring_.clear();
    next_ = 0;
    run_id_ = snap.report.run_id;
  }
  PipelineSample sample{at, {}};
  sample.stages.reserve(snap.report.stages.size());
  for (std::size_t i = 0; i < snap.report.stages.size(); ++i)
    sample.stages.push_back(sample_of(snap.report.stages[i], queue_depth(snap, i)));
  if (ring_.size() < capacity_) {
    ring_.push_back(std::move(sample));
  } else {
    ring_[next_] = std::move(sample);
    next_ = (next_ + 1) % capacity_;
  }
  last_ = std::move(snap);
  windows_open_ = std::move(windows_open);
  watermark_lag_ = std::move(watermark_lag);
}

std::vector<const PipelineSample*> StageHistory::samples() const {
  std::vector<const PipelineSample*> out;
  out.reserve(ring_.size());
  for (std::size_t k = 0; k < ring_.size(); ++k) out.push_back(&ring_[(next_ + k) % ring_.size()]);
  return out;
}

nlohmann::json StageHistory::state(std::string_view pipeline) const {
  const auto& r = last_.report;
  const auto held = samples();
  const PipelineSample* now = held.empty() ? nullptr : held.back();
  const PipelineSample* before = held.size() < 2 ? nullptr : held[held.size() - 2];
  const double dt = now != nullptr && before != nullptr ? now->at - before->at : 0.0;

  auto stages = nlohmann::json::array();
  auto edges = nlohmann::json::array();
  for (std::size_t i = 0; i < r.stages.size(); ++i) {
    const auto& s = r.stages[i];
    const bool both =
        now != nullptr && before != nullptr && i < now->stages.size() && i < before->stages.size();
    const StageSample a = both ? before->stages[i] : StageSample{};
    const StageSample b = both ? now->stages[i] : StageSample{};
    nlohmann::json stage{
        {"name", s.name},
        {"kind", s.kind},
        {"node", s.node},
        {"parallelism", s.parallelism},
        {"items_in", s.items_in},
        {"items_out", s.items_out},
        {"in_per_second", tidy(per_second(a.items_in, b.items_in, dt))},
        {"out_per_second", tidy(per_second(a.items_out, b.items_out, dt))},
        {"busy", tidy(fraction(a.busy_seconds, b.busy_seconds, dt, s.parallelism))},
        {"backpressure", tidy(fraction(a.blocked_seconds, b.blocked_seconds, dt, s.parallelism))},
        {"queue_depth", queue_depth(last_, i)},
        {"errors", s.errors},
        {"errors_per_second", tidy(per_second(a.errors, b.errors, dt))},
        {"dead_letters", s.dead_lettered},
        {"skipped", s.skipped},
        {"filtered", s.filtered},
        {"retries", s.retries},
        {"timeouts", s.timeouts},
        {"late", s.late},
        {"batch_p99_seconds", tidy(secs(s.batch_p99))}};
    if (s.circuit) stage["circuit"] = std::string(weir::to_string(*s.circuit));
    if (const auto w = windows_open_.find(s.name); w != windows_open_.end())
      stage["windows_open"] = w->second;
    if (const auto w = watermark_lag_.find(s.name); w != watermark_lag_.end())
      stage["watermark_lag_seconds"] = tidy(w->second);
    auto summaries = nlohmann::json::array();
    for (const auto& e : r.errors) {
      if (e.stage != s.name) continue;
      summaries.push_back(
          {{"type", e.type}, {"message", e.message}, {"count", e.count}, {"retryable", e.retryable}});
    }
    stage["error_summaries"] = std::move(summaries);
    stages.push_back(std::move(stage));
    if (i < last_.inputs.size()) {
      for (int in : last_.inputs[i]) {
        if (in >= 0 && static_cast<std::size_t>(in) < r.stages.size())
          edges.push_back({{"from", r.stages[static_cast<std::size_t>(in)].name}, {"to", s.name}});
      }
    }
  }
  std::uint64_t errors = 0;
  for (const auto& e : r.errors) errors += e.count;
  return {{"name", std::string(pipeline)},
          {"run_id", r.run_id},
          {"phase", std::string(weir::to_string(last_.phase))},
          {"status",
           last_.phase == RunPhase::idle ? std::string("idle") : std::string(weir::to_string(r.status))},
          {"uptime_seconds", tidy(secs(r.wall))},
          {"errors", errors},
          {"samples", held.size()},
          {"stages", std::move(stages)},
          {"edges", std::move(edges)}};
}

nlohmann::json StageHistory::history(std::string_view stage) const {
  const auto& stages = last_.report.stages;
  const auto it =
      std::find_if(stages.begin(), stages.end(), [&](const StageReport& s) { return s.name == stage; });
  if (it == stages.end()) return nullptr;
  const auto i = static_cast<std::size_t>(it - stages.begin());
  const int threads = it->parallelism;
  const auto held = samples();
  auto t = nlohmann::json::array();
  auto in = nlohmann::json::array();
  auto out = nlohmann::json::array();
  auto busy = nlohmann::json::array();
  auto backpressure = nlohmann::json::array();
  auto queue = nlohmann::json::array();
  auto errors = nlohmann::json::array();
  const double last_at = held.empty() ? 0.0 : held.back()->at;
  for (std::size_t k = 1; k < held.size(); ++k) {
    const auto& a = *held[k - 1];
    const auto& b = *held[k];
    if (i >= a.stages.size() || i >= b.stages.size()) continue;
    const double dt = b.at - a.at;
    const auto& x = a.stages[i];
    const auto& y = b.stages[i];
    t.push_back(tidy(b.at - last_at));
    in.push_back(tidy(per_second(x.items_in, y.items_in, dt)));
    out.push_back(tidy(per_second(x.items_out, y.items_out, dt)));
    busy.push_back(tidy(fraction(x.busy_seconds, y.busy_seconds, dt, threads)));
    backpressure.push_back(tidy(fraction(x.blocked_seconds, y.blocked_seconds, dt, threads)));
    queue.push_back(y.queue_depth);
    errors.push_back(tidy(per_second(x.errors, y.errors, dt)));
  }
  return {{"stage", std::string(stage)},     {"t", std::move(t)},
          {"in_per_second", std::move(in)},  {"out_per_second", std::move(out)},
          {"busy", std::move(busy)},         {"backpressure", std::move(backpressure)},
          {"queue_depth", std::move(queue)}, {"errors_per_second", std::move(errors)}};
}

UiService::UiService(std::shared_ptr<PrometheusCollector> collector, std::chrono::milliseconds period,
                     std::size_t capacity)
    : collector_(std::move(collector)), period_(period), capacity_(capacity) {
  if (!collector_) throw std::invalid_argument("UiService: the collector cannot be null");
  sampler_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    auto next = std::chrono::steady_clock::now();
    while (!stopping_) {
      lock.unlock();
      sample();
      lock.lock();
      next += period_;
      wake_.wait_until(lock, next, [this] { return stopping_; });
    }
  });
}

UiService::~UiService() {
  stop();
}

void UiService::stop() noexcept {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

void UiService::sample() {
  const double at = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  for (const auto& view : collector_->pipelines()) {
    // Read outside the lock, so a page's request never waits for a snapshot.
    auto snap = view->snapshot();
    auto windows = collector_->stage_values("weir_window_open", view->pipeline());
    auto lag = collector_->stage_values("weir_watermark_lag_seconds", view->pipeline());
    const std::lock_guard lock(mutex_);
    auto it = histories_.find(view->pipeline());
    if (it == histories_.end()) {
      it = histories_.emplace(view->pipeline(), StageHistory(capacity_)).first;
      order_.push_back(view->pipeline());
    }
    it->second.record(std::move(snap), std::move(windows), std::move(lag), at);
  }
}

bool UiService::handles(std::string_view uri) noexcept {
  return uri == "/" || uri == "/ui" || uri.starts_with("/ui/");
}

UiReply UiService::respond(std::string_view uri, std::string_view query) const {
  if (uri == "/" || uri == "/ui" || uri == "/ui/") uri = "/ui/index.html";
  if (uri == "/ui/state") {
    auto pipelines = nlohmann::json::array();
    {
      const std::lock_guard lock(mutex_);
      for (const auto& name : order_) pipelines.push_back(histories_.at(name).state(name));
    }
    const nlohmann::json j{{"period_seconds", std::chrono::duration<double>(period_).count()},
                           {"pipelines", std::move(pipelines)}};
    return {200, "application/json", j.dump() + "\n"};
  }
  if (uri == "/ui/history") {
    const auto pipeline = query_value(query, "pipeline");
    const auto stage = query_value(query, "stage");
    if (!pipeline || !stage) return {400, "text/plain", "pipeline and stage are required\n"};
    nlohmann::json j;
    {
      const std::lock_guard lock(mutex_);
      const auto it = histories_.find(*pipeline);
      if (it != histories_.end()) j = it->second.history(*stage);
    }
    if (j.is_null()) return {404, "text/plain", "no such pipeline or stage\n"};
    j["pipeline"] = *pipeline;
    j["period_seconds"] = std::chrono::duration<double>(period_).count();
    return {200, "application/json", j.dump() + "\n"};
  }
  for (const auto& a : ui_assets()) {
    if (a.path == uri) return {200, a.type, std::string(a.body)};
  }
  return {404, "text/plain", "not found\n"};
}

int send_ui(mg_connection* conn, const UiReply& reply, bool head) {
  const char* reason = reply.status == 200   ? "OK"
                       : reply.status == 400 ? "Bad Request"
                       : reply.status == 404 ? "Not Found"
                                             : "Error";
  mg_printf(
      conn,
      "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
      "Content-Security-Policy: %.*s\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
      "Connection: close\r\n\r\n",
      reply.status, reason, static_cast<int>(reply.type.size()), reply.type.data(), reply.body.size(),
      static_cast<int>(ui_csp.size()), ui_csp.data());
  if (!head && !reply.body.empty()) mg_write(conn, reply.body.data(), reply.body.size());
  return reply.status;
}

}  // namespace weir::telemetry::detail
