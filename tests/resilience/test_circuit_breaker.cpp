// Tests of .circuit_breaker(options): the closed / open / half-open state machine on a ManualClock,
// rejections through the error policy and the dead-letter sink, per-batch events, the state in the
// report and read live, and the state shared by the threads of a parallel stage.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>
#include <weir/resilience/guard.hpp>
#include <weir/resilience/stage_resilience.hpp>
#include <weir/weir.hpp>

#include "event_log.hpp"
#include "stage_runtime.hpp"
#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
using weir::CircuitState;
using weir_test::EventLog;
using Breaker = weir::detail::CircuitBreaker;

std::vector<int> iota(int from, int to) {
  std::vector<int> v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

using Change = std::pair<CircuitState, CircuitState>;

std::vector<Change> changes(const EventLog& log) {
  std::vector<Change> out;
  for (const auto& c : log.of<weir::events::CircuitStateChanged>()) out.emplace_back(c.from, c.to);
  return out;
}

template <class E>
std::vector<std::uint64_t> counts(const EventLog& log) {
  std::vector<std::uint64_t> out;
  for (const auto& e : log.of<E>()) out.push_back(e.count);
  return out;
}

/// A source of 0..n-1 that moves `clock` on by `step` before each item; with batches of one item each
/// item is processed at a known time: item i at (i + 1) * step.
auto ticking(std::shared_ptr<weir::ManualClock> clock, int n, std::chrono::nanoseconds step) {
  return weir::from_generator{[clock, n, step, i = 0]() mutable -> std::optional<int> {
    if (i == n) return std::nullopt;
    clock->advance(step);
    return i++;
  }};
}

/// Admits one call and reports its outcome; returns whether it was allowed.
bool attempt(Breaker& b, const weir::Clock& clock, bool ok) {
  std::optional<Breaker::Change> change;
  const auto permit = b.admit(clock, change);
  if (!permit.allowed) return false;
  ok ? (void)b.succeeded(permit) : (void)b.failed(permit, clock);
  return true;
}

}  // namespace

TEST_CASE("the breaker opens after failure_threshold failures in a row; a success resets the count") {
  weir::ManualClock clock;
  Breaker b(weir::CircuitBreakerOptions{3, 10s, 1});
  CHECK(attempt(b, clock, false));
  CHECK(attempt(b, clock, false));
  CHECK(attempt(b, clock, true));  // the run of failures starts again
  CHECK(attempt(b, clock, false));
  CHECK(attempt(b, clock, false));
  CHECK(b.state() == CircuitState::closed);
  CHECK(attempt(b, clock, false));
  CHECK(b.state() == CircuitState::open);
  CHECK_FALSE(attempt(b, clock, true));
  clock.advance(10s - 1ns);
  CHECK_FALSE(attempt(b, clock, true));
  CHECK(b.state() == CircuitState::open);
}

TEST_CASE("after open_for the breaker lets half_open_trials calls through and closes when all succeed") {
  weir::ManualClock clock;
  Breaker b(weir::CircuitBreakerOptions{1, 5s, 2});
  CHECK(attempt(b, clock, false));
  REQUIRE(b.state() == CircuitState::open);
  clock.advance(5s);
  std::optional<Breaker::Change> change;
  const auto t1 = b.admit(clock, change);
  REQUIRE(change.has_value());
  CHECK(change->from == CircuitState::open);
  CHECK(change->to == CircuitState::half_open);
  change.reset();
  const auto t2 = b.admit(clock, change);
  const auto t3 = b.admit(clock, change);
  CHECK(t1.allowed);
  CHECK(t2.allowed);
  CHECK_FALSE(t3.allowed);  // only two trials while half-open
  CHECK_FALSE(change.has_value());
  CHECK_FALSE(b.succeeded(t1).has_value());
  CHECK(b.state() == CircuitState::half_open);
  const auto closed = b.succeeded(t2);
  REQUIRE(closed.has_value());
  CHECK(closed->to == CircuitState::closed);
  CHECK(b.state() == CircuitState::closed);
}

TEST_CASE("a failed half-open trial opens the breaker again for another open_for") {
  weir::ManualClock clock;
  Breaker b(weir::CircuitBreakerOptions{2, 1s, 3});
  CHECK(attempt(b, clock, false));
  CHECK(attempt(b, clock, false));
  clock.advance(1s);
  CHECK(attempt(b, clock, true));
  CHECK(attempt(b, clock, false));
  CHECK(b.state() == CircuitState::open);
  clock.advance(999ms);
  CHECK_FALSE(attempt(b, clock, true));
  clock.advance(1ms);
  CHECK(attempt(b, clock, true));
  CHECK(b.state() == CircuitState::half_open);
}

