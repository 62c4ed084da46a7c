// Tests of the Prometheus collector: the exposition against docs/metrics.md (both ways) and
// promtool, per-stage values against the run report, event-fed families, user metrics.
#include <doctest/doctest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <weir/telemetry/prometheus.hpp>
#include <weir/telemetry/tracing.hpp>
#include <weir/weir.hpp>

#include "metrics_doc.hpp"
#include "weir_test.hpp"

namespace {

using weir_test::contains;
using weir_test::with_batch;
using namespace std::chrono_literals;

using weir_test::iota;

/// `# TYPE name type` lines of an exposition: name -> type.
std::map<std::string, std::string> exposed_types(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream l(line.substr(7));
    std::string name, type;
    l >> name >> type;
    out[name] = type;
  }
  return out;
}

/// The value of the sample `series` (name plus labels exactly as exposed), or NaN-like -1.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

/// The family table of docs/metrics.md.
std::map<std::string, weir_test::DocFamily> documented() {
  return weir_test::documented_families(WEIR_DOCS_DIR);
}

/// Runs promtool check metrics on `text`; returns its exit status and output, or nullopt without promtool.
std::optional<std::pair<int, std::string>> promtool_check(const std::string& text) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) return std::nullopt;
  const auto dir = std::filesystem::temp_directory_path();
  const auto in = dir / ("weir_metrics_" + std::to_string(::getpid()) + ".prom");
  const auto out = dir / ("weir_promtool_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream f(in);
    f << text;
  }
  const std::string cmd = "promtool check metrics < " + in.string() + " > " + out.string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream o(out);
  std::stringstream ss;
  ss << o.rdbuf();
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  return std::pair{WEXITSTATUS(status), ss.str()};
}

/// A pipeline with every operator Weir has today: map, filter, flat_map, fan_out, merge, sinks, with
/// skip, retry, dead-letter and a failing dead-letter sink. `p` runs on `clock`, which one timed call
/// moves past its limit before it hangs until the run has ended: one timeout.
weir::RunReport run_every_operator(weir::Pipeline& p, const std::shared_ptr<weir::ManualClock>& clock) {
  auto gate = std::make_shared<weir::Notification>();
  std::vector<int> got;
  std::mutex mutex;
  auto branches =
      p.source(iota(0, 400))
          .name("numbers")
          .map([](int x) {
            if (x % 100 == 7) throw std::runtime_error("seven");
            weir::metric::add("rows_parsed");
            weir::metric::set("last_parsed", x);
            return x;
          })
          .name("parse")
          .on_error(weir::on_error::skip())
          .map([](int x) {
            if (x % 100 == 9) throw std::invalid_argument("nine");
            return x;
          })
          .name("enrich")
          .on_error(weir::on_error::retry(2, 1ms, weir::on_error::dead_letter([](weir::DeadLetter<int>) {})))
          .map([](int x) {
            if (x == 11) throw std::domain_error("eleven");
            return x;
          })
          .name("check")
          .on_error(
              weir::on_error::dead_letter([](weir::DeadLetter<int>) { throw std::runtime_error("dlq"); }))
          .filter([](int x) { return x % 2 == 0; })
          .name("evens")
          .fan_out(2);
  auto left = branches[0].flat_map([](int x) { return std::vector<int>{x, x}; }).name("twice");
  left.merge(branches[1])
      .name("together")
      .sink([&](int x) {
        const std::lock_guard lock(mutex);
        got.push_back(x);
      })
      .name("out");

  // A second source through the keyed, routing and resilience operators: a lookup join, a route
  // with dropped items, an event-time window with one late item, a buffer into a map-reduce, and a
  // circuit breaker that opens.
  std::vector<int> events = iota(0, 200);
  events.push_back(3);  // behind the watermark by then: late
  std::vector<std::pair<int, int>> table;
  for (int k = 0; k < 10; ++k) table.emplace_back(k, k * 100);
  auto joined = p.source(events)
                    .name("events")
                    .join_by_key(
                        weir::table{table}, [](int x) { return x % 10; },
                        [](const std::pair<int, int>& r) { return r.first; },
                        [](int x, const std::pair<int, int>&) { return x; })
                    .name("lookup");
  auto routed = joined.route(weir::RouteOptions{weir::RouteMode::first_match, {}},
                             weir::when{"low", [](int x) { return x < 150; }},
                             weir::when{"mid", [](int x) { return x < 190; }});
  routed.name("router");
  routed["low"]
      .key_by([](int x) { return x % 3; })
      .window(weir::tumbling{10s})
      .event_time([](int x) { return std::chrono::system_clock::time_point{std::chrono::seconds{x}}; })
      .count()
      .name("windows")
      .sink([](const weir::WindowResult<int, std::uint64_t>&) {})
      .name("window_out");
  routed["mid"]
      .map([clock](int x) {
        clock->advance(100us);  // work the branch's batch time (weir_router_route_duration_seconds) sees
        return x;
      })
      .name("mid_work")
      .buffer(16)
      .name("batcher")
      .map_reduce(
          [](const std::vector<int>& v) {
            return std::pair<int, long>{static_cast<int>(v.size()), 1L};
          },
          [](long a, long b) { return a + b; })
      .name("sizes")
      .sink([](const std::pair<int, long>&) {})
      .name("sizes_out");
  joined
      .map([](int x) {
        if (x >= 5) throw std::runtime_error("remote down");
        return x;
      })
      .name("remote")
      .circuit_breaker(weir::CircuitBreakerOptions{2, std::chrono::hours{1}, 1})
      .on_error(weir::on_error::skip())
      .sink([](int) {})
      .name("remote_out");
  joined
      .map([clock, gate](int x) {
        if (x == 13) {
          clock->advance(150ms);
          gate->wait();
        }
        return x;
      })
      .name("slow")
      .timeout(100ms)
      .on_error(weir::on_error::skip())
      .sink([](int) {})
      .name("slow_out");
  // The hung call returns once the run has ended, whether run() returns or throws.
  struct Open {
    std::shared_ptr<weir::Notification> gate;
    ~Open() { gate->notify(); }
  } const open{gate};
  return p.run();
}

}  // namespace

