// Tests of the OTLP/HTTP JSON exporter against a real HTTP server on 127.0.0.1 (civetweb), and of
// the JSON-lines file exporter.
#include <arpa/inet.h>
#include <civetweb.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>
#include <weir/telemetry/tracing.hpp>
#include <weir/weir.hpp>

#include "captured_stdout.hpp"
#include "weir_test.hpp"

namespace {

namespace wt = weir::telemetry;
using namespace std::chrono_literals;
using nlohmann::json;
using weir_test::iota;
using weir_test::with_batch;

/// One request the server received.
struct Request {
  std::string method;
  std::string uri;
  std::string content_type;
  std::string body;
  std::chrono::steady_clock::time_point at;  ///< when the server read it
};

/// An HTTP server on 127.0.0.1 (a free port) that records every request and answers with the
/// statuses it was given, in order, then 200 (with a `Retry-After` header on the others when told).
/// One serves every test (civetweb takes up to 2 s to stop).
class RecordingServer {
 public:
  RecordingServer() {
    mg_init_library(0);
    const char* opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "2", nullptr};
    mg_callbacks callbacks{};
    ctx_ = mg_start(&callbacks, this, opts);
    REQUIRE(ctx_ != nullptr);
    mg_set_request_handler(ctx_, "/", &RecordingServer::handle, this);
    mg_server_port ports[2];
    REQUIRE(mg_get_server_ports(ctx_, 2, ports) > 0);
    port_ = ports[0].port;
  }
  ~RecordingServer() {
    mg_stop(ctx_);
    mg_exit_library();
  }
  RecordingServer(const RecordingServer&) = delete;
  RecordingServer& operator=(const RecordingServer&) = delete;

