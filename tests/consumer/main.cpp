// A program that uses Weir the way a separate project does: a keyed event-time window and the
// Prometheus collector. Exits 0 when the windows and the exposition are right, 1 otherwise.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>
#include <weir/telemetry/prometheus.hpp>
#include <weir/weir.hpp>

namespace {

using namespace std::chrono_literals;
using Time = std::chrono::system_clock::time_point;

struct Reading {
  std::string sensor;
  std::int64_t t_sec = 0;
  int value = 0;
};

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: wrong result: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  const std::vector<Reading> in{{"a", 0, 1},  {"b", 3, 10},  {"a", 9, 2},
                                {"a", 12, 4}, {"b", 15, 20}, {"b", 27, 40}};

  std::vector<weir::WindowResult<std::string, int>> out;
  weir::Pipeline p("consumer");
  p.source(in)
      .key_by([](const Reading& r) { return r.sensor; })
      .window(weir::tumbling{10s})
      .event_time([](const Reading& r) { return Time{std::chrono::seconds{r.t_sec}}; })
      .aggregate(0, [](int& acc, const Reading& r) { acc += r.value; })
      .name("sum_per_sensor")
      .sink(weir::collect_into(out));

  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::attach(p, prom);
  const weir::RunReport report = p.run();

  // (sensor, window start in seconds) -> sum
  std::map<std::tuple<std::string, std::int64_t>, int> sums;
  for (const auto& r : out) {
    sums[{r.key, std::chrono::duration_cast<std::chrono::seconds>(r.start.time_since_epoch()).count()}] =
        r.value;
  }
  const std::map<std::tuple<std::string, std::int64_t>, int> expected{
      {{"a", 0}, 3}, {{"a", 10}, 4}, {{"b", 0}, 10}, {{"b", 10}, 20}, {{"b", 20}, 40}};
  expect(sums == expected, "window sums per sensor");
  expect(report.stage("sum_per_sensor").items_in == in.size(), "items into the window stage");

  const std::string exposition = prom->render();
  expect(exposition.find("weir_stage_items_out_total{pipeline=\"consumer\",stage=\"sum_per_sensor\"} 5\n") !=
             std::string::npos,
         "weir_stage_items_out_total of the window stage in the Prometheus exposition");
  expect(exposition.find("weir_window_emitted_total{pipeline=\"consumer\",stage=\"sum_per_sensor\"}") !=
             std::string::npos,
         "weir_window_emitted_total in the Prometheus exposition");
  if (failures != 0) {
    std::fprintf(stderr, "%s\n", exposition.c_str());
    return 1;
  }
  std::printf("consumer: %zu windows, exposition of %zu bytes\n", out.size(), exposition.size());
  return 0;
}