TEST_CASE("the exposition lists exactly the documented families and passes promtool" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o = with_batch(16);
  o.clock = clock;
  weir::Pipeline p("every_operator", o);
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::attach(p, prom);
  // A traced run too, so that the span families have series.
  auto tracer =
      std::make_shared<weir::telemetry::Tracer>(std::make_shared<weir::telemetry::BatchSpanProcessor>(
          std::make_shared<weir::telemetry::InMemoryExporter>()));
  weir::telemetry::trace(p, tracer);
  prom->watch(tracer);
  (void)run_every_operator(p, clock);
  const std::string text = prom->render();

  const auto docs = documented();
  REQUIRE(docs.size() >= 49);
  const auto exposed = exposed_types(text);
  for (const auto& [name, doc] : docs) {
    CAPTURE(name);
    if (doc.today) {
      CHECK(exposed.count(name) == 1);
    }
  }
  // User code's families are documented by their prefix: counters weir_user_<name>_total, gauges
  // weir_user_<name>; the pipeline records one of each.
  std::ifstream doc_file(std::filesystem::path(WEIR_DOCS_DIR) / "metrics.md");
  const std::string doc_text{std::istreambuf_iterator<char>(doc_file), {}};
  REQUIRE(contains(doc_text, "`weir_user_<name>` (a gauge)"));
  REQUIRE(contains(doc_text, "`weir_user_<name>_total` (a counter"));
  std::set<std::string> user;
  for (const auto& [name, type] : exposed) {
    CAPTURE(name);
    if (name.rfind("weir_user_", 0) == 0) {
      CHECK(type == (name.ends_with("_total") ? "counter" : "gauge"));
      user.insert(name);
      continue;
    }
    REQUIRE(docs.count(name) == 1);
    CHECK(docs.at(name).type == type);
  }
  CHECK(user == std::set<std::string>{"weir_user_rows_parsed_total", "weir_user_last_parsed"});
  // The code's family table and the document agree too (pending families included).
  std::set<std::string> code;
  for (const auto& f : weir::telemetry::prometheus_families()) {
    code.insert(f.name);
    CAPTURE(f.name);
    CHECK(docs.count(f.name) == 1);
  }
  CHECK(code.size() == docs.size());

  const auto lint = promtool_check(text);
  if (!lint) {
    MESSAGE("promtool is not installed (Debian package prometheus): exposition lint skipped");
  } else {
    CAPTURE(lint->second);
    CHECK(lint->first == 0);
  }
}

