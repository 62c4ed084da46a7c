// Tests of error handling: fail, skip, dead letters, retries with backoff on a ManualClock, failures
// anywhere in a batch and in fused chains. Each operator's own error cases are in its test file
// (tests/operators/).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace errors_test {
/// An exception type of the user's, to check that type names are demangled.
struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace errors_test

namespace {

using weir_test::contains;
using weir_test::with_batch;

using namespace std::chrono_literals;

/// The parts joined (GCC 12 warns falsely about `"literal" + std::string` at -O3).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  ((out += parts), ...);
  return out;
}

/// Options with a ManualClock, which is returned through `clock`.
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

/// Runs `p` and returns the PipelineError it throws; fails the test when it throws nothing.
std::optional<weir::PipelineError> run_expecting_failure(weir::Pipeline& p) {
  try {
    (void)p.run();
  } catch (const weir::PipelineError& e) {
    return e;
  }
  FAIL("the run did not throw a PipelineError");
  return std::nullopt;
}

std::vector<int> iota(int from, int to) {
  std::vector<int> v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

/// The integers of [0, n) except those in `bad`, in order.
std::vector<int> without(int n, const std::set<int>& bad) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) {
    if (bad.count(i) == 0) v.push_back(i);
  }
  return v;
}

}  // namespace

TEST_CASE("by default a failing map fails the run with a PipelineError naming the stage and the error") {
  weir::Pipeline p("fails", with_batch(8));
  std::vector<int> got;
  p.source(iota(0, 40))
      .map([](int x) {
        if (x == 13) throw errors_test::ParseError("bad item 13");
        return x;
      })
      .name("parse")
      .sink(weir::collect_into(got));
  const auto e = run_expecting_failure(p);
  REQUIRE(e.has_value());
  const std::string what = e->what();
  CHECK(contains(what, "fails"));
  CHECK(contains(what, "'parse'"));
  CHECK(contains(what, "errors_test::ParseError"));
  CHECK(contains(what, "bad item 13"));
  REQUIRE(e->errors().size() == 1);
  const auto& s = e->errors()[0];
  CHECK(s.stage == "parse");
  CHECK(s.type == "errors_test::ParseError");
  CHECK(s.message == "bad item 13");
  CHECK(s.count == 1);
  CHECK_FALSE(s.retryable);
  CHECK(s.first_seen <= s.last_seen);
  CHECK(e->report().status == weir::RunStatus::failed);
  CHECK(e->report().stage("parse").errors == 1);
  CHECK(e->report().stage("parse").skipped == 0);
  CHECK(e->report().errors.size() == 1);
  // Items before the failure were delivered; the failing one was not.
  CHECK(std::find(got.begin(), got.end(), 13) == got.end());
  CHECK(std::find(got.begin(), got.end(), 12) != got.end());
}

TEST_CASE("a standard exception type is reported by its demangled name") {
  weir::Pipeline p("std_error");
  p.source(std::vector<int>{1, 2, 3})
      .map([](int x) -> int { throw std::out_of_range(cat("index ", std::to_string(x))); })
      .sink([](int) {});
  const auto e = run_expecting_failure(p);
  REQUIRE(e.has_value());
  REQUIRE_FALSE(e->errors().empty());
  CHECK(e->errors()[0].type == "std::out_of_range");
  CHECK(e->errors()[0].message == "index 1");
  CHECK(contains(e->what(), "std::out_of_range: index 1"));
}

TEST_CASE("an exception that is not a std::exception fails the run too") {
  weir::Pipeline p("non_standard");
  p.source(std::vector<int>{1}).map([](int x) -> int { throw x; }).sink([](int) {});
  const auto e = run_expecting_failure(p);
  REQUIRE(e.has_value());
  REQUIRE(e->errors().size() == 1);
  CHECK(e->errors()[0].type == "int");
  CHECK(e->errors()[0].stage == "map#1");
}

