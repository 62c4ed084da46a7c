// Tests of the embedded HTTP server on 127.0.0.1: every endpoint, readiness around a run, unknown
// paths and methods, a burst of parallel clients, and shutdown. Waits are bounded and only on the
// real server and pipeline threads.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <weir/telemetry/http_server.hpp>
#include <weir/weir.hpp>

#include "captured_stdout.hpp"
#include "hostile_clients.hpp"
#include "weir_test.hpp"

namespace {

using weir_test::contains;
using weir_test::eventually;

struct Response {
  long status = 0;  // 0: no response
  std::string body;
  std::string content_type;
};

std::size_t append(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

/// One request with libcurl (a new connection each time), with a 10 s limit and an optional body.
Response request(const std::string& url, const char* method = "GET", const char* body = nullptr) {
  Response r;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return r;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (std::string(method) == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  }
  if (body != nullptr) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    char* type = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (type != nullptr) r.content_type = type;
  }
  curl_easy_cleanup(curl);
  return r;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};
const CurlGlobal curl_global;

}  // namespace

TEST_CASE("the server answers every endpoint around a pipeline's run and 404 elsewhere") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::TelemetryServer server(prom);
  REQUIRE(server.port() > 0);
  CHECK(server.url() == "http://127.0.0.1:" + std::to_string(server.port()));
  const auto url = server.url();

  // Nothing watched yet.
  CHECK(request(url + "/live").status == 200);
  CHECK(request(url + "/ready").status == 503);
  CHECK(request(url + "/health").status == 503);

  auto push = std::make_shared<weir::PushSource<int>>(64);
  weir::Pipeline p("served", weir_test::with_batch(4));
  weir::telemetry::attach(p, prom);
  std::atomic<int> delivered{0};
  p.source(push)
      .name("in")
      .map([](int x) { return x * 2; })
      .name("double")
      .parallelism(2)
      .filter([](int x) { return x % 3 != 0; })
      .name("not_three")
      .parallelism(2)
      .sink([&](int) { delivered.fetch_add(1); })
      .name("out");
  CHECK(request(url + "/ready").status == 503);  // before start
  p.start();
  REQUIRE(eventually([&] { return p.snapshot().phase == weir::RunPhase::running; }));
  for (int i = 0; i < 12; ++i) REQUIRE(push->push(i));
  REQUIRE(eventually([&] { return delivered.load() == 8; }));

  const auto ready = request(url + "/ready");
  CHECK(ready.status == 200);
  CHECK(nlohmann::json::parse(ready.body)["ready"] == true);

  const auto health = request(url + "/health");
  CHECK(health.status == 200);
  CHECK(health.content_type == "application/json");
  const auto h = nlohmann::json::parse(health.body);
  CHECK(h["status"] == "ok");
  REQUIRE(h["pipelines"].size() == 1);
  CHECK(h["pipelines"][0]["name"] == "served");
  CHECK(h["pipelines"][0]["phase"] == "running");
  CHECK(h["pipelines"][0]["status"] == "running");  // not how a run ends while it runs
  REQUIRE(h["pipelines"][0]["stages"].size() == 4);
  CHECK(h["pipelines"][0]["stages"][1]["name"] == "double");
  CHECK(h["pipelines"][0]["stages"][1]["state"] == "running");

  const auto dag = request(url + "/dag");
  CHECK(dag.status == 200);
  const auto d = nlohmann::json::parse(dag.body)["pipelines"][0];
  CHECK(d["phase"] == "running");
  REQUIRE(d["stages"].size() == 4);
  CHECK(d["stages"][1]["items_in"] == 12);
  CHECK(d["stages"][2]["items_out"] == 8);
  CHECK(d["stages"][3]["items_in"] == 8);
  CHECK(d["stages"][1]["items_in_per_second"].get<double>() > 0);
  CHECK(d["edges"].size() == 3);
  CHECK(d["edges"][0] == nlohmann::json{{"from", "in"}, {"to", "double"}});
  // map and filter share parallelism 2: one fused node between the source's and the sink's.
  REQUIRE(d["nodes"].size() == 3);
  CHECK(d["nodes"][1]["fused"] == true);
  CHECK(d["nodes"][1]["stages"] == nlohmann::json{"double", "not_three"});
  CHECK(d["nodes"][1]["parallelism"] == 2);

  const auto metrics = request(url + "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(contains(metrics.body, "weir_stage_items_in_total{pipeline=\"served\",stage=\"double\"} 12\n"));
  CHECK(contains(metrics.body, "weir_pipeline_running{pipeline=\"served\"} 1\n"));

  CHECK(request(url + "/nope").status == 404);
  CHECK(request(url + "/metrics/more").status == 404);
  CHECK(request(url + "/ui/nope").status == 404);
  CHECK(request(url + "/metrics", "POST").status == 405);
  const auto head = request(url + "/live", "HEAD");
  CHECK(head.status == 200);
  CHECK(head.body.empty());

  push->close();
  (void)p.wait();
  CHECK(request(url + "/ready").status == 503);  // after the end
  const auto after = nlohmann::json::parse(request(url + "/health").body);
  CHECK(after["status"] == "ok");
  CHECK(after["pipelines"][0]["phase"] == "finished");
  CHECK(after["pipelines"][0]["status"] == "completed");
  CHECK(after["pipelines"][0]["stages"][0]["state"] == "done");
}