TEST_CASE("the outcome of a call admitted before the last state change does not move the breaker") {
  weir::ManualClock clock;
  Breaker b(weir::CircuitBreakerOptions{1, 1s, 1});
  std::optional<Breaker::Change> change;
  const auto slow = b.admit(clock, change);  // admitted while closed, returns late
  CHECK(attempt(b, clock, false));
  REQUIRE(b.state() == CircuitState::open);
  CHECK_FALSE(b.succeeded(slow).has_value());
  CHECK(b.state() == CircuitState::open);
  clock.advance(1s);
  const auto trial = b.admit(clock, change);
  CHECK_FALSE(b.failed(slow, clock).has_value());  // stale: the trial decides
  CHECK(b.state() == CircuitState::half_open);
  CHECK(b.succeeded(trial).has_value());
  CHECK(b.state() == CircuitState::closed);
}

TEST_CASE(
    "an open circuit rejects calls without making them and the rejections reach the dead-letter "
    "sink" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  o.batch_size = 1;
  weir::Pipeline p("breaker", o);
  auto log = std::make_shared<EventLog>();
  p.intercept(log);
  std::vector<int> called;
  std::vector<weir::DeadLetter<int>> letters;
  std::vector<int> got;
  // Item i is processed at (i + 1) * 100ms. 2, 3 and 4 fail: the circuit opens at 500ms, rejects 5..8,
  // turns half-open at 1000ms (item 9): 9 and 10 succeed and close it; 12, 13 and 14 fail, which opens
  // it again at 1500ms, so 15 and 16 are rejected.
  const std::set<int> failing{2, 3, 4, 12, 13, 14};
  p.source(ticking(clock, 17, 100ms))
      .map([&](int x) {
        called.push_back(x);
        if (failing.count(x) != 0) throw std::runtime_error("service down");
        return x;
      })
      .name("call")
      .circuit_breaker(weir::CircuitBreakerOptions{3, 500ms, 2})
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(called == std::vector<int>{0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 14});
  CHECK(got == std::vector<int>{0, 1, 9, 10, 11});
  REQUIRE(letters.size() == 12);
  std::vector<int> rejected;
  for (const auto& d : letters) {
    CHECK(d.attempts == 1);
    CHECK(d.stage == "call");
    if (d.error_type == "weir::CircuitOpenError") {
      rejected.push_back(d.item);
      CHECK(d.message == "stage 'call': circuit breaker is open, call rejected");
    } else {
      CHECK(d.error_type == "std::runtime_error");
    }
  }
  CHECK(rejected == std::vector<int>{5, 6, 7, 8, 15, 16});
  CHECK(changes(*log) == std::vector<Change>{{CircuitState::closed, CircuitState::open},
                                             {CircuitState::open, CircuitState::half_open},
                                             {CircuitState::half_open, CircuitState::closed},
                                             {CircuitState::closed, CircuitState::open}});
  CHECK(counts<weir::events::CircuitRejected>(*log) == std::vector<std::uint64_t>(6, 1));
  CHECK(r.stage("call").errors == 12);
  CHECK(r.stage("call").dead_lettered == 12);
  CHECK(r.stage("call").circuit == CircuitState::open);
}

TEST_CASE("breaker outcomes are reported once per batch with their counts" WEIR_NEEDS_TELEMETRY) {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  o.batch_size = 50;
  weir::Pipeline p("per_batch", o);
  auto log = std::make_shared<EventLog>();
  p.intercept(log);
  std::vector<int> got;
  // First batch: 0..49; 10..12 fail and open the circuit, 13..49 are rejected.
  // Second batch: 50..99, all rejected (the clock never moves).
  p.source(iota(0, 100))
      .map([](int x) {
        if (x >= 10) throw std::runtime_error("down");
        return x;
      })
      .circuit_breaker(weir::CircuitBreakerOptions{3, 1h, 1})
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == iota(0, 10));
  CHECK(counts<weir::events::CircuitSuccess>(*log) == std::vector<std::uint64_t>{10});
  CHECK(counts<weir::events::CircuitFailure>(*log) == std::vector<std::uint64_t>{3});
  CHECK(counts<weir::events::CircuitRejected>(*log) == std::vector<std::uint64_t>{37, 50});
  CHECK(changes(*log) == std::vector<Change>{{CircuitState::closed, CircuitState::open}});
  CHECK(log->of<weir::events::ItemFailed>().size() == 90);
  CHECK(r.stage("map#1").skipped == 90);
  CHECK(r.stage("map#1").circuit == CircuitState::open);
  CHECK_FALSE(r.stage("collect#2").circuit.has_value());
}