TEST_CASE("per-stage series equal the run report" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o = with_batch(16);
  o.clock = clock;
  weir::Pipeline p("values", o);
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::telemetry::attach(p, prom);
  const auto r = run_every_operator(p, clock);
  const std::string text = prom->render();
  auto series = [](const std::string& family, const std::string& stage, const std::string& more = "") {
    return family + "{pipeline=\"values\",stage=\"" + stage + "\"" + more + "}";
  };
  for (const auto& s : r.stages) {
    CAPTURE(s.name);
    CHECK(sample(text, series("weir_stage_items_in_total", s.name)) == static_cast<double>(s.items_in));
    CHECK(sample(text, series("weir_stage_items_out_total", s.name)) == static_cast<double>(s.items_out));
    CHECK(sample(text, series("weir_stage_batches_total", s.name)) == static_cast<double>(s.batches));
    CHECK(sample(text, series("weir_stage_batch_duration_seconds_count", s.name)) ==
          static_cast<double>(s.batches));
    CHECK(sample(text, series("weir_stage_queue_depth", s.name)) == 0);
  }
  CHECK(sample(text, series("weir_stage_items_skipped_total", "parse")) == 4);
  CHECK(sample(text, series("weir_stage_errors_total", "parse", ",error_type=\"std::runtime_error\"")) == 4);
  CHECK(sample(text, series("weir_stage_retries_total", "enrich")) == 4);
  CHECK(sample(text, series("weir_stage_dead_letters_total", "enrich",
                            ",error_type=\"std::invalid_argument\"")) == 4);
  CHECK(sample(text, series("weir_dead_letter_handler_errors_total", "check")) == 1);
  CHECK(sample(text, series("weir_stage_timeouts_total", "slow")) == 1);
  CHECK(sample(text, series("weir_stage_timeouts_total", "slow")) ==
        static_cast<double>(r.stage("slow").timeouts));
  // Every window was emitted by the end of the run; the windows saw 150 items in 10 s windows.
  CHECK(sample(text, series("weir_window_open", "windows")) == 0);
  CHECK(sample(text, series("weir_window_emitted_total", "windows")) > 0);
  CHECK(sample(text, series("weir_filter_items_passed_total", "evens")) ==
        static_cast<double>(r.stage("evens").items_out));
  CHECK(sample(text, series("weir_filter_items_dropped_total", "evens")) ==
        static_cast<double>(r.stage("evens").filtered));
  CHECK(sample(text, series("weir_fanout_items_total", "fan_out#5")) ==
        static_cast<double>(r.stage("evens").items_out));
  CHECK(sample(text, series("weir_fanin_items_total", "together")) ==
        static_cast<double>(3 * r.stage("evens").items_out));
  CHECK(sample(text, "weir_pipeline_runs_total{pipeline=\"values\",status=\"completed\"}") == 1);
  CHECK(sample(text, "weir_pipeline_running{pipeline=\"values\"}") == 0);
  CHECK(sample(text, "weir_build_info{version=\"" WEIR_VERSION "\"}") == 1);
  CHECK(sample(text, "process_resident_memory_bytes") > 0);
}

TEST_CASE("weir_circuit_state is 0 closed, 1 half-open and 2 open, as docs/metrics.md says") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  const weir::StageInfo c{"breaker", "remote", "map", 1, 1, 1, {}};
  const std::string series = "weir_circuit_state{pipeline=\"breaker\",stage=\"remote\"}";
  using weir::CircuitState;
  prom->on_circuit_state_changed(c, CircuitState::closed, CircuitState::open);
  CHECK(sample(prom->render(), series) == 2);
  prom->on_circuit_state_changed(c, CircuitState::open, CircuitState::half_open);
  CHECK(sample(prom->render(), series) == 1);
  prom->on_circuit_state_changed(c, CircuitState::half_open, CircuitState::closed);
  CHECK(sample(prom->render(), series) == 0);
  CHECK(sample(prom->render(),
               "weir_circuit_state_changes_total{pipeline=\"breaker\",stage=\"remote\",from=\"open\",to="
               "\"half_open\"}") == 1);
}

