// Tests of .timeout(d): calls run on the stage's own threads; a call that outlives its limit fails
// with weir::TimeoutError through retry and the error policy while it goes on running, unseen.
//
// Every test uses a ManualClock. A "hung" call moves the clock past its limit and then blocks on a
// gate that the test opens at the end; a call that returns without moving the clock past its limit is
// always seen. ManualClock::wait_until waits until the call returns or the clock passes the deadline,
// so neither case depends on how threads are scheduled.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <weir/weir.hpp>

#include "event_log.hpp"
#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
using weir_test::contains;
using weir_test::EventLog;

std::vector<int> iota(int from, int to) {
  std::vector<int> v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

weir::PipelineOptions manual(std::shared_ptr<weir::ManualClock>& clock, std::size_t batch_size = 256) {
  clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.batch_size = batch_size;
  o.clock = clock;
  return o;
}

/// What a hung call waits on, and what it reports when it finally returns. Shared with the call, so
/// it outlives whatever the test does with the pipeline.
struct Hang {
  std::shared_ptr<weir::ManualClock> clock;
  std::chrono::nanoseconds moves{150ms};
  weir::Notification gate;      ///< opened by the test
  weir::Notification finished;  ///< notified by the call when it returns
  std::atomic<int> entered{0};
  /// Called inside the user's function: moves the clock past the limit, then hangs until the gate opens.
  void hang() {
    entered.fetch_add(1);
    clock->advance(moves);
    gate.wait();
  }
};

std::vector<std::chrono::nanoseconds> actuals(const EventLog& log) {
  std::vector<std::chrono::nanoseconds> out;
  for (const auto& e : log.of<weir::events::TimeoutOccurred>()) {
    CHECK(e.configured == 100ms);
    out.push_back(e.actual);
  }
  return out;
}

}  // namespace

TEST_CASE(
    "a call that returns in time is seen and a hung call times out without holding the "
    "stage" WEIR_NEEDS_TELEMETRY) {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("hung_map", manual(clock, 4));
  auto log = std::make_shared<EventLog>();
  p.intercept(log);
  auto hang = std::make_shared<Hang>();
  hang->clock = clock;
  std::vector<int> got;
  p.source(iota(0, 10))
      .map([hang](int x) {
        if (x == 3) {
          hang->hang();
          hang->finished.notify();
          return -1;
        }
        if (x == 5) hang->clock->advance(60ms);  // slow but within the limit
        return x * 10;
      })
      .name("call")
      .timeout(100ms)
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{0, 10, 20, 40, 50, 60, 70, 80, 90});
  const auto& s = r.stage("call");
  CHECK(s.timeouts == 1);
  CHECK(s.errors == 1);
  CHECK(s.skipped == 1);
  CHECK(s.items_in == 10);
  CHECK(s.items_out == 9);
  CHECK(actuals(*log) == std::vector<std::chrono::nanoseconds>{150ms});
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].type == "weir::TimeoutError");
  CHECK(contains(r.errors[0].message, "did not finish within 100ms"));
  // The hung call is still running; once let go it returns, and its result goes nowhere.
  CHECK_FALSE(hang->finished.notified());
  hang->gate.notify();
  hang->finished.wait();
  CHECK(got.size() == 9);
}

TEST_CASE("a timed-out call keeps its item and its function alive after the pipeline is gone") {
  auto clock = std::make_shared<weir::ManualClock>();
  auto hang = std::make_shared<Hang>();
  hang->clock = clock;
  auto seen = std::make_shared<std::string>();
  std::vector<std::string> got;
  {
    weir::PipelineOptions o;
    o.clock = clock;
    weir::Pipeline p("outlives", o);
    const std::string suffix(64, '!');  // heap-allocated: a dangling copy would show under ASan
    p.source(std::vector<std::string>{"short", "a long item that does not fit in the small buffer"})
        .map([hang, seen, suffix](const std::string& s) {
          if (s.size() > 10) {
            hang->hang();
            *seen = s + suffix;  // reads the item's copy and the function's state after the run
            hang->finished.notify();
          }
          return s;
        })
        .timeout(100ms)
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(r.stage("map#1").timeouts == 1);
  }
  CHECK(got == std::vector<std::string>{"short"});
  hang->gate.notify();
  hang->finished.wait();
  CHECK(*seen == "a long item that does not fit in the small buffer" + std::string(64, '!'));
}

