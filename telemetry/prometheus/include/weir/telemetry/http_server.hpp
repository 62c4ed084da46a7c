#pragma once
/// \file TelemetryServer: the embedded HTTP endpoints (/metrics, /health, /ready, /live, /dag) and the
/// live page (/, /ui).

#include <chrono>
#include <memory>
#include <string>
#include <weir/telemetry/structured_logger.hpp>

#include "weir/telemetry/prometheus.hpp"

namespace weir::telemetry {

/// Where and how a TelemetryServer listens. A plain value.
struct ServerOptions {
  std::string address = "127.0.0.1";  ///< loopback unless told otherwise
  int port = 0;                       ///< 0 picks a free port (read it back with port())
  /// Request worker threads, all started with the server; they sleep until a connection comes. A
  /// connection holds one from its accept until it is answered, or until `request_timeout` passes,
  /// so this many idle or slow clients at once are withstood without delaying a scrape; each further
  /// `threads` of them can delay one by up to `request_timeout` (at most 1024).
  int threads = 256;
  /// How long a client may take to send its request headers, and again to take the response; a
  /// request with a body (the server reads none) holds its thread up to twice this. Also bounds how
  /// long `stop()` waits for a connection that sends nothing.
  std::chrono::milliseconds request_timeout{1000};
  /// Where the server's lines go: where it listens, and civetweb's errors and warnings.
  StructuredLogger logger = StructuredLogger(stderr_logger());
  /// Serve the live page at `/` and `/ui` (and keep each stage's last five minutes, sampled once a
  /// second, for it).
  bool page = true;
};

/// An embedded HTTP server (civetweb) for the pipelines a PrometheusCollector watches:
/// - `/metrics`: the Prometheus text format 0.0.4;
/// - `/health`: JSON `{"status": "ok" | "degraded" | "down", "pipelines": [...]}` with per-stage state
///   (503 when down);
/// - `/ready`: 200 while a watched pipeline runs, 503 before its start and after its end;
/// - `/live`: 200 while the server runs;
/// - `/dag`: JSON plan of each pipeline: nodes (fused groups), stages with items in/out, rates and
///   queue depths, and edges;
/// - `/` and `/ui` (unless ServerOptions::page is off): the live page of the pipelines, its files under
///   `/ui/`, `/ui/state` (JSON: run state and per-stage rates, busy and backpressure shares, queue
///   depths, errors, dead letters, late items, windows and circuits, from the last two samples) and
///   `/ui/history?pipeline=P&stage=S` (JSON: that stage's series over the last five minutes). A thread
///   samples every watched pipeline once a second into a ring of 300 samples per pipeline; the page's
///   requests read that ring and take no snapshot. Page responses carry
///   `Content-Security-Policy: default-src 'self'`.
/// Other paths answer 404, other methods than GET and HEAD 405. Starts listening in the constructor
/// (throws std::runtime_error with civetweb's reason, e.g. "cannot bind to 127.0.0.1:9464: 98
/// (Address already in use)", when it cannot) and logs the address through `ServerOptions::logger`;
/// `stop()` or the destructor finishes the requests in progress and closes. Thread-safe.
class TelemetryServer {
 public:
  explicit TelemetryServer(std::shared_ptr<PrometheusCollector> collector, ServerOptions options = {});
  ~TelemetryServer();
  TelemetryServer(const TelemetryServer&) = delete;
  TelemetryServer& operator=(const TelemetryServer&) = delete;

  /// The port it listens on (the chosen one when asked for port 0).
  [[nodiscard]] int port() const noexcept;
  /// `http://address:port`.
  [[nodiscard]] std::string url() const;
  /// Stops listening after the requests in progress (without waiting out civetweb's 2 s listening poll);
  /// idempotent.
  void stop() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir::telemetry