  /// Forgets the requests so far; answers `statuses` next, each but a 200 with `Retry-After:
  /// retry_after` when that is not empty.
  void reset(std::deque<int> statuses = {}, std::string retry_after = {}) {
    const std::lock_guard lock(mutex_);
    requests_.clear();
    statuses_ = std::move(statuses);
    retry_after_ = std::move(retry_after);
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::vector<Request> requests() const {
    const std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  static int handle(mg_connection* conn, void* self) {
    return static_cast<RecordingServer*>(self)->serve(conn);
  }
  int serve(mg_connection* conn) {
    const mg_request_info* ri = mg_get_request_info(conn);
    Request r;
    r.method = ri->request_method != nullptr ? ri->request_method : "";
    r.uri = ri->local_uri != nullptr ? ri->local_uri : "";
    const char* ct = mg_get_header(conn, "Content-Type");
    r.content_type = ct != nullptr ? ct : "";
    char buf[8192];
    for (int n; (n = mg_read(conn, buf, sizeof buf)) > 0;) r.body.append(buf, static_cast<std::size_t>(n));
    r.at = std::chrono::steady_clock::now();
    int status = 200;
    std::string extra;
    {
      const std::lock_guard lock(mutex_);
      requests_.push_back(std::move(r));
      if (!statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
        if (!retry_after_.empty() && status != 200) extra = "Retry-After: " + retry_after_ + "\r\n";
      }
    }
    const std::string body = "{}";
    mg_printf(conn,
              "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%sConnection: "
              "close\r\n\r\n%s",
              status, body.size(), extra.c_str(), body.c_str());
    return status;
  }

  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::deque<int> statuses_;
  std::string retry_after_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

/// The shared server, reset to answer `statuses` next (with `Retry-After: retry_after` if given).
RecordingServer& server_answering(std::deque<int> statuses = {}, std::string retry_after = {}) {
  static RecordingServer server;
  server.reset(std::move(statuses), std::move(retry_after));
  return server;
}

/// A port on 127.0.0.1 that nothing listens on (bound, then closed).
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

wt::OtlpHttpOptions fast_options(std::string endpoint) {
  wt::OtlpHttpOptions o;
  o.endpoint = std::move(endpoint);
  o.connect_timeout = 500ms;
  o.timeout = 2s;
  o.max_attempts = 3;
  o.initial_backoff = 10ms;
  o.max_backoff = 40ms;
  o.resource.service_name = "orders-etl";
  return o;
}

bool is_decimal(const json& v) {
  if (!v.is_string()) return false;
  const auto s = v.get<std::string>();
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

bool is_hex(const json& v, std::size_t digits) {
  if (!v.is_string()) return false;
  const auto s = v.get<std::string>();
  return s.size() == digits && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

/// The attribute `key` of an OTLP attribute list, or null.
const json* otlp_attr(const json& list, const std::string& key) {
  for (const auto& a : list) {
    if (a.at("key") == key) return &a.at("value");
  }
  return nullptr;
}

}  // namespace

TEST_CASE("the OTLP exporter posts a traced run's spans as OTLP JSON to /v1/traces") {
  auto& server = server_answering();
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(fast_options(server.url() + "/"));
  auto tracer = std::make_shared<wt::Tracer>(std::make_shared<wt::BatchSpanProcessor>(exporter));
  weir::Pipeline p("otlp", with_batch(10));
  p.source(iota(0, 40))
      .name("numbers")
      .map([](int x) { return x * 2; })
      .name("double")
      .sink([](int) {})
      .name("out");
  wt::trace(p, tracer);
  const auto report = p.run();  // flushes the run's spans at its end (within 2 s)
  REQUIRE(tracer->force_flush(10s));

  const auto requests = server.requests();
  REQUIRE(!requests.empty());
  std::vector<json> spans;
  for (const auto& r : requests) {
    CHECK(r.method == "POST");
    CHECK(r.uri == "/v1/traces");
    CHECK(r.content_type == "application/json");
    const json body = json::parse(r.body);
    REQUIRE(body.at("resourceSpans").size() == 1);
    const auto& rs = body.at("resourceSpans")[0];
    const auto& res = rs.at("resource").at("attributes");
    REQUIRE(otlp_attr(res, "service.name") != nullptr);
    CHECK(otlp_attr(res, "service.name")->at("stringValue") == "orders-etl");
    REQUIRE(otlp_attr(res, "service.version") != nullptr);
    CHECK(!otlp_attr(res, "service.version")->at("stringValue").get<std::string>().empty());
    const auto& ss = rs.at("scopeSpans").at(0);
    CHECK(ss.at("scope").at("name") == "weir");
    for (const auto& s : ss.at("spans")) spans.push_back(s);
  }
  REQUIRE(spans.size() == 1 + report.stages.size() + 3);  // run, stages, the first batch of each stage

  std::string run_id;
  for (const auto& s : spans) {
    CAPTURE(s.dump());
    CHECK(is_hex(s.at("traceId"), 32));
    CHECK(s.at("traceId") == report.trace.trace_id.hex());
    CHECK(is_hex(s.at("spanId"), 16));
    CHECK(is_decimal(s.at("startTimeUnixNano")));
    CHECK(is_decimal(s.at("endTimeUnixNano")));
    CHECK(s.at("kind") == 1);
    CHECK(s.at("status").at("code") == 0);
    CHECK(s.at("attributes").is_array());
    if (s.at("name") == "run otlp") {
      CHECK_FALSE(s.contains("parentSpanId"));
      run_id = s.at("spanId");
    }
  }
  REQUIRE(run_id == report.trace.span_id.hex());
  for (const auto& s : spans) {
    const std::string name = s.at("name");
    if (name.rfind("stage ", 0) != 0) continue;
    CHECK(s.at("parentSpanId") == run_id);
    // Integers are decimal strings under intValue.
    const json* items = otlp_attr(s.at("attributes"), "weir.stage.items_in");
    REQUIRE(items != nullptr);
    CHECK(items->at("intValue") == "40");
  }
  CHECK(tracer->stats().exported == spans.size());
  CHECK(tracer->stats().dropped() == 0);
}

TEST_CASE("the OTLP exporter retries a 503 and the spans arrive with the 200 that follows") {
  auto& server = server_answering({503});
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(fast_options(server.url()));
  wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(exporter));
  {
    auto s = tracer.start_span("call");
    s.add_event("retry me", {{"n", std::int64_t{1}}});
    s.set_status(wt::StatusCode::error, "failed call");
  }
  REQUIRE(tracer.force_flush(10s));
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].body == requests[1].body);
  CHECK(exporter->requests() == 2);
  CHECK(tracer.stats().exported == 1);
  CHECK(tracer.stats().dropped() == 0);
  const auto span = json::parse(requests[1].body).at("resourceSpans")[0].at("scopeSpans")[0].at("spans")[0];
  CHECK(span.at("status").at("code") == 2);
  CHECK(span.at("status").at("message") == "failed call");
  REQUIRE(span.at("events").size() == 1);
  CHECK(span.at("events")[0].at("name") == "retry me");
  CHECK(is_decimal(span.at("events")[0].at("timeUnixNano")));
  CHECK(span.at("events")[0].at("attributes")[0].at("value").at("intValue") == "1");
}

TEST_CASE("the OTLP exporter waits as long as a 429's Retry-After asks before trying again") {
  auto& server = server_answering({429}, "1");
  auto o = fast_options(server.url());
  o.max_backoff = 5s;
  o.export_timeout = 4s;
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(o);
  wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(exporter));
  tracer.start_span("a").end();
  REQUIRE(tracer.force_flush(10s));
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  const auto gap = requests[1].at - requests[0].at;
  CHECK(gap >= 900ms);
  CHECK(gap < o.export_timeout);
  CHECK(tracer.stats().exported == 1);
}

