// Tests of buffer: vectors of n items, the maximum delay on source stamps and on the timer, and the
// flush at end of input.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {
using namespace std::chrono_literals;
using weir_test::with_batch;
}  // namespace

TEST_CASE("buffer groups items into vectors of n in order and flushes the rest at end of input") {
  std::vector<int> in(1003);
  std::iota(in.begin(), in.end(), 0);
  std::vector<std::vector<int>> out;
  weir::Pipeline p("buffer", with_batch(64));
  p.source(in).buffer(100).sink(weir::collect_into(out));
  const auto rep = p.run();
  REQUIRE(out.size() == 11);
  std::vector<int> flat;
  for (std::size_t k = 0; k < out.size(); ++k) {
    CHECK(out[k].size() == (k < 10 ? 100U : 3U));
    flat.insert(flat.end(), out[k].begin(), out[k].end());
  }
  CHECK(flat == in);
  CHECK(rep.stage("buffer#1").items_in == 1003);
  CHECK(rep.stage("buffer#1").items_out == 11);
}

TEST_CASE(
    "buffer emits a partial vector once its first item has waited the maximum delay" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o = with_batch(1);
  o.clock = clock;
  o.timer_interval = 0ms;
  int i = 0;
  std::vector<std::vector<int>> out;
  std::vector<std::chrono::nanoseconds> waits;
  struct Waits final : weir::Interceptor {
    std::mutex m;
    std::vector<std::chrono::nanoseconds>* waits;
    void on_event(const weir::StageInfo&, const weir::Event& e) override {
      if (const auto* b = std::get_if<weir::events::BufferFlushed>(&e)) {
        const std::lock_guard lock(m);
        waits->push_back(b->waited);
      }
    }
  };
  auto w = std::make_shared<Waits>();
  w->waits = &waits;
  weir::Pipeline p("buffer-delay", o);
  p.intercept(w);
  // Items leave the source 300 ms apart: a vector closes when its first item is 1 s old.
  p.source(weir::from_generator{[&]() -> std::optional<int> {
     if (i == 12) return std::nullopt;
     clock->advance(300ms);
     return i++;
   }})
      .buffer(100, 1s)
      .sink(weir::collect_into(out));
  p.run();
  REQUIRE(out.size() == 3);
  CHECK(out[0] == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(out[1] == std::vector<int>{5, 6, 7, 8, 9});
  CHECK(out[2] == std::vector<int>{10, 11});
  REQUIRE(waits.size() == 3);
  CHECK(waits[0] == 1200ms);
}

TEST_CASE("the pipeline timer emits a buffer's partial vector while its source is idle") {
  auto push = std::make_shared<weir::ops::PushSource<int>>(16);
  std::mutex m;
  std::vector<std::vector<int>> out;
  weir::PipelineOptions o;
  o.timer_interval = 5ms;
  weir::Pipeline p("buffer-timer", o);
  p.source(push).buffer(1000, 20ms).sink([&](std::vector<int> v) {
    const std::lock_guard lock(m);
    out.push_back(std::move(v));
  });
  p.start();
  push->push(1);
  push->push(2);
  CHECK(weir_test::eventually([&] {
    const std::lock_guard lock(m);
    return !out.empty();
  }));
  push->close();
  p.wait();
  REQUIRE(!out.empty());
  CHECK(out[0] == std::vector<int>{1, 2});
}

TEST_CASE("buffer rejects a size of zero") {
  weir::Pipeline p("buffer-bad");
  std::vector<int> in;
  CHECK_THROWS_AS(p.source(in).buffer(0), std::invalid_argument);
}