TEST_CASE("a failure stops a never-ending source so that the failed run ends") {
  weir::Pipeline p("stops", with_batch(16));
  std::uint64_t n = 0;
  std::atomic<std::uint64_t> delivered{0};
  p.source(weir::from_generator{[&n]() -> std::optional<std::uint64_t> { return n++; }})
      .map([](std::uint64_t x) {
        if (x == 500) throw std::runtime_error("enough");
        return x;
      })
      .parallelism(2)
      .sink([&](std::uint64_t) { delivered.fetch_add(1); })
      .parallelism(2);
  const auto e = run_expecting_failure(p);
  REQUIRE(e.has_value());
  CHECK(e->report().status == weir::RunStatus::failed);
  CHECK(contains(e->what(), "enough"));
  // What the source emitted went through: one item failed, the rest were delivered.
  CHECK(delivered.load() + 1 == e->report().stage("generator#0").items_out);
}

TEST_CASE("wait throws the PipelineError of a started run that failed") {
  weir::Pipeline p("wait_fails");
  p.source(std::vector<int>{1, 2}).sink([](int x) {
    if (x == 2) throw std::logic_error("two");
  });
  p.start();
  CHECK_THROWS_AS((void)p.wait(), weir::PipelineError);
}

TEST_CASE("skip counts the failed items and goes on with the others") {
  weir::Pipeline p("skips", with_batch(8));
  std::vector<int> got;
  p.source(iota(0, 50))
      .map([](int x) {
        if (x % 10 == 3) throw std::runtime_error(cat("ends in 3: ", std::to_string(x)));
        return x;
      })
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(got == without(50, {3, 13, 23, 33, 43}));
  const auto& m = r.stage("map#1");
  CHECK(m.errors == 5);
  CHECK(m.skipped == 5);
  CHECK(m.items_out == 45);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].count == 5);
  CHECK(r.errors[0].message == "ends in 3: 3");  // the first message seen
  CHECK(r.errors[0].type == "std::runtime_error");
}

TEST_CASE("failures in the middle, at the edges and in a row of a batch lose no other item") {
  // Batches of 7: 3 is in the middle of the first, 7 starts the second, 13 ends it, 10 and 11 are a run.
  const std::set<int> bad{3, 7, 10, 11, 13, 29};
  constexpr int n = 30;
  auto is_bad = [bad](int x) { return bad.count(x) != 0; };

  SUBCASE("map over ints") {
    weir::Pipeline p("middle_map", with_batch(7));
    std::vector<int> got;
    p.source(iota(0, n))
        .map([is_bad](int x) {
          if (is_bad(x)) throw std::runtime_error("bad");
          return x;
        })
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    (void)p.run();
    CHECK(got == without(n, bad));
  }
  SUBCASE("map over strings") {
    weir::Pipeline p("middle_map_strings", with_batch(7));
    std::vector<std::string> got;
    std::vector<std::string> input;
    for (int i = 0; i < n; ++i) input.push_back(std::to_string(i));
    p.source(std::move(input))
        .map([is_bad](std::string s) {
          if (is_bad(std::stoi(s))) throw std::runtime_error("bad");
          s += "!";
          return s;
        })
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    (void)p.run();
    std::vector<std::string> expected;
    for (const int i : without(n, bad)) expected.push_back(cat(std::to_string(i), "!"));
    CHECK(got == expected);
  }
  SUBCASE("filter over ints") {
    weir::Pipeline p("middle_filter", with_batch(7));
    std::vector<int> got;
    p.source(iota(0, n))
        .filter([is_bad](int x) {
          if (is_bad(x)) throw std::runtime_error("bad");
          return x % 4 != 1;
        })
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    const auto r = p.run();
    std::vector<int> expected;
    for (const int i : without(n, bad))
      if (i % 4 != 1) expected.push_back(i);
    CHECK(got == expected);
    const auto& f = r.stage("filter#1");
    CHECK(f.errors == bad.size());
    CHECK(f.items_in == f.items_out + f.filtered + f.errors);
  }
  SUBCASE("filter over strings") {
    weir::Pipeline p("middle_filter_strings", with_batch(7));
    std::vector<std::string> got;
    std::vector<std::string> input;
    for (int i = 0; i < n; ++i) input.push_back(std::to_string(i));
    p.source(input)
        .filter([is_bad](const std::string& s) {
          if (is_bad(std::stoi(s))) throw std::runtime_error("bad");
          return true;
        })
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    (void)p.run();
    std::vector<std::string> expected;
    for (const int i : without(n, bad)) expected.push_back(std::to_string(i));
    CHECK(got == expected);
  }
  SUBCASE("flat_map") {
    weir::Pipeline p("middle_flat_map", with_batch(7));
    std::vector<int> got;
    p.source(iota(0, n))
        .flat_map([is_bad](int x) {
          if (is_bad(x)) throw std::runtime_error("bad");
          return std::vector<int>{x, x};
        })
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    (void)p.run();
    std::vector<int> expected;
    for (const int i : without(n, bad)) {
      expected.push_back(i);
      expected.push_back(i);
    }
    CHECK(got == expected);
  }
  SUBCASE("sink") {
    weir::Pipeline p("middle_sink", with_batch(7));
    std::vector<int> got;
    p.source(iota(0, n))
        .sink([&](int x) {
          if (is_bad(x)) throw std::runtime_error("bad");
          got.push_back(x);
        })
        .on_error(weir::on_error::skip());
    const auto r = p.run();
    CHECK(got == without(n, bad));
    CHECK(r.stage("sink#1").items_out == got.size());
    CHECK(r.stage("sink#1").errors == bad.size());
  }
  SUBCASE("a fused chain where two stages fail") {
    weir::Pipeline p("middle_chain", with_batch(7));
    std::vector<int> got;
    p.source(iota(0, n))
        .map([](int x) {
          if (x == 3 || x == 7) throw std::runtime_error("map");
          return x;
        })
        .on_error(weir::on_error::skip())
        .filter([](int x) {
          if (x == 10 || x == 13) throw std::runtime_error("filter");
          return true;
        })
        .on_error(weir::on_error::skip())
        .map([](int x) {
          if (x == 11 || x == 29) throw std::runtime_error("map again");
          return x;
        })
        .on_error(weir::on_error::skip())
        .sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(got == without(n, bad));
    CHECK(r.stage("map#1").errors == 2);
    CHECK(r.stage("filter#2").errors == 2);
    CHECK(r.stage("map#3").errors == 2);
    CHECK(r.stage("map#3").items_in == 26);
  }
}