TEST_CASE("the OTLP exporter caps a 503's Retry-After at its max backoff") {
  auto& server = server_answering({503}, "60");
  auto o = fast_options(server.url());
  o.max_backoff = 200ms;
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(o);
  wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(exporter));
  tracer.start_span("a").end();
  REQUIRE(tracer.force_flush(10s));
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  const auto gap = requests[1].at - requests[0].at;
  CHECK(gap >= 150ms);  // more than the 10 ms backoff it would use without the header
  CHECK(gap < 5s);
  CHECK(tracer.stats().exported == 1);
}

TEST_CASE("the OTLP exporter gives up rather than wait past its export timeout") {
  // Every answer is a 503 asking for 1 s; after the second there is no time left for a third.
  auto& server = server_answering({503, 503, 503, 503, 503, 503, 503, 503}, "1");
  auto o = fast_options(server.url());
  o.max_attempts = 8;
  o.max_backoff = 5s;
  o.export_timeout = 1500ms;
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(o);
  wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(exporter));
  tracer.start_span("a").end();
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(tracer.force_flush(10s));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 1500ms + 500ms);
  CHECK(server.requests().size() == 2);
  CHECK(tracer.stats().dropped_export_failed == 1);
  server.reset();  // no 503 left over for the next case
}

TEST_CASE("the OTLP exporter does not retry a 400: the spans are dropped and counted") {
  auto& server = server_answering({400});
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(fast_options(server.url()));
  wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(exporter));
  tracer.start_span("a").end();
  tracer.start_span("b").end();
  REQUIRE(tracer.force_flush(10s));
  CHECK(server.requests().size() == 1);
  CHECK(tracer.stats().dropped_export_failed == 2);
  CHECK(tracer.stats().exported == 0);
}

TEST_CASE("with the collector down the run is unaffected and its spans are dropped and counted") {
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(
      fast_options("http://127.0.0.1:" + std::to_string(closed_port())));
  auto tracer = std::make_shared<wt::Tracer>(std::make_shared<wt::BatchSpanProcessor>(exporter));
  weir::Pipeline p("offline", with_batch(10));
  std::vector<int> out;
  p.source(iota(0, 100)).map([](int x) { return x + 1; }).sink(weir::collect_into(out));
  wt::TracingOptions to;
  to.flush_timeout = 3s;
  wt::trace(p, tracer, to);
  const auto t0 = std::chrono::steady_clock::now();
  const auto report = p.run();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(report.status == weir::RunStatus::completed);
  CHECK(out.size() == 100);
  CHECK(took < 5s);
  REQUIRE(tracer->force_flush(10s));
  const auto stats = tracer->stats();
  CHECK(stats.exported == 0);
  CHECK(stats.dropped_export_failed == 1 + report.stages.size() + report.stages.size());
  // max_attempts per export call (the spans may have left in more than one).
  CHECK(exporter->requests() >= 3);
  CHECK(exporter->requests() % 3 == 0);
}

