// Tests of how batches reach keyed stages: each sending stream fills one batch per partition and
// sends it on when full, when the watermark may close a window, after the linger time, and at end
// of input or cancel; the partition batches' memory is reused.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <weir/detail/batch_pool.hpp>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using namespace std::chrono_literals;
using weir_test::eventually;

/// Records the watermarks a window stage reports, in order.
struct Watermarks final : weir::Interceptor {
  std::mutex m;
  std::vector<std::chrono::system_clock::time_point> seen;
  void on_event(const weir::StageInfo& s, const weir::Event& e) override {
    if (s.kind != "window") return;
    const std::lock_guard lock(m);
    if (const auto* w = std::get_if<weir::events::WatermarkAdvanced>(&e)) seen.push_back(w->watermark);
  }
};

}  // namespace

TEST_CASE("a keyed stage receives full batches when a filter thins out plentiful input") {
  // 64-item source batches keep a quarter of their items and split them over two partitions: about
  // 8 items per partition and batch. The partitions must still receive full batches (four times the
  // batch size for a keyed input).
  weir::PipelineOptions o;
  o.batch_size = 64;
  o.linger = 10s;  // only a full batch or the end of input moves items on
  weir::Pipeline p("full-batches", o);
  std::map<int, std::uint64_t> counts;
  p.source(weir_test::iota(0, 64 * 100))
      .filter([](int x) { return x % 4 == 0; })
      .map_reduce(
          [](int x) {
            return std::pair<int, std::uint64_t>{x % 10, 1};
          },
          std::plus<std::uint64_t>{})
      .name("count")
      .parallelism(2)
      .sink([&](const std::pair<int, std::uint64_t>& kv) { counts[kv.first] += kv.second; });
  const auto rep = p.run();
  const auto& count = rep.stage("count");
  CHECK(count.items_in == 1600);
  // 1600 items in 256-item batches: 6, plus at most one partial batch per partition at the end, plus
  // the two end-of-input flushes that emit the sums. Split as they come, it would be about 200.
  CHECK(count.batches <= 6 + 2 + 2);
  std::uint64_t total = 0;
  for (const auto& [k, n] : counts) total += n;
  CHECK(total == 1600);
  CHECK(counts.size() == 5);  // multiples of 4 end in 0, 2, 4, 6, 8
}

TEST_CASE(
    "an event-time window sees its watermark pass every window while batches fill up" WEIR_NEEDS_TELEMETRY) {
  // One item a second, of which a filter keeps every eighth; 64-item source batches span 64 s and
  // windows are 100 s. A full 64-item batch for the window would span 512 s of event time: batches
  // held to fill up must go on whenever a window may close.
  struct Ev {
    int key;
    std::int64_t t_sec;
  };
  std::vector<Ev> in;
  for (int i = 0; i < 4096; ++i) in.push_back(Ev{i % 3, i});
  auto marks = std::make_shared<Watermarks>();
  weir::PipelineOptions o;
  o.batch_size = 64;
  o.linger = 10s;
  weir::Pipeline p("prompt-watermarks", o);
  p.intercept(marks);
  std::vector<weir::WindowResult<int, std::uint64_t>> out;
  p.source(in)
      .filter([](const Ev& e) { return e.t_sec % 8 == 0; })
      .key_by([](const Ev& e) { return e.key; })
      .window(weir::tumbling{100s})
      .event_time(
          [](const Ev& e) { return std::chrono::system_clock::time_point{std::chrono::seconds{e.t_sec}}; },
          0s)
      .count()
      .sink(weir::collect_into(out));
  const auto rep = p.run();
  CHECK(rep.stage("window#2").items_in == 512);
  CHECK(rep.stage("window#2").late == 0);
  std::uint64_t total = 0;
  for (const auto& r : out) total += r.value;
  CHECK(total == 512);
  const std::lock_guard lock(marks->m);
  REQUIRE(marks->seen.size() >= 40);  // 4096 s of event time: 41 windows
  for (std::size_t i = 1; i < marks->seen.size(); ++i) {
    CAPTURE(i);
    CHECK(marks->seen[i] - marks->seen[i - 1] <= 164s);  // one window and one source batch at most
  }
}

