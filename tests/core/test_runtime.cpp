// Tests of the runtime: fused chains against plain loops, batching, parallelism, node boundaries,
// the run report's arithmetic, backpressure and cancellation.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using weir_test::eventually;
using weir_test::with_batch;

using namespace std::chrono_literals;

/// A value that counts its copies, to show that owned items are moved along.
struct Tracked {
  static std::atomic<int> copies;
  int value = 0;
  Tracked() = default;
  explicit Tracked(int v) : value(v) {}
  Tracked(const Tracked& o) : value(o.value) { copies.fetch_add(1); }
  Tracked(Tracked&& o) noexcept : value(o.value) {}
  Tracked& operator=(const Tracked& o) {
    value = o.value;
    copies.fetch_add(1);
    return *this;
  }
  Tracked& operator=(Tracked&& o) noexcept {
    value = o.value;
    return *this;
  }
  ~Tracked() = default;
};
std::atomic<int> Tracked::copies{0};

}  // namespace

TEST_CASE("map, filter and map produce what a plain loop produces") {
  std::vector<long> expected;
  for (long i = 0; i < 10000; ++i) {
    const long x = i * 3 + 1;
    if (x % 2 == 0) expected.push_back(x ^ (x >> 7));
  }
  weir::Pipeline p("chain");
  std::vector<long> got;
  p.source(std::views::iota(0L, 10000L))
      .map([](long i) { return i * 3 + 1; })
      .filter([](long x) { return x % 2 == 0; })
      .map([](long x) { return x ^ (x >> 7); })
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(got == expected);
  CHECK(r.stage("filter#2").items_in == 10000);
  CHECK(r.stage("filter#2").filtered == 10000 - expected.size());
  CHECK(r.stage("collect#4").items_in == expected.size());
}

TEST_CASE("stateless stages with the same parallelism are fused into one node") {
  weir::Pipeline p("fused");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3})
      .map([](int x) { return x + 1; })
      .name("inc")
      .filter([](int x) { return x > 2; })
      .sink(weir::collect_into(got));
  const auto plan = p.explain();
  CHECK(plan.find("inc (map) -> filter#2 (filter) -> collect#3 (collect)") != std::string::npos);
  const auto r = p.run();
  CHECK(r.stage("inc").node == r.stage("collect#3").node);
  // Stateless stages of parallelism 1 are fused into the source's node (they run on its thread);
  // a stage with another parallelism is not.
  CHECK(r.stage("range#0").node == r.stage("inc").node);
  CHECK(got == std::vector<int>{3, 4});
}

TEST_CASE("a source's stage of another parallelism runs in a separate node") {
  weir::Pipeline p("unfused");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3})
      .map([](int x) { return x + 1; })
      .name("inc")
      .parallelism(2)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.stage("range#0").node != r.stage("inc").node);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{2, 3, 4});
}

TEST_CASE(
    "chains of map, filter and flat_map over ints match a plain loop for batch sizes 1, 7 and the default") {
  constexpr int n = 3000;
  std::vector<std::int64_t> expected;
  for (int i = 0; i < n; ++i) {
    const std::int64_t a = static_cast<std::int64_t>(i) * 7 - 5;
    if (a % 3 == 0) continue;
    for (int k = 0; k < i % 4; ++k) expected.push_back(a * 10 + k);
  }
  for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, weir::PipelineOptions{}.batch_size}) {
    CAPTURE(batch);
    weir::Pipeline p("ints", with_batch(batch));
    std::vector<std::int64_t> got;
    std::vector<int> input(n);
    std::iota(input.begin(), input.end(), 0);
    p.source(std::move(input))
        .map([](int i) {
          return std::pair<int, std::int64_t>{i, static_cast<std::int64_t>(i) * 7 - 5};
        })
        .filter([](const std::pair<int, std::int64_t>& x) { return x.second % 3 != 0; })
        .flat_map([](std::pair<int, std::int64_t> x) {
          std::vector<std::int64_t> out;
          for (int k = 0; k < x.first % 4; ++k) out.push_back(x.second * 10 + k);
          return out;
        })
        .sink(weir::collect_into(got));
    const auto r = p.run();
    CHECK(got == expected);
    const std::size_t size =
        batch == 0 ? 256 : batch;  // 0: the default, 256 for batches that leave the thread
    const std::uint64_t batches = (n + size - 1) / size;
    CHECK(r.stage("range#0").batches == batches);
  }
}