TEST_CASE("dead_letter with a deduced type delivers the exact failing items as they were before the call") {
  weir::Pipeline p("dead_letters", with_batch(4));
  std::vector<weir::DeadLetter<std::string>> letters;
  std::vector<std::string> got;
  std::vector<std::string> input;
  for (int i = 0; i < 12; ++i) input.push_back(cat("w", std::to_string(i)));
  p.source(input)
      .map([](std::string s) {
        s += "-touched";  // changed before the throw: the dead letter must carry the original
        if (s[1] == '1') throw errors_test::ParseError(cat("starts with 1: ", s));
        return s;
      })
      .name("touch")
      .on_error(weir::on_error::dead_letter(
          [&letters](weir::DeadLetter<std::string> d) { letters.push_back(std::move(d)); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  REQUIRE(letters.size() == 3);  // w1, w10, w11
  CHECK(letters[0].item == "w1");
  CHECK(letters[1].item == "w10");
  CHECK(letters[2].item == "w11");
  for (const auto& d : letters) {
    CHECK(d.stage == "touch");
    CHECK(d.error_type == "errors_test::ParseError");
    CHECK(d.message == cat("starts with 1: ", d.item, "-touched"));
    CHECK(d.attempts == 1);
  }
  CHECK(got == std::vector<std::string>{"w0-touched", "w2-touched", "w3-touched", "w4-touched", "w5-touched",
                                        "w6-touched", "w7-touched", "w8-touched", "w9-touched"});
  const auto& s = r.stage("touch");
  CHECK(s.errors == 3);
  CHECK(s.dead_lettered == 3);
  CHECK(s.skipped == 0);
  CHECK(s.dead_letter_failures == 0);
  CHECK(s.items_in == s.items_out + s.errors);
}

TEST_CASE("a dead letter from the middle of a fused chain carries that stage's input") {
  weir::Pipeline p("chain_dead_letters", with_batch(4));
  std::vector<std::string> letters;
  std::vector<std::size_t> got;
  p.source(iota(0, 12))
      .map([](int x) { return cat("n", std::to_string(x)); })
      .filter([](const std::string& s) { return s != "n5"; })
      .map([](std::string s) {
        if (s.back() == '3') throw std::runtime_error("ends in 3");
        return s.size();
      })
      .name("measure")
      .on_error(
          weir::on_error::dead_letter([&](weir::DeadLetter<std::string> d) { letters.push_back(d.item); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(letters == std::vector<std::string>{"n3"});
  CHECK(got == std::vector<std::size_t>{2, 2, 2, 2, 2, 2, 2, 2, 3, 3});
  CHECK(r.stage("measure").items_in == 11);
  CHECK(r.stage("measure").dead_lettered == 1);
  CHECK(r.stage("filter#2").filtered == 1);
}

TEST_CASE("dead_letter with an explicit type accepts a generic handler") {
  weir::Pipeline p("dead_letters_explicit", with_batch(3));
  std::vector<int> failed;
  std::vector<std::string> stages;
  std::vector<int> got;
  p.source(iota(0, 10))
      .filter([](int x) {
        if (x % 3 == 0) throw std::domain_error("multiple of 3");
        return x % 2 == 0;
      })
      .on_error(weir::on_error::dead_letter<int>([&](const auto& d) {
        failed.push_back(d.item);
        stages.push_back(d.stage);
      }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(failed == std::vector<int>{0, 3, 6, 9});
  CHECK(stages == std::vector<std::string>(4, "filter#1"));
  CHECK(got == std::vector<int>{2, 4, 8});
  CHECK(r.stage("filter#1").dead_lettered == 4);
  CHECK(r.stage("filter#1").filtered == 3);  // 1, 5, 7
}

TEST_CASE("a dead-letter sink of the wrong item type held as a plain ErrorPolicy is rejected by on_error") {
  // A DeadLetterPolicy<T> of the wrong T does not compile (tests/compile_fail/DeadLetter.cpp); as
  // a plain ErrorPolicy the type is checked when the policy is set.
  weir::Pipeline p("wrong_type");
  auto m = p.source(std::vector<int>{1}).map([](int x) { return std::to_string(x); });
  // The map's input type is int, not std::string.
  const weir::ErrorPolicy wrong = weir::on_error::dead_letter([](weir::DeadLetter<std::string>) {});
  CHECK_THROWS_AS((void)m.on_error(wrong), std::invalid_argument);
  CHECK_THROWS_AS((void)m.on_error(weir::on_error::retry(3, 1ms, wrong)), std::invalid_argument);
  CHECK_NOTHROW((void)m.on_error(weir::on_error::dead_letter([](const weir::DeadLetter<int>&) {})));
  CHECK_NOTHROW((void)m.on_error(
      weir::on_error::retry(3, 1ms, weir::on_error::dead_letter([](const weir::DeadLetter<int>&) {}))));
  auto sink = m.sink([](const std::string&) {});
  CHECK_NOTHROW((void)sink.on_error(weir::on_error::dead_letter([](weir::DeadLetter<std::string>) {})));
  const weir::ErrorPolicy of_double = weir::on_error::dead_letter<double>([](auto) {});
  CHECK_THROWS_AS((void)sink.on_error(of_double), std::invalid_argument);
  // A handle that forgot its stage's input type (a plain Stream<T>) checks when the policy is set.
  weir::Stream<std::string> plain = m;
  CHECK_THROWS_AS((void)plain.on_error(weir::on_error::dead_letter([](weir::DeadLetter<std::string>) {})),
                  std::invalid_argument);
}

TEST_CASE("on_error::dead_letter and on_error::retry keep the dead-letter item type in the policy's type") {
  auto dl = weir::on_error::dead_letter([](const weir::DeadLetter<int>&) {});
  static_assert(std::is_same_v<decltype(dl), weir::DeadLetterPolicy<int>>);
  auto r = weir::on_error::retry(2, 1ms, dl);
  static_assert(std::is_same_v<decltype(r), weir::DeadLetterPolicy<int>>);
  CHECK(r.kind == weir::ErrorPolicy::Kind::retry);
  CHECK(r.exhausted == weir::ErrorPolicy::Kind::dead_letter);
  CHECK(r.max_attempts == 2);
  CHECK(r.dead_letter == dl.dead_letter);
}

TEST_CASE("a throwing dead-letter handler is counted and does not fail the run") {
  weir::Pipeline p("bad_handler", with_batch(5));
  std::vector<int> got;
  std::vector<int> letters;
  p.source(iota(0, 20))
      .map([](int x) {
        if (x % 4 == 0) throw std::runtime_error("x % 4 == 0");
        return x;
      })
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) {
        if (d.item == 8) throw std::length_error("handler is full");
        letters.push_back(d.item);
      }))
      .sink(weir::collect_into(got));
  weir::RunReport r;
  REQUIRE_NOTHROW(r = p.run());
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(letters == std::vector<int>{0, 4, 12, 16});
  CHECK(got == without(20, {0, 4, 8, 12, 16}));
  const auto& s = r.stage("map#1");
  CHECK(s.errors == 5);
  CHECK(s.dead_lettered == 4);
  CHECK(s.dead_letter_failures == 1);
  const auto it = std::find_if(r.errors.begin(), r.errors.end(), [](const weir::ErrorSummary& e) {
    return e.type.rfind("dead_letter_handler: ", 0) == 0;
  });
  REQUIRE(it != r.errors.end());
  CHECK(it->type == "dead_letter_handler: std::length_error");
  CHECK(it->message == "handler is full");
  CHECK(it->stage == "map#1");
  CHECK(it->count == 1);
}

TEST_CASE("dead letters of a parallel stage reach the handler one at a time") {
  weir::Pipeline p("parallel_dead_letters", with_batch(8));
  std::vector<int> letters;  // not locked: the runtime serialises the handler
  std::atomic<int> inside{0};
  std::atomic<int> overlap{0};
  p.source(iota(0, 2000))
      .map([](int x) {
        if (x % 3 == 0) throw std::runtime_error("x % 3");
        return x;
      })
      .parallelism(2)
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) {
        if (inside.fetch_add(1) != 0) overlap.fetch_add(1);
        letters.push_back(d.item);
        inside.fetch_sub(1);
      }))
      .sink([](int) {})
      .parallelism(2);
  const auto r = p.run();
  CHECK(overlap.load() == 0);
  std::sort(letters.begin(), letters.end());
  std::vector<int> expected;
  for (int i = 0; i < 2000; i += 3) expected.push_back(i);
  CHECK(letters == expected);
  CHECK(r.stage("map#1").dead_lettered == expected.size());
}

TEST_CASE("retry calls again after backoff, then backoff times two, on the injected clock") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("retries", manual(clock, 4));
  std::map<int, int> calls;
  std::vector<int> got;
  p.source(iota(0, 10))
      .map([&calls](int x) {
        const int attempt = ++calls[x];
        if (x == 5 && attempt <= 2) throw std::runtime_error(cat("flaky ", std::to_string(attempt)));
        return x * 10;
      })
      .on_error(weir::on_error::retry(3, 100ms))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(got == std::vector<int>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90});
  CHECK(calls[5] == 3);
  CHECK(calls[4] == 1);
  CHECK(calls[6] == 1);
  const auto& m = r.stage("map#1");
  CHECK(m.retries == 2);
  CHECK(m.errors == 0);
  CHECK(m.items_out == 10);
  CHECK(r.errors.empty());
  // No real sleep: the manual clock moved by exactly the two waits, 100 ms then 200 ms.
  CHECK(elapsed(*clock) == 300ms);
  CHECK(r.wall == 300ms);
}

