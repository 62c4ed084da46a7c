// Tests of the built-in sinks (ops/sinks.hpp): callback, collect_into, jsonl_file and async_sink
// against their input on seeded random data at every parallelism and batch size, the exact bytes a
// JSON-lines file holds, empty inputs, and a failing sink under each error policy.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
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

namespace sinks_test {
/// A record with an nlohmann to_json, as a user would write it.
struct Reading {
  std::string sensor;
  int value = 0;
  double ratio = 0.0;
};
inline void to_json(nlohmann::json& j, const Reading& r) {
  j = nlohmann::json{{"sensor", r.sensor}, {"value", r.value}, {"ratio", r.ratio}};
}
}  // namespace sinks_test

namespace {

using sinks_test::Reading;
using weir_test::cat;
using weir_test::contains;
using weir_test::iota;
using weir_test::settings;
using weir_test::sorted;
using weir_test::TempPath;
using weir_test::with_batch;

using namespace std::chrono_literals;
namespace fs = std::filesystem;

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
  auto e = weir_test::run_failing(p);
  if (!e) FAIL("the run did not throw a PipelineError");
  return e;
}

/// The integers of [0, n) except those in `bad`, in order.
std::vector<int> without(int n, const std::vector<int>& bad) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) {
    if (std::find(bad.begin(), bad.end(), i) == bad.end()) v.push_back(i);
  }
  return v;
}

/// A random string with quotes, backslashes, control characters and UTF-8, for JSON escaping.
std::string random_text(std::mt19937_64& rng) {
  static const std::string pieces[] = {
      "a", "Z", " ", "\"", "\\", "/", "\n", "\t", std::string(1, '\x01'), "\xc3\xa9", "\xe2\x82\xac",
      "{", "}", "0"};
  std::string s;
  const std::size_t n = rng() % 12;
  for (std::size_t i = 0; i < n; ++i) s += pieces[rng() % std::size(pieces)];
  return s;
}

}  // namespace

TEST_CASE("callback, collecting and async sinks get every item once at every parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto input = weir_test::random_ints(rng, weir_test::input_size(seed, s), -1'000'000, 1'000'000);
      INFO("seed ", seed, ", ", s.str(), ", ", input.size(), " items");
      weir::Pipeline p("sinks", s.options());
      std::mutex m;
      std::vector<std::int64_t> called;
      std::vector<std::int64_t> collected;
      std::vector<std::int64_t> async;
      std::vector<std::int64_t> serial_async;
      auto src = p.source(input);
      // A callback sink at the setting's parallelism: any thread, any order.
      src.sink([&](std::int64_t x) {
           const std::lock_guard lock(m);
           called.push_back(x);
         })
          .name("callback")
          .parallelism(s.parallelism);
      // After a parallel stage: collect_into and async_sink run serially and get batches in any order.
      auto parallel = src.map([](std::int64_t x) { return x; }).parallelism(s.parallelism);
      parallel.sink(weir::collect_into(collected)).name("collect");
      parallel.sink(weir::async_sink{[&async](std::int64_t x) { async.push_back(x); }, 2}).name("async");
      // After a serial stream: an async sink keeps its order.
      src.sink(weir::async_sink{[&serial_async](std::int64_t x) { serial_async.push_back(x); }})
          .name("serial_async");
      const auto r = p.run();
      CHECK(sorted(called) == sorted(input));
      CHECK(sorted(collected) == sorted(input));
      CHECK(sorted(async) == sorted(input));
      CHECK(serial_async == input);
      if (s.parallelism == 1) {
        CHECK(called == input);
        CHECK(collected == input);
        CHECK(async == input);
      }
      for (const char* stage : {"callback", "collect", "async", "serial_async"}) {
        CAPTURE(stage);
        CHECK(r.stage(stage).items_in == input.size());
        CHECK(r.stage(stage).items_out == input.size());
      }
    }
  }
}

TEST_CASE(
    "jsonl_file holds exactly one JSON document per item and line, at every parallelism and batch size") {
  for (const std::uint64_t seed : {21}) {  // one seed: files are slow to write and read
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto n = weir_test::input_size(seed, s);
      std::vector<std::pair<std::int64_t, std::string>> input;
      for (std::size_t i = 0; i < n; ++i)
        input.emplace_back(static_cast<std::int64_t>(rng() % 2'000'000) - 1'000'000, random_text(rng));
      std::string want;
      std::vector<std::string> want_lines;
      for (const auto& [k, text] : input) {
        want_lines.push_back(nlohmann::json{{"k", k}, {"text", text}}.dump());
        want += want_lines.back();
        want += '\n';
      }
      INFO("seed ", seed, ", ", s.str(), ", ", n, " items");
      TempPath file("random.jsonl");
      file.write("an older file that must go\n");
      weir::Pipeline p("jsonl-random", s.options());
      p.source(input)
          .map([](std::pair<std::int64_t, std::string> x) { return x; })
          .parallelism(s.parallelism)
          .sink(weir::jsonl_file{file.path(),
                                 [](const std::pair<std::int64_t, std::string>& x) {
                                   return nlohmann::json{{"k", x.first}, {"text", x.second}};
                                 }})
          .name("file");
      const auto r = p.run();
      CHECK(r.stage("file").items_out == n);
      if (s.parallelism == 1) {
        CHECK(file.read() == want);  // byte for byte
      } else {
        const auto text = file.read();
        CHECK((text.empty() || text.back() == '\n'));
        CHECK(sorted(file.lines()) == sorted(want_lines));
      }
    }
  }
}

