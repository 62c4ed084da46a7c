// Tests of the built-in sources (ops/sources.hpp): range, generator, lines and push, against their
// input on seeded random data at every batch size and parallelism of the stage after them; empty
// inputs, failures, and the linger that flushes partial batches.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "operator_cases.hpp"
#include "temp_file.hpp"
#include "weir_test.hpp"

namespace {

using weir_test::cat;
using weir_test::contains;
using weir_test::eventually;
using weir_test::iota;
using weir_test::settings;
using weir_test::sorted;
using weir_test::TempPath;
using weir_test::with_batch;

using namespace std::chrono_literals;
namespace fs = std::filesystem;

/// Runs `p` and returns the PipelineError it throws; fails the test when it throws nothing.
std::optional<weir::PipelineError> run_expecting_failure(weir::Pipeline& p) {
  auto e = weir_test::run_failing(p);
  if (!e) FAIL("the run did not throw a PipelineError");
  return e;
}

/// A unique path in the temporary directory (not created).
fs::path temp_path(const std::string& name) {
  static std::atomic<int> counter{0};
  return fs::temp_directory_path() / cat("weir_sources_", std::to_string(::getpid()), "_",
                                         std::to_string(counter.fetch_add(1)), "_", name);
}

std::vector<std::string> read_lines_with_weir(const fs::path& path, std::size_t batch) {
  weir::Pipeline p("lines", with_batch(batch));
  std::vector<std::string> got;
  p.source(weir::from_lines{path}).sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.stage("lines#0").items_out == got.size());
  return got;
}

}  // namespace

TEST_CASE("from_generator emits every value until nullopt, in order, for any batch size") {
  for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{256}}) {
    CAPTURE(batch);
    weir::Pipeline p("generator", with_batch(batch));
    int n = 0;
    int calls = 0;
    std::vector<std::string> got;
    p.source(weir::from_generator{[&]() -> std::optional<std::string> {
       ++calls;
       if (n == 1000) return std::nullopt;
       return std::to_string(n++);
     }}).sink(weir::collect_into(got));
    const auto r = p.run();
    REQUIRE(got.size() == 1000);
    for (int i = 0; i < 1000; ++i) CHECK(got[static_cast<std::size_t>(i)] == std::to_string(i));
    CHECK(calls == 1001);  // not called again after nullopt
    CHECK(r.stage("generator#0").items_out == 1000);
  }
}

TEST_CASE("range sources read containers, lists and lazy views") {
  weir::Pipeline p("ranges", with_batch(3));
  std::list<std::string> names{"ada", "grace", "edsger", "barbara"};
  std::vector<std::string> from_list;
  std::vector<int> from_view;
  p.source(names).sink(weir::collect_into(from_list));
  p.source(std::views::iota(0, 30) | std::views::filter([](int x) { return x % 4 == 0; }))
      .sink(weir::collect_into(from_view));
  (void)p.run();
  CHECK(from_list == std::vector<std::string>{"ada", "grace", "edsger", "barbara"});
  CHECK(from_view == std::vector<int>{0, 4, 8, 12, 16, 20, 24, 28});
  CHECK(names.size() == 4);  // viewed, not consumed
}

TEST_CASE("from_lines reads every line, strips CRLF and handles a missing final newline") {
  TempPath file("crlf.txt");
  file.write("alpha\r\nbeta\n\ngam\rma\r\n\r\ndelta");
  const std::vector<std::string> expected{"alpha", "beta", "", "gam\rma", "", "delta"};
  CHECK(read_lines_with_weir(file.path(), 256) == expected);
  CHECK(read_lines_with_weir(file.path(), 1) == expected);
  CHECK(read_lines_with_weir(file.path(), 4) == expected);
}

TEST_CASE("from_lines gives no empty item for a final newline and nothing for an empty file") {
  TempPath ends("ends_with_newline.txt");
  ends.write("one\ntwo\n");
  CHECK(read_lines_with_weir(ends.path(), 256) == std::vector<std::string>{"one", "two"});
  TempPath empty("empty.txt");
  empty.write("");
  CHECK(read_lines_with_weir(empty.path(), 256).empty());
}

TEST_CASE("from_lines reads a long file in order across many batches") {
  TempPath file("long.txt");
  std::string content;
  std::vector<std::string> expected;
  for (int i = 0; i < 5000; ++i) {
    expected.push_back(cat("line ", std::to_string(i), std::string(static_cast<std::size_t>(i % 50), 'x')));
    content += expected.back();
    content += i % 3 == 0 ? "\r\n" : "\n";
  }
  file.write(content);
  CHECK(read_lines_with_weir(file.path(), 7) == expected);
}

