// Tests of ordered parallel stateless stages (`.parallelism(n).ordered()`, docs/operators.md): their
// output batches go on in the order their input batches came, per stream, whatever becomes of each
// batch (an output, nothing, a failure), and a keyed stage after them sees each stream in order.
// The randomized comparisons with count and event-time windows are in test_differential.cpp ("an
// ordered parallel stage ...").
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
using weir_test::contains;
using weir_test::eventually;
using weir_test::with_batch;

std::atomic<std::uint64_t> work_done{0};

/// Returns `x` after some work for every 16th item, so that the batches of a parallel stage finish
/// out of order.
template <class T>
T uneven(T x) {
  if (static_cast<std::uint64_t>(x) % 16 == 0) {
    auto h = static_cast<std::uint64_t>(x);
    for (int i = 0; i < 3000; ++i) h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    work_done.store(h, std::memory_order_relaxed);
  }
  return x;
}

/// The line of an explain() output that names `stage`.
std::string line_with(const std::string& plan, const std::string& stage) {
  const auto at = plan.find(" " + stage + " (");
  if (at == std::string::npos) return {};
  const auto begin = plan.rfind('\n', at) + 1;
  return plan.substr(begin, plan.find('\n', at) - begin);
}

}  // namespace

TEST_CASE("ordered is refused with the stage's name for sources, sinks and keyed or stateful stages") {
  weir::Pipeline p("ordered-refused");
  auto src = p.source(std::vector<int>{1, 2, 3});
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  CHECK(contains(message([&] { (void)src.ordered(); }), "source 'range#0' cannot be ordered"));
  auto sink = src.map([](int x) { return x; }).sink([](int) {}).name("out");
  CHECK(contains(message([&] { (void)sink.ordered(); }), "sink 'out' cannot be ordered"));
  std::vector<int> got;
  auto collect = src.sink(weir::collect_into(got)).name("collect");
  CHECK(contains(message([&] { (void)collect.ordered(); }), "sink 'collect' cannot be ordered"));
  auto counts = src.key_by([](int x) { return x; }).window(weir::tumbling_count{2}).count().name("counts");
  CHECK(contains(message([&] { (void)counts.ordered(); }), "stage 'counts' (window) cannot be ordered"));
  auto buffered = src.buffer(4).name("buffered");
  CHECK(contains(message([&] { (void)buffered.ordered(); }), "stage 'buffered' (buffer) cannot be ordered"));
  counts.sink([](const auto&) {});
  buffered.sink([](const auto&) {});
  // Stateless stages with an output take it, at any parallelism and before or after it is set.
  CHECK_NOTHROW((void)src.filter([](int x) { return x > 0; }).ordered().parallelism(2).sink([](int) {}));
  CHECK_NOTHROW((void)src.route(weir::RouteOptions{}, weir::when{"odd", [](int x) { return x % 2 != 0; }})
                    .parallelism(2)
                    .ordered()["odd"]
                    .sink([](int) {}));
  CHECK_NOTHROW(p.run());
}

TEST_CASE("explain marks a node ordered when it keeps order at parallelism above one") {
  weir::Pipeline p("ordered-explain");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3})
      .map([](int x) { return x + 1; })
      .name("a")
      .ordered()  // parallelism 1: order is kept anyway, nothing to mark
      .map([](int x) { return x * 2; })
      .name("b")
      .ordered()
      .parallelism(3)
      .map([](int x) { return x - 1; })
      .name("c")
      .parallelism(3)
      .map([](int x) { return x; })
      .name("d")
      .parallelism(2)
      .sink(weir::collect_into(got));
  const auto plan = p.explain();
  CHECK(contains(line_with(plan, "a"), "[source thread] parallelism 1:"));
  // An ordered stage orders its node's output, with what is fused after it.
  CHECK(contains(line_with(plan, "b"), "[fused] parallelism 3 ordered: b (map) -> c (map)"));
  CHECK(contains(line_with(plan, "d"), "parallelism 2: d (map)"));
  CHECK_FALSE(contains(line_with(plan, "a"), "ordered"));
  CHECK_FALSE(contains(line_with(plan, "d"), "ordered"));
  p.run();
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{3, 5, 7});
}

TEST_CASE("an ordered parallel map delivers every item to a serial sink in source order") {
  for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{256}, std::size_t{0}}) {
    for (const int par : {2, 3, 8}) {
      CAPTURE(batch);
      CAPTURE(par);
      const int n = batch == 1 ? 2000 : 20'000;
      weir::Pipeline p("ordered-sink", with_batch(batch));
      std::vector<std::uint64_t> got;
      p.source(weir_test::iota(0, n))
          .map([](int x) { return static_cast<std::uint64_t>(uneven(x)); })
          .name("parse")
          .parallelism(par)
          .ordered()
          .sink(weir::collect_into(got));
      p.run();
      REQUIRE(got.size() == static_cast<std::size_t>(n));
      int out_of_place = 0;
      for (std::size_t i = 0; i < got.size(); ++i) out_of_place += got[i] != i;
      CHECK(out_of_place == 0);
    }
  }
}

