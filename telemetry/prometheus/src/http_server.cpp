#include "weir/telemetry/http_server.hpp"

#include <civetweb.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "ui.hpp"

namespace weir::telemetry {

namespace {

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";

    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

/// A pipeline's `status` in /health, which never contradicts its `phase`: "idle" before the run;
/// while it runs "running", or "failing" / "cancelling" once a failure or a cancel has stopped its
/// sources and it drains; once finished, how it ended ("completed", "failed", "cancelled").
std::string_view run_status(const Snapshot& snap) {
  if (snap.phase == RunPhase::idle) return "idle";
  if (snap.phase == RunPhase::finished) return to_string(snap.report.status);
  switch (snap.report.status) {
    case RunStatus::failed:
      return "failing";
    case RunStatus::cancelled:
      return "cancelling";
    case RunStatus::completed:
      break;
  }
  return "running";
}

/// The server's own endpoints (the live page's paths aside).
bool endpoint(std::string_view uri) {
  return uri == "/metrics" || uri == "/health" || uri == "/ready" || uri == "/live" || uri == "/dag";
}

int reply(mg_connection* conn, int status, std::string_view type, const std::string& body, bool head) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            status, reason(status), static_cast<int>(type.size()), type.data(), body.size());
  if (!head && !body.empty()) mg_write(conn, body.data(), body.size());
  return status;
}

int reply_json(mg_connection* conn, int status, const nlohmann::json& j, bool head) {
  return reply(conn, status, "application/json", j.dump() + "\n", head);
}

double secs(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

/// Opens and closes one TCP connection to the server's port. civetweb's listening thread only sees
/// mg_stop's flag after its poll() returns, which without a connection takes up to 2 s (a constant
/// of civetweb 1.15, no option changes it); a connection ends that poll at once.
void poke(const std::string& address, int port) {
  std::string host = address;
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    ::close(fd);
    if (connected) break;
  }
  freeaddrinfo(found);
}

}  // namespace

struct TelemetryServer::Impl {
  std::shared_ptr<PrometheusCollector> collector;
  ServerOptions options;
  std::mutex mutex;  // guards ctx against a concurrent stop()
  mg_context* ctx = nullptr;
  int port = 0;
  std::atomic<bool> started{false};
  std::mutex start_mutex;
  std::string start_errors;               // civetweb's messages while starting, guarded by start_mutex
  std::unique_ptr<detail::UiService> ui;  // the live page; null without ServerOptions::page

  static int handle(mg_connection* conn, void* self) { return static_cast<Impl*>(self)->serve(conn); }
  /// civetweb's error and warning lines: while starting they become the constructor's exception,
  /// afterwards warnings through the configured logger. Never civetweb's own printing to stdout.
  static int log_message(const mg_connection* conn, const char* message) {
    const auto* ctx = conn != nullptr ? mg_get_context(conn) : nullptr;
    auto* self = ctx != nullptr ? static_cast<Impl*>(mg_get_user_data(ctx)) : nullptr;
    if (self == nullptr || message == nullptr) return 1;
    if (!self->started.load(std::memory_order_acquire)) {
      const std::lock_guard lock(self->start_mutex);
      if (!self->start_errors.empty()) self->start_errors += "; ";
      self->start_errors += message;
      return 1;
    }
    try {
      self->options.logger.log(LogLevel::warn, {}, std::string("telemetry server: ") + message);
    } catch (...) {  // a line that cannot be written is lost, never the server
    }
    return 1;
  }

