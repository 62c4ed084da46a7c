// Tests of .retry(policy): exponential backoff with a cap, seeded jitter, the retryable-error
// predicate, its independence from .on_error(...), dead-letter attempts, and cancel during a backoff.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>
#include <weir/weir.hpp>

#include "event_log.hpp"
#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
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

std::chrono::nanoseconds elapsed(const weir::ManualClock& c) {
  return c.steady_now().time_since_epoch();
}

std::vector<std::chrono::nanoseconds> waits(const EventLog& log) {
  std::vector<std::chrono::nanoseconds> out;
  for (const auto& r : log.of<weir::events::RetryAttempt>()) out.push_back(r.backoff);
  return out;
}

/// The waits of one item that fails `failures` times under `policy`, on a fresh pipeline.
std::vector<std::chrono::nanoseconds> waits_of(const weir::RetryPolicy& policy, int failures) {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("jitter", manual(clock));
  auto log = std::make_shared<EventLog>();
  p.intercept(log);
  int calls = 0;
  std::vector<int> got;
  p.source(std::vector<int>{7})
      .map([&calls, failures](int x) {
        if (++calls <= failures) throw std::runtime_error("flaky");
        return x;
      })
      .retry(policy)
      .sink(weir::collect_into(got));
  (void)p.run();
  CHECK(got == std::vector<int>{7});
  return waits(*log);
}

}  // namespace

TEST_CASE(
    "retry waits initial_backoff times the multiplier each attempt, capped at "
    "max_backoff" WEIR_NEEDS_TELEMETRY) {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("capped", manual(clock));
  auto log = std::make_shared<EventLog>();
  p.intercept(log);
  std::map<int, int> calls;
  std::vector<int> got;
  weir::RetryPolicy policy;
  policy.max_attempts = 6;
  policy.initial_backoff = 10ms;
  policy.multiplier = 3.0;
  policy.max_backoff = 100ms;
  p.source(iota(0, 4))
      .map([&calls](int x) {
        if (x == 2 && ++calls[x] <= 5) throw std::runtime_error("not yet");
        ++calls[x];
        return x;
      })
      .retry(policy)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == iota(0, 4));
  CHECK(waits(*log) == std::vector<std::chrono::nanoseconds>{10ms, 30ms, 90ms, 100ms, 100ms});
  std::vector<int> attempts;
  for (const auto& a : log->of<weir::events::RetryAttempt>()) attempts.push_back(a.attempt);
  CHECK(attempts == std::vector<int>{2, 3, 4, 5, 6});
  CHECK(elapsed(*clock) == 330ms);
  CHECK(r.stage("map#1").retries == 5);
  CHECK(r.stage("map#1").errors == 0);
}

TEST_CASE("RetryPolicy::backoff grows, caps and takes jitter off the top of each wait") {
  weir::RetryPolicy p;
  p.initial_backoff = 1s;
  p.multiplier = 2.0;
  p.max_backoff = 5s;
  CHECK(p.backoff(1) == 1s);
  CHECK(p.backoff(2) == 2s);
  CHECK(p.backoff(3) == 4s);
  CHECK(p.backoff(4) == 5s);
  CHECK(p.backoff(40) == 5s);
  p.jitter = 0.5;
  CHECK(p.backoff(2, 0.0) == 2s);
  CHECK(p.backoff(2, 0.5) == 1500ms);
  CHECK(p.backoff(4, 0.999) > 2500ms - 1ms);
}

TEST_CASE(
    "jitter draws each wait from [w * (1 - jitter), w], the same on every run with the same "
    "seed" WEIR_NEEDS_TELEMETRY) {
  weir::RetryPolicy policy;
  policy.max_attempts = 8;
  policy.initial_backoff = 100ms;
  policy.multiplier = 2.0;
  policy.max_backoff = 1s;
  policy.jitter = 0.5;
  policy.seed = 42;
  const auto first = waits_of(policy, 7);
  const auto again = waits_of(policy, 7);
  REQUIRE(first.size() == 7);
  CHECK(first == again);
  bool some_below_top = false;
  for (std::size_t i = 0; i < first.size(); ++i) {
    const auto top = policy.backoff(static_cast<int>(i) + 1);
    CHECK(first[i] <= top);
    CHECK(first[i] >= top / 2);
    some_below_top = some_below_top || first[i] < top;
  }
  CHECK(some_below_top);
  policy.seed = 43;
  CHECK(waits_of(policy, 7) != first);
  policy.jitter = 0.0;
  CHECK(waits_of(policy, 3) == std::vector<std::chrono::nanoseconds>{100ms, 200ms, 400ms});
}