TEST_CASE(
    "timeouts reach the dead-letter sink with their error type and every attempt "
    "counted" WEIR_NEEDS_TELEMETRY) {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("timeout_dlq", manual(clock));
  auto log = std::make_shared<EventLog>();
  p.intercept(log);
  auto hang = std::make_shared<Hang>();
  hang->clock = clock;
  std::vector<weir::DeadLetter<int>> letters;
  std::vector<int> got;
  weir::RetryPolicy retry;
  retry.max_attempts = 3;
  retry.initial_backoff = 10ms;
  p.source(iota(0, 4))
      .map([hang](int x) {
        if (x == 3) hang->hang();
        return x;
      })
      .timeout(weir::TimeoutOptions{100ms, 3})
      .retry(retry)
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{0, 1, 2});
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].item == 3);
  CHECK(letters[0].attempts == 3);
  CHECK(letters[0].error_type == "weir::TimeoutError");
  CHECK(contains(letters[0].message, "did not finish within 100ms"));
  CHECK(hang->entered.load() == 3);  // each attempt was a call, each on a thread of its own
  const auto& s = r.stage("map#1");
  CHECK(s.timeouts == 3);
  CHECK(s.retries == 2);
  CHECK(s.dead_lettered == 1);
  CHECK(actuals(*log) == std::vector<std::chrono::nanoseconds>{150ms, 150ms, 150ms});
  CHECK(log->of<weir::events::RetryAttempt>().size() == 2);
  CHECK(clock->steady_now().time_since_epoch() == 3 * 150ms + 10ms + 20ms);
  hang->gate.notify();
}

TEST_CASE(
    "when every thread is busy with a hung call, later calls fail at once without being "
    "made" WEIR_NEEDS_TELEMETRY) {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("saturated", manual(clock));
  auto log = std::make_shared<EventLog>();
  p.intercept(log);
  auto hang = std::make_shared<Hang>();
  hang->clock = clock;
  auto calls = std::make_shared<std::atomic<int>>(0);
  std::vector<weir::DeadLetter<int>> letters;
  std::vector<int> got;
  p.source(iota(0, 4))
      .map([hang, calls](int x) {
        calls->fetch_add(1);
        if (x == 1) hang->hang();
        return x;
      })
      .timeout(weir::TimeoutOptions{100ms, 1})
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{0});
  CHECK(calls->load() == 2);  // 0 and the hung 1; 2 and 3 found no thread
  REQUIRE(letters.size() == 3);
  CHECK(letters[0].item == 1);
  CHECK(contains(letters[0].message, "did not finish within 100ms"));
  CHECK(letters[1].item == 2);
  CHECK(letters[2].item == 3);
  for (const auto& d : letters) {
    CHECK(d.error_type == "weir::TimeoutError");
    CHECK(d.attempts == 1);
  }
  CHECK(contains(letters[1].message, "every timeout thread is busy"));
  CHECK(r.stage("map#1").timeouts == 3);
  CHECK(actuals(*log) == std::vector<std::chrono::nanoseconds>{150ms, 0ns, 0ns});
  hang->gate.notify();
}

TEST_CASE("a timeout fails the run under the default policy and the run still ends") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("timeout_fails", manual(clock));
  auto hang = std::make_shared<Hang>();
  hang->clock = clock;
  p.source(iota(0, 3))
      .sink([hang](int x) {
        if (x == 1) hang->hang();
      })
      .timeout(100ms);
  try {
    (void)p.run();
    FAIL("the run did not fail");
  } catch (const weir::PipelineError& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK(e.errors()[0].type == "weir::TimeoutError");
    CHECK(e.report().stage("sink#1").timeouts == 1);
  }
  hang->gate.notify();
}

TEST_CASE("filter, flat_map and callback sink stages time out like a map") {
  std::shared_ptr<weir::ManualClock> clock;
  auto hang = std::make_shared<Hang>();
  SUBCASE("filter") {
    weir::Pipeline p("filter_timeout", manual(clock, 3));
    hang->clock = clock;
    std::vector<int> got;
    p.source(iota(0, 8))
        .filter([hang](int x) {
          if (x == 4) hang->hang();
          return x % 2 == 0;
        })
        .timeout(100ms)
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(got == std::vector<int>{0, 2, 6});
    CHECK(r.stage("filter#1").timeouts == 1);
    CHECK(r.stage("filter#1").filtered == 4);
    CHECK(r.stage("filter#1").skipped == 1);
  }
  SUBCASE("flat_map") {
    weir::Pipeline p("flat_map_timeout", manual(clock, 3));
    hang->clock = clock;
    std::vector<int> got;
    p.source(iota(0, 4))
        .flat_map([hang](int x) {
          if (x == 2) hang->hang();
          return std::vector<int>(static_cast<std::size_t>(x), x);
        })
        .timeout(100ms)
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(got == std::vector<int>{1, 3, 3, 3});
    CHECK(r.stage("flat_map#1").timeouts == 1);
  }
  SUBCASE("sink") {
    weir::Pipeline p("sink_timeout", manual(clock, 3));
    hang->clock = clock;
    auto got = std::make_shared<std::vector<int>>();
    std::vector<int> letters;
    p.source(iota(0, 6))
        .sink([hang, got](int x) {
          if (x == 5) hang->hang();
          got->push_back(x);  // the sink stays serial: a hung call never overlaps a later one here
        })
        .timeout(100ms)
        .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d.item); }));
    const auto r = p.run();
    CHECK(*got == iota(0, 5));
    CHECK(letters == std::vector<int>{5});
    CHECK(r.stage("sink#1").timeouts == 1);
    CHECK(r.stage("sink#1").items_out == 5);
  }
  hang->gate.notify();
}