TEST_CASE("a failed run makes the health endpoint report down") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::TelemetryServer server(prom);
  weir::Pipeline p("broken");
  weir::telemetry::attach(p, prom);
  p.source(std::vector<int>{1, 2, 3})
      .map([](int x) {
        if (x == 2) throw std::runtime_error("two");
        return x;
      })
      .name("boom")
      .sink([](int) {});
  CHECK_THROWS_AS((void)p.run(), weir::PipelineError);
  const auto r = request(server.url() + "/health");
  CHECK(r.status == 503);
  const auto h = nlohmann::json::parse(r.body);
  CHECK(h["status"] == "down");
  CHECK(h["pipelines"][0]["status"] == "failed");
  CHECK(h["pipelines"][0]["stages"][1]["state"] == "failed");
}

TEST_CASE("a run draining after a failure is failing and down in the health endpoint until it ends") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::TelemetryServer server(prom);
  auto push = std::make_shared<weir::PushSource<int>>(16);
  weir::Notification gate;
  auto options = weir_test::with_batch(1);
  options.threads = 4;  // the held sink keeps one thread
  weir::Pipeline p("draining", options);
  prom->watch(p.live());
  const weir_test::OnExit release([&] { gate.notify(); });  // even when a check fails
  auto in = p.source(push).name("in");
  in.map([](int x) {
      if (x == 1) throw std::runtime_error("one");
      return x;
    })
      .name("boom")
      .sink([](int) {});
  std::atomic<int> entered{0};
  in.sink([&](int) {
      ++entered;
      gate.wait();
    }).name("held");
  p.start();
  REQUIRE(push->push(0));
  REQUIRE(eventually([&] { return entered.load() == 1; }));
  REQUIRE(push->push(1));
  // The failure stops the sources; the held sink keeps the run from ending.
  REQUIRE(eventually([&] { return p.snapshot().report.status == weir::RunStatus::failed; }));
  auto r = request(server.url() + "/health");
  CHECK(r.status == 503);
  auto h = nlohmann::json::parse(r.body);
  CHECK(h["status"] == "down");
  CHECK(h["pipelines"][0]["phase"] == "running");
  CHECK(h["pipelines"][0]["status"] == "failing");
  gate.notify();
  CHECK_THROWS_AS((void)p.wait(), weir::PipelineError);
  h = nlohmann::json::parse(request(server.url() + "/health").body);
  CHECK(h["status"] == "down");
  CHECK(h["pipelines"][0]["phase"] == "finished");
  CHECK(h["pipelines"][0]["status"] == "failed");
}