TEST_CASE(
    "a push source delivers every item of several producer threads exactly once and in each producer's "
    "order") {
  constexpr int producers = 4;
  constexpr int per_producer = 2500;
  weir::PipelineOptions o;
  o.batch_size = 16;
  weir::Pipeline p("push_many", o);
  auto push = std::make_shared<weir::PushSource<std::pair<int, int>>>(64);
  std::vector<std::pair<int, int>> got;
  p.source(push).sink(weir::collect_into(got));
  p.start();
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < producers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_producer; ++i) {
        if (!push->push({t, i})) refused.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  push->close();
  const auto r = p.wait();
  CHECK(refused.load() == 0);
  REQUIRE(got.size() == static_cast<std::size_t>(producers * per_producer));
  std::vector<int> next(producers, 0);
  bool in_order = true;
  for (const auto& [t, i] : got) {
    if (next[static_cast<std::size_t>(t)] != i) in_order = false;
    next[static_cast<std::size_t>(t)] = i + 1;
  }
  CHECK(in_order);
  CHECK(std::all_of(next.begin(), next.end(), [](int n) { return n == per_producer; }));
  CHECK(r.stage("push#0").items_out == got.size());
  CHECK(r.status == weir::RunStatus::completed);
}

TEST_CASE("try_push fails when the push source is full, and push and try_push fail after close") {
  auto push = std::make_shared<weir::PushSource<int>>(3);
  CHECK(push->capacity() == 3);
  CHECK(push->try_push(1));
  CHECK(push->try_push(2));
  CHECK(push->try_push(3));
  CHECK_FALSE(push->try_push(4));  // full, and nobody reads yet
  CHECK_FALSE(push->closed());
  push->close();
  CHECK(push->closed());
  CHECK_FALSE(push->try_push(5));
  CHECK_FALSE(push->push(6));  // full and closed: gives up instead of waiting forever
  weir::Pipeline p("push_full");
  std::vector<int> got;
  p.source(push).sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{1, 2, 3});  // what was queued before close is still delivered
  CHECK(r.stage("push#0").items_out == 3);
  CHECK_FALSE(push->push(7));
}

