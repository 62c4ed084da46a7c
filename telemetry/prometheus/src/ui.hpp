#pragma once
/// \file The live page's server side: the per-stage history ring, the /ui/state and /ui/history JSON
/// and the page's files compiled into the library. Internal to weir::telemetry_prometheus.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <weir/snapshot.hpp>

#include "weir/telemetry/prometheus.hpp"

struct mg_connection;

namespace weir::telemetry::detail {

/// One of the page's files, compiled in (ui_assets.cpp is generated from telemetry/prometheus/ui by
/// embed_ui.cmake). A plain value over static storage.
struct UiAsset {
  std::string_view path;  ///< the URL path, e.g. "/ui/app.js"
  std::string_view type;  ///< its Content-Type
  std::string_view body;
};
/// Every compiled-in asset.
[[nodiscard]] const std::vector<UiAsset>& ui_assets();

/// The Content-Security-Policy sent with every page response: the page loads its own files only, and
/// runs no inline script or style.
inline constexpr std::string_view ui_csp = "default-src 'self'";

/// One stage's figures at one sample: the counters so far and the gauges at that moment.
struct StageSample {
  double items_in = 0;
  double items_out = 0;
  double errors = 0;
  double busy_seconds = 0;
  double blocked_seconds = 0;
  double queue_depth = 0;
};

/// One sample of a pipeline: when (seconds on the sampler's steady clock) and its stages in plan order.
struct PipelineSample {
  double at = 0;
  std::vector<StageSample> stages;
};

/// The last samples of one pipeline's stages, a bounded ring (the oldest goes first once it holds
/// `capacity`), plus the latest snapshot and event-fed gauges. A new run (another run id) starts it
/// afresh. Not thread-safe: UiService guards it.
class StageHistory {
 public:
  explicit StageHistory(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  /// Adds the snapshot taken at `at` (steady seconds); `windows_open` and `watermark_lag` are the
  /// collector's latest gauges by stage.
  void record(Snapshot snap, std::map<std::string, double> windows_open,
              std::map<std::string, double> watermark_lag, double at);
  /// The samples held, oldest first.
  [[nodiscard]] std::vector<const PipelineSample*> samples() const;
  /// The pipeline as /ui/state shows it: run state, plan (stages, fused nodes, edges) and per-stage
  /// figures, with rates over the last two samples.
  [[nodiscard]] nlohmann::json state(std::string_view pipeline) const;
  /// One stage's series over the samples held, as /ui/history shows it (null when there is no such
  /// stage): per-second rates and fractions between neighbouring samples, gauges as sampled.
  [[nodiscard]] nlohmann::json history(std::string_view stage) const;

 private:
  std::size_t capacity_;
  std::vector<PipelineSample> ring_;
  std::size_t next_ = 0;  // where the next sample goes once the ring is full
  std::string run_id_;
  Snapshot last_;
  std::map<std::string, double> windows_open_;
  std::map<std::string, double> watermark_lag_;
};

/// What UiService answers to a request.
struct UiReply {
  int status = 200;
  std::string_view type;
  std::string body;
};

/// The page's server side for one TelemetryServer: a thread that samples every watched pipeline once a
/// `period` into its StageHistory, and the answers to the page's paths. Thread-safe.
class UiService {
 public:
  UiService(std::shared_ptr<PrometheusCollector> collector, std::chrono::milliseconds period,
            std::size_t capacity);
  ~UiService();
  UiService(const UiService&) = delete;
  UiService& operator=(const UiService&) = delete;

  /// Whether `uri` is one of the page's paths ("/", "/ui", "/ui/...").
  [[nodiscard]] static bool handles(std::string_view uri) noexcept;
  /// The answer to a GET of `uri` with the raw `query` string.
  [[nodiscard]] UiReply respond(std::string_view uri, std::string_view query) const;
  /// Samples every watched pipeline now (the thread does it every period).
  void sample();
  /// Stops the sampling thread; idempotent.
  void stop() noexcept;

 private:
  std::shared_ptr<PrometheusCollector> collector_;
  std::chrono::milliseconds period_;
  std::size_t capacity_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  mutable std::mutex mutex_;  // guards histories_ and stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, StageHistory> histories_;  // by pipeline name
  std::vector<std::string> order_;                 // pipeline names in the order first seen
  std::thread sampler_;
};

/// Writes `reply` to a civetweb connection with the page's security headers; returns its status.
int send_ui(mg_connection* conn, const UiReply& reply, bool head);

/// The value of `name` in a URL query string ("a=1&b=x%20y"), decoded; nullopt when absent.
[[nodiscard]] std::optional<std::string> query_value(std::string_view query, std::string_view name);

}  // namespace weir::telemetry::detail