TEST_CASE("a healthy stage's breaker ends closed and a stage without one reports no state") {
  weir::Pipeline p("healthy");
  std::vector<int> got;
  p.source(iota(0, 10))
      .filter([](int x) { return x % 2 == 0; })
      .circuit_breaker(weir::CircuitBreakerOptions{})
      .map([](int x) { return x + 1; })
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{1, 3, 5, 7, 9});
  CHECK(r.stage("filter#1").circuit == CircuitState::closed);
  CHECK(r.stage("filter#1").filtered == 5);
  CHECK_FALSE(r.stage("map#2").circuit.has_value());
}

TEST_CASE("retry does not retry a rejected call and the dead letter counts every attempt") {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  weir::Pipeline p("retry_breaker", o);
  int calls = 0;
  std::vector<weir::DeadLetter<int>> letters;
  std::vector<int> got;
  weir::RetryPolicy retry;
  retry.max_attempts = 3;
  retry.initial_backoff = 1ms;
  p.source(iota(0, 3))
      .map([&calls](int x) -> int {
        ++calls;
        throw std::runtime_error("down " + std::to_string(x));
      })
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d); }))
      .circuit_breaker(weir::CircuitBreakerOptions{2, 1h, 1})
      .retry(retry)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  // Item 0: two calls fail (the circuit opens), the third attempt is rejected. Items 1 and 2: rejected
  // at once, and a rejection is not retried.
  CHECK(calls == 2);
  REQUIRE(letters.size() == 3);
  CHECK(letters[0].attempts == 3);
  CHECK(letters[0].error_type == "weir::CircuitOpenError");
  CHECK(letters[1].attempts == 1);
  CHECK(letters[2].attempts == 1);
  CHECK(letters[2].error_type == "weir::CircuitOpenError");
  CHECK(r.stage("map#1").retries == 2);
  CHECK(clock->steady_now().time_since_epoch() == 3ms);
}

TEST_CASE("a retry predicate may ask to retry a rejection, which the half-open breaker then lets through") {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  weir::Pipeline p("retry_rejection", o);
  int calls = 0;
  std::vector<int> got;
  weir::RetryPolicy retry;
  retry.max_attempts = 3;
  retry.initial_backoff = 1s;
  retry.retryable = [](const std::exception_ptr&) { return true; };
  p.source(std::vector<int>{7})
      .map([&calls](int x) {
        if (++calls == 1) throw std::runtime_error("blip");
        return x;
      })
      .circuit_breaker(weir::CircuitBreakerOptions{1, 1500ms, 1})
      .retry(retry)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  // Call 1 fails and opens the circuit; attempt 2 (after 1s) is rejected; attempt 3 (after 2s more)
  // finds the circuit half-open and its trial call succeeds.
  CHECK(got == std::vector<int>{7});
  CHECK(calls == 2);
  CHECK(r.stage("map#1").circuit == CircuitState::closed);
  CHECK(r.stage("map#1").retries == 2);
}

TEST_CASE("a timeout counts as a failure of the breaker") {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  weir::Pipeline p("timeout_breaker", o);
  auto gate = std::make_shared<weir::Notification>();
  std::vector<std::string> types;
  std::vector<int> got;
  p.source(iota(0, 4))
      .map([clock, gate](int x) {
        if (x == 1) {
          clock->advance(2s);
          gate->wait();
        }
        return x;
      })
      .timeout(1s)
      .circuit_breaker(weir::CircuitBreakerOptions{1, 1h, 1})
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { types.push_back(d.error_type); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{0});
  CHECK(types ==
        std::vector<std::string>{"weir::TimeoutError", "weir::CircuitOpenError", "weir::CircuitOpenError"});
  CHECK(r.stage("map#1").timeouts == 1);
  CHECK(r.stage("map#1").circuit == CircuitState::open);
  gate->notify();
}

TEST_CASE("the threads of a parallel stage share one breaker") {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.clock = clock;
  o.batch_size = 8;
  o.threads = 2;
  weir::Pipeline p("parallel_breaker", o);
  std::atomic<int> calls{0};
  p.source(iota(0, 4000))
      .map([&calls](int x) -> int {
        calls.fetch_add(1);
        throw std::runtime_error(std::to_string(x));
      })
      .parallelism(2)
      .circuit_breaker(weir::CircuitBreakerOptions{5, 1h, 1})
      .on_error(weir::on_error::skip())
      .sink([](int) {})
      .parallelism(2);
  const auto r = p.run();
  // Five failures in a row open it; a call admitted on the other thread just before may add one more.
  CHECK(calls.load() >= 5);
  CHECK(calls.load() <= 6);
  CHECK(r.stage("map#1").skipped == 4000);
  CHECK(r.stage("map#1").circuit == CircuitState::open);
}