TEST_CASE("a cancelled run is cancelling while it drains and cancelled once it ended") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::TelemetryServer server(prom);
  auto push = std::make_shared<weir::PushSource<int>>(16);
  weir::Notification gate;
  auto options = weir_test::with_batch(1);
  options.threads = 4;
  weir::Pipeline p("cancelled", options);
  prom->watch(p.live());
  const weir_test::OnExit release([&] { gate.notify(); });  // even when a check fails
  std::atomic<int> entered{0};
  p.source(push)
      .name("in")
      .sink([&](int) {
        ++entered;
        gate.wait();
      })
      .name("held");
  p.start();
  REQUIRE(push->push(0));
  REQUIRE(eventually([&] { return entered.load() == 1; }));
  p.cancel();
  REQUIRE(eventually([&] { return p.snapshot().report.status == weir::RunStatus::cancelled; }));
  auto h = nlohmann::json::parse(request(server.url() + "/health").body);
  CHECK(h["status"] == "ok");
  CHECK(h["pipelines"][0]["phase"] == "running");
  CHECK(h["pipelines"][0]["status"] == "cancelling");
  gate.notify();
  (void)p.wait();
  h = nlohmann::json::parse(request(server.url() + "/health").body);
  CHECK(h["pipelines"][0]["phase"] == "finished");
  CHECK(h["pipelines"][0]["status"] == "cancelled");
}

TEST_CASE("an open circuit makes the health endpoint report degraded and name the stage") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::TelemetryServer server(prom);
  auto push = std::make_shared<weir::PushSource<int>>(16);
  weir::Pipeline p("guarded", weir_test::with_batch(1));
  prom->watch(p.live());  // the live view alone: /health needs no metrics interceptor
  p.source(push)
      .name("in")
      .map([](int x) -> int { throw std::runtime_error("remote down " + std::to_string(x)); })
      .name("remote")
      .circuit_breaker(weir::CircuitBreakerOptions{2, std::chrono::hours{1}, 1})
      .on_error(weir::on_error::skip())
      .sink([](int) {})
      .name("out");
  p.start();
  REQUIRE(eventually([&] { return p.snapshot().phase == weir::RunPhase::running; }));

  // Closed circuit, no failure yet: ok, and the breaker's state is shown.
  auto h = nlohmann::json::parse(request(server.url() + "/health").body);
  CHECK(h["status"] == "ok");
  CHECK(h["pipelines"][0]["stages"][1]["circuit"] == "closed");
  CHECK_FALSE(h["pipelines"][0]["stages"][0].contains("circuit"));

  for (int i = 0; i < 3; ++i) REQUIRE(push->push(i));
  REQUIRE(eventually([&] { return p.snapshot().report.stage("remote").items_in == 3; }));
  REQUIRE(p.snapshot().report.stage("remote").circuit == weir::CircuitState::open);

  const auto r = request(server.url() + "/health");
  CHECK(r.status == 200);
  h = nlohmann::json::parse(r.body);
  CHECK(h["status"] == "degraded");
  const auto& stages = h["pipelines"][0]["stages"];
  REQUIRE(stages.size() == 3);
  CHECK(stages[1] == nlohmann::json{{"name", "remote"}, {"state", "circuit_open"}, {"circuit", "open"}});
  CHECK(stages[0]["state"] == "running");
  CHECK(stages[2]["state"] == "running");

  push->close();
  (void)p.wait();
  h = nlohmann::json::parse(request(server.url() + "/health").body);
  CHECK(h["status"] == "ok");  // the run completed: the skip policy kept it going
  CHECK(h["pipelines"][0]["stages"][1]["state"] == "done");
}