TEST_CASE("chains over strings match a plain loop for batch sizes 1, 7 and the default") {
  std::vector<std::string> words;
  for (int i = 0; i < 500; ++i)
    words.push_back(std::string(static_cast<std::size_t>(i % 13), static_cast<char>('a' + i % 26)));
  std::vector<std::string> expected;
  for (const auto& w : words) {
    std::string s = w;
    s += '!';
    if (s.size() % 2 == 0) continue;
    for (const char c : s) expected.push_back(std::string(1, c).append(std::to_string(s.size())));
  }
  for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, weir::PipelineOptions{}.batch_size}) {
    CAPTURE(batch);
    weir::Pipeline p("strings", with_batch(batch));
    std::vector<std::string> got;
    p.source(words)  // a view: the vector outlives the run
        .map([](std::string s) {
          s += '!';
          return s;
        })
        .filter([](const std::string& s) { return s.size() % 2 != 0; })
        .flat_map([](const std::string& s) {
          std::vector<std::string> out;
          for (const char c : s) out.push_back(std::string(1, c).append(std::to_string(s.size())));
          return out;
        })
        .sink(weir::collect_into(got));
    (void)p.run();
    CHECK(got == expected);
  }
  CHECK(words.size() == 500);  // a viewed range is read, not consumed
  CHECK(words[12] == std::string(12, 'm'));
}

TEST_CASE("items the pipeline owns are moved, never copied, through map, filter, flat_map and collect") {
  std::vector<Tracked> input;
  for (int i = 0; i < 100; ++i) input.emplace_back(i);
  Tracked::copies = 0;
  weir::Pipeline p("moves", with_batch(16));
  std::vector<Tracked> got;
  p.source(std::move(input))
      .map([](Tracked t) {
        t.value *= 2;
        return t;
      })
      .filter([](const Tracked& t) { return t.value % 3 != 0; })
      .flat_map([](Tracked t) {
        std::vector<Tracked> out;
        out.reserve(2);
        out.emplace_back(t.value + 1);
        out.push_back(std::move(t));
        return out;
      })
      .sink(weir::collect_into(got));
  (void)p.run();
  CHECK(Tracked::copies.load() == 0);
  std::vector<int> values;
  for (const auto& t : got) values.push_back(t.value);
  std::vector<int> expected;
  for (int i = 0; i < 100; ++i) {
    if ((i * 2) % 3 == 0) continue;
    expected.push_back(i * 2 + 1);
    expected.push_back(i * 2);
  }
  CHECK(values == expected);
}

TEST_CASE(
    "chains that continue from a stream read twice, or change parallelism midway, give the right items") {
  weir::Pipeline p("split_chains", with_batch(8));
  std::vector<int> a;
  std::vector<int> b;
  std::vector<int> c;
  auto doubled = p.source(std::views::iota(0, 50)).map([](int x) { return x * 2; });
  doubled.filter([](int x) { return x % 4 == 0; })
      .map([](int x) { return x + 1; })
      .sink(weir::collect_into(a));
  doubled.map([](int x) { return x - 1; }).sink(weir::collect_into(b));
  p.source(std::views::iota(0, 50))
      .map([](int x) { return x * 3; })
      .map([](int x) { return x + 2; })
      .parallelism(2)
      .filter([](int x) { return x % 2 == 0; })
      .parallelism(2)
      .sink([&c](int x) { c.push_back(x); });  // parallelism 1: a node of its own again
  (void)p.run();
  std::vector<int> ea;
  std::vector<int> eb;
  std::vector<int> ec;
  for (int i = 0; i < 50; ++i) {
    if ((i * 2) % 4 == 0) ea.push_back(i * 2 + 1);
    eb.push_back(i * 2 - 1);
    if ((i * 3 + 2) % 2 == 0) ec.push_back(i * 3 + 2);
  }
  CHECK(a == ea);
  CHECK(b == eb);
  std::sort(c.begin(), c.end());
  CHECK(c == ec);
}

