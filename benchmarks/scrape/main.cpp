// bench_scrape: how long rendering /metrics takes while a 50-stage pipeline runs. A generator feeds
// 48 maps (every eighth one parallel, so the stages spread over several physical nodes) and a sink;
// the main thread renders the Prometheus exposition back to back. Variant "weir" reports renders
// per second as items_per_second, plus "p50_ns", "p99_ns" and "max_ns" of one render (target: p99
// at most 5 ms) and "bytes" of the last exposition. Variant "weir_ui_state" GETs the live page's
// /ui/state of the same pipeline (after its run, so that only the requests use the CPU) back to
// back over HTTP: requests per second as items_per_second, "p50_ns", "p99_ns", "max_ns" of one
// request, "cpu_ns_per_request" (CPU time of the whole process, client and server, per request)
// and "bytes" of the answer.
#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <weir/telemetry/http_server.hpp>
#include <weir/telemetry/metrics.hpp>
#include <weir/telemetry/prometheus.hpp>
#include <weir/weir.hpp>

#include "common/bench.hpp"

namespace {

constexpr std::string_view scenario = "scrape";
constexpr int maps = 48;

/// The 50-stage pipeline, not started.
void build(weir::Pipeline& p, std::uint64_t& next, std::uint64_t& sum) {
  auto s = p.source(weir::from_generator{[&next]() -> std::optional<std::uint64_t> {
              return next++;
            }}).name("numbers");
  weir::Stream<std::uint64_t> st = s.map([](std::uint64_t x) { return x + 1; }).name("step_0");
  for (int i = 1; i < maps; ++i) {
    st = st.map([i](std::uint64_t x) { return x ^ static_cast<std::uint64_t>(i); })
             .name("step_" + std::to_string(i))
             .parallelism(i % 8 == 0 ? 2 : 1);
  }
  st.sink([&sum](std::uint64_t x) { sum += x; }).name("sum");
}

void run(int renders) {
  weir::Pipeline p("scrape");
  std::uint64_t next = 0;
  std::uint64_t sum = 0;
  build(p, next, sum);
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::attach(p, prom);
  p.start();
  std::vector<std::int64_t> ns;
  ns.reserve(static_cast<std::size_t>(renders));
  std::size_t bytes = 0;
  weir::bench::Stopwatch total;
  for (int i = 0; i < renders; ++i) {
    weir::bench::Stopwatch one;
    const std::string text = prom->render();
    ns.push_back(one.nanoseconds());
    bytes = text.size();
    weir::bench::do_not_optimize(text);
  }
  const double seconds = total.seconds();
  p.cancel();
  const auto report = p.wait();
  weir::bench::do_not_optimize(sum);
  weir::bench::JsonLine line{scenario, "weir"};
  line.add_throughput(static_cast<std::uint64_t>(renders), seconds);
  line.add("p50_ns", weir::bench::percentile(ns, 50.0));
  line.add("p99_ns", weir::bench::percentile(ns, 99.0));
  line.add("max_ns", weir::bench::percentile(ns, 100.0));
  line.add("bytes", static_cast<std::uint64_t>(bytes));
  line.add("stages", static_cast<std::uint64_t>(report.stages.size()));
  line.add("pipeline_items", report.stages.back().items_in);
  line.print();
}

std::size_t keep(char*, std::size_t size, std::size_t n, void* out) {
  *static_cast<std::size_t*>(out) += size * n;
  return size * n;
}

void run_ui_state(int requests) {
  weir::Pipeline p("scrape");
  std::uint64_t next = 0;
  std::uint64_t sum = 0;
  build(p, next, sum);
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::attach(p, prom);
  weir::telemetry::TelemetryServer server(prom);
  p.start();
  std::this_thread::sleep_for(std::chrono::milliseconds{2200});  // two samples of the run, a second apart
  p.cancel();
  const auto report = p.wait();
  weir::bench::do_not_optimize(sum);
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return;
  const std::string url = server.url() + "/ui/state";
  std::size_t bytes = 0;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &keep);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &bytes);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  std::vector<std::int64_t> ns;
  ns.reserve(static_cast<std::size_t>(requests));
  weir::bench::CpuStopwatch cpu;
  weir::bench::Stopwatch total;
  for (int i = 0; i < requests; ++i) {
    bytes = 0;
    weir::bench::Stopwatch one;
    if (curl_easy_perform(curl) != CURLE_OK) {
      weir::bench::log(scenario, "GET /ui/state failed");
      std::exit(EXIT_FAILURE);
    }
    ns.push_back(one.nanoseconds());
  }
  const double seconds = total.seconds();
  const double cpu_seconds = cpu.seconds();
  curl_easy_cleanup(curl);
  weir::bench::JsonLine line{scenario, "weir_ui_state"};
  line.add_throughput(static_cast<std::uint64_t>(requests), seconds);
  line.add("p50_ns", weir::bench::percentile(ns, 50.0));
  line.add("p99_ns", weir::bench::percentile(ns, 99.0));
  line.add("max_ns", weir::bench::percentile(ns, 100.0));
  line.add("cpu_ns_per_request", cpu_seconds * 1e9 / requests);
  line.add("bytes", static_cast<std::uint64_t>(bytes));
  line.add("stages", static_cast<std::uint64_t>(report.stages.size()));
  line.print();
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
  const int renders = options.quick ? 200 : 2000;
  weir::bench::log(scenario,
                   "renders=" + std::to_string(renders) + ", repeat=" + std::to_string(options.repeat));
  for (int round = 0; round < options.repeat; ++round) {
    run(renders);
    run_ui_state(renders);
  }
  return EXIT_SUCCESS;
}