TEST_CASE("an error the predicate calls non-retryable goes straight to the error policy") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("predicate", manual(clock));
  std::map<int, int> calls;
  std::vector<weir::DeadLetter<int>> letters;
  std::vector<int> got;
  weir::RetryPolicy policy;
  policy.max_attempts = 4;
  policy.initial_backoff = 1ms;
  policy.retryable = weir::retry_on<std::system_error>();
  p.source(iota(0, 5))
      .map([&calls](int x) {
        ++calls[x];
        if (x == 1) throw std::logic_error("a bug, retrying will not help");
        if (x == 3) throw std::system_error(std::make_error_code(std::errc::connection_reset));
        return x;
      })
      .retry(policy)
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{0, 2, 4});
  CHECK(calls[1] == 1);
  CHECK(calls[3] == 4);
  REQUIRE(letters.size() == 2);
  CHECK(letters[0].item == 1);
  CHECK(letters[0].attempts == 1);
  CHECK(letters[0].error_type == "std::logic_error");
  CHECK(letters[1].item == 3);
  CHECK(letters[1].attempts == 4);
  CHECK(letters[1].error_type == "std::system_error");
  CHECK(r.stage("map#1").retries == 3);
  CHECK(elapsed(*clock) == 1ms + 2ms + 4ms);
  bool logic_retryable = true;
  bool system_retryable = false;
  for (const auto& e : r.errors) {
    if (e.type == "std::logic_error") logic_retryable = e.retryable;
    if (e.type == "std::system_error") system_retryable = e.retryable;
  }
  CHECK_FALSE(logic_retryable);
  CHECK(system_retryable);
}

TEST_CASE("a retryable predicate that throws counts as no retry") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("throwing_predicate", manual(clock));
  int calls = 0;
  std::vector<int> got;
  weir::RetryPolicy policy;
  policy.retryable = [](const std::exception_ptr&) -> bool { throw std::runtime_error("predicate broke"); };
  p.source(std::vector<int>{1})
      .map([&calls](int x) -> int {
        ++calls;
        throw std::runtime_error(std::to_string(x));
      })
      .retry(policy)
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(calls == 1);
  CHECK(r.stage("map#1").skipped == 1);
  CHECK(elapsed(*clock) == 0ns);
}

TEST_CASE("retry then on_error and on_error then retry behave the same") {
  auto run = [](bool retry_first) {
    std::shared_ptr<weir::ManualClock> clock;
    weir::Pipeline p("order", manual(clock));
    std::vector<weir::DeadLetter<int>> letters;
    std::vector<int> got;
    weir::RetryPolicy policy;
    policy.max_attempts = 3;
    policy.initial_backoff = 5ms;
    auto m = p.source(iota(0, 6)).map([](int x) {
      if (x % 2 == 1) throw std::runtime_error("odd");
      return x;
    });
    auto dlq = weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d); });
    if (retry_first) {
      m.retry(policy).on_error(dlq).sink(weir::collect_into(got));
    } else {
      m.on_error(dlq).retry(policy).sink(weir::collect_into(got));
    }
    const auto r = p.run();
    CHECK(got == std::vector<int>{0, 2, 4});
    REQUIRE(letters.size() == 3);
    for (const auto& d : letters) CHECK(d.attempts == 3);
    CHECK(r.stage("map#1").retries == 6);
    CHECK(r.stage("map#1").dead_lettered == 3);
    return elapsed(*clock);
  };
  const auto a = run(true);
  const auto b = run(false);
  CHECK(a == 3 * (5ms + 10ms));
  CHECK(a == b);
}