TEST_CASE("parallel stages give the same multiset of results as a plain loop") {
  constexpr int n = 20000;
  std::vector<std::int64_t> expected;
  for (int i = 0; i < n; ++i) {
    const std::int64_t v = static_cast<std::int64_t>(i) * i % 10007;
    if (v % 5 != 0) expected.push_back(v + 1);
  }
  std::sort(expected.begin(), expected.end());
  weir::Pipeline p("parallel", with_batch(64));
  std::vector<std::int64_t> got;
  p.source(std::views::iota(0, n))
      .map([](int i) { return static_cast<std::int64_t>(i) * i % 10007; })
      .parallelism(2)
      .filter([](std::int64_t v) { return v % 5 != 0; })
      .parallelism(2)
      .map([](std::int64_t v) { return v + 1; })
      .parallelism(2)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  std::sort(got.begin(), got.end());
  CHECK(got == expected);
  CHECK(r.stage("map#1").items_in == static_cast<std::uint64_t>(n));
  CHECK(r.stage("map#3").items_out == expected.size());
  CHECK(r.stage("map#1").parallelism == 2);
}

TEST_CASE("a pipeline waiting for pushed items is not starved by a busy pipeline in the same process") {
  // The two runs' arenas share oneTBB's workers (one, on two cores). The push source waits for items
  // outside oneTBB, so the batch it sends is run by a thread of its arena while `busy` keeps the
  // workers it can get busy: every pushed item reaches the sink within a bounded time.
  std::atomic<bool> stop{false};
  weir::Pipeline busy("busy");
  busy.source(weir::from_generator{[&]() -> std::optional<std::uint64_t> {
        if (stop.load(std::memory_order_relaxed)) return std::nullopt;
        return 1;
      }})
      .map([](std::uint64_t x) {
        std::uint64_t h = x;
        for (int i = 0; i < 2000; ++i) h = h * 31 + static_cast<std::uint64_t>(i);  // a few microseconds
        return h;
      })
      .parallelism(2)
      .sink([](std::uint64_t) {});
  busy.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));

  auto push = std::make_shared<weir::PushSource<int>>(16);
  std::atomic<int> got{0};
  weir::Pipeline quiet("quiet");
  quiet.source(push).map([](int x) { return x; }).parallelism(2).sink([&](int) { got.fetch_add(1); });
  quiet.start();
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(push->push(i));
    CHECK(eventually([&] { return got.load() == i; }, std::chrono::seconds{2}));
  }
  push->close();
  CHECK(quiet.wait().status == weir::RunStatus::completed);
  stop.store(true);
  CHECK(busy.wait().status == weir::RunStatus::completed);
}

TEST_CASE("one thread is enough to run parallel stages") {
  weir::PipelineOptions o;
  o.threads = 1;
  o.batch_size = 10;
  weir::Pipeline p("one_thread", o);
  std::vector<int> got;
  p.source(std::views::iota(0, 1000))
      .map([](int x) { return x + 1; })
      .parallelism(4)
      .sink(weir::collect_into(got));
  (void)p.run();
  std::sort(got.begin(), got.end());
  std::vector<int> expected(1000);
  std::iota(expected.begin(), expected.end(), 1);
  CHECK(got == expected);
}