TEST_CASE("a push source frees room as the pipeline reads, and push after close returns false") {
  auto push = std::make_shared<weir::PushSource<std::string>>(2);
  weir::Pipeline p("push_room", with_batch(4));
  std::vector<std::string> got;
  std::atomic<int> delivered{0};
  p.source(push).sink([&](std::string s) {
    got.push_back(std::move(s));
    delivered.fetch_add(1);
  });
  p.start();
  for (int i = 0; i < 50; ++i) CHECK(push->push(std::to_string(i)));  // waits for room when full
  push->close();
  CHECK_FALSE(push->push("late"));
  CHECK_FALSE(push->try_push("late"));
  (void)p.wait();
  REQUIRE(got.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(got[static_cast<std::size_t>(i)] == std::to_string(i));
  CHECK(std::make_shared<weir::PushSource<int>>(0)->capacity() == 1);
}

TEST_CASE("a push source that is not closed flushes a partial batch after the linger time") {
  weir::PipelineOptions o;
  o.batch_size = 256;
  o.linger = 1ms;  // real clock: the batch cannot fill, so only the linger can send it on
  weir::Pipeline p("linger", o);
  auto push = std::make_shared<weir::PushSource<int>>(16);
  std::atomic<int> delivered{0};
  std::vector<int> got;
  std::mutex mutex;
  p.source(push).sink([&](int x) {
    const std::lock_guard lock(mutex);
    got.push_back(x);
    delivered.fetch_add(1);
  });
  p.start();
  CHECK(push->push(10));
  CHECK(push->push(20));
  CHECK(push->push(30));
  const bool arrived = eventually([&] { return delivered.load() == 3; }, 2s);
  CHECK(arrived);
  CHECK_FALSE(push->closed());
  {
    const std::lock_guard lock(mutex);
    CHECK(got == std::vector<int>{10, 20, 30});
  }
  // A later trickle is flushed the same way.
  CHECK(push->push(40));
  CHECK(eventually([&] { return delivered.load() == 4; }, 2s));
  push->close();
  const auto r = p.wait();
  CHECK(r.stage("push#0").items_out == 4);
  CHECK(r.stage("push#0").batches >= 2);
}

TEST_CASE("with a manual clock a partial batch of a push source leaves when the clock passes the linger") {
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.batch_size = 256;
  o.linger = 1ms;
  o.clock = clock;
  weir::Pipeline p("manual_linger", o);
  auto push = std::make_shared<weir::PushSource<int>>(16);
  std::atomic<int> delivered{0};
  p.source(push).sink([&](int) { delivered.fetch_add(1); });
  p.start();
  CHECK(push->push(1));
  CHECK(push->push(2));
  CHECK(push->push(3));
  std::this_thread::sleep_for(20ms);  // unavoidable: real time passes, the injected clock does not
  CHECK(delivered.load() == 0);
  // Each poll moves the clock past the linger time; the batch must leave soon after.
  CHECK(eventually(
      [&] {
        clock->advance(1ms);
        return delivered.load() == 3;
      },
      2s));
  push->close();
  const auto r = p.wait();
  CHECK(r.stage("push#0").items_out == 3);
}

TEST_CASE("on a manual clock a partial batch of a push source leaves at the linger deadline, however long") {
  // The linger is measured on the pipeline's clock, to the nanosecond; real time only bounds how
  // often the source looks at the clock again (a millisecond on a clock that is not the system's),
  // so a long linger does not make the test wait for it in real time.
  auto clock = std::make_shared<weir::ManualClock>();
  weir::PipelineOptions o;
  o.batch_size = 256;
  o.linger = 10s;
  o.clock = clock;
  weir::Pipeline p("manual_long_linger", o);
  auto push = std::make_shared<weir::PushSource<int>>(16);
  std::atomic<int> delivered{0};
  p.source(push).sink([&](int) { delivered.fetch_add(1); });
  p.start();
  const weir_test::OnExit end([&] {
    push->close();
    (void)p.wait();
  });
  CHECK(push->push(1));
  CHECK(push->push(2));
  CHECK(push->push(3));
  std::this_thread::sleep_for(20ms);  // unavoidable: real time passes, the injected clock does not
  CHECK(delivered.load() == 0);
  clock->advance(o.linger - 1ns);
  std::this_thread::sleep_for(20ms);  // unavoidable, as above
  CHECK(delivered.load() == 0);
  clock->advance(1ns);  // the linger deadline: the partial batch leaves
  CHECK(eventually([&] { return delivered.load() == 3; }, 2s));
  // The next batch's linger starts with its first item.
  CHECK(push->push(4));
  std::this_thread::sleep_for(20ms);  // unavoidable, as above
  CHECK(delivered.load() == 3);
  clock->advance(o.linger);
  CHECK(eventually([&] { return delivered.load() == 4; }, 2s));
}

TEST_CASE("a push source holding a batch on a manual clock that never moves ends at close or cancel") {
  for (const bool cancel : {false, true}) {
    CAPTURE(cancel);
    auto clock = std::make_shared<weir::ManualClock>();
    weir::PipelineOptions o;
    o.batch_size = 256;
    o.linger = 1s;
    o.clock = clock;
    weir::Pipeline p("manual_linger_end", o);
    auto push = std::make_shared<weir::PushSource<int>>(16);
    std::atomic<int> delivered{0};
    p.source(push).sink([&](int) { delivered.fetch_add(1); });
    p.start();
    CHECK(push->push(1));
    CHECK(push->push(2));
    if (cancel) {
      p.cancel();
    } else {
      push->close();
    }
    const auto r = p.wait();
    if (cancel) {
      CHECK(r.status == weir::RunStatus::cancelled);
    } else {
      CHECK(r.status == weir::RunStatus::completed);
      CHECK(delivered.load() == 2);  // the end of input sends the held batch on at once
    }
  }
}

TEST_CASE("a push source with no linger waits for items without spinning") {
  weir::PipelineOptions o;
  o.batch_size = 256;
  o.linger = 0us;  // every item leaves as soon as it is taken
  weir::Pipeline p("no_linger", o);
  auto push = std::make_shared<weir::PushSource<int>>(16);
  std::atomic<int> delivered{0};
  p.source(push).sink([&](int) { delivered.fetch_add(1); });
  p.start();
  const weir_test::OnExit end([&] {
    push->close();
    (void)p.wait();
  });
  CHECK(push->push(1));
  REQUIRE(eventually([&] { return delivered.load() == 1; }, 2s));  // a partial batch, at once
  // The process's CPU time over a stretch of real time with nothing to do: a source polling its
  // empty queue would use a core for all of it.
  const std::clock_t cpu0 = std::clock();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(300ms);  // unavoidable: idleness is measured in real time
  const double cpu_s = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CAPTURE(cpu_s);
  CHECK(cpu_s < wall_s / 4);
  CHECK(push->push(2));
  CHECK(eventually([&] { return delivered.load() == 2; }, 2s));
}

TEST_CASE("a generator that trickles flushes partial batches after the linger time") {
  weir::PipelineOptions o;
  o.batch_size = 1000;
  o.linger = 1ms;
  weir::Pipeline p("generator_linger", o);
  std::atomic<int> delivered{0};
  bool flushed_before_next = false;
  int n = 0;
  p.source(weir::from_generator{[&]() -> std::optional<int> {
     if (n == 3) std::this_thread::sleep_for(5ms);  // unavoidable: a slow item, so the linger time passes
     if (n == 4) flushed_before_next = eventually([&] { return delivered.load() == 4; }, 2s);
     if (n == 6) return std::nullopt;
     return n++;
   }})
      .sink([&](int) { delivered.fetch_add(1); })
      .parallelism(2);  // a node of its own
  const auto r = p.run();
  CHECK(delivered.load() == 6);
  // The batch of 1000 cannot fill: the first four items only got through because the linger
  // time had passed when the fourth arrived.
  CHECK(flushed_before_next);
  CHECK(r.stage("generator#0").batches >= 2);
}

TEST_CASE("a range source runs the fused chain after it over slices of the range, with no batches") {
  std::vector<int> in(10000);
  for (int i = 0; i < 10000; ++i) in[static_cast<std::size_t>(i)] = i;
  long sum = 0;
  weir::Pipeline p("direct");
  p.source(in).map([](int x) { return x * 3; }).filter([](int x) { return x % 2 == 0; }).sink([&sum](int x) {
    sum += x;
  });
  const auto rep = p.run();
  long want = 0;
  for (int x : in) want += (x * 3) % 2 == 0 ? x * 3 : 0;
  CHECK(sum == want);
  CHECK(rep.stage("range#0").items_out == 10000);
  CHECK(rep.stage("filter#2").filtered == 5000);
  CHECK(rep.stage("sink#3").items_in == 5000);
  // Nothing leaves the source's thread, so the slices are 4096 items, not 256-item batches.
  CHECK(rep.stage("map#1").batches == 3);
}

TEST_CASE("a viewed container is read in place and left as it was") {
  std::vector<std::string> in{"a", "b", "c"};
  std::vector<std::string> out;
  weir::Pipeline p("view");
  p.source(in).map([](std::string s) { return s + "!"; }).sink(weir::collect_into(out));
  p.run();
  CHECK(in == std::vector<std::string>{"a", "b", "c"});
  CHECK(out == std::vector<std::string>{"a!", "b!", "c!"});
}

TEST_CASE("an empty source completes the run without calling any stage") {
  weir::Pipeline p("empty_range");
  std::vector<int> got;
  int calls = 0;
  p.source(std::vector<int>{})
      .map([&calls](int x) {
        ++calls;
        return x;
      })
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(got.empty());
  CHECK(calls == 0);
  for (const auto& s : r.stages) {
    CAPTURE(s.name);
    CHECK(s.items_in == 0);
    CHECK(s.items_out == 0);
    CHECK(s.batches == 0);
  }

  weir::Pipeline g("empty_generator");
  int sink_calls = 0;
  g.source(weir::from_generator{[]() -> std::optional<int> {
     return std::nullopt;
   }}).sink([&sink_calls](int) { ++sink_calls; });
  const auto rg = g.run();
  CHECK(rg.status == weir::RunStatus::completed);
  CHECK(sink_calls == 0);
  CHECK(rg.stage("generator#0").items_out == 0);
}

// Once a run stops, producers must learn that nobody reads: pushes fail instead of being dropped.
TEST_CASE("a push source refuses items once its run was cancelled") {
  weir::Pipeline p("cancel_then_push");
  auto push = std::make_shared<weir::PushSource<int>>(16);
  std::atomic<int> delivered{0};
  p.source(push).sink([&](int) { delivered.fetch_add(1); });
  p.start();
  CHECK(push->push(1));
  CHECK(eventually([&] { return delivered.load() == 1; }));
  p.cancel();
  (void)p.wait();
  CHECK_FALSE(push->push(2));
  CHECK_FALSE(push->try_push(3));
  CHECK(delivered.load() == 1);
}

TEST_CASE("a generator that throws fails the run with its message") {
  weir::Pipeline p("bad_generator", with_batch(4));
  int n = 0;
  std::vector<int> got;
  p.source(weir::from_generator{[&n]() -> std::optional<int> {
     if (n == 10) throw std::runtime_error("sensor unplugged");
     return n++;
   }}).sink(weir::collect_into(got));
  const auto e = run_expecting_failure(p);
  REQUIRE(e.has_value());
  REQUIRE(e->errors().size() == 1);
  CHECK(e->errors()[0].stage == "generator#0");
  CHECK(e->errors()[0].type == "std::runtime_error");
  CHECK(e->errors()[0].message == "sensor unplugged");
  CHECK(contains(e->what(), "sensor unplugged"));
  CHECK(e->report().status == weir::RunStatus::failed);
  // Full batches before the failure were delivered.
  REQUIRE(got.size() >= 8);
  CHECK(std::vector<int>(got.begin(), got.begin() + 8) == iota(0, 8));
}

TEST_CASE("from_lines on a missing file fails the run with the path in the message") {
  const auto path = temp_path("missing.txt");
  weir::Pipeline p("missing_file");
  std::vector<std::string> got;
  p.source(weir::from_lines{path}).sink(weir::collect_into(got));
  const auto e = run_expecting_failure(p);
  REQUIRE(e.has_value());
  REQUIRE(e->errors().size() == 1);
  CHECK(e->errors()[0].stage == "lines#0");
  CHECK(contains(e->errors()[0].message, path.string()));
  CHECK(contains(e->what(), path.string()));
  CHECK(got.empty());
}

TEST_CASE("cancel right after start closes a push source: pushes fail instead of blocking") {
  weir::Pipeline p("cancel-push");
  auto push = std::make_shared<weir::PushSource<int>>(2);
  std::vector<int> got;
  p.source(push).sink(weir::collect_into(got));
  p.start();
  p.cancel();
  CHECK_FALSE(push->try_push(1));
  auto pushed = std::async(std::launch::async, [&] {
    bool any = false;
    for (int i = 0; i < 8; ++i) any = push->push(i) || any;  // more than the capacity
    return any;
  });
  const bool returned = pushed.wait_for(10s) == std::future_status::ready;
  if (!returned) push->close();  // unblock the pusher so the test ends
  CHECK(returned);
  CHECK_FALSE(pushed.get());
  p.wait();
  CHECK(got.empty());
}

namespace {

/// Runs `source` (a Stream of T) through a map at the setting's parallelism into a vector, and checks
/// it against `want`: exactly at parallelism 1, as a multiset above it.
template <class T, class S>
void check_source_gives(weir::Pipeline& p, S source, const weir_test::Setting& s,
                        const std::vector<T>& want) {
  std::vector<T> got;
  source.map([](T x) { return x; }).name("copy").parallelism(s.parallelism).sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(r.stages[0].items_out == want.size());
  CHECK(r.stage("copy").items_in == want.size());
  if (s.parallelism == 1) {
    CHECK(got == want);
  } else {
    CHECK(sorted(got) == sorted(want));
  }
}

/// A random line: printable characters, spaces and a carriage return that is not at its end.
std::string random_line(std::mt19937_64& rng) {
  const std::size_t n = rng() % 40 == 0 ? 0 : rng() % 60;
  std::string line;
  for (std::size_t i = 0; i < n; ++i) line.push_back(static_cast<char>(' ' + rng() % 95));
  if (n > 2 && rng() % 10 == 0) line[n / 2] = '\r';
  return line;
}

}  // namespace

TEST_CASE("a range source gives its elements in order at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto input = weir_test::random_ints(rng, weir_test::input_size(seed, s), -1'000'000, 1'000'000);
      INFO("seed ", seed, ", ", s.str(), ", ", input.size(), " items");
      {
        weir::Pipeline p("range-view", s.options());
        check_source_gives(p, p.source(input), s, input);  // read in place
      }
      {
        weir::Pipeline p("range-moved", s.options());
        auto copy = input;
        check_source_gives(p, p.source(std::move(copy)), s, input);
      }
    }
  }
}

