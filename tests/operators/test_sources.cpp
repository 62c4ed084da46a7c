// Tests of the built-in sources (range, generator, lines, push) and sinks (callback, collect,
// JSON lines, async), and of the linger that flushes partial batches.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

#include <unistd.h>

namespace sources_sinks_test {
/// A record with an nlohmann to_json, as a user would write it.
struct Reading {
  std::string sensor;
  int value = 0;
  double ratio = 0.0;
};
inline void to_json(nlohmann::json& j, const Reading& r) {
  j = nlohmann::json{{"sensor", r.sensor}, {"value", r.value}, {"ratio", r.ratio}};
}
}  // namespace sources_sinks_test

namespace {

using weir_test::contains;
using weir_test::eventually;
using weir_test::with_batch;

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using sources_sinks_test::Reading;

/// The parts joined (GCC 12 warns falsely about `"literal" + std::string` at -O3).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  ((out += parts), ...);
  return out;
}

/// A unique path in the temporary directory, removed when the object dies.
class TempPath {
 public:
  explicit TempPath(const std::string& name) {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / cat("weir_sources_sinks_", std::to_string(::getpid()), "_",
                                            std::to_string(counter.fetch_add(1)), "_", name);
  }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  ~TempPath() {
    std::error_code ignored;
    fs::remove(path_, ignored);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }
  void write(const std::string& content) const {
    std::ofstream out(path_, std::ios::binary);
    out << content;
  }
  [[nodiscard]] std::string read() const {
    std::ifstream in(path_, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
  }
  [[nodiscard]] std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::ifstream in(path_, std::ios::binary);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

 private:
  fs::path path_;
};

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

TEST_CASE("collect_into appends to the vector it is given") {
  weir::Pipeline p("collect");
  std::vector<int> got{-1, -2};
  p.source(std::vector<int>{1, 2, 3}).sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got == std::vector<int>{-1, -2, 1, 2, 3});
  CHECK(r.stage("collect#1").items_in == 3);
  CHECK(r.stage("collect#1").items_out == 3);
}

TEST_CASE("a callback sink may take its item by value, const reference or rvalue reference") {
  weir::Pipeline p("callbacks", with_batch(2));
  std::vector<std::string> by_value;
  std::vector<std::string> by_ref;
  std::vector<std::string> by_rvalue;
  auto fan = p.source(std::vector<std::string>{"a", "bb", "ccc"}).fan_out(3);
  fan[0].sink([&](std::string s) { by_value.push_back(std::move(s)); });
  fan[1].sink([&](const std::string& s) { by_ref.push_back(s); });
  fan[2].sink([&](std::string&& s) { by_rvalue.push_back(std::move(s)); });
  (void)p.run();
  const std::vector<std::string> expected{"a", "bb", "ccc"};
  CHECK(by_value == expected);
  CHECK(by_ref == expected);
  CHECK(by_rvalue == expected);
}

TEST_CASE("jsonl_file writes one JSON document per line for a type with to_json") {
  TempPath file("readings.jsonl");
  std::vector<Reading> input;
  for (int i = 0; i < 300; ++i) input.push_back(Reading{cat("s", std::to_string(i % 7)), i, i / 4.0});
  weir::Pipeline p("jsonl", with_batch(32));
  p.source(input).sink(weir::jsonl_file{file.path()});
  const auto r = p.run();
  CHECK(r.stage("jsonl_file#1").items_out == 300);
  const auto lines = file.lines();
  REQUIRE(lines.size() == 300);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto j = nlohmann::json::parse(lines[i]);
    CHECK(j.at("sensor").get<std::string>() == input[i].sensor);
    CHECK(j.at("value").get<int>() == input[i].value);
    CHECK(j.at("ratio").get<double>() == input[i].ratio);
  }
  CHECK(file.read().back() == '\n');
}

