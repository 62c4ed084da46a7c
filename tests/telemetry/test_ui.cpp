// Tests of the live page's server side: the per-stage history ring (rates, shares, its bound, a new
// run), /ui/state and /ui/history over HTTP, the compiled-in files and their security headers.
#include <curl/curl.h>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <weir/telemetry/http_server.hpp>
#include <weir/weir.hpp>

#include "ui.hpp"
#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
using weir::telemetry::detail::StageHistory;

struct Response {
  long status = 0;  // 0: no response
  std::string body;
  std::string headers;
};

std::size_t append(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

/// One request with libcurl, headers kept, with a 10 s limit.
Response request(const std::string& url, const char* method = "GET") {
  Response r;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return r;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &append);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(curl);
  return r;
}

/// A snapshot of a running two-stage pipeline "src" -> "work" with the given counters of "work".
weir::Snapshot snapshot(const std::string& run, std::uint64_t in, std::chrono::nanoseconds busy,
                        std::chrono::nanoseconds blocked, int parallelism = 1) {
  weir::Snapshot s;
  s.phase = weir::RunPhase::running;
  s.report.run_id = run;
  weir::StageReport src;
  src.name = "src";
  src.kind = "source";
  src.items_out = in + 10;
  weir::StageReport work;
  work.name = "work";
  work.kind = "map";
  work.node = 1;
  work.parallelism = parallelism;
  work.items_in = in;
  work.items_out = in;
  work.busy = busy;
  work.blocked = blocked;
  work.circuit = weir::CircuitState::open;
  s.report.stages = {src, work};
  s.inputs = {{}, {0}};
  return s;
}

nlohmann::json stage(const nlohmann::json& pipeline, const std::string& name) {
  for (const auto& s : pipeline["stages"])
    if (s["name"] == name) return s;
  return nullptr;
}

}  // namespace

TEST_CASE("the stage history turns counters into rates and busy and backpressure shares between samples") {
  StageHistory h(300);
  h.record(snapshot("r1", 0, 0ms, 0ms), {}, {}, 10.0);
  auto st = h.state("p");
  CHECK(stage(st, "work")["in_per_second"] == 0.0);  // one sample: no rate yet
  h.record(snapshot("r1", 1000, 500ms, 250ms, 2), {{"work", 3}}, {{"work", 1.5}}, 12.0);
  st = h.state("p");
  CHECK(st["run_id"] == "r1");
  CHECK(st["phase"] == "running");
  CHECK(st["samples"] == 2);
  const auto work = stage(st, "work");
  CHECK(work["in_per_second"] == 500.0);  // 1000 items in 2 s
  CHECK(work["busy"] == 0.125);           // 0.5 s of 2 s on 2 threads
  CHECK(work["backpressure"] == 0.0625);  // 0.25 s of 4 thread-seconds
  CHECK(work["queue_depth"] == 10.0);     // the source passed on 10 more than work took in
  CHECK(work["circuit"] == "open");
  CHECK(work["windows_open"] == 3.0);
  CHECK(work["watermark_lag_seconds"] == 1.5);
  CHECK_FALSE(stage(st, "src").contains("circuit"));
  CHECK(st["edges"] == nlohmann::json::array({{{"from", "src"}, {"to", "work"}}}));

  const auto hist = h.history("work");
  CHECK(hist["in_per_second"] == nlohmann::json::array({500.0}));
  CHECK(hist["busy"] == nlohmann::json::array({0.125}));
  CHECK(hist["t"] == nlohmann::json::array({0.0}));
  CHECK(h.history("nope").is_null());
}

TEST_CASE("the stage history keeps its capacity of the newest samples and starts afresh with a new run") {
  StageHistory h(5);
  for (int i = 0; i < 12; ++i)
    h.record(snapshot("r1", 100 * static_cast<std::uint64_t>(i), 0ms, 0ms), {}, {}, i);
  CHECK(h.samples().size() == 5);
  CHECK(h.samples().front()->at == 7.0);
  CHECK(h.samples().back()->at == 11.0);
  const auto hist = h.history("work");
  CHECK(hist["t"] == nlohmann::json::array({-3.0, -2.0, -1.0, 0.0}));
  CHECK(hist["in_per_second"] == nlohmann::json::array({100.0, 100.0, 100.0, 100.0}));

  h.record(snapshot("r2", 5, 0ms, 0ms), {}, {}, 12.0);  // counters of a new run start from zero
  CHECK(h.samples().size() == 1);
  CHECK(h.state("p")["run_id"] == "r2");
  CHECK(stage(h.state("p"), "work")["in_per_second"] == 0.0);
}