TEST_CASE("a trickle into a keyed stage comes out within the linger time while the source stays open") {
  auto push = std::make_shared<weir::PushSource<int>>(16);
  std::atomic<int> results{0};
  weir::PipelineOptions o;
  o.linger = 2ms;
  weir::Pipeline p("trickle", o);
  p.source(push)
      .key_by([](int x) { return x % 5; })
      .window(weir::tumbling_count{1})
      .count()
      .parallelism(2)
      .sink([&](const weir::WindowResult<int, std::uint64_t>&) { results.fetch_add(1); });
  p.start();
  for (int i = 0; i < 3; ++i) CHECK(push->push(i));
  // Three items never fill a batch: only the linger time moves them on.
  CHECK(eventually([&] { return results.load() == 3; }, 5000ms));
  push->close();
  const auto rep = p.wait();
  CHECK(rep.stage("window#1").items_in == 3);
  CHECK(results.load() == 3);
}

TEST_CASE("items held for a keyed stage reach it when the run is cancelled") {
  for (const int parts : {1, 3}) {
    CAPTURE(parts);
    weir::PipelineOptions o;
    o.batch_size = 32;
    o.linger = 10s;  // nothing moves on for time: what is held at cancel must be drained
    weir::Pipeline p("cancel-held", o);
    std::atomic<std::uint64_t> next{0};
    std::atomic<std::uint64_t> delivered{0};
    p.source(weir::from_generator{[&]() -> std::optional<std::uint64_t> { return next.fetch_add(1); }})
        .filter([](std::uint64_t x) { return x % 3 != 0; })
        .name("thin")
        .key_by([](std::uint64_t x) { return x % 7; })
        .window(weir::tumbling_count{1})
        .count()
        .name("per_item")
        .parallelism(parts)
        .sink([&](const weir::WindowResult<std::uint64_t, std::uint64_t>&) { delivered.fetch_add(1); });
    p.start();
    CHECK(eventually([&] { return delivered.load() >= 1000; }));
    p.cancel();
    const auto rep = p.wait();
    CHECK(rep.status == weir::RunStatus::cancelled);
    const auto kept = rep.stage("thin").items_out;
    CHECK(rep.stage("per_item").items_in == kept);
    CHECK(delivered.load() == kept);
  }
}