TEST_CASE("order is kept across separate nodes when every stage runs with parallelism one") {
  weir::Pipeline p("ordered", with_batch(7));
  std::vector<int> first;
  std::vector<int> second;
  std::vector<int> third;
  int next = 0;
  auto src = p.source(weir::from_generator{[&next]() -> std::optional<int> {
    if (next == 2000) return std::nullopt;
    return next++;
  }});
  // A stream read by several stages: each reader is a node of its own, fed batch after batch.
  src.sink(weir::collect_into(first));
  src.map([](int x) { return x; }).sink(weir::collect_into(second));
  src.sink(weir::async_sink{[&third](int x) { third.push_back(x); }});
  (void)p.run();
  std::vector<int> expected(2000);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(first == expected);
  CHECK(second == expected);
  CHECK(third == expected);
}

TEST_CASE("the run report adds up for every stage") {
  constexpr int n = 1000;
  // The same computation as a plain loop, with the counts each stage should report.
  std::uint64_t map_errors = 0, filtered = 0, flat_out = 0, sink_errors = 0, delivered_expected = 0;
  std::vector<std::string> expected;
  for (int i = 0; i < n; ++i) {
    if (i % 97 == 0) {
      ++map_errors;
      continue;
    }
    const int m = i * 2;
    if (m % 3 == 0) {
      ++filtered;
      continue;
    }
    const int copies = m % 5 == 0 ? 0 : (m % 5 == 1 ? 2 : 1);
    for (int k = 0; k < copies; ++k) {
      ++flat_out;
      const std::string s = std::to_string(m);
      if (s.back() == '4') {
        ++sink_errors;
      } else {
        ++delivered_expected;
        expected.push_back(s);
      }
    }
  }

  for (const int par : {1, 2}) {
    CAPTURE(par);
    weir::Pipeline p("report", with_batch(32));
    std::vector<std::string> delivered;
    std::mutex mutex;
    p.source(std::views::iota(0, n))
        .map([](int i) {
          if (i % 97 == 0) throw std::runtime_error("no multiples of 97");
          return i * 2;
        })
        .parallelism(par)
        .on_error(weir::on_error::skip())
        .filter([](int m) { return m % 3 != 0; })
        .parallelism(par)
        .flat_map([](int m) { return std::vector<int>(m % 5 == 0 ? 0U : (m % 5 == 1 ? 2U : 1U), m); })
        .parallelism(par)
        .map([](int m) { return std::to_string(m); })
        .parallelism(par)
        .sink([&](const std::string& s) {
          if (s.back() == '4') throw std::invalid_argument("no 4 at the end");
          const std::lock_guard lock(mutex);
          delivered.push_back(s);
        })
        .parallelism(par)
        .on_error(weir::on_error::skip());
    const auto r = p.run();
    CHECK(r.status == weir::RunStatus::completed);
    const auto& src = r.stage("range#0");
    const auto& m1 = r.stage("map#1");
    const auto& f2 = r.stage("filter#2");
    const auto& fm3 = r.stage("flat_map#3");
    const auto& m4 = r.stage("map#4");
    const auto& s5 = r.stage("sink#5");
    CHECK(src.items_out == static_cast<std::uint64_t>(n));
    CHECK(m1.items_in == src.items_out);
    CHECK(m1.errors == map_errors);
    CHECK(m1.skipped == map_errors);
    CHECK(m1.items_in == m1.items_out + m1.filtered + m1.errors);
    CHECK(f2.items_in == m1.items_out);
    CHECK(f2.filtered == filtered);
    CHECK(f2.items_in == f2.items_out + f2.filtered + f2.errors);
    CHECK(fm3.items_in == f2.items_out);
    CHECK(fm3.items_out == flat_out);
    CHECK(m4.items_in == fm3.items_out);
    CHECK(m4.items_in == m4.items_out + m4.filtered + m4.errors);
    CHECK(s5.items_in == m4.items_out);
    CHECK(s5.errors == sink_errors);
    CHECK(s5.skipped == sink_errors);
    CHECK(s5.items_out == delivered_expected);
    CHECK(s5.items_out == delivered.size());
    CHECK(s5.items_in == s5.items_out + s5.errors);
    for (const auto& s : r.stages) {
      CAPTURE(s.name);
      CHECK(s.batches > 0);
      CHECK(s.dead_lettered == 0);
      CHECK(s.retries == 0);
    }
    std::sort(delivered.begin(), delivered.end());
    auto sorted = expected;
    std::sort(sorted.begin(), sorted.end());
    CHECK(delivered == sorted);
    CHECK(r.errors.size() == 2);
  }
}