TEST_CASE("families of operators still to come fill in from their events") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  const weir::StageInfo w{"future", "windows", "window", 1, 1, 1, {}};
  const weir::StageInfo c{"future", "remote", "map", 2, 2, 1, {}};
  const weir::StageInfo r{"future", "router", "route", 3, 3, 1, {}};
  using weir::CircuitState;
  prom->on_window_emitted(w, 12);
  prom->on_late_item(w, 3);
  prom->on_watermark(w, 1500ms);
  prom->on_windows_open(w, 2);
  prom->on_circuit_state_changed(c, CircuitState::closed, CircuitState::open);
  prom->on_circuit_rejected(c, 5);
  prom->on_circuit_failure(c, 1);
  prom->on_circuit_success(c, 1);
  prom->on_timeout(c, 10ms, 12ms);
  prom->on_routes_selected(r, 2);
  prom->on_no_route(r, 1);
  prom->on_route_processed(r, "eu", 40, 3ms);
  prom->on_mapreduce_phase(r, weir::telemetry::MapReducePhase::shuffle, 2ms);
  prom->on_mapreduce_keys(r, 9);
  prom->on_mapreduce_key_group(r, 4);
  prom->on_join_group_created(r);
  prom->on_join_group_completed(r, 3);
  prom->on_buffer_batch(r, 64);
  const std::string text = prom->render();
  const auto docs = documented();
  const auto exposed = exposed_types(text);
  for (const auto& [name, doc] : docs) {
    CAPTURE(name);
    if (!doc.today) {
      CHECK(exposed.count(name) == 1);
    }
  }
  CHECK(sample(text, "weir_circuit_state{pipeline=\"future\",stage=\"remote\"}") == 2);
  CHECK(sample(text,
               "weir_circuit_state_changes_total{pipeline=\"future\",stage=\"remote\",from=\"closed\",to="
               "\"open\"}") == 1);
  CHECK(sample(text, "weir_window_late_items_total{pipeline=\"future\",stage=\"windows\"}") == 3);
  CHECK(sample(text, "weir_watermark_lag_seconds{pipeline=\"future\",stage=\"windows\"}") == 1.5);
  CHECK(sample(text, "weir_router_route_items_total{pipeline=\"future\",stage=\"router\",route=\"eu\"}") ==
        40);
  CHECK(sample(text, "weir_window_items_count{pipeline=\"future\",stage=\"windows\"}") == 1);
  const auto lint = promtool_check(text);
  if (lint) {
    CAPTURE(lint->second);
    CHECK(lint->first == 0);
  }
}

TEST_CASE("user metrics are exposed under weir_user_ and cannot leave that prefix") {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  const weir::StageInfo s{"user", "parse", "map", 1, 1, 1, {}};
  using weir::telemetry::CustomKind;
  prom->on_custom_metric(s, "rows_seen", 2, CustomKind::counter);
  prom->on_custom_metric(s, "rows_seen", 3, CustomKind::counter);
  prom->on_custom_metric(s, "Queue Size", 7, CustomKind::gauge);
  prom->on_custom_metric(s, "} evil{", 1, CustomKind::gauge);
  const std::string text = prom->render();
  CHECK(sample(text, "weir_user_rows_seen_total{pipeline=\"user\",stage=\"parse\"}") == 5);
  CHECK(sample(text, "weir_user_queue_size{pipeline=\"user\",stage=\"parse\"}") == 7);
  CHECK(sample(text, "weir_user___evil_{pipeline=\"user\",stage=\"parse\"}") == 1);
  for (const auto& [name, type] : exposed_types(text)) {
    CAPTURE(name);
    CHECK((name.rfind("weir_", 0) == 0 || name.rfind("process_", 0) == 0));
  }
  for (int i = 0; i < 300; ++i)
    prom->on_custom_metric(s, std::string("m").append(std::to_string(i)), 1, CustomKind::gauge);
  std::size_t user = 0;
  for (const auto& [name, type] : exposed_types(prom->render())) user += name.rfind("weir_user_", 0) == 0;
  CHECK(user == 256);
}

