// Tests of the fluent builder: stage names, settings checks, plan validation and fusion (explain()).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

using weir_test::contains;

/// The message of the exception of type E that `fn` throws, or "" when it throws nothing.
template <class E, class F>
std::string message_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  return {};
}

/// The line of explain() that lists `stage` (without its newline), or "" when none does.
std::string line_with(const std::string& plan, const std::string& stage) {
  std::size_t start = 0;
  while (start < plan.size()) {
    auto end = plan.find('\n', start);
    if (end == std::string::npos) end = plan.size();
    const std::string line = plan.substr(start, end - start);
    if (contains(line, std::string(" ").append(stage).append(" ("))) return line;
    start = end + 1;
  }
  return {};
}

}  // namespace

TEST_CASE("unnamed stages are named after their kind and their index in the pipeline") {
  weir::Pipeline p("names");
  std::vector<int> got;
  auto src = p.source(std::vector<int>{1, 2, 3, 4});
  auto m = src.map([](int x) { return x + 1; });
  auto f = m.filter([](int x) { return x % 2 == 0; });
  auto fm = f.flat_map([](int x) { return std::vector<int>{x, x}; });
  auto branches = fm.fan_out(2);
  auto left = branches[0].map([](int x) { return x * 10; });
  auto merged = left.merge(branches[1]);
  auto sink = merged.sink(weir::collect_into(got));
  CHECK(src.stage_name() == "range#0");
  CHECK(m.stage_name() == "map#1");
  CHECK(f.stage_name() == "filter#2");
  CHECK(fm.stage_name() == "flat_map#3");
  CHECK(branches[0].stage_name() == "fan_out#4");
  CHECK(branches[1].stage_name() == "fan_out#4");
  CHECK(left.stage_name() == "map#5");
  CHECK(merged.stage_name() == "merge#6");
  CHECK(sink.stage_name() == "collect#7");

  const auto r = p.run();
  CHECK(r.stages.size() == 8);
  CHECK(r.stage("range#0").kind == "source");
  CHECK(r.stage("map#1").kind == "map");
  CHECK(r.stage("filter#2").kind == "filter");
  CHECK(r.stage("flat_map#3").kind == "flat_map");
  CHECK(r.stage("fan_out#4").kind == "fan_out");
  CHECK(r.stage("map#5").kind == "map");
  CHECK(r.stage("merge#6").kind == "merge");
  CHECK(r.stage("collect#7").kind == "collect");
  // {2, 4} doubled by flat_map, then once as is and once times ten by the two branches.
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{2, 2, 4, 4, 20, 20, 40, 40});
}

TEST_CASE("every kind of source and sink gets its own generated name") {
  weir::Pipeline p("kinds");
  int n = 0;
  auto gen = p.source(weir::from_generator{[&n]() -> std::optional<int> {
    if (n == 3) return std::nullopt;
    return n++;
  }});
  auto lines = p.source(weir::from_lines{"/nonexistent/never/read.txt"});
  auto push = p.source(std::make_shared<weir::PushSource<double>>());
  CHECK(gen.stage_name() == "generator#0");
  CHECK(lines.stage_name() == "lines#1");
  CHECK(push.stage_name() == "push#2");
  CHECK(gen.sink([](int) {}).stage_name() == "sink#3");
  CHECK(lines.sink(weir::async_sink{[](const std::string&) {}}).stage_name() == "async_sink#4");
  CHECK(push.sink(weir::jsonl_file{std::filesystem::path("/nonexistent/never/written.jsonl")}).stage_name() ==
        "jsonl_file#5");
}