TEST_CASE("a stage with failed items makes the health endpoint report degraded while it runs") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::TelemetryServer server(prom);
  auto push = std::make_shared<weir::PushSource<int>>(16);
  weir::Pipeline p("flaky", weir_test::with_batch(1));
  weir::telemetry::attach(p, prom);
  p.source(push)
      .name("in")
      .map([](int x) {
        if (x == 1) throw std::runtime_error("one");
        return x;
      })
      .name("parse")
      .on_error(weir::on_error::skip())
      .sink([](int) {})
      .name("out");
  p.start();
  REQUIRE(push->push(0));
  REQUIRE(eventually([&] { return p.snapshot().report.stage("out").items_in == 1; }));
  CHECK(nlohmann::json::parse(request(server.url() + "/health").body)["status"] == "ok");
  REQUIRE(push->push(1));
  REQUIRE(eventually([&] { return p.snapshot().report.stage("parse").errors == 1; }));
  const auto h = nlohmann::json::parse(request(server.url() + "/health").body);
  CHECK(h["status"] == "degraded");
  CHECK(h["pipelines"][0]["stages"][1] == nlohmann::json{{"name", "parse"}, {"state", "failing"}});
  push->close();
  (void)p.wait();
}

TEST_CASE("50 parallel clients making 2000 requests in all are all answered") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::Pipeline p("burst", weir_test::with_batch(32));
  weir::telemetry::attach(p, prom);
  std::vector<int> items(5000, 1);
  p.source(items).map([](int x) { return x + 1; }).sink([](int) {});
  (void)p.run();
  weir::telemetry::TelemetryServer server(prom);
  const auto url = server.url();
  const char* paths[] = {"/metrics", "/health", "/ready", "/live", "/dag"};
  std::atomic<int> ok{0};
  std::atomic<int> bad{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < 50; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 40; ++i) {
        const char* path = paths[(c + i) % 5];
        const auto r = request(url + path);
        const long want = std::string(path) == "/ready" ? 503 : 200;  // the run has ended
        (r.status == want && !r.body.empty() ? ok : bad).fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(ok.load() == 2000);
  CHECK(bad.load() == 0);
  CHECK(took < std::chrono::seconds{60});
  CHECK(request(url + "/live").status == 200);  // still serving
}

TEST_CASE("stop closes the port at once, is idempotent, and a busy port is an error") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  auto server = std::make_unique<weir::telemetry::TelemetryServer>(prom);
  const int port = server->port();
  weir::telemetry::ServerOptions same;
  same.port = port;
  CHECK_THROWS_AS(weir::telemetry::TelemetryServer(prom, same), std::runtime_error);
  CHECK(request(server->url() + "/live").status == 200);
  // Right after a request civetweb's listening thread starts a 2 s poll; stop does not wait it out.
  const auto t0 = std::chrono::steady_clock::now();
  server->stop();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds{1});
  server->stop();
  CHECK(request("http://127.0.0.1:" + std::to_string(port) + "/live").status == 0);
  server.reset();
  weir::telemetry::ServerOptions bad;
  bad.port = 70000;
  CHECK_THROWS_AS(weir::telemetry::TelemetryServer(prom, bad), std::invalid_argument);
}

TEST_CASE("200 idle, slow and huge-body clients held open delay no scrape, and stop stays quick") {
  // Each hostile connection is reopened as soon as the server drops it (request_timeout, 1 s), so
  // the server faces 200 of them for the whole 3 s while the endpoints are scraped one after another.
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::Pipeline p("besieged", weir_test::with_batch(32));
  weir::telemetry::attach(p, prom);
  p.source(weir_test::iota(0, 1000)).map([](int x) { return x + 1; }).sink([](int) {});
  (void)p.run();
  auto server = std::make_unique<weir::telemetry::TelemetryServer>(prom);
  const auto url = server->url();
  std::vector<double> ms;
  int failed = 0;
  {
    weir_test::HostileClients hostile(server->port(), 140, 56, 4);
    REQUIRE(eventually([&] { return hostile.open_now() == 200; }, std::chrono::seconds{5}));
    std::this_thread::sleep_for(std::chrono::milliseconds{200});  // every one of them accepted
    const char* paths[] = {"/metrics", "/health", "/live"};
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{3};
    for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = request(url + paths[i % 3]);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (r.status != 200 || r.body.empty()) ++failed;
    }
    CHECK(hostile.closed_by_server() > 0);  // the server timed some out; the holder reopened them
    CHECK(hostile.open_now() >= 195);
    // Stopping waits for no hostile connection beyond its timeout.
    const auto t0 = std::chrono::steady_clock::now();
    server->stop();
    const double stop_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("stop took " << stop_ms << " ms with 200 hostile connections");
    CHECK(stop_ms < 2000);
  }
  REQUIRE(ms.size() >= 10);
  std::sort(ms.begin(), ms.end());
  const double p50 = ms[ms.size() / 2];
  const double p90 = ms[ms.size() * 9 / 10];
  MESSAGE(ms.size() << " scrapes: p50 " << p50 << " ms, p90 " << p90 << " ms, slowest " << ms.back()
                    << " ms");
  CHECK(failed == 0);
  CHECK(p90 < 100);
  CHECK(ms.back() < 1000);  // on a loaded machine a scrape may wait for a core, never for a client
}

