// flights_etl: reads US flight records and airports, validates and enriches every flight with the
// states of its airports, writes the enriched flights as JSON lines and every unusable record to
// dead_letters.jsonl with its index and the reason. Prints the run report at the end.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ranges>
#include <string>
#include <weir/telemetry/http_server.hpp>
#include <weir/weir.hpp>

#include "flights.hpp"

namespace {

/// dead_letters.jsonl: one {"index","reason","record"} line per unusable record, from any stage.
class DeadLetterFile {
 public:
  DeadLetterFile(const std::filesystem::path& path, const std::vector<flights::RawRecord>& records)
      : path_(path), out_(path, std::ios::binary), records_(records) {
    if (!out_) throw flights::InputError("cannot write " + path.string());
  }
  void write(std::int64_t index, const std::string& reason) {
    const auto& raw = records_[static_cast<std::size_t>(index)].json;
    auto record = nlohmann::json::parse(raw, nullptr, false);
    if (record.is_discarded()) record = raw;  // not JSON: keep the text as it was
    const nlohmann::json line{{"index", index}, {"reason", reason}, {"record", std::move(record)}};
    const std::lock_guard lock(mutex_);
    out_ << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    ++count_;
  }
  std::uint64_t count() const { return count_; }
  void flush() {
    out_.flush();
    if (!out_) throw std::runtime_error("cannot write " + path_.string());
  }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
  const std::vector<flights::RawRecord>& records_;
  std::mutex mutex_;
  std::uint64_t count_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Flights ETL: validate and enrich US flight records with Weir"};
  std::filesystem::path flights_path = "data/flights-20k.json";
  std::filesystem::path airports_path = "data/airports.csv";
  std::filesystem::path out_dir = "out/flights";
  int parallelism = 1;
  app.add_option("--flights", flights_path, "flight records: a JSON array or JSON lines")
      ->capture_default_str();
  app.add_option("--airports", airports_path,
                 "airports CSV (iata,name,city,state,country,latitude,longitude)")
      ->capture_default_str();
  app.add_option("--out", out_dir, "output directory")->capture_default_str();
  app.add_option("--parallelism", parallelism, "threads for the parse and enrich stages")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  int metrics_port = -1;
  bool keep_serving = false;
  auto* port_opt = app.add_option("--metrics-port", metrics_port,
                                  "serve /metrics, /health, /ready, /live and /dag on 127.0.0.1:P "
                                  "(0: a free port; off when absent)")
                       ->check(CLI::Range(0, 65535));
  app.add_flag("--keep-serving", keep_serving,
               "keep the endpoints up after the run until SIGINT or SIGTERM, then exit")
      ->needs(port_opt);
  CLI11_PARSE(app, argc, argv);

  // Blocked before any thread starts, so that only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (keep_serving) pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    const auto airports = flights::AirportTable::load(airports_path);
    const auto records = flights::read_records(flights_path);
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) throw flights::InputError("cannot create " + out_dir.string() + ": " + ec.message());
    DeadLetterFile dead_letters(out_dir / "dead_letters.jsonl", records);

    weir::Pipeline p("flights_etl");
    std::shared_ptr<weir::telemetry::PrometheusCollector> metrics;
    std::unique_ptr<weir::telemetry::TelemetryServer> server;
    if (metrics_port >= 0) {
      metrics = std::make_shared<weir::telemetry::PrometheusCollector>();
      weir::telemetry::attach(p, metrics);
      weir::telemetry::ServerOptions so;
      so.port = metrics_port;
      server = std::make_unique<weir::telemetry::TelemetryServer>(metrics, so);
      std::cerr << "flights_etl: metrics at " << server->url() << "/metrics\n";
    }
    p.source(std::views::iota(std::size_t{0}, records.size()))
        .name("records")
        .map([&records](std::size_t i) { return flights::parse_flight(records[i]); })
        .name("parse")
        .parallelism(parallelism)
        .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<std::size_t> d) {
          dead_letters.write(static_cast<std::int64_t>(d.item), d.message);
        }))
        .map([&airports](flights::Flight&& f) { return flights::enrich(std::move(f), airports); })
        .name("enrich")
        .parallelism(parallelism)
        .on_error(weir::on_error::dead_letter(
            [&](weir::DeadLetter<flights::Flight> d) { dead_letters.write(d.item.index, d.message); }))
        .sink(weir::jsonl_file{out_dir / "enriched.jsonl",
                               [](const flights::EnrichedFlight& f) {
                                 std::string line;
                                 flights::append_json(line, f);
                                 return line;
                               }})
        .name("write_enriched");

    const auto report = p.run();
    dead_letters.flush();
    std::cout << report.to_string();
    const auto written = report.stage("write_enriched").items_out;
    std::cout << "records " << records.size() << ", enriched " << written << ", dead letters "
              << dead_letters.count() << " -> " << out_dir.string() << "\n";
    int code = 0;
    if (written + dead_letters.count() != records.size()) {
      std::cerr << "flights_etl: " << records.size() - written - dead_letters.count()
                << " records unaccounted for\n";
      code = 1;
    }
    if (keep_serving) {
      std::cerr << "flights_etl: serving " << server->url() << " until SIGINT or SIGTERM\n";
      int sig = 0;
      sigwait(&stop_signals, &sig);
      server->stop();
    }
    return code;
  } catch (const flights::InputError& e) {
    std::cerr << "flights_etl: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {  // weir::PipelineError, or an output that cannot be written
    std::cerr << "flights_etl: " << e.what() << "\n";
    return 1;
  }
}