  int serve(mg_connection* conn) {
    const mg_request_info* ri = mg_get_request_info(conn);
    const std::string_view method = ri->request_method != nullptr ? ri->request_method : "";
    const std::string_view uri = ri->local_uri != nullptr ? ri->local_uri : "";
    const bool head = method == "HEAD";
    // No endpoint reads a request body. A request that announces one is refused through
    // mg_send_http_error, which marks the connection for closing: civetweb then drops the socket
    // instead of holding this thread to read and discard a body that may never come (a PUT of 1 TB
    // would keep it for up to twice request_timeout).
    if (ri->content_length > 0 || mg_get_header(conn, "Transfer-Encoding") != nullptr) {
      const bool known = (ui && detail::UiService::handles(uri)) || endpoint(uri);
      const int status = !known ? 404 : (method == "GET" || head) ? 413 : 405;
      mg_send_http_error(conn, status, "%s", !known ? "not found\n" : "request bodies are not accepted\n");
      return status;
    }
    try {
      if (ui && detail::UiService::handles(uri)) {
        if (method != "GET" && !head) return reply(conn, 405, "text/plain", "method not allowed\n", head);
        return detail::send_ui(conn, ui->respond(uri, ri->query_string != nullptr ? ri->query_string : ""),
                               head);
      }
      if (!endpoint(uri)) {
        return reply(conn, 404, "text/plain", "not found\n", head);
      }
      if (method != "GET" && !head) return reply(conn, 405, "text/plain", "method not allowed\n", head);
      if (uri == "/metrics")
        return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", collector->render(), head);
      if (uri == "/live") return reply_json(conn, 200, {{"status", "alive"}}, head);
      if (uri == "/ready") {
        bool running = false;
        for (const auto& v : collector->pipelines())
          running = running || v->snapshot().phase == RunPhase::running;
        return reply_json(conn, running ? 200 : 503, {{"ready", running}}, head);
      }
      if (uri == "/health") return health(conn, head);
      return dag(conn, head);
    } catch (const std::exception& e) {
      return reply(conn, 500, "text/plain", std::string("error: ") + e.what() + "\n", head);
    } catch (...) {
      return reply(conn, 500, "text/plain", "error\n", head);
    }
  }

  int health(mg_connection* conn, bool head) const {
    auto pipelines = nlohmann::json::array();
    const auto views = collector->pipelines();
    std::string status = views.empty() ? "down" : "ok";
    for (const auto& v : views) {
      const auto snap = v->snapshot();
      auto stages = nlohmann::json::array();
      for (const auto& s : PrometheusCollector::stage_health(snap)) {
        nlohmann::json stage{{"name", s.name}, {"state", s.state}};
        if (!s.circuit.empty()) stage["circuit"] = s.circuit;
        stages.push_back(std::move(stage));
        if ((s.state == "failing" || s.state == "circuit_open") && status == "ok") status = "degraded";
      }
      // A run that failed, or is draining after a failure, is down.
      if (snap.phase != RunPhase::idle && snap.report.status == RunStatus::failed) status = "down";
      pipelines.push_back({{"name", v->pipeline()},
                           {"phase", to_string(snap.phase)},
                           {"status", run_status(snap)},
                           {"stages", std::move(stages)}});
    }
    return reply_json(conn, status == "down" ? 503 : 200,
                      {{"status", status}, {"pipelines", std::move(pipelines)}}, head);
  }

  int dag(mg_connection* conn, bool head) const {
    auto pipelines = nlohmann::json::array();
    for (const auto& v : collector->pipelines()) {
      const auto snap = v->snapshot();
      const auto& r = snap.report;
      const double wall = secs(r.wall);
      auto rate = [wall](std::uint64_t n) { return wall > 0 ? static_cast<double>(n) / wall : 0.0; };
      auto nodes = nlohmann::json::array();
      auto stages = nlohmann::json::array();
      auto edges = nlohmann::json::array();
      for (std::size_t i = 0; i < r.stages.size(); ++i) {
        const auto& s = r.stages[i];
        while (nodes.size() <= static_cast<std::size_t>(s.node)) {
          nodes.push_back({{"id", nodes.size()},
                           {"parallelism", 1},
                           {"fused", false},
                           {"stages", nlohmann::json::array()}});
        }
        auto& node = nodes[static_cast<std::size_t>(s.node)];
        node["stages"].push_back(s.name);
        node["parallelism"] = s.parallelism;
        node["fused"] = node["stages"].size() > 1;
        stages.push_back({{"name", s.name},
                          {"kind", s.kind},
                          {"node", s.node},
                          {"parallelism", s.parallelism},
                          {"items_in", s.items_in},
                          {"items_out", s.items_out},
                          {"errors", s.errors},
                          {"items_in_per_second", rate(s.items_in)},
                          {"items_out_per_second", rate(s.items_out)},
                          {"queue_depth", queue_depth(snap, i)}});
        if (i < snap.inputs.size()) {
          for (int in : snap.inputs[i]) {
            edges.push_back({{"from", r.stages.at(static_cast<std::size_t>(in)).name}, {"to", s.name}});
          }
        }
      }
      pipelines.push_back({{"name", v->pipeline()},
                           {"phase", to_string(snap.phase)},
                           {"run_id", r.run_id},
                           {"wall_seconds", wall},
                           {"nodes", std::move(nodes)},
                           {"stages", std::move(stages)},
                           {"edges", std::move(edges)}});
    }
    return reply_json(conn, 200, {{"pipelines", std::move(pipelines)}}, head);
  }
};