TEST_CASE("a fast source waits for a slow sink and keeps at most max_in_flight batches unconsumed") {
  constexpr std::size_t batch = 16;
  constexpr std::size_t max_in_flight = 2;
  constexpr int total = 3000;
  weir::PipelineOptions o;
  o.batch_size = batch;
  o.max_in_flight = max_in_flight;
  o.linger = 10s;  // batches always full, so the counts below are exact
  weir::Pipeline p("backpressure", o);
  std::atomic<std::int64_t> produced{0};
  std::atomic<std::int64_t> consumed{0};
  std::atomic<std::int64_t> worst{0};
  std::atomic<bool> open{false};
  int next = 0;
  p.source(weir::from_generator{[&]() -> std::optional<std::string> {
     if (next == total) return std::nullopt;
     ++next;
     produced.fetch_add(1);
     return std::string(1024, static_cast<char>('a' + next % 26));
   }})
      .sink([&](const std::string& s) {
        while (!open.load()) std::this_thread::sleep_for(100us);
        const auto in_flight = produced.load() - consumed.load();
        auto w = worst.load();
        while (in_flight > w && !worst.compare_exchange_weak(w, in_flight)) {
        }
        if (s.size() != 1024) throw std::logic_error("wrong item");
        consumed.fetch_add(1);
      })
      .parallelism(2);  // a node of its own, fed from the source's thread
  p.start();
  // With the sink held, the source fills max_in_flight batches, builds one more and waits.
  const auto stalled = static_cast<std::int64_t>((max_in_flight + 1) * batch);
  CHECK(eventually([&] { return produced.load() >= stalled; }));
  std::this_thread::sleep_for(20ms);  // unavoidable: give the source time to be stuck in its wait
  CHECK(produced.load() == stalled);
  open = true;
  const auto r = p.wait();
  CHECK(consumed.load() == total);
  CHECK(worst.load() <= stalled);
  CHECK(r.stage("generator#0").items_out == static_cast<std::uint64_t>(total));
  CHECK(r.stage("generator#0").blocked > 0ns);
  CHECK(r.stage("sink#1").items_out == static_cast<std::uint64_t>(total));
}

TEST_CASE("an async sink with a full queue holds the source back and counts the time it waited") {
  constexpr std::size_t batch = 8;
  constexpr std::size_t max_in_flight = 3;
  weir::PipelineOptions o;
  o.batch_size = batch;
  o.max_in_flight = max_in_flight;
  o.linger = 10s;
  weir::Pipeline p("async_backpressure", o);
  std::atomic<std::int64_t> produced{0};
  std::atomic<bool> open{false};
  std::vector<int> got;
  int next = 0;
  p.source(weir::from_generator{[&]() -> std::optional<int> {
     if (next == 400) return std::nullopt;
     produced.fetch_add(1);
     return next++;
   }})
      .sink(weir::async_sink{[&](int x) {
                               while (!open.load()) std::this_thread::sleep_for(100us);
                               got.push_back(x);
                             },
                             1});
  p.start();
  // One batch in the sink's function, one in its queue of one, one waiting to enter the queue,
  // and the source holding a fourth.
  const auto stalled = static_cast<std::int64_t>((max_in_flight + 1) * batch);
  CHECK(eventually([&] { return produced.load() >= stalled; }));
  std::this_thread::sleep_for(20ms);  // unavoidable: let the waits begin
  CHECK(produced.load() == stalled);
  open = true;
  const auto r = p.wait();
  std::vector<int> expected(400);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(got == expected);
  CHECK(r.stage("generator#0").blocked > 0ns);
  CHECK(r.stage("async_sink#1").blocked > 0ns);
  CHECK(r.stage("async_sink#1").items_out == 400);
}