TEST_CASE("the stage runtime reads the breaker's state live") {
  weir::ManualClock clock;
  weir::detail::StageRuntime st;
  st.info.name = "live";
  st.clock = &clock;
  CHECK_FALSE(st.circuit_state().has_value());
  weir::detail::StageResilience spec;
  spec.breaker = weir::CircuitBreakerOptions{2, 1s, 1};
  spec.equip(st);
  REQUIRE(st.guard != nullptr);
  CHECK(st.circuit_state() == CircuitState::closed);
  weir::detail::BatchTally tally{};
  auto fail = [](int) -> int { throw std::runtime_error("no"); };
  auto ok = [](int x) { return x; };
  CHECK_THROWS_AS(weir::detail::guarded_call(*st.guard, fail, 1, tally), std::runtime_error);
  CHECK(st.circuit_state() == CircuitState::closed);
  CHECK_THROWS_AS(weir::detail::guarded_call(*st.guard, fail, 2, tally), std::runtime_error);
  CHECK(st.circuit_state() == CircuitState::open);
  CHECK_THROWS_AS(weir::detail::guarded_call(*st.guard, ok, 3, tally), weir::CircuitOpenError);
  clock.advance(1s);
  CHECK(weir::detail::guarded_call(*st.guard, ok, 4, tally) == 4);
  CHECK(st.circuit_state() == CircuitState::closed);
  CHECK(tally.circuit_failures == 2);
  CHECK(tally.circuit_rejected == 1);
  CHECK(tally.circuit_successes == 1);
}

/// A ManualClock that counts the waits of calls that wait for something (Clock::wait_until): how a
/// test sees that a call is waiting for the circuit without sleeping.
class WaitCountingClock final : public weir::Clock {
 public:
  [[nodiscard]] std::chrono::steady_clock::time_point steady_now() const noexcept override {
    return manual.steady_now();
  }
  [[nodiscard]] std::chrono::system_clock::time_point system_now() const noexcept override {
    return manual.system_now();
  }
  void sleep_for(std::chrono::nanoseconds d) override { manual.sleep_for(d); }
  bool sleep_unless(std::chrono::nanoseconds d, weir::Notification& stop) override {
    return manual.sleep_unless(d, stop);
  }
  bool wait_until(weir::Notification& done, std::chrono::steady_clock::time_point deadline) override {
    waits.fetch_add(1);
    return manual.wait_until(done, deadline);
  }

  weir::ManualClock manual;
  std::atomic<int> waits{0};
};

/// A pipeline push source -> map "call" (guarded, waiting while open) -> collect, on a
/// WaitCountingClock; the test thread pushes items and moves the clock.
struct WaitingStage {
  std::shared_ptr<WaitCountingClock> clock = std::make_shared<WaitCountingClock>();
  std::shared_ptr<weir::PushSource<int>> push = std::make_shared<weir::PushSource<int>>(16);
  std::atomic<bool> up{false};  // the service answers
  std::atomic<int> calls{0};
  weir::Notification gate;  // item 10 waits for it inside the call
  std::mutex mutex;
  std::vector<weir::DeadLetter<int>> letters;
  std::vector<int> got;
  std::unique_ptr<weir::Pipeline> p;

  explicit WaitingStage(int parallelism) {
    weir::PipelineOptions o;
    o.clock = clock;
    o.batch_size = 1;
    o.threads = 4;
    p = std::make_unique<weir::Pipeline>("waiting_breaker", o);
    p->source(push)
        .map([this](int x) {
          calls.fetch_add(1);
          if (x == 10) gate.wait();
          if (!up.load() && x < 10) throw std::runtime_error("service down");
          return x;
        })
        .name("call")
        .parallelism(parallelism)
        .circuit_breaker(weir::CircuitBreakerOptions{2, 10s, 1, weir::OnCircuitOpen::wait})
        .on_error(weir::on_error::dead_letter([this](weir::DeadLetter<int> d) {
          const std::lock_guard lock(mutex);
          letters.push_back(std::move(d));
        }))
        .sink(weir::collect_into(got));
    p->start();
  }
  ~WaitingStage() {
    gate.notify();
    push->close();
    if (p) p->cancel();
  }
  WaitingStage(const WaitingStage&) = delete;
  WaitingStage& operator=(const WaitingStage&) = delete;