TEST_CASE("shutdown cuts the exporter's backoff short") {
  auto o = fast_options("http://127.0.0.1:" + std::to_string(closed_port()));
  o.max_attempts = 100;
  o.initial_backoff = 10s;
  o.max_backoff = 10s;
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(o);
  wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(exporter));
  tracer.start_span("a").end();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(tracer.shutdown(100ms));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(tracer.stats().dropped_export_failed == 1);
}

/// A socket on 127.0.0.1 that listens and never accepts: the kernel completes connections to it
/// and nothing ever answers them.
class SilentCollector {
 public:
  SilentCollector() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentCollector() { ::close(fd_); }
  SilentCollector(const SilentCollector&) = delete;
  SilentCollector& operator=(const SilentCollector&) = delete;
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_CASE("shutdown ends a request in flight to a collector that never answers within its bound") {
  const SilentCollector silent;
  auto o = fast_options(silent.url());
  o.timeout = 10s;  // the default: the request alone would outlive the shutdown bound
  o.export_timeout = 30s;
  auto exporter = std::make_shared<wt::OtlpHttpExporter>(o);
  wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(exporter));
  tracer.start_span("a").end();
  CHECK_FALSE(tracer.force_flush(300ms));  // the export is now waiting for an answer
  CHECK(exporter->requests() == 1);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(tracer.shutdown(200ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 1500ms);
  CHECK(tracer.stats().dropped_export_failed == 1);
}

TEST_CASE("the OTLP exporter accepts only an http or https URL with a host as its endpoint") {
  for (const char* good : {"http://127.0.0.1:4318", "https://collector.example:443/", "HTTP://[::1]:4318",
                           "http://otel/prefix"}) {
    const std::string shown = good;
    CAPTURE(shown);
    CHECK(wt::otlp_endpoint_error(good).empty());
    CHECK_NOTHROW(wt::OtlpHttpExporter(fast_options(good)));
  }
  for (const char* bad :
       {"", "garbage", "127.0.0.1:4318", "file:///etc/passwd", "gopher://127.0.0.1:70", "ftp://h/", "http://",
        "http:///v1", "http://h:99999", "http://h/?q=1", "http://h/#frag", "http://h /x"}) {
    const std::string shown = bad;
    CAPTURE(shown);
    const auto why = wt::otlp_endpoint_error(bad);
    CHECK_FALSE(why.empty());
    CHECK_THROWS_WITH_AS(wt::OtlpHttpExporter(fast_options(bad)),
                         doctest::Contains("OtlpHttpExporter: endpoint"), std::invalid_argument);
  }
  CHECK(weir_test::contains(wt::otlp_endpoint_error("file:///x"), "http or https"));
}

namespace {
/// Fails every export.
class FailingExporter final : public wt::SpanExporter {
 public:
  wt::ExportResult export_spans(std::span<const wt::SpanData>) noexcept override {
    return wt::ExportResult::failure;
  }
};
}  // namespace

TEST_CASE("a failed export is logged through the processor's logger, never on standard output") {
  std::ostringstream lines;
  wt::LogOptions lo;
  lo.sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(lines);
  wt::BatchSpanProcessorOptions po;
  po.logger = wt::StructuredLogger(wt::make_logger(lo));
  weir_test::CapturedStdout out;
  {
    wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(std::make_shared<FailingExporter>(), po));
    tracer.start_span("a").end();
    CHECK(tracer.force_flush(5s));
    CHECK(tracer.stats().dropped_export_failed == 1);
  }
  {  // the default logger writes to standard error
    wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(std::make_shared<FailingExporter>()));
    tracer.start_span("b").end();
    CHECK(tracer.force_flush(5s));
  }
  CHECK(out.text().empty());
  CHECK(
      weir_test::contains(lines.str(), "[warning] tracing: span export failed; 1 spans dropped (1 in all)"));
}