namespace {
/// A value that counts its copies, to show that a moved-in range's elements are moved out.
struct Counted {
  static std::atomic<int> copies;
  int value = 0;
  Counted() = default;
  explicit Counted(int v) : value(v) {}
  Counted(const Counted& o) : value(o.value) { copies.fetch_add(1); }
  Counted(Counted&& o) noexcept : value(o.value) {}
  Counted& operator=(const Counted& o) {
    value = o.value;
    copies.fetch_add(1);
    return *this;
  }
  Counted& operator=(Counted&& o) noexcept {
    value = o.value;
    return *this;
  }
  ~Counted() = default;
};
std::atomic<int> Counted::copies{0};
}  // namespace

TEST_CASE("a range source moves the elements of an rvalue container out, never copying them") {
  for (const auto& s : settings()) {
    INFO(s.str());
    std::vector<Counted> input;
    for (int i = 0; i < 500; ++i) input.emplace_back(i);
    Counted::copies = 0;
    weir::Pipeline p("range-moved-out", s.options());
    std::vector<int> got;
    p.source(std::move(input))
        .map([](Counted x) { return x.value; })
        .parallelism(s.parallelism)
        .sink(weir::collect_into(got));
    (void)p.run();
    CHECK(Counted::copies.load() == 0);
    if (s.parallelism == 1) {
      CHECK(got == iota(0, 500));
    } else {
      CHECK(sorted(got) == iota(0, 500));
    }
  }
}