TEST_CASE("run counters of every status start at zero when a pipeline is attached" WEIR_NEEDS_TELEMETRY) {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::Pipeline p("fresh");
  weir::telemetry::attach(p, prom);
  p.source(iota(0, 3)).sink([](int) {});
  const std::string before = prom->render();
  for (const char* status : {"completed", "failed", "cancelled"}) {
    CAPTURE(status);
    CHECK(sample(before,
                 std::string("weir_pipeline_runs_total{pipeline=\"fresh\",status=\"") + status + "\"}") == 0);
  }
  (void)p.run();
  const std::string after = prom->render();
  CHECK(sample(after, "weir_pipeline_runs_total{pipeline=\"fresh\",status=\"completed\"}") == 1);
  CHECK(sample(after, "weir_pipeline_runs_total{pipeline=\"fresh\",status=\"failed\"}") == 0);
}

TEST_CASE("a pipeline attached under a name already watched replaces the earlier one" WEIR_NEEDS_TELEMETRY) {
  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  for (int run = 1; run <= 2; ++run) {
    weir::Pipeline p("again");
    weir::telemetry::attach(p, prom);
    p.source(iota(0, 10 * run)).sink([](int) {}).name("out");
    (void)p.run();
  }
  CHECK(prom->pipelines().size() == 1);
  const std::string text = prom->render();
  CHECK(sample(text, "weir_stage_items_in_total{pipeline=\"again\",stage=\"out\"}") == 20);
  CHECK(sample(text, "weir_pipeline_runs_total{pipeline=\"again\",status=\"completed\"}") == 2);
}

TEST_CASE("the application's own registry is exposed after Weir's families") {
  weir::telemetry::PrometheusOptions o;
  o.registry = std::make_shared<prometheus::Registry>();
  auto& fam = prometheus::BuildCounter().Name("app_orders_total").Help("Orders.").Register(*o.registry);
  fam.Add({}).Increment(3);
  o.process_metrics = false;
  weir::telemetry::PrometheusCollector prom(o);
  const std::string text = prom.render();
  CHECK(sample(text, "app_orders_total") == 3);
  CHECK(text.find("weir_build_info") < text.find("app_orders_total"));
  CHECK_FALSE(contains(text, "process_cpu_seconds_total"));
}

TEST_CASE("span counters of a watched tracer reach the exposition") {
  namespace wt = weir::telemetry;
  auto memory = std::make_shared<wt::InMemoryExporter>();
  wt::BatchSpanProcessorOptions po;
  po.max_queue_size = 4;
  po.max_export_batch_size = 100;             // never reached: no early export
  po.schedule_delay = std::chrono::hours{1};  // nothing leaves the queue before the flush below
  auto tracer = std::make_shared<wt::Tracer>(std::make_shared<wt::BatchSpanProcessor>(memory, po));
  auto prom = std::make_shared<wt::PrometheusCollector>();
  prom->watch(tracer);
  prom->watch(tracer);  // counted once
  for (int i = 0; i < 6; ++i) tracer->start_span("work").end();
  REQUIRE(tracer->force_flush(5s));
  wt::Headers bad{{"traceparent", "00-not-a-trace"}};
  const auto rejected_before = wt::propagation_stats().rejected;
  CHECK_FALSE(wt::extract(bad).valid());
  const std::string text = prom->render();
  CHECK(sample(text, "weir_spans_exported_total") == 4);
  CHECK(sample(text, "weir_spans_dropped_total{reason=\"queue_full\"}") == 2);
  CHECK(sample(text, "weir_spans_dropped_total{reason=\"export_failed\"}") == 0);
  CHECK(sample(text, "weir_traceparent_rejected_total") == static_cast<double>(rejected_before + 1));
  CHECK(memory->spans().size() == 4);
}