TEST_CASE("the JSON-lines exporter writes one OTLP request body per export, one per line") {
  const auto path =
      std::filesystem::temp_directory_path() / ("weir_spans_" + std::to_string(::getpid()) + ".jsonl");
  {
    auto file = std::make_shared<wt::JsonLinesFileExporter>(path);
    wt::BatchSpanProcessorOptions po;
    po.schedule_delay = std::chrono::hours{1};
    wt::Tracer tracer(std::make_shared<wt::BatchSpanProcessor>(file, po));
    tracer.start_span("one").end();
    tracer.start_span("two").end();
    REQUIRE(tracer.force_flush(10s));
    auto three = tracer.start_span("three");
    three.set_attribute("pi", 3.25);
    three.set_attribute("ok", true);
    three.end();
    REQUIRE(tracer.shutdown(10s));
  }
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  std::filesystem::remove(path);
  REQUIRE(lines.size() == 2);
  auto spans_of = [](const json& j) { return j.at("resourceSpans")[0].at("scopeSpans")[0].at("spans"); };
  CHECK(spans_of(lines[0]).size() == 2);
  REQUIRE(spans_of(lines[1]).size() == 1);
  const json three = spans_of(lines[1])[0];
  CHECK(three.at("name") == "three");
  CHECK(otlp_attr(three.at("attributes"), "pi")->at("doubleValue") == 3.25);
  CHECK(otlp_attr(three.at("attributes"), "ok")->at("boolValue") == true);
  CHECK(otlp_attr(lines[0].at("resourceSpans")[0].at("resource").at("attributes"), "service.name")
            ->at("stringValue") == "weir");
}

// The OTLP JSON encoder, checked against the OTLP mapping of docs/tracing.md: a reference JSON value
// built here from the SpanData, compared with the parsed output.

namespace {

/// A random string of printable ASCII, control characters, quotes, backslashes, DEL and 2-, 3- and
/// 4-byte UTF-8 characters.
std::string random_text(std::mt19937_64& rng) {
  static const std::vector<std::string> pieces{"a",
                                               "Z",
                                               "7",
                                               " ",
                                               "=",
                                               "\"",
                                               "\\",
                                               "/",
                                               "\x7f",
                                               "\t",
                                               "\n",
                                               "\r",
                                               "\b",
                                               "\f",
                                               std::string(1, '\0'),
                                               "\x01",
                                               "\x1f",
                                               "\xc3\xa9",
                                               "\xe2\x9c\x93",
                                               "\xe6\x97\xa5",
                                               "\xf0\x9f\x9a\x80",
                                               "plain words"};
  std::string out;
  for (auto n = rng() % 12; n > 0; --n) out += pieces[rng() % pieces.size()];
  return out;
}

wt::AttributeValue random_value(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return random_text(rng);
    case 1: {
      static const std::vector<std::int64_t> edges{0, -1, std::numeric_limits<std::int64_t>::min(),
                                                   std::numeric_limits<std::int64_t>::max()};
      return rng() % 2 == 0 ? edges[rng() % edges.size()] : static_cast<std::int64_t>(rng());
    }
    case 2: {
      static const std::vector<double> edges{0.0,
                                             -0.0,
                                             0.1,
                                             2.0,
                                             1e300,
                                             -5e-324,
                                             std::numeric_limits<double>::quiet_NaN(),
                                             std::numeric_limits<double>::infinity(),
                                             -std::numeric_limits<double>::infinity()};
      if (rng() % 2 == 0) return edges[rng() % edges.size()];
      return std::ldexp(static_cast<double>(rng() % 2'000'001) - 1e6, static_cast<int>(rng() % 200) - 100);
    }
    default:
      return rng() % 2 == 0;
  }
}

std::vector<wt::Attribute> random_attributes(std::mt19937_64& rng) {
  std::vector<wt::Attribute> out;
  for (auto n = rng() % 6; n > 0; --n) out.push_back({random_text(rng), random_value(rng)});
  return out;
}