TEST_CASE("a generator source gives its values until nullopt at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto input = weir_test::random_ints(rng, weir_test::input_size(seed, s), -1'000'000, 1'000'000);
      INFO("seed ", seed, ", ", s.str(), ", ", input.size(), " items");
      weir::Pipeline p("generator-random", s.options());
      std::size_t next = 0;
      std::size_t calls_after_end = 0;
      auto src = p.source(weir::from_generator{[&]() -> std::optional<std::int64_t> {
        if (next == input.size()) {
          ++calls_after_end;
          return std::nullopt;
        }
        return input[next++];
      }});
      check_source_gives(p, src, s, input);
      CHECK(calls_after_end == 1);
    }
  }
}

TEST_CASE("from_lines gives every line of a random file at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto n = weir_test::input_size(seed, s);
      std::vector<std::string> want;
      std::string content;
      for (std::size_t i = 0; i < n; ++i) {
        want.push_back(random_line(rng));
        content += want.back();
        // \n or \r\n after every line, but maybe not after the last one unless it is empty (an
        // empty unterminated last line is no line at all).
        if (i + 1 < n || want.back().empty() || rng() % 2 == 0) content += rng() % 3 == 0 ? "\r\n" : "\n";
      }
      INFO("seed ", seed, ", ", s.str(), ", ", n, " lines");
      TempPath file("random_lines.txt");
      file.write(content);
      weir::Pipeline p("lines-random", s.options());
      check_source_gives(p, p.source(weir::from_lines{file.path()}), s, want);
    }
  }
}