TEST_CASE("jsonl_file writes what a string formatter returns and what a json formatter builds") {
  TempPath text("formatted.jsonl");
  TempPath built("built.jsonl");
  weir::Pipeline p("jsonl_formatters", with_batch(3));
  auto fan = p.source(std::vector<int>{1, 2, 3, 4, 5}).fan_out(2);
  fan[0].sink(weir::jsonl_file{text.path(), [](int x) { return cat("{\"n\":", std::to_string(x), "}"); }});
  fan[1].sink(weir::jsonl_file{built.path(), [](int x) {
                                 return nlohmann::json{{"n", x}, {"square", x * x}};
                               }});
  (void)p.run();
  CHECK(text.read() == "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n");
  const auto lines = built.lines();
  REQUIRE(lines.size() == 5);
  for (int i = 0; i < 5; ++i) {
    const auto j = nlohmann::json::parse(lines[static_cast<std::size_t>(i)]);
    CHECK(j.at("n").get<int>() == i + 1);
    CHECK(j.at("square").get<int>() == (i + 1) * (i + 1));
  }
}

TEST_CASE("jsonl_file with the default formatter writes plain values and replaces an existing file") {
  TempPath file("values.jsonl");
  file.write("old content that must go\nand more\n");
  weir::Pipeline p("jsonl_default");
  p.source(std::vector<std::string>{"x", "with \"quotes\""}).sink(weir::jsonl_file{file.path()});
  (void)p.run();
  CHECK(file.read() == "\"x\"\n\"with \\\"quotes\\\"\"\n");
}

TEST_CASE("jsonl_file to an unwritable path fails the run with the path in the message") {
  const fs::path path =
      fs::temp_directory_path() / cat("weir_no_such_dir_", std::to_string(::getpid())) / "out.jsonl";
  weir::Pipeline p("jsonl_unwritable");
  int calls = 0;
  p.source(std::vector<int>{1, 2, 3})
      .map([&calls](int x) {
        ++calls;
        return x;
      })
      .sink(weir::jsonl_file{path});
  try {
    (void)p.run();
    FAIL("the run did not fail");
  } catch (const weir::PipelineError& e) {
    CHECK(contains(e.what(), path.string()));
    REQUIRE(e.errors().size() == 1);
    CHECK(e.errors()[0].stage == "jsonl_file#2");
    CHECK(e.report().status == weir::RunStatus::failed);
  }
  CHECK(calls == 0);  // the file is opened before any item flows
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("an async sink after parallel stages gets every item once, on one thread of its own at a time") {
  weir::Pipeline p("async", with_batch(5));
  std::vector<int> got;
  std::atomic<int> inside{0};
  std::atomic<int> overlap{0};
  std::atomic<bool> on_caller{false};
  const auto caller = std::this_thread::get_id();
  p.source(std::views::iota(0, 1000))
      .map([](int x) { return x * 3; })
      .parallelism(2)
      .filter([](int x) { return x % 2 == 0; })
      .parallelism(2)
      .sink(weir::async_sink{[&](int x) {
                               if (inside.fetch_add(1) != 0) overlap.fetch_add(1);
                               if (std::this_thread::get_id() == caller) on_caller = true;
                               got.push_back(x);
                               inside.fetch_sub(1);
                             },
                             2});
  const auto r = p.run();
  CHECK(overlap.load() == 0);
  CHECK_FALSE(on_caller.load());
  CHECK(got.size() == 500);
  // Batches reach the sink in any order from the parallel stages, but each batch stays in order.
  std::vector<int> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> expected;
  for (int i = 0; i < 1000; ++i)
    if ((i * 3) % 2 == 0) expected.push_back(i * 3);
  CHECK(sorted == expected);
  CHECK(r.stage("async_sink#3").items_in == 500);
  CHECK(r.stage("async_sink#3").items_out == 500);
}

TEST_CASE("an async sink after a serial stage keeps the input order exactly, and its counts add up") {
  // The source's thread counts the sink's batches and the sink's own thread its deliveries, both
  // outside the arena: ten runs, so that a lost count would show.
  std::vector<std::string> input;
  for (int i = 0; i < 400; ++i) input.push_back(std::to_string(i));
  for (int run = 0; run < 10; ++run) {
    weir::Pipeline p("async_order", with_batch(3));
    std::vector<std::string> got;
    p.source(input).sink(weir::async_sink{[&](const std::string& s) { got.push_back(s); }, 1});
    const auto r = p.run();
    CHECK(got == input);
    CHECK(r.stage("async_sink#1").items_out == input.size());
    CHECK(r.stage("async_sink#1").items_in == input.size());
  }
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