TEST_CASE("a query value is found by name and decoded") {
  using weir::telemetry::detail::query_value;
  CHECK(query_value("pipeline=a%20b&stage=x+y", "stage") == "x y");
  CHECK(query_value("pipeline=a%20b&stage=x+y", "pipeline") == "a b");
  CHECK(query_value("pipeline=a&flag", "flag") == "");
  CHECK_FALSE(query_value("pipeline=a", "stage").has_value());
  CHECK(query_value("s=%2", "s") == "%2");  // a broken escape stays as it is
}

TEST_CASE("the live page and its files are served with a strict content security policy") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::TelemetryServer server(prom);
  const auto url = server.url();
  const auto page = request(url + "/");
  CHECK(page.status == 200);
  CHECK(weir_test::contains(page.headers, "Content-Type: text/html; charset=utf-8"));
  CHECK(weir_test::contains(page.headers, "Content-Security-Policy: default-src 'self'\r\n"));
  CHECK(weir_test::contains(page.body, "<title>Weir"));
  CHECK(request(url + "/ui").body == page.body);
  CHECK_FALSE(weir_test::contains(page.body, "<script>"));  // no inline script
  CHECK_FALSE(weir_test::contains(page.body, "style="));    // no inline style

  // Every file the page refers to is served, with its type.
  const std::regex ref(R"((?:src|href)="(/ui/[^"]+)\")");
  std::set<std::string> refs;
  for (auto it = std::sregex_iterator(page.body.begin(), page.body.end(), ref); it != std::sregex_iterator();
       ++it)
    refs.insert((*it)[1]);
  CHECK(refs ==
        std::set<std::string>{"/ui/app.js", "/ui/favicon.svg", "/ui/style.css", "/ui/vendor/dagre.min.js"});
  for (const auto& r : refs) {
    const auto file = request(url + r);
    CHECK_MESSAGE(file.status == 200, r);
    CHECK_MESSAGE(!file.body.empty(), r);
  }
  CHECK(weir_test::contains(request(url + "/ui/app.js").headers, "Content-Type: text/javascript"));
  CHECK(weir_test::contains(request(url + "/ui/vendor/dagre.min.js").body, "graphlib"));
  CHECK(request(url + "/ui/nope.js").status == 404);
  CHECK(request(url + "/ui/state", "POST").status == 405);
  CHECK(request(url + "/ui/history").status == 400);
  CHECK(request(url + "/ui/history?pipeline=none&stage=x").status == 404);
}

TEST_CASE("/ui/state and /ui/history show a watched pipeline's stages, edges, circuit and errors") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::Pipeline p("served");
  weir::telemetry::attach(p, prom);
  std::atomic<int> delivered{0};
  p.source(weir_test::iota(0, 40))
      .name("in")
      .map([](int x) {
        if (x >= 10) throw std::runtime_error("backend down");
        return x;
      })
      .name("call")
      .circuit_breaker(weir::CircuitBreakerOptions{2, std::chrono::hours{1}, 1})
      .on_error(weir::on_error::skip())
      .sink([&](int) { delivered.fetch_add(1); })
      .name("out");
  (void)p.run();
  // Started after the run, so its first sample (taken at once) holds the whole run.
  weir::telemetry::TelemetryServer server(prom);
  nlohmann::json st;
  REQUIRE(weir_test::eventually([&] {
    const auto r = request(server.url() + "/ui/state");
    if (r.status != 200) return false;
    st = nlohmann::json::parse(r.body);
    return !st["pipelines"].empty();
  }));
  CHECK(st["period_seconds"] == 1.0);
  const auto pl = st["pipelines"][0];
  CHECK(pl["name"] == "served");
  CHECK(pl["phase"] == "finished");
  CHECK(pl["status"] == "completed");
  CHECK(pl["edges"].size() == 2);
  const auto call = stage(pl, "call");
  CHECK(call["items_in"] == 40);
  CHECK(call["errors"] == 30);
  CHECK(call["skipped"] == 30);
  CHECK(call["circuit"] == "open");
  REQUIRE(call["error_summaries"].size() == 2);
  CHECK(call["error_summaries"][0]["message"] == "backend down");
  CHECK(call["error_summaries"][0]["count"] == 2);
  CHECK(call["error_summaries"][1]["type"] == "weir::CircuitOpenError");

  const auto h = request(server.url() + "/ui/history?pipeline=served&stage=call");
  CHECK(h.status == 200);
  const auto hist = nlohmann::json::parse(h.body);
  CHECK(hist["stage"] == "call");
  CHECK(hist["pipeline"] == "served");
  CHECK(hist["in_per_second"].is_array());
  CHECK(request(server.url() + "/ui/history?pipeline=served&stage=nope").status == 404);
}

TEST_CASE("a server with the page off answers 404 at / and /ui") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::ServerOptions options;
  options.page = false;
  weir::telemetry::TelemetryServer server(prom, options);
  CHECK(request(server.url() + "/").status == 404);
  CHECK(request(server.url() + "/ui/state").status == 404);
  CHECK(request(server.url() + "/live").status == 200);
}