TEST_CASE("a push source fed faster than its sink holds at most its capacity plus the batches in flight") {
  constexpr std::size_t batch = 10;
  constexpr std::size_t max_in_flight = 2;
  constexpr std::size_t capacity = 25;
  constexpr int total = 2000;
  weir::PipelineOptions o;
  o.batch_size = batch;
  o.max_in_flight = max_in_flight;
  o.linger = 10s;
  weir::Pipeline p("push_backpressure", o);
  auto push = std::make_shared<weir::PushSource<int>>(capacity);
  std::atomic<std::int64_t> produced{0};
  std::atomic<std::int64_t> consumed{0};
  std::atomic<std::int64_t> worst{0};
  std::atomic<bool> open{false};
  std::vector<int> got;
  p.source(push).sink([&](int x) {
    while (!open.load()) std::this_thread::sleep_for(100us);
    const auto in_flight = produced.load() - consumed.load();
    if (in_flight > worst.load()) worst = in_flight;
    got.push_back(x);
    consumed.fetch_add(1);
  });
  p.start();
  std::thread producer([&] {
    for (int i = 0; i < total; ++i) {
      produced.fetch_add(1);
      if (!push->push(i)) return;
    }
    push->close();
  });
  // The sink holds the batch it is in, the source waits to hand over its next, the queue is full
  // and the producer waits with one more. With everything fused on the source's thread, only one
  // batch can be out of the queue.
  const auto bound = static_cast<std::int64_t>((max_in_flight + 1) * batch + capacity + 1);
  CHECK(eventually([&] { return produced.load() >= static_cast<std::int64_t>(batch + capacity + 1); }));
  std::this_thread::sleep_for(20ms);  // unavoidable: let the producer reach its wait
  const auto held = produced.load();
  CHECK(held <= bound);
  CHECK_FALSE(push->try_push(-1));  // full
  open = true;
  producer.join();
  const auto r = p.wait();
  CHECK(consumed.load() == total);
  CHECK(worst.load() <= bound);
  std::vector<int> expected(total);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(got == expected);
  CHECK(r.stage("push#0").items_out == static_cast<std::uint64_t>(total));
}

TEST_CASE("cancel stops a never-ending generator and every item it emitted reaches the sink") {
  for (const int par : {1, 2}) {
    CAPTURE(par);
    weir::PipelineOptions o;
    o.batch_size = 32;
    o.max_in_flight = 4;
    weir::Pipeline p("cancel_generator", o);
    std::atomic<std::uint64_t> generated{0};
    std::atomic<std::uint64_t> delivered{0};
    p.source(weir::from_generator{[&]() -> std::optional<std::uint64_t> { return generated.fetch_add(1); }})
        .map([](std::uint64_t x) { return x * 2; })
        .parallelism(par)
        .sink([&](std::uint64_t) { delivered.fetch_add(1); })
        .parallelism(par);
    p.start();
    CHECK(eventually([&] { return delivered.load() >= 1000; }));
    p.cancel();
    weir::RunReport r;
    CHECK_NOTHROW(r = p.wait());
    CHECK(r.status == weir::RunStatus::cancelled);
    CHECK(r.errors.empty());
    const auto emitted = r.stage("generator#0").items_out;
    CHECK(emitted >= 1000);
    CHECK(delivered.load() == emitted);
    CHECK(generated.load() == emitted);  // the source stopped between batches: no item was dropped
    CHECK(r.stage("sink#2").items_out == emitted);
    CHECK(r.stage("map#1").items_in == emitted);
    // Cancelling again after the end changes nothing.
    p.cancel();
  }
}