wt::SpanData random_span(std::mt19937_64& rng) {
  wt::SpanData s;
  for (auto& b : s.trace_id.bytes) b = static_cast<std::uint8_t>(rng());
  for (auto& b : s.span_id.bytes) b = static_cast<std::uint8_t>(rng());
  if (rng() % 2 == 0) {
    for (auto& b : s.parent_span_id.bytes) b = static_cast<std::uint8_t>(rng());
  }
  s.flags = static_cast<std::uint8_t>(rng() % 2);
  if (rng() % 3 == 0) s.trace_state = "vendor=" + random_text(rng);
  s.name = random_text(rng);
  s.kind = static_cast<wt::SpanKind>(rng() % 6);
  s.start_unix_nano = static_cast<std::int64_t>(rng() >> 1U);
  s.end_unix_nano = s.start_unix_nano + static_cast<std::int64_t>(rng() % 1'000'000'000);
  s.attributes = random_attributes(rng);
  for (auto n = rng() % 3; n > 0; --n)
    s.events.push_back({random_text(rng), static_cast<std::int64_t>(rng() >> 1U), random_attributes(rng)});
  s.dropped_events = rng() % 2 == 0 ? 0 : static_cast<std::uint32_t>(rng() % 1000);
  s.status = static_cast<wt::StatusCode>(rng() % 3);
  if (s.status == wt::StatusCode::error && rng() % 2 == 0) s.status_message = random_text(rng);
  return s;
}

/// An OTLP AnyValue as docs/tracing.md maps it: 64-bit integers as decimal strings, NaN and
/// infinities as null.
json reference_value(const wt::AttributeValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return {{"stringValue", *s}};
  if (const auto* i = std::get_if<std::int64_t>(&v)) return {{"intValue", std::to_string(*i)}};
  if (const auto* d = std::get_if<double>(&v))
    return {{"doubleValue", std::isfinite(*d) ? json(*d) : json()}};
  return {{"boolValue", std::get<bool>(v)}};
}

json reference_attributes(const std::vector<wt::Attribute>& attrs) {
  json out = json::array();
  for (const auto& a : attrs) out.push_back({{"key", a.key}, {"value", reference_value(a.value)}});
  return out;
}

json reference_span(const wt::SpanData& s) {
  json j{{"traceId", s.trace_id.hex()},
         {"spanId", s.span_id.hex()},
         {"name", s.name},
         {"kind", static_cast<int>(s.kind)},
         {"startTimeUnixNano", std::to_string(s.start_unix_nano)},
         {"endTimeUnixNano", std::to_string(s.end_unix_nano)},
         {"flags", s.flags},
         {"attributes", reference_attributes(s.attributes)},
         {"status", {{"code", static_cast<int>(s.status)}}}};
  if (s.parent_span_id.valid()) j["parentSpanId"] = s.parent_span_id.hex();
  if (!s.trace_state.empty()) j["traceState"] = s.trace_state;
  if (!s.events.empty()) {
    json events = json::array();
    for (const auto& e : s.events) {
      events.push_back({{"timeUnixNano", std::to_string(e.time_unix_nano)},
                        {"name", e.name},
                        {"attributes", reference_attributes(e.attributes)}});
    }
    j["events"] = events;
  }
  if (s.dropped_events != 0) j["droppedEventsCount"] = s.dropped_events;
  if (!s.status_message.empty()) j["status"]["message"] = s.status_message;
  return j;
}

json reference_request(const std::vector<wt::SpanData>& spans, const wt::Resource& r) {
  json attrs{{{"key", "service.name"}, {"value", {{"stringValue", r.service_name}}}},
             {{"key", "service.version"},
              {"value", {{"stringValue", r.service_version.empty() ? WEIR_VERSION : r.service_version}}}}};
  for (const auto& a : reference_attributes(r.attributes)) attrs.push_back(a);
  json list = json::array();
  for (const auto& s : spans) list.push_back(reference_span(s));
  return {
      {"resourceSpans",
       {{{"resource", {{"attributes", attrs}}},
         {"scopeSpans", {{{"scope", {{"name", "weir"}, {"version", WEIR_VERSION}}}, {"spans", list}}}}}}}};
}

}  // namespace