TEST_CASE("retry with a custom multiplier waits backoff times the multiplier each time") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("retry_multiplier", manual(clock));
  std::vector<int> got;
  auto policy = weir::on_error::retry(4, 10ms, weir::on_error::skip());
  policy.multiplier = 3.0;
  int calls = 0;
  p.source(std::vector<int>{1})
      .map([&calls](int x) -> int {
        ++calls;
        throw std::runtime_error(cat("always ", std::to_string(x)));
      })
      .on_error(policy)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(calls == 4);
  CHECK(elapsed(*clock) == 10ms + 30ms + 90ms);
  CHECK(r.stage("map#1").retries == 3);
  CHECK(r.stage("map#1").skipped == 1);
  CHECK(got.empty());
}

TEST_CASE("retry exhausted then fail fails the run with a retryable error") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("retry_fail", manual(clock));
  int calls = 0;
  p.source(std::vector<int>{1, 2, 3})
      .map([&calls](int x) {
        if (x == 2) {
          ++calls;
          throw std::runtime_error("two never works");
        }
        return x;
      })
      .on_error(weir::on_error::retry(3, 1s))
      .sink([](int) {});
  const auto e = run_expecting_failure(p);
  REQUIRE(e.has_value());
  CHECK(calls == 3);
  REQUIRE(e->errors().size() == 1);
  CHECK(e->errors()[0].retryable);
  CHECK(e->errors()[0].count == 1);
  CHECK(e->errors()[0].message == "two never works");
  CHECK(e->report().stage("map#1").retries == 2);
  CHECK(e->report().stage("map#1").errors == 1);
  CHECK(elapsed(*clock) == 3s);
}