TEST_CASE("name() renames a stage and the report and the plan use the new name") {
  weir::Pipeline p("renamed");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3})
      .name("numbers")
      .map([](int x) { return x * 2; })
      .name("double")
      .sink(weir::collect_into(got))
      .name("out");
  const auto plan = p.explain();
  CHECK(contains(plan, "numbers (source)"));
  CHECK(contains(plan, "double (map)"));
  CHECK(contains(plan, "out (collect)"));
  CHECK_FALSE(contains(plan, "map#1"));
  const auto r = p.run();
  CHECK(r.stage("numbers").items_out == 3);
  CHECK(r.stage("double").items_out == 3);
  CHECK(r.stage("out").items_in == 3);
  CHECK_THROWS_AS((void)r.stage("map#1"), std::out_of_range);
  CHECK(message_of<std::out_of_range>([&] { (void)r.stage("map#1"); }) ==
        "no stage named 'map#1' in pipeline 'renamed'");
  CHECK(got == std::vector<int>{2, 4, 6});
}

TEST_CASE("every setter returns the handle it was called on, as its own type") {
  weir::Pipeline p("setters");
  auto src = p.source(std::vector<int>{1, 2, 3});
  auto doubled = src.map([](int x) { return x * 2; });
  auto same = doubled.name("double")
                  .parallelism(2)
                  .on_error(weir::on_error::skip())
                  .on_error(weir::on_error::dead_letter([](const weir::DeadLetter<int>&) {}))
                  .retry(weir::RetryPolicy{})
                  .timeout(std::chrono::seconds{1})
                  .circuit_breaker(weir::CircuitBreakerOptions{})
                  .intercept(std::make_shared<weir::Interceptor>());
  static_assert(std::is_same_v<decltype(same), decltype(doubled)>);
  CHECK(same.id() == doubled.id());
  auto routes = same.route(weir::RouteOptions{}, weir::when{"even", [](int x) { return x % 2 == 0; }})
                    .name("split")
                    .on_error(weir::on_error::dead_letter([](const weir::DeadLetter<int>&) {}));
  static_assert(std::is_same_v<decltype(routes), weir::Routes<int>>);
  auto sink = routes["even"]
                  .sink([](int) {})
                  .name("out")
                  .on_error(weir::on_error::dead_letter([](const weir::DeadLetter<int>&) {}));
  static_assert(std::is_same_v<decltype(sink), weir::SinkStage<int>>);
  const auto plan = p.explain();
  CHECK(contains(plan, "double"));
  CHECK(contains(plan, "split"));
  CHECK(contains(plan, "out"));
}

TEST_CASE("a name already used by another stage is rejected with invalid_argument") {
  weir::Pipeline p("duplicates");
  auto a = p.source(std::vector<int>{1}).name("a");
  auto b = a.map([](int x) { return x; });
  const auto msg = message_of<std::invalid_argument>([&] { (void)b.name("a"); });
  CHECK(contains(msg, "'a'"));
  CHECK(contains(msg, "duplicates"));
  CHECK(b.stage_name() == "map#1");  // the rejected name was not applied
  // A generated name is taken too, and a stage may be given its own name again.
  CHECK_THROWS_AS((void)a.name("map#1"), std::invalid_argument);
  CHECK_NOTHROW((void)a.name("a"));
  CHECK_THROWS_AS((void)b.name(""), std::invalid_argument);
}

TEST_CASE("a generated name that clashes with an explicit name fails the run with a logic_error") {
  weir::Pipeline p("clash");
  std::vector<int> got;
  // The source takes the name the next stage would be given.
  p.source(std::vector<int>{1}).name("map#1").map([](int x) { return x; }).sink(weir::collect_into(got));
  const auto msg = message_of<std::logic_error>([&] { (void)p.run(); });
  CHECK(contains(msg, "map#1"));
  CHECK(got.empty());
}

TEST_CASE("a parallelism below one is rejected with invalid_argument") {
  weir::Pipeline p("parallelism");
  auto m = p.source(std::vector<int>{1}).map([](int x) { return x; });
  CHECK_THROWS_AS((void)m.parallelism(0), std::invalid_argument);
  CHECK_THROWS_AS((void)m.parallelism(-3), std::invalid_argument);
  CHECK(contains(message_of<std::invalid_argument>([&] { (void)m.parallelism(0); }), "map#1"));
  CHECK_NOTHROW((void)m.parallelism(4));
}

