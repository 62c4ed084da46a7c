// A pipeline that runs until SIGTERM or SIGINT (or --seconds) and serves the live page on 127.0.0.1,
// for the browser test: a paced source, a fused parse + filter, a lookup whose circuit breaker opens
// after its backend starts failing (its items go to a dead-letter sink), a slow parallel stage that
// holds its input back, an event-time window in two partitions and two sinks. Prints
// "url http://127.0.0.1:PORT" on stdout once the server listens.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <weir/telemetry/http_server.hpp>
#include <weir/weir.hpp>

namespace {

using namespace std::chrono_literals;

struct Reading {
  std::uint32_t sensor = 0;
  std::uint64_t seq = 0;
  double value = 0;
  std::chrono::system_clock::time_point time;
};

/// Spins for about `d` (a stage doing real work, without sleeping a oneTBB worker).
void work_for(std::chrono::nanoseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 120;
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--seconds") seconds = std::atoi(argv[i + 1]);
    if (arg == "--port") port = std::atoi(argv[i + 1]);
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto prom = std::make_shared<weir::telemetry::PrometheusCollector>();
  weir::Pipeline p("sensors");
  weir::telemetry::attach(p, prom);

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> dead{0};
  std::uint64_t next = 0;
  auto generate = [&stop, &next]() -> std::optional<std::uint64_t> {
    if (stop.load(std::memory_order_relaxed)) return std::nullopt;
    if (++next % 100 == 0) std::this_thread::sleep_for(1ms);  // about 50'000 readings a second
    return next;
  };
  auto parsed = p.source(weir::from_generator{generate})
                    .name("readings")
                    .map([](std::uint64_t i) {
                      return Reading{static_cast<std::uint32_t>(i % 16), i,
                                     static_cast<double>(i % 1000) / 10.0, std::chrono::system_clock::now()};
                    })
                    .name("parse")
                    .filter([](const Reading& r) { return r.value < 95.0; })
                    .name("in_range");
  // The lookup's backend fails from the 2000th reading on: three failures in a row open the breaker,
  // which then rejects every call (open for an hour), and the rejected readings go to the dead letters.
  parsed
      .map([](const Reading& r) {
        if (r.seq > 2000) throw std::runtime_error("calibration service unavailable");
        return r;
      })
      .name("calibrate")
      .circuit_breaker(weir::CircuitBreakerOptions{3, std::chrono::hours{1}, 1})
      .on_error(weir::on_error::dead_letter([&dead](weir::DeadLetter<Reading>) { dead.fetch_add(1); }))
      .sink([](const Reading&) {})
      .name("calibrated");
  parsed
      .map([](Reading r) {
        work_for(30us);
        r.value *= 1.5;
        return r;
      })
      .name("score")
      .parallelism(2)
      .key_by([](const Reading& r) { return r.sensor; })
      .window(weir::tumbling{1s})
      .event_time([](const Reading& r) { return r.time; }, 200ms)
      .count()
      .name("per_sensor")
      .parallelism(2)
      .sink([&stored](const weir::WindowResult<std::uint32_t, std::uint64_t>&) { stored.fetch_add(1); })
      .name("store");

  weir::telemetry::ServerOptions options;
  options.port = port;
  weir::telemetry::TelemetryServer server(prom, options);
  std::cout << "url " << server.url() << std::endl;

  std::thread run([&p] {
    try {
      (void)p.run();
    } catch (const std::exception& e) {
      std::cerr << "live_pipeline: " << e.what() << "\n";
    }
  });
  timespec limit{seconds, 0};
  (void)sigtimedwait(&stop_signals, nullptr, &limit);
  stop = true;
  p.cancel();
  run.join();
  std::cerr << "live_pipeline: stored " << stored.load() << " windows, " << dead.load() << " dead letters\n";
  return EXIT_SUCCESS;
}