TEST_CASE("ordered stages that drop whole batches, skip and dead-letter items never stall the stream") {
  // Batches that give nothing (every item filtered out, skipped or dead-lettered) still take their
  // turn: the serial sink after them receives every other item, in source order.
  for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{0}}) {
    CAPTURE(batch);
    const int n = batch == 1 ? 5000 : 100'000;
    weir::Pipeline p("ordered-drops", with_batch(batch));
    std::mutex m;
    std::vector<int> letters;
    std::vector<int> got;
    const auto dropped = [](int x) { return (x / 500) % 3 == 0; };  // runs of 500: whole batches
    const auto skipped = [](int x) { return x % 13 == 0; };
    const auto lettered = [](int x) { return x % 17 == 0 || (x / 700) % 5 == 1; };
    p.source(weir_test::iota(0, n))
        .filter([&](int x) { return !dropped(x); })
        .name("drop")
        .parallelism(8)
        .ordered()
        .map([&](int x) {
          if (skipped(x)) throw std::runtime_error("skip me");
          return uneven(x);
        })
        .name("skip")
        .parallelism(8)
        .ordered()
        .on_error(weir::on_error::skip())
        .map([&](int x) {
          if (lettered(x)) throw std::runtime_error("letter me");
          return x;
        })
        .name("letter")
        .parallelism(8)
        .ordered()
        .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) {
          const std::lock_guard lock(m);
          letters.push_back(d.item);
        }))
        .sink(weir::collect_into(got));
    const auto rep = p.run();
    std::vector<int> want;
    std::uint64_t want_dropped = 0;
    std::uint64_t want_skipped = 0;
    std::uint64_t want_letters = 0;
    for (int x = 0; x < n; ++x) {
      if (dropped(x)) {
        ++want_dropped;
      } else if (skipped(x)) {
        ++want_skipped;
      } else if (lettered(x)) {
        ++want_letters;
      } else {
        want.push_back(x);
      }
    }
    CHECK(rep.status == weir::RunStatus::completed);
    CHECK(got == want);  // in order
    CHECK(rep.stage("drop").filtered == want_dropped);
    CHECK(rep.stage("skip").skipped == want_skipped);
    CHECK(rep.stage("letter").dead_lettered == want_letters);
    CHECK(letters.size() == want_letters);
    CHECK(got.size() + want_dropped + want_skipped + want_letters == static_cast<std::size_t>(n));
  }
}

TEST_CASE("a failing ordered stage fails the run without stalling it") {
  for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{0}}) {
    CAPTURE(batch);
    weir::Pipeline p("ordered-fails", with_batch(batch));
    std::uint64_t n = 0;
    std::vector<std::uint64_t> got;
    // A never-ending source: only the failure ends the run.
    p.source(weir::from_generator{[&n]() -> std::optional<std::uint64_t> { return n++; }})
        .map([](std::uint64_t x) {
          if (x == 5000) throw std::runtime_error("enough");
          return uneven(x);
        })
        .name("parse")
        .parallelism(8)
        .ordered()
        .sink(weir::collect_into(got));
    std::optional<weir::PipelineError> failure;
    try {
      p.run();
    } catch (const weir::PipelineError& e) {
      failure = e;
    }
    REQUIRE(failure.has_value());
    CHECK(contains(failure->what(), "enough"));
    // What went through is in order, with only the failed item missing.
    std::size_t out_of_place = 0;
    for (std::size_t i = 0; i < got.size(); ++i) out_of_place += got[i] != (i < 5000 ? i : i + 1);
    CHECK(out_of_place == 0);
  }
}

TEST_CASE("cancel during an ordered run returns, and what was delivered is in order") {
  for (const int par : {2, 8}) {
    CAPTURE(par);
    weir::PipelineOptions o;
    o.batch_size = 32;
    weir::Pipeline p("ordered-cancel", o);
    std::atomic<std::uint64_t> generated{0};
    std::atomic<std::uint64_t> delivered{0};
    std::uint64_t expected = 0;
    std::uint64_t out_of_place = 0;
    p.source(weir::from_generator{[&]() -> std::optional<std::uint64_t> { return generated.fetch_add(1); }})
        .filter([](std::uint64_t x) { return (x / 100) % 2 == 0; })
        .parallelism(par)
        .ordered()
        .map([](std::uint64_t x) { return uneven(x); })
        .parallelism(par)
        .sink([&](std::uint64_t x) {  // parallelism 1: one thread at a time
          while ((expected / 100) % 2 != 0) ++expected;
          out_of_place += x != expected;
          ++expected;
          delivered.fetch_add(1);
        });
    p.start();
    CHECK(eventually([&] { return delivered.load() >= 20'000; }));
    p.cancel();
    weir::RunReport r;
    CHECK_NOTHROW(r = p.wait());
    CHECK(r.status == weir::RunStatus::cancelled);
    CHECK(out_of_place == 0);
    CHECK(r.stage("sink#3").items_in == delivered.load());
    CHECK(r.stage("filter#1").items_in == r.stage("generator#0").items_out);  // nothing lost in flight
  }
}

TEST_CASE("an ordered merge of two branches of one stream delivers every item of both") {
  // Both branches send the source's stream to the merge at once: the stream's batches come from two
  // threads, and each still takes a turn of its own.
  for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{0}}) {
    CAPTURE(batch);
    const int n = batch == 1 ? 3000 : 50'000;
    weir::Pipeline p("ordered-merge", with_batch(batch));
    auto src = p.source(weir_test::iota(0, n));
    auto evens = src.filter([](int x) { return x % 2 == 0; }).parallelism(2);
    auto odds = src.filter([](int x) { return x % 2 != 0; }).parallelism(3);
    std::vector<int> got;
    evens.merge(odds).name("merge").parallelism(4).ordered().sink(weir::collect_into(got));
    const auto rep = p.run();
    CHECK(rep.stage("merge").items_out == static_cast<std::uint64_t>(n));
    std::sort(got.begin(), got.end());
    CHECK(got == weir_test::iota(0, n));
  }
}