TEST_CASE("a parallelism above one is rejected on sources and on order-keeping sinks") {
  weir::Pipeline p("single");
  std::vector<int> got;
  auto src = p.source(std::vector<int>{1, 2});
  CHECK_THROWS_AS((void)src.parallelism(2), std::invalid_argument);
  CHECK_NOTHROW((void)src.parallelism(1));
  auto fan = src.fan_out(4);
  auto collect = fan[0].sink(weir::collect_into(got));
  CHECK_THROWS_AS((void)collect.parallelism(2), std::invalid_argument);
  auto jsonl = fan[1].sink(weir::jsonl_file{std::filesystem::path("/nonexistent/never/written.jsonl")});
  CHECK(contains(message_of<std::invalid_argument>([&] { (void)jsonl.parallelism(3); }), "jsonl_file#"));
  auto async = fan[2].sink(weir::async_sink{[](int) {}});
  CHECK_THROWS_AS((void)async.parallelism(2), std::invalid_argument);
  // A callback sink may run in parallel.
  CHECK_NOTHROW((void)fan[3].sink([](int) {}).parallelism(2));
  CHECK_THROWS_AS((void)p.source(weir::from_generator{[]() -> std::optional<int> { return std::nullopt; }})
                      .parallelism(2),
                  std::invalid_argument);
}

TEST_CASE("a pipeline rejects an empty name and a negative thread count") {
  CHECK_THROWS_AS(weir::Pipeline(""), std::invalid_argument);
  weir::PipelineOptions negative;
  negative.threads = -1;
  CHECK_THROWS_AS(weir::Pipeline("p", negative), std::invalid_argument);
}

TEST_CASE("a pipeline without stages cannot run") {
  weir::Pipeline p("empty");
  CHECK_THROWS_AS((void)p.run(), std::logic_error);
}

TEST_CASE("a stream without a consumer fails at run with a logic_error naming the stage") {
  weir::Pipeline p("dangling");
  std::vector<int> got;
  auto src = p.source(std::vector<int>{1, 2, 3});
  src.map([](int x) { return x + 1; }).sink(weir::collect_into(got));
  (void)src.filter([](int x) { return x > 1; }).name("forgotten");
  const auto msg = message_of<std::logic_error>([&] { (void)p.run(); });
  CHECK(contains(msg, "'forgotten'"));
  CHECK(got.empty());
  // explain() checks the same thing.
  CHECK_THROWS_AS((void)p.explain(), std::logic_error);
}

// A source nobody reads would drop its items silently: the plan rejects it like any other
// stream without a consumer.
TEST_CASE("a source without a consumer fails at run with a logic_error naming it") {
  weir::Pipeline p("lonely");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3}).sink(weir::collect_into(got));
  (void)p.source(std::vector<int>{4, 5}).name("unread");
  const auto msg = message_of<std::logic_error>([&] { (void)p.run(); });
  CHECK(contains(msg, "'unread'"));
}

TEST_CASE("a pipeline runs once: run twice, start after run and building after run are logic errors") {
  weir::Pipeline p("once");
  std::vector<int> got;
  auto src = p.source(std::vector<int>{1, 2, 3});
  src.sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.status == weir::RunStatus::completed);
  CHECK(contains(message_of<std::logic_error>([&] { (void)p.run(); }), "once"));
  CHECK_THROWS_AS(p.start(), std::logic_error);
  CHECK_THROWS_AS((void)src.map([](int x) { return x; }), std::logic_error);
  CHECK_THROWS_AS((void)src.name("late"), std::logic_error);
  CHECK_THROWS_AS(p.intercept(std::make_shared<weir::Interceptor>()), std::logic_error);
  CHECK(got == std::vector<int>{1, 2, 3});  // the first run was not disturbed
}

TEST_CASE("wait without start and a second wait are logic errors") {
  weir::Pipeline p("waits");
  std::vector<int> got;
  p.source(std::vector<int>{7}).sink(weir::collect_into(got));
  CHECK_THROWS_AS((void)p.wait(), std::logic_error);
  p.start();
  const auto r = p.wait();
  CHECK(r.stage("collect#1").items_in == 1);
  CHECK_THROWS_AS((void)p.wait(), std::logic_error);
  CHECK(got == std::vector<int>{7});
}