TEST_CASE(
    "a push source gives what a producer thread pushed, in order, at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto input = weir_test::random_ints(rng, weir_test::input_size(seed, s), -1'000'000, 1'000'000);
      INFO("seed ", seed, ", ", s.str(), ", ", input.size(), " items");
      weir::Pipeline p("push-random", s.options());
      auto push = std::make_shared<weir::PushSource<std::int64_t>>(64);
      std::atomic<std::size_t> refused{0};
      std::thread producer([&] {
        for (const auto x : input) {
          if (!push->push(x)) refused.fetch_add(1);
        }
        push->close();
      });
      const weir_test::OnExit join([&] { producer.join(); });
      check_source_gives(p, p.source(push), s, input);
      CHECK(refused.load() == 0);
    }
  }
}

TEST_CASE("a push source closed before anything was pushed ends the run with no item") {
  for (const bool before_start : {true, false}) {
    CAPTURE(before_start);
    weir::Pipeline p("push-empty");
    auto push = std::make_shared<weir::PushSource<int>>(4);
    int calls = 0;
    p.source(push).sink([&calls](int) { ++calls; });
    if (before_start) push->close();
    p.start();
    if (!before_start) push->close();
    const auto r = p.wait();
    CHECK(r.status == weir::RunStatus::completed);
    CHECK(calls == 0);
    CHECK(r.stage("push#0").items_out == 0);
  }
}