TEST_CASE("every sink of an empty input completes and leaves nothing, but an empty file") {
  for (const auto& s : settings()) {
    INFO(s.str());
    TempPath file("empty.jsonl");
    file.write("old\n");
    weir::Pipeline p("sinks-empty", s.options());
    std::vector<int> kept{7};
    std::atomic<int> calls{0};
    auto src = p.source(std::vector<int>{});
    src.sink(weir::collect_into(kept));
    src.sink([&calls](int) { calls.fetch_add(1); }).parallelism(s.parallelism);
    src.sink(weir::async_sink{[&calls](int) { calls.fetch_add(1); }});
    src.sink(weir::jsonl_file{file.path()});
    const auto r = p.run();
    CHECK(r.status == weir::RunStatus::completed);
    CHECK(kept == std::vector<int>{7});
    CHECK(calls.load() == 0);
    CHECK(fs::exists(file.path()));
    CHECK(file.read().empty());  // opened (and so emptied) when the run starts
  }
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

TEST_CASE("a parallel callback sink sees every item exactly once") {
  constexpr int n = 5000;
  std::vector<std::atomic<int>> hits(n);
  weir::Pipeline p("parallel_sink", with_batch(16));
  p.source(std::views::iota(0, n))
      .sink([&hits](int i) { hits[static_cast<std::size_t>(i)].fetch_add(1); })
      .parallelism(2);
  const auto r = p.run();
  CHECK(std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h.load() == 1; }));
  CHECK(r.stage("sink#1").items_out == static_cast<std::uint64_t>(n));
}

TEST_CASE("errors in a sink follow the sink's policy") {
  auto input = iota(0, 12);
  SUBCASE("fail") {
    weir::Pipeline p("sink_fail", with_batch(5));
    std::vector<int> got;
    p.source(input).sink([&](int x) {
      if (x == 6) throw std::runtime_error("disk full");
      got.push_back(x);
    });
    const auto e = run_expecting_failure(p);
    REQUIRE(e.has_value());
    CHECK(e->errors()[0].stage == "sink#1");
    CHECK(contains(e->what(), "disk full"));
    CHECK(e->report().stage("sink#1").errors == 1);
  }
  SUBCASE("skip") {
    weir::Pipeline p("sink_skip", with_batch(5));
    std::vector<int> got;
    p.source(input)
        .sink([&](int x) {
          if (x == 6 || x == 10) throw std::runtime_error("disk full");
          got.push_back(x);
        })
        .on_error(weir::on_error::skip());
    const auto r = p.run();
    CHECK(got == without(12, {6, 10}));
    CHECK(r.stage("sink#1").items_out == 10);
    CHECK(r.stage("sink#1").skipped == 2);
  }
  SUBCASE("dead_letter") {
    weir::Pipeline p("sink_dead_letter", with_batch(5));
    std::vector<int> got;
    std::vector<int> letters;
    p.source(input)
        .sink([&](int x) {
          if (x % 5 == 0) throw std::runtime_error("fives");
          got.push_back(x);
        })
        .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<int> d) { letters.push_back(d.item); }));
    const auto r = p.run();
    CHECK(letters == std::vector<int>{0, 5, 10});
    CHECK(got == without(12, {0, 5, 10}));
    CHECK(r.stage("sink#1").dead_lettered == 3);
  }
  SUBCASE("retry") {
    std::shared_ptr<weir::ManualClock> clock;
    weir::Pipeline p("sink_retry", manual(clock, 5));
    std::vector<int> got;
    std::map<int, int> calls;
    p.source(input)
        .sink([&](int x) {
          if (x == 7 && ++calls[x] < 3) throw std::runtime_error("busy");
          got.push_back(x);
        })
        .on_error(weir::on_error::retry(3, 50ms));
    const auto r = p.run();
    CHECK(got == input);
    CHECK(r.stage("sink#1").retries == 2);
    CHECK(r.stage("sink#1").items_out == 12);
    CHECK(elapsed(*clock) == 150ms);
  }
  SUBCASE("async sink skip") {
    weir::Pipeline p("async_sink_skip", with_batch(5));
    std::vector<int> got;
    p.source(input)
        .sink(weir::async_sink{[&](int x) {
          if (x == 3) throw std::runtime_error("async");
          got.push_back(x);
        }})
        .on_error(weir::on_error::skip());
    const auto r = p.run();
    CHECK(got == without(12, {3}));
    CHECK(r.stage("async_sink#1").items_out == 11);
    CHECK(r.stage("async_sink#1").skipped == 1);
  }
}