TEST_CASE("on_error is refused on a source and retry needs at least one attempt") {
  weir::Pipeline p("policies");
  auto src = p.source(std::vector<int>{1});
  CHECK_THROWS_AS((void)src.on_error(weir::on_error::skip()), std::invalid_argument);
  CHECK_THROWS_AS((void)weir::on_error::retry(0, std::chrono::milliseconds(1)), std::invalid_argument);
  CHECK_THROWS_AS((void)weir::on_error::retry(2, std::chrono::milliseconds(1),
                                              weir::on_error::retry(2, std::chrono::milliseconds(1))),
                  std::invalid_argument);
  CHECK_NOTHROW(
      (void)src.map([](int x) { return x; }).on_error(weir::on_error::retry(1, std::chrono::nanoseconds(0))));
}

TEST_CASE("explain lists every stage and counts stages and nodes") {
  weir::Pipeline p("plan");
  std::vector<int> got;
  p.source(std::vector<int>{1}).map([](int x) { return x; }).parallelism(2).sink(weir::collect_into(got));
  const auto plan = p.explain();
  CHECK(plan.rfind("pipeline 'plan': 3 stages in ", 0) == 0);
  CHECK(contains(plan, "range#0 (source)"));
  CHECK(contains(plan, "map#1 (map)"));
  CHECK(contains(plan, "collect#2 (collect)"));
  CHECK(contains(line_with(plan, "map#1"), "parallelism 2"));
  // explain() does not run anything and may be called again.
  CHECK(p.explain() == plan);
  CHECK(got.empty());
}

TEST_CASE("stateless stages with equal parallelism are fused into one node") {
  weir::Pipeline p("fusion");
  p.source(std::vector<int>{1, 2, 3, 4, 5, 6})
      .map([](int x) { return x * 3; })
      .parallelism(2)
      .filter([](int x) { return x % 2 == 0; })
      .parallelism(2)
      .flat_map([](int x) {
        return std::vector<int>{x, x + 1};
      })
      .parallelism(2)
      .sink([](int) {})
      .parallelism(2);
  const auto plan = p.explain();
  const auto line = line_with(plan, "map#1");
  CHECK(contains(
      line,
      "[fused] parallelism 2: map#1 (map) -> filter#2 (filter) -> flat_map#3 (flat_map) -> sink#4 (sink)"));
  CHECK(line_with(plan, "range#0") != line);
  const auto r = p.run();
  CHECK(r.stage("map#1").node == r.stage("filter#2").node);
  CHECK(r.stage("map#1").node == r.stage("flat_map#3").node);
  CHECK(r.stage("map#1").node == r.stage("sink#4").node);
  CHECK(r.stage("range#0").node != r.stage("map#1").node);
  CHECK(r.stage("map#1").parallelism == 2);
  CHECK(r.stage("sink#4").items_in == 6);
}

TEST_CASE("a stage with a different parallelism starts a new node") {
  weir::Pipeline p("split");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3})
      .map([](int x) { return x + 1; })
      .name("a")
      .parallelism(2)
      .map([](int x) { return x * 2; })
      .name("b")
      .parallelism(3)
      .map([](int x) { return x - 1; })
      .name("c")
      .parallelism(3)
      .sink(weir::collect_into(got));
  const auto plan = p.explain();
  CHECK(contains(plan, "parallelism 2: a (map)"));
  CHECK(contains(plan, "parallelism 3: b (map) -> c (map)"));
  CHECK(line_with(plan, "a") != line_with(plan, "b"));
  CHECK(line_with(plan, "c") != line_with(plan, "collect#4"));  // collect runs with parallelism 1
  const auto r = p.run();
  CHECK(r.stage("a").node != r.stage("b").node);
  CHECK(r.stage("b").node == r.stage("c").node);
  CHECK(r.stage("c").node != r.stage("collect#4").node);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{3, 5, 7});
}