TEST_CASE("an exception thrown by a timed call reaches the error policy with its own type") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("timed_throw", manual(clock));
  std::vector<std::string> types;
  std::vector<int> got;
  p.source(iota(0, 4))
      .map([](int x) {
        if (x == 2) throw std::out_of_range("two");
        return x;
      })
      .timeout(1s)
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { types.push_back(d.error_type); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{0, 1, 3});
  CHECK(types == std::vector<std::string>{"std::out_of_range"});
  CHECK(r.stage("map#1").timeouts == 0);
}

TEST_CASE("timed calls of a parallel stage all return and are seen") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("parallel_timeout", manual(clock, 16));
  std::atomic<long> sum{0};
  p.source(iota(0, 1000))
      .map([](int x) { return x * 2; })
      .parallelism(2)
      .timeout(1s)
      .sink([&sum](int x) { sum.fetch_add(x); })
      .parallelism(2);
  const auto r = p.run();
  CHECK(sum.load() == 999 * 1000);
  CHECK(r.stage("map#1").timeouts == 0);
  CHECK(r.stage("map#1").items_out == 1000);
}

TEST_CASE("timeout is refused on stages it cannot wrap and with a limit that is not positive") {
  weir::Pipeline p("refused");
  auto src = p.source(iota(0, 3));
  CHECK_THROWS_AS((void)src.timeout(1s), std::invalid_argument);
  auto m = src.map([](int x) { return x; });
  CHECK_THROWS_AS((void)m.timeout(0ms), std::invalid_argument);
  CHECK_THROWS_AS((void)m.timeout(weir::TimeoutOptions{1s, -1}), std::invalid_argument);
  CHECK_NOTHROW((void)m.timeout(1s));
  std::vector<int> out;
  auto collect = m.sink(weir::collect_into(out));
  CHECK_THROWS_AS((void)collect.timeout(1s), std::invalid_argument);
}

TEST_CASE("ManualClock::wait_until returns when notified, or when the clock passes the deadline") {
  weir::ManualClock clock;
  const auto deadline = clock.steady_now() + 100ms;
  SUBCASE("notified") {
    weir::Notification done;
    std::thread t([&] { done.notify(); });
    CHECK(clock.wait_until(done, deadline));
    t.join();
  }
  SUBCASE("advanced past the deadline from another thread") {
    weir::Notification never;
    std::thread t([&] {
      clock.advance(60ms);
      clock.advance(60ms);
    });
    CHECK_FALSE(clock.wait_until(never, deadline));
    CHECK(clock.steady_now() >= deadline);
    t.join();
  }
  SUBCASE("already past") {
    weir::Notification never;
    clock.advance(100ms);
    CHECK_FALSE(clock.wait_until(never, deadline));
  }
}

TEST_CASE("cancel ends the wait for a timed call at once and the item goes to the error policy") {
  // The system clock and a 20 s limit: the run ends within the bound only if cancel wakes the wait.
  auto entered = std::make_shared<weir::Notification>();
  auto gate = std::make_shared<weir::Notification>();
  weir::Pipeline p("timeout-cancel");
  std::vector<int> got;
  p.source(std::vector<int>{1})
      .map([entered, gate](int x) {
        entered->notify();
        gate->wait();  // hangs until the test opens the gate
        return x;
      })
      .timeout(20s)
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(got));
  const auto t0 = std::chrono::steady_clock::now();
  p.start();
  entered->wait();
  p.cancel();
  const auto r = p.wait();
  const auto took = std::chrono::steady_clock::now() - t0;
  gate->notify();
  CHECK(took < 10s);
  CHECK(r.status == weir::RunStatus::cancelled);
  CHECK(got.empty());
  const auto& s = r.stage("map#1");
  CHECK(s.errors == 1);
  CHECK(s.skipped == 1);
  CHECK(s.timeouts == 0);  // the call did not outlive its limit
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].type == "weir::TimeoutError");
  CHECK(contains(r.errors[0].message, "because the run stopped"));
}

TEST_CASE("a timed call given up by cancel leaves the run cancelled under the default fail policy") {
  auto entered = std::make_shared<weir::Notification>();
  auto gate = std::make_shared<weir::Notification>();
  weir::Pipeline p("timeout-cancel-fail");
  std::vector<int> got;
  p.source(std::vector<int>{1})
      .map([entered, gate](int x) {
        entered->notify();
        gate->wait();
        return x;
      })
      .timeout(20s)
      .sink(weir::collect_into(got));
  p.start();
  entered->wait();
  p.cancel();
  weir::RunReport r;
  CHECK_NOTHROW(r = p.wait());
  gate->notify();
  CHECK(r.status == weir::RunStatus::cancelled);
  CHECK(r.stage("map#1").errors == 1);
  REQUIRE(r.errors.size() == 1);
  CHECK(contains(r.errors[0].message, "because the run stopped"));
}