TEST_CASE("the OTLP encoder writes every field of seeded random spans as the OTLP JSON mapping says") {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    std::vector<wt::SpanData> spans;
    for (auto n = rng() % 6; n > 0; --n) spans.push_back(random_span(rng));
    wt::Resource resource;
    if (rng() % 2 == 0) {
      resource.service_name = random_text(rng);
      resource.service_version = random_text(rng);
      resource.attributes = random_attributes(rng);
    }
    std::string out = "prefix ";
    wt::append_otlp_json(out, spans, resource);
    REQUIRE(out.starts_with("prefix "));
    const std::string body = out.substr(7);
    CHECK(body == wt::otlp_json(spans, resource));
    json parsed;
    REQUIRE_NOTHROW(parsed = json::parse(body));
    CHECK(parsed == reference_request(spans, resource));
  }
}

TEST_CASE("the OTLP encoder replaces invalid UTF-8 and writes keys in the order of the OTLP definitions") {
  wt::SpanData s;
  for (std::uint8_t i = 0; i < 16; ++i) s.trace_id.bytes[i] = static_cast<std::uint8_t>(i + 1);
  for (std::uint8_t i = 0; i < 8; ++i) s.span_id.bytes[i] = static_cast<std::uint8_t>(0xa1 + i);
  for (std::uint8_t i = 0; i < 8; ++i) s.parent_span_id.bytes[i] = static_cast<std::uint8_t>(0xb1 + i);
  s.trace_state = "k=v";
  s.name = "parse";
  s.kind = wt::SpanKind::server;
  s.start_unix_nano = 1'700'000'000'000'000'000;
  s.end_unix_nano = 1'700'000'000'000'001'500;
  s.attributes = {{"s", std::string("x\"y")}, {"i", std::int64_t{-42}}, {"d", 0.1}, {"b", true}};
  s.events = {{"retry", 1'700'000'000'000'000'500, {{"attempt", std::int64_t{2}}}}};
  s.dropped_events = 1;
  s.status = wt::StatusCode::error;
  s.status_message = "bad\n";
  wt::Resource resource;
  resource.service_name = "svc";
  resource.service_version = "9.9";
  resource.attributes = {{"host.name", std::string("h")}};
  const std::vector<wt::SpanData> spans{s};
  CHECK(
      wt::otlp_json(spans, resource) ==
      R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}},)"
      R"({"key":"service.version","value":{"stringValue":"9.9"}},{"key":"host.name","value":{"stringValue":"h"}}]},)"
      R"("scopeSpans":[{"scope":{"name":"weir","version":")" WEIR_VERSION
      R"("},"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"a1a2a3a4a5a6a7a8","name":"parse",)"
      R"("kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000001500","flags":1,)"
      R"("parentSpanId":"b1b2b3b4b5b6b7b8","traceState":"k=v","attributes":[{"key":"s","value":{"stringValue":"x\"y"}},)"
      R"({"key":"i","value":{"intValue":"-42"}},{"key":"d","value":{"doubleValue":0.1}},)"
      R"({"key":"b","value":{"boolValue":true}}],"events":[{"timeUnixNano":"1700000000000000500","name":"retry",)"
      R"("attributes":[{"key":"attempt","value":{"intValue":"2"}}]}],"droppedEventsCount":1,)"
      R"("status":{"code":2,"message":"bad\n"}}]}]}]})");

  // Invalid UTF-8 is replaced by U+FFFD, never thrown on or copied.
  wt::SpanData bad;
  bad.name = "\xff\xfe ok";
  bad.attributes = {{"k\xc3", std::string("v\x80")}};
  const std::vector<wt::SpanData> bad_spans{bad};
  const json parsed = json::parse(wt::otlp_json(bad_spans, {}));
  const json& span = parsed.at("resourceSpans")[0].at("scopeSpans")[0].at("spans")[0];
  CHECK(span.at("name") == "\xef\xbf\xbd\xef\xbf\xbd ok");
  CHECK(span.at("attributes")[0].at("key") == "k\xef\xbf\xbd");
  CHECK(span.at("attributes")[0].at("value").at("stringValue") == "v\xef\xbf\xbd");
}