TEST_CASE("stateless stages of parallelism one run in the source's node") {
  weir::Pipeline p("on_source");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3})
      .map([](int x) { return x + 1; })
      .name("inc")
      .sink(weir::collect_into(got));
  const auto plan = p.explain();
  CHECK(contains(line_with(plan, "range#0"), "range#0 (source) -> inc (map) -> collect#2 (collect)"));
  const auto r = p.run();
  CHECK(r.stage("range#0").node == r.stage("inc").node);
  CHECK(r.stage("inc").node == r.stage("collect#2").node);
  CHECK(got == std::vector<int>{2, 3, 4});
}

TEST_CASE("fan_out ends a fused group and each branch starts a node of its own") {
  weir::Pipeline p("fan_plan");
  std::vector<int> a;
  std::vector<int> b;
  auto branches = p.source(std::vector<int>{1, 2, 3}).map([](int x) { return x; }).fan_out({"a", "b"});
  branches["a"].map([](int x) { return x + 1; }).name("inc").sink(weir::collect_into(a));
  branches["b"].map([](int x) { return x - 1; }).name("dec").sink(weir::collect_into(b));
  const auto plan = p.explain();
  CHECK(contains(line_with(plan, "fan_out#2"), "range#0 (source) -> map#1 (map) -> fan_out#2 (fan_out)"));
  CHECK(line_with(plan, "inc") != line_with(plan, "dec"));
  CHECK(line_with(plan, "inc") != line_with(plan, "fan_out#2"));
  CHECK(contains(line_with(plan, "inc"), "inc (map) -> collect#"));
  const auto r = p.run();
  CHECK(r.stage("fan_out#2").node == r.stage("map#1").node);
  CHECK(r.stage("inc").node != r.stage("fan_out#2").node);
  CHECK(r.stage("dec").node != r.stage("fan_out#2").node);
  CHECK(r.stage("inc").node != r.stage("dec").node);
  CHECK(a == std::vector<int>{2, 3, 4});
  CHECK(b == std::vector<int>{0, 1, 2});
}

TEST_CASE("merge starts a node that the stages after it join") {
  weir::Pipeline p("merge_plan");
  std::vector<int> got;
  auto x = p.source(std::vector<int>{1, 2}).name("x");
  auto y = p.source(std::vector<int>{3}).name("y");
  x.merge(y).name("both").map([](int v) { return v * 10; }).name("scale").sink(weir::collect_into(got));
  const auto plan = p.explain();
  CHECK(contains(line_with(plan, "both"), "both (merge) -> scale (map) -> collect#4 (collect)"));
  const auto r = p.run();
  CHECK(r.stage("both").node == r.stage("scale").node);
  CHECK(r.stage("both").node != r.stage("x").node);
  CHECK(r.stage("both").node != r.stage("y").node);
  CHECK(r.stage("x").node != r.stage("y").node);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{10, 20, 30});
}

TEST_CASE("a stream read by two stages is not fused with either of them") {
  weir::Pipeline p("two_readers");
  std::vector<int> a;
  std::vector<int> b;
  auto m = p.source(std::vector<int>{1, 2}).map([](int x) { return x * 2; }).name("shared");
  m.sink(weir::collect_into(a)).name("first");
  m.sink(weir::collect_into(b)).name("second");
  const auto r = p.run();
  CHECK(r.stage("first").node != r.stage("shared").node);
  CHECK(r.stage("second").node != r.stage("shared").node);
  CHECK(r.stage("first").node != r.stage("second").node);
  CHECK(a == std::vector<int>{2, 4});
  CHECK(b == std::vector<int>{2, 4});
}

TEST_CASE("an async sink always runs in a node of its own") {
  weir::Pipeline p("async_plan");
  std::vector<int> got;
  p.source(std::vector<int>{1, 2, 3}).map([](int x) { return x; }).sink(weir::async_sink{[&got](int x) {
    got.push_back(x);
  }});
  const auto r = p.run();
  CHECK(r.stage("async_sink#2").node != r.stage("map#1").node);
  CHECK(got == std::vector<int>{1, 2, 3});
}