TelemetryServer::TelemetryServer(std::shared_ptr<PrometheusCollector> collector, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!collector) throw std::invalid_argument("TelemetryServer: the collector cannot be null");
  if (options.port < 0 || options.port > 65535) throw std::invalid_argument("TelemetryServer: bad port");
  if (options.threads < 1 || options.threads > 1024)
    throw std::invalid_argument("TelemetryServer: threads must be from 1 to 1024");
  if (options.request_timeout.count() < 1)
    throw std::invalid_argument("TelemetryServer: request_timeout must be at least 1 ms");
  impl_->collector = std::move(collector);
  impl_->options = std::move(options);
  const auto& o = impl_->options;
  if (o.page) impl_->ui = std::make_unique<detail::UiService>(impl_->collector, std::chrono::seconds{1}, 300);
  mg_init_library(0);
  const std::string ports = o.address + ":" + std::to_string(o.port);
  const std::string threads = std::to_string(o.threads);
  const std::string timeout = std::to_string(o.request_timeout.count());
  // Each connection takes a worker thread until its request is answered or times out: enough
  // threads for many idle clients, and a short timeout to free them. No keep-alive: a scrape is one
  // request, and an idle kept-alive connection would hold a thread as well.
  const char* opts[] = {
      "listening_ports", ports.c_str(),       "num_threads", threads.c_str(), "request_timeout_ms",
      timeout.c_str(),   "enable_keep_alive", "no",          nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = &Impl::log_message;
  char error_text[256] = "";
  mg_error_data error{nullptr, error_text, sizeof error_text};
  mg_init_data init{&callbacks, impl_.get(), opts};
  mg_context* ctx = mg_start2(&init, &error);
  if (ctx == nullptr) {
    mg_exit_library();
    std::string why;
    {
      const std::lock_guard lock(impl_->start_mutex);
      why = impl_->start_errors;
    }
    if (why.empty()) why = error_text;
    throw std::runtime_error("telemetry server cannot listen on " + ports + (why.empty() ? "" : ": " + why));
  }
  impl_->started.store(true, std::memory_order_release);
  mg_set_request_handler(ctx, "/", &Impl::handle, impl_.get());
  mg_server_port listening[4];
  const int n = mg_get_server_ports(ctx, 4, listening);
  impl_->port = n > 0 ? listening[0].port : o.port;
  {
    const std::lock_guard lock(impl_->mutex);
    impl_->ctx = ctx;
  }
  o.logger.log(LogLevel::info, {}, "telemetry server listening on " + url());
}

TelemetryServer::~TelemetryServer() {
  stop();
}

int TelemetryServer::port() const noexcept {
  return impl_->port;
}

std::string TelemetryServer::url() const {
  return "http://" + impl_->options.address + ":" + std::to_string(impl_->port);
}

void TelemetryServer::stop() noexcept {
  mg_context* ctx = nullptr;
  {
    const std::lock_guard lock(impl_->mutex);
    std::swap(ctx, impl_->ctx);
  }
  if (ctx == nullptr) return;
  // mg_stop waits for the listening thread to see its flag: a few connections (until it returns) wake
  // that thread's poll, which would otherwise end only at its 2 s timeout.
  std::mutex m;
  std::condition_variable cv;
  bool stopped = false;
  std::thread waker;
  try {
    waker = std::thread([&] {
      std::unique_lock lock(m);
      while (!cv.wait_for(lock, std::chrono::milliseconds{20}, [&] { return stopped; })) {
        lock.unlock();
        poke(impl_->options.address, impl_->port);
        lock.lock();
      }
    });
  } catch (const std::system_error&) {  // no thread: mg_stop still returns, in up to 2 s
  }
  mg_stop(ctx);  // waits for the worker threads, so every request in progress completes
  {
    const std::lock_guard lock(m);
    stopped = true;
  }
  cv.notify_one();
  if (waker.joinable()) waker.join();
  mg_exit_library();
  if (impl_->ui) impl_->ui->stop();
}

}  // namespace weir::telemetry