  [[nodiscard]] std::optional<CircuitState> state() const {
    return p->snapshot().report.stage("call").circuit;
  }
  /// Pushes two failing items, which open the circuit.
  void open() {
    REQUIRE(push->push(0));
    REQUIRE(push->push(1));
    REQUIRE(weir_test::eventually([&] { return state() == CircuitState::open; }));
  }
  [[nodiscard]] std::size_t letter_count() {
    const std::lock_guard lock(mutex);
    return letters.size();
  }
};

TEST_CASE("with on_open wait a call waits while the circuit is open and then goes through as the trial") {
  WaitingStage w(1);
  w.open();
  REQUIRE(w.push->push(2));
  REQUIRE(weir_test::eventually([&] { return w.clock->waits.load() == 1; }));
  CHECK(w.calls.load() == 2);    // the waiting call was not made
  CHECK(w.letter_count() == 2);  // nor rejected
  w.up = true;
  w.clock->manual.advance(10s);  // the pause ends: the waiting call is the half-open trial
  REQUIRE(weir_test::eventually([&] { return w.state() == CircuitState::closed; }));
  w.push->close();
  const auto r = w.p->wait();
  CHECK(w.got == std::vector<int>{2});
  CHECK(w.calls.load() == 3);
  REQUIRE(w.letters.size() == 2);
  for (const auto& d : w.letters) CHECK(d.error_type == "std::runtime_error");
  CHECK(r.stage("call").dead_lettered == 2);
  CHECK(r.stage("call").circuit == CircuitState::closed);
}

TEST_CASE("a call waiting for an open circuit is rejected at once when the run is cancelled") {
  WaitingStage w(1);
  w.open();
  REQUIRE(w.push->push(2));
  REQUIRE(weir_test::eventually([&] { return w.clock->waits.load() == 1; }));
  w.p->cancel();  // the clock does not move: only the cancel ends the wait
  const auto r = w.p->wait();
  CHECK(r.status == weir::RunStatus::cancelled);
  CHECK(w.calls.load() == 2);
  REQUIRE(w.letters.size() == 3);
  CHECK(w.letters[2].item == 2);
  CHECK(w.letters[2].error_type == "weir::CircuitOpenError");
  CHECK(w.clock->steady_now() == std::chrono::steady_clock::time_point{});
}

TEST_CASE("a call waiting while the half-open trial runs gives up after open_for") {
  WaitingStage w(2);
  w.open();
  w.clock->manual.advance(10s);
  REQUIRE(w.push->push(10));  // the half-open trial, held inside the call until the gate opens
  REQUIRE(weir_test::eventually([&] { return w.calls.load() == 3; }));
  REQUIRE(w.push->push(3));  // finds the trial taken and waits
  REQUIRE(weir_test::eventually([&] { return w.clock->waits.load() == 1; }));
  w.clock->manual.advance(9s);
  CHECK(w.letter_count() == 2);
  w.clock->manual.advance(1s);  // open_for since it began to wait: it gives up
  REQUIRE(weir_test::eventually([&] { return w.letter_count() == 3; }));
  w.gate.notify();
  REQUIRE(weir_test::eventually([&] { return w.state() == CircuitState::closed; }));
  w.push->close();
  const auto r = w.p->wait();
  CHECK(w.got == std::vector<int>{10});
  CHECK(w.calls.load() == 3);
  REQUIRE(w.letters.size() == 3);
  CHECK(w.letters[2].item == 3);
  CHECK(w.letters[2].error_type == "weir::CircuitOpenError");
  CHECK(r.stage("call").circuit == CircuitState::closed);
}

TEST_CASE("circuit_breaker is refused on stages it cannot wrap and with options out of range") {
  weir::Pipeline p("refused");
  auto src = p.source(iota(0, 3));
  CHECK_THROWS_AS((void)src.circuit_breaker({}), std::invalid_argument);
  auto m = src.map([](int x) { return x; });
  CHECK_THROWS_AS((void)m.circuit_breaker(weir::CircuitBreakerOptions{0, 1s, 1}), std::invalid_argument);
  CHECK_THROWS_AS((void)m.circuit_breaker(weir::CircuitBreakerOptions{1, 1s, 0}), std::invalid_argument);
  CHECK_THROWS_AS((void)m.circuit_breaker(weir::CircuitBreakerOptions{1, -1s, 1}), std::invalid_argument);
  CHECK_NOTHROW((void)m.circuit_breaker(weir::CircuitBreakerOptions{}));
  auto file = m.sink(weir::jsonl_file{"/dev/null"});
  CHECK_THROWS_AS((void)file.circuit_breaker({}), std::invalid_argument);
}