TEST_CASE("a PUT announcing a huge body frees its server thread as soon as it is answered") {
  // Two server threads, both taken again and again by clients that announce a body of 1 TB, send a
  // few bytes of it and wait. Each is answered 405 at once; its thread must not stay behind to read
  // (and discard) a body that never comes, or the scrapes queue behind it for request_timeout.
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::ServerOptions so;
  so.threads = 2;
  auto server = std::make_unique<weir::telemetry::TelemetryServer>(prom, so);
  const auto url = server->url();
  std::vector<double> ms;
  int failed = 0;
  {
    weir_test::HostileClients hostile(server->port(), 0, 0, 2);
    REQUIRE(eventually([&] { return hostile.open_now() == 2; }, std::chrono::seconds{5}));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{3};
    while (std::chrono::steady_clock::now() < until) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = request(url + "/live");
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (r.status != 200) ++failed;
    }
    MESSAGE("huge PUTs answered and closed: " << hostile.closed_by_server());
    CHECK(hostile.closed_by_server() > 10);  // each one answered and closed at once, then reopened
  }
  REQUIRE(!ms.empty());
  std::sort(ms.begin(), ms.end());
  MESSAGE(ms.size() << " scrapes beside the PUTs: p50 " << ms[ms.size() / 2] << " ms, slowest " << ms.back()
                    << " ms");
  CHECK(failed == 0);
  CHECK(ms.back() < 500);
  // A body is refused on every path: the method is wrong, or a GET carries what no endpoint reads.
  CHECK(request(url + "/metrics", "PUT", "x=1").status == 405);
  CHECK(request(url + "/live", "GET", "x=1").status == 413);
  CHECK(request(url + "/nowhere", "POST", "x=1").status == 404);
  CHECK(request(url + "/live").status == 200);
}

TEST_CASE("the server writes nothing to standard output and names the cause of a busy port") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir_test::CapturedStdout out;
  std::string error;
  {
    weir::telemetry::TelemetryServer server(prom);
    CHECK(request(server.url() + "/live").status == 200);
    weir::telemetry::ServerOptions same;
    same.port = server.port();
    try {
      weir::telemetry::TelemetryServer second(prom, same);
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
  }
  CHECK(out.text().empty());
  CHECK(contains(error, "cannot listen on 127.0.0.1:"));
  CHECK(contains(error, "Address already in use"));
}

TEST_CASE("the server's lines go to the logger it is given, in its format") {
  std::ostringstream lines;
  weir::telemetry::LogOptions lo;
  lo.format = weir::telemetry::LogFormat::json;
  lo.sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(lines);
  weir::telemetry::ServerOptions so;
  so.logger =
      weir::telemetry::StructuredLogger(weir::telemetry::make_logger(lo), weir::telemetry::LogFormat::json);
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  {
    weir::telemetry::TelemetryServer server(prom, so);
    const auto line = nlohmann::json::parse(lines.str());
    CHECK(line["level"] == "info");
    CHECK(line["message"] == "telemetry server listening on " + server.url());
  }
  so.threads = 0;
  CHECK_THROWS_AS(weir::telemetry::TelemetryServer(prom, so), std::invalid_argument);
  so.threads = 8;
  so.request_timeout = std::chrono::milliseconds{0};
  CHECK_THROWS_AS(weir::telemetry::TelemetryServer(prom, so), std::invalid_argument);
}