TEST_CASE(".retry() on a sink retries the sink's call and reports the attempts to the dead-letter sink") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("sink_retry", manual(clock, 4));
  std::vector<int> written;
  std::vector<int> attempts;
  std::map<int, int> calls;
  weir::RetryPolicy policy;
  policy.max_attempts = 2;
  policy.initial_backoff = 1s;
  p.source(iota(0, 8))
      .sink([&](int x) {
        ++calls[x];
        if (x == 5 || (x == 6 && calls[x] == 1)) throw std::runtime_error("disk busy");
        written.push_back(x);
      })
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { attempts.push_back(d.attempts); }))
      .retry(policy);
  const auto r = p.run();
  CHECK(written == std::vector<int>{0, 1, 2, 3, 4, 6, 7});
  CHECK(attempts == std::vector<int>{2});
  CHECK(r.stage("sink#1").retries == 2);
  CHECK(elapsed(*clock) == 2s);
}

TEST_CASE("retries set by both .retry() and on_error::retry are rejected in either order") {
  weir::Pipeline p("twice");
  auto m = p.source(std::vector<int>{1}).map([](int x) { return x; });
  CHECK_NOTHROW((void)m.retry(weir::RetryPolicy{}));
  CHECK_THROWS_AS((void)m.on_error(weir::on_error::retry(3, 1ms)), std::invalid_argument);
  auto s = m.sink([](int) {});
  CHECK_NOTHROW((void)s.on_error(weir::on_error::retry(3, 1ms)));
  CHECK_THROWS_AS((void)s.retry(weir::RetryPolicy{}), std::invalid_argument);
}

TEST_CASE("a retry policy with a field out of range is rejected") {
  weir::Pipeline p("bad_policy");
  auto m = p.source(std::vector<int>{1}).map([](int x) { return x; });
  weir::RetryPolicy policy;
  policy.max_attempts = 0;
  CHECK_THROWS_AS((void)m.retry(policy), std::invalid_argument);
  policy = {};
  policy.jitter = 1.5;
  CHECK_THROWS_AS((void)m.retry(policy), std::invalid_argument);
  policy = {};
  policy.multiplier = 0.5;
  CHECK_THROWS_AS((void)m.retry(policy), std::invalid_argument);
  policy = {};
  policy.initial_backoff = -1ms;
  CHECK_THROWS_AS((void)m.retry(policy), std::invalid_argument);
}

TEST_CASE("cancel cuts a long backoff short" WEIR_NEEDS_TELEMETRY) {
  // The system clock: the backoff is an hour, so the run ends quickly only if cancel wakes it.
  weir::Pipeline p("cancel_backoff");
  auto retrying = std::make_shared<weir::Notification>();
  struct OnRetry : weir::Interceptor {
    std::shared_ptr<weir::Notification> n;
    void on_event(const weir::StageInfo&, const weir::Event& e) override {
      if (std::holds_alternative<weir::events::RetryAttempt>(e)) n->notify();
    }
  };
  auto hook = std::make_shared<OnRetry>();
  hook->n = retrying;
  p.intercept(hook);
  weir::RetryPolicy policy;
  policy.max_attempts = 5;
  policy.initial_backoff = std::chrono::hours{1};
  policy.max_backoff = std::chrono::hours{1};
  int calls = 0;
  std::vector<int> got;
  p.source(std::vector<int>{1, 2})
      .map([&calls](int x) {
        if (x == 1) {
          ++calls;
          throw std::runtime_error("down");
        }
        return x;
      })
      .retry(policy)
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(got));
  const auto t0 = std::chrono::steady_clock::now();
  p.start();
  retrying->wait();
  p.cancel();
  const auto r = p.wait();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::minutes{1});
  CHECK(r.status == weir::RunStatus::cancelled);
  CHECK(calls == 1);
  CHECK(r.stage("map#1").skipped == 1);
  CHECK(r.stage("map#1").retries == 0);
}