TEST_CASE("a keyed stage fed by a parallel stage gets every item once at end of input") {
  weir::PipelineOptions o;
  o.batch_size = 16;
  o.linger = 10s;
  o.threads = 2;
  weir::Pipeline p("parallel-senders", o);
  std::map<int, std::uint64_t> counts;
  p.source(weir_test::iota(0, 10'000))
      .map([](int x) { return x * 3; })
      .parallelism(2)
      .filter([](int x) { return x % 2 == 0; })
      .parallelism(2)
      .map_reduce(
          [](int x) {
            return std::pair<int, std::uint64_t>{x % 11, 1};
          },
          std::plus<std::uint64_t>{})
      .name("count")
      .parallelism(3)
      .sink([&](const std::pair<int, std::uint64_t>& kv) { counts[kv.first] += kv.second; });
  const auto rep = p.run();
  CHECK(rep.stage("count").items_in == 5000);
  std::map<int, std::uint64_t> want;
  for (int x = 0; x < 10'000; ++x) {
    if ((x * 3) % 2 == 0) ++want[(x * 3) % 11];
  }
  CHECK(counts == want);
}

TEST_CASE("a keyed stage slower than its source holds the source back") {
  // The source makes items far faster than the window's reduce takes them. Batches sent to a
  // partition carry an in-flight slot, so the items made but not yet reduced stay bounded: at most
  // max_in_flight slots, each shared by a batch per partition of up to 16384 items (8-byte items:
  // 128 KiB), plus what the outbox holds. Without the slots the gap grows by millions of items a
  // second.
  weir::PipelineOptions o;
  o.batch_size = 64;
  o.max_in_flight = 4;
  o.threads = 2;
  weir::Pipeline p("slow-keyed", o);
  std::atomic<std::uint64_t> made{0};
  std::atomic<std::uint64_t> reduced{0};
  p.source(weir::from_generator{[&]() -> std::optional<std::uint64_t> { return made.fetch_add(1); }})
      .key_by([](std::uint64_t x) { return x % 5; })
      .window(weir::tumbling_count{1000})
      .reduce([&](std::uint64_t a, std::uint64_t b) {
        std::uint64_t h = a;
        for (int i = 0; i < 1000; ++i) h = h * 31 + b;  // about a microsecond of work
        reduced.fetch_add(1, std::memory_order_relaxed);
        return h;
      })
      .name("slow")
      .parallelism(2)
      .sink([](const weir::WindowResult<std::uint64_t, std::uint64_t>&) {});
  p.start();
  REQUIRE(eventually([&] { return reduced.load() >= 100'000; }));
  std::uint64_t widest = 0;
  for (int k = 0; k < 20; ++k) {
    const std::uint64_t r = reduced.load();
    const std::uint64_t m = made.load();
    widest = std::max(widest, m > r ? m - r : 0);
    std::this_thread::sleep_for(10ms);
  }
  p.cancel();
  const auto rep = p.wait();
  CHECK(rep.status == weir::RunStatus::cancelled);
  // 4 slots x 2 partitions x 16384, one outbox x 2 partitions x 16384, a source batch and the open
  // windows (one reduce call fewer than items per window): under 200'000 items.
  CAPTURE(widest);
  CHECK(widest < 200'000);
  CHECK(rep.stage("slow").items_in == rep.stage("generator#0").items_out);
}

TEST_CASE(
    "a partition batch's memory is reused by the next batches, from any thread, and the spares are bounded") {
  auto pool = std::make_shared<weir::detail::BatchPool<std::uint64_t>>();
  auto first = pool->make(1000);
  first->items.assign(1000, 7);
  const auto* memory = first->items.data();
  std::thread([b = std::move(first)]() mutable { b = nullptr; }).join();  // dropped on another thread
  CHECK(pool->spare() == 1);
  auto second = pool->make(10);
  CHECK(second->items.empty());
  CHECK(second->items.data() == memory);  // the same vector, emptied
  CHECK(second->items.capacity() >= 1000);
  CHECK(pool->spare() == 0);
  // Batches outlive the pool's other owners: the last one still gives its vector back safely.
  std::weak_ptr<weir::detail::BatchPool<std::uint64_t>> weak = pool;
  pool = nullptr;
  CHECK(!weak.expired());
  second = nullptr;
  CHECK(weak.expired());
  // At most `keep` vectors wait for reuse.
  auto bounded = std::make_shared<weir::detail::BatchPool<std::uint64_t>>();
  std::vector<std::shared_ptr<weir::Batch<std::uint64_t>>> many;
  for (std::size_t i = 0; i < 3 * weir::detail::BatchPool<std::uint64_t>::keep; ++i)
    many.push_back(bounded->make(64));
  many.clear();
  CHECK(bounded->spare() == weir::detail::BatchPool<std::uint64_t>::keep);
}

TEST_CASE("a key partitioner builds its next partition batches in the memory of those already consumed") {
  weir::ops::KeyPartitioner<int, int (*)(const int&)> split(+[](const int& x) { return x; });
  const auto run = [&](std::vector<const int*>& memory) {
    auto in = std::make_shared<weir::Batch<int>>();
    for (int i = 0; i < 4000; ++i) in->items.push_back(i);
    std::vector<weir::detail::BatchPtr> out(4);
    std::int64_t high = 0;
    split.split(in, out, 0, high);  // shared input: items are copied into four new batches
    std::size_t total = 0;
    for (const auto& b : out) {
      REQUIRE(b != nullptr);
      const auto& items = static_cast<const weir::Batch<int>&>(*b).items;
      total += items.size();
      memory.push_back(items.data());
    }
    CHECK(total == 4000);
  };
  std::vector<const int*> before;
  std::vector<const int*> after;
  run(before);  // its batches are dropped when run returns
  run(after);
  std::sort(before.begin(), before.end());
  std::sort(after.begin(), after.end());
  CHECK(before == after);
}