TEST_CASE("cancel releases a source that waits for room and the run drains what it emitted") {
  weir::PipelineOptions o;
  o.batch_size = 8;
  o.max_in_flight = 2;
  o.linger = 10s;
  weir::Pipeline p("cancel_blocked", o);
  std::atomic<std::uint64_t> produced{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<bool> open{false};
  p.source(weir::from_generator{[&]() -> std::optional<std::uint64_t> { return produced.fetch_add(1); }})
      .sink([&](std::uint64_t) {
        while (!open.load()) std::this_thread::sleep_for(100us);
        delivered.fetch_add(1);
      })
      .parallelism(2);
  p.start();
  CHECK(eventually([&] { return produced.load() >= 3 * 8; }));  // two batches held, the third waits
  p.cancel();
  open = true;
  const auto r = p.wait();
  CHECK(r.status == weir::RunStatus::cancelled);
  const auto emitted = r.stage("generator#0").items_out;
  CHECK(emitted >= 2 * 8);
  CHECK(emitted <= 4 * 8);
  CHECK(produced.load() == emitted);
  CHECK(delivered.load() == emitted);
}

TEST_CASE("cancel stops a push source that was never closed and what it emitted is delivered") {
  weir::PipelineOptions o;
  o.batch_size = 8;
  weir::Pipeline p("cancel_push", o);
  auto push = std::make_shared<weir::PushSource<int>>(64);
  std::atomic<std::uint64_t> delivered{0};
  p.source(push).sink([&](int) { delivered.fetch_add(1); });
  p.start();
  for (int i = 0; i < 20; ++i) CHECK(push->push(i));
  CHECK(eventually([&] { return delivered.load() == 20; }));
  p.cancel();
  const auto r = p.wait();
  CHECK(r.status == weir::RunStatus::cancelled);
  CHECK(r.stage("push#0").items_out == 20);
  CHECK(r.stage("sink#1").items_out == 20);
  CHECK(delivered.load() == 20);
}

TEST_CASE("cancel before start changes nothing and a pipeline destroyed while running stops cleanly") {
  {
    weir::Pipeline p("cancel_early");
    std::vector<int> got;
    p.source(std::vector<int>{1, 2, 3}).sink(weir::collect_into(got));
    p.cancel();  // not started: no effect
    const auto r = p.run();
    CHECK(r.status == weir::RunStatus::completed);
    CHECK(got == std::vector<int>{1, 2, 3});
  }
  std::atomic<std::uint64_t> delivered{0};
  {
    weir::Pipeline p("destroyed");
    std::uint64_t n = 0;
    p.source(weir::from_generator{[&n]() -> std::optional<std::uint64_t> {
       return n++;
     }}).sink([&](std::uint64_t) { delivered.fetch_add(1); });
    p.start();
    CHECK(eventually([&] { return delivered.load() > 0; }));
  }  // the destructor cancels and joins
  CHECK(delivered.load() > 0);
}

TEST_CASE("a chain longer than one fused loop is cut into several loops and computes every stage") {
  weir::Pipeline p("long_chain", with_batch(16));
  std::vector<int> got;
  auto inc = [](int x) { return x + 1; };
  // Ten operators in one expression: more than one fused loop holds (8), so the plan cuts it.
  weir::Stream<int> s = p.source(std::views::iota(0, 100))
                            .map(inc)
                            .map(inc)
                            .map(inc)
                            .map(inc)
                            .map(inc)
                            .filter([](int x) { return x % 2 == 0; })
                            .map(inc)
                            .map(inc)
                            .map(inc)
                            .map(inc);
  // Then thirty more through plain Stream<int> handles, each starting a chain of its own.
  for (int i = 0; i < 30; ++i) s = s.map(inc);
  s.sink(weir::collect_into(got));
  const auto r = p.run();
  std::vector<int> expected;
  for (int i = 0; i < 100; ++i) {
    if ((i + 5) % 2 == 0) expected.push_back(i + 39);
  }
  CHECK(got == expected);
  CHECK(r.stages.size() == 42);
  CHECK(r.stage("filter#6").filtered == 50);
  CHECK(r.stage("map#40").items_out == 50);
  CHECK(r.stage("collect#41").items_in == 50);
}

TEST_CASE("stateful mutable callables keep their state across batches and slices") {
  // A mutable lambda changes itself on every call: the fused loop must run the stage's own copy.
  for (const std::size_t batch : {std::size_t{0}, std::size_t{7}}) {
    CAPTURE(batch);
    weir::PipelineOptions o;
    o.batch_size = batch;
    weir::Pipeline p{"mutable", o};
    std::uint64_t sum = 0;
    std::uint64_t last_seen = 0;
    p.source(std::views::iota(0, 10'000))
        .map([n = 0](int) mutable { return ++n; })
        .filter([](int x) { return x % 2 == 0; })
        .sink([&sum, &last_seen, calls = std::uint64_t{0}](int x) mutable {
          sum += static_cast<std::uint64_t>(x);
          last_seen = ++calls;
        });
    p.run();
    CHECK(sum == 2ULL * (5'000ULL * 5'001ULL / 2));  // 2 + 4 + ... + 10000
    CHECK(last_seen == 5'000);
  }
}

namespace {
/// The whitespace-separated words of `line`.
std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    const auto b = line.find_first_not_of(' ', i);
    if (b == std::string::npos) break;
    const auto e = line.find(' ', b);
    out.push_back(line.substr(b, e == std::string::npos ? std::string::npos : e - b));
    i = e == std::string::npos ? line.size() : e;
  }
  return out;
}

/// The lines of `text`.
std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto e = text.find('\n', i);
    out.push_back(text.substr(i, e - i));
    if (e == std::string::npos) break;
    i = e + 1;
  }
  return out;
}
}  // namespace