TEST_CASE("retry exhausted then skip skips the item after every attempt") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("retry_skip", manual(clock, 3));
  std::vector<int> got;
  std::map<int, int> calls;
  p.source(iota(0, 9))
      .filter([&calls](int x) {
        ++calls[x];
        if (x == 4 || x == 6) throw std::runtime_error("no");
        return true;
      })
      .on_error(weir::on_error::retry(2, 5ms, weir::on_error::skip()))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(got == without(9, {4, 6}));
  CHECK(calls[4] == 2);
  CHECK(calls[6] == 2);
  CHECK(calls[5] == 1);
  const auto& f = r.stage("filter#1");
  CHECK(f.retries == 2);
  CHECK(f.skipped == 2);
  CHECK(f.errors == 2);
  CHECK(f.filtered == 0);
  CHECK(elapsed(*clock) == 10ms);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].retryable);
  CHECK(r.errors[0].count == 2);
}

TEST_CASE("retry exhausted then dead_letter reports the number of attempts") {
  std::shared_ptr<weir::ManualClock> clock;
  weir::Pipeline p("retry_dead_letter", manual(clock));
  std::vector<weir::DeadLetter<int>> letters;
  std::vector<int> got;
  p.source(iota(0, 6))
      .flat_map([](int x) {
        if (x == 1 || x == 4) throw std::invalid_argument(cat("flat ", std::to_string(x)));
        return std::vector<int>(static_cast<std::size_t>(x), x);
      })
      .on_error(weir::on_error::retry(
          4, 2ms, weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d); })))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  REQUIRE(letters.size() == 2);
  CHECK(letters[0].item == 1);
  CHECK(letters[1].item == 4);
  for (const auto& d : letters) {
    CHECK(d.attempts == 4);
    CHECK(d.error_type == "std::invalid_argument");
    CHECK(d.stage == "flat_map#1");
  }
  CHECK(letters[1].message == "flat 4");
  CHECK(got == std::vector<int>{2, 2, 3, 3, 3, 5, 5, 5, 5, 5});
  CHECK(r.stage("flat_map#1").retries == 6);
  CHECK(r.stage("flat_map#1").dead_lettered == 2);
  CHECK(elapsed(*clock) == 2 * (2ms + 4ms + 8ms));
}

TEST_CASE("an item that fails in several stages of one run is counted in each error summary") {
  weir::Pipeline p("summaries", with_batch(3));
  std::vector<int> got;
  p.source(iota(0, 10))
      .map([](int x) {
        if (x % 2 == 0) throw std::runtime_error("even");
        return x;
      })
      .on_error(weir::on_error::skip())
      .map([](int x) {
        if (x % 3 == 0) throw std::logic_error("three");
        if (x == 7) throw std::runtime_error("seven");
        return x;
      })
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{1, 5});
  std::map<std::pair<std::string, std::string>, std::uint64_t> counts;
  for (const auto& e : r.errors) counts[{e.stage, e.type}] = e.count;
  CHECK(counts.size() == 3);
  CHECK(counts[{"map#1", "std::runtime_error"}] == 5);
  CHECK(counts[{"map#2", "std::logic_error"}] == 2);  // 3 and 9
  CHECK(counts[{"map#2", "std::runtime_error"}] == 1);
}