TEST_CASE("the report table shows a timeouts column only when a stage timed out") {
  weir::RunReport r;
  r.pipeline = "table";
  r.run_id = "r1";
  r.wall = std::chrono::seconds{1};
  weir::StageReport src;
  src.name = "source#0";
  src.kind = "source";
  weir::StageReport call;
  call.name = "lookup";
  call.kind = "map";
  call.items_in = 10;
  call.items_out = 7;
  call.errors = 3;
  call.skipped = 3;
  call.late = 5;
  r.stages = {src, call};

  const auto narrow = lines(r.to_string());
  REQUIRE(narrow.size() == 4);
  CHECK(!weir_test::contains(narrow[1], "timeouts"));

  r.stages[1].timeouts = 4;
  const auto wide = lines(r.to_string());
  REQUIRE(wide.size() == 4);
  const auto head = words(wide[1]);
  const auto row = words(wide[3]);
  const auto col = std::find(head.begin(), head.end(), "timeouts") - head.begin();
  REQUIRE(col < static_cast<std::ptrdiff_t>(head.size()));
  REQUIRE(col + 1 < static_cast<std::ptrdiff_t>(row.size()));
  CHECK(row[0] == "lookup");
  CHECK(row[static_cast<std::size_t>(col)] == "4");
  CHECK(row[static_cast<std::size_t>(col) + 1] == "5");  // late follows
  CHECK(words(wide[2])[static_cast<std::size_t>(col)] == "0");
  // The other columns keep their place: the table only gains the one column.
  CHECK(wide[1].size() == narrow[1].size() + 9);
  CHECK(wide[3].size() == narrow[3].size() + 9);
}
