#include <doctest/doctest.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "weir/weir.hpp"
#include "weir_test.hpp"

TEST_CASE("traceparent round-trips through parse and format") {
  const std::string h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const auto c = weir::parse_traceparent(h, "congo=t61rcWkgMzE");
  REQUIRE(c.has_value());
  CHECK(c->trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(c->span_id.hex() == "00f067aa0ba902b7");
  CHECK(c->sampled());
  CHECK(c->trace_state == "congo=t61rcWkgMzE");
  CHECK(weir::format_traceparent(*c) == h);
  const auto unsampled = weir::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  REQUIRE(unsampled.has_value());
  CHECK_FALSE(unsampled->sampled());
}

TEST_CASE("malformed traceparent headers are rejected") {
  for (const char* h : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // version 00 with more fields
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero span id
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",    // flags not hex
       }) {
    CAPTURE(h);
    CHECK_FALSE(weir::parse_traceparent(h).has_value());
  }
  // A later version may append fields; the first four are read as version 00.
  const auto future = weir::parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what");
  REQUIRE(future.has_value());
  CHECK(future->span_id.hex() == "00f067aa0ba902b7");
}

TEST_CASE("a valid tracestate is kept as received") {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  for (const char* state : {"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", "a=1,b=2", " , a-b*c/d=x y z ,\t",
                            "fw529a3039@dt=abc", "k=v!~"}) {
    CAPTURE(state);
    const auto c = weir::parse_traceparent(tp, state);
    REQUIRE(c.has_value());
    CHECK(c->trace_state == state);
  }
}

TEST_CASE("an invalid tracestate is dropped and the traceparent still counts") {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  std::string many;
  for (int i = 0; i < 33; ++i) many += (i == 0 ? "k" : ",k") + std::to_string(i) + "=v";
  for (const std::string& state :
       {std::string("a=1\r\nx-injected: 1"), std::string("A=1"), std::string("a=1,a=2"), std::string("a"),
        std::string("a=b=c"), std::string("a=\xc3\xa9"), std::string("a= "), std::string("1a=x"),
        std::string("t@Dt=x"), many}) {
    CAPTURE(state);
    const auto c = weir::parse_traceparent(tp, state);
    REQUIRE(c.has_value());
    CHECK(c->trace_state.empty());
  }
}

TEST_CASE("a tracestate over 512 characters loses its long members, then its last ones") {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string long_member = "big=" + std::string(200, 'x');
  std::string state = "a=1," + long_member;
  std::string expected = "a=1";
  for (int i = 0; i < 20; ++i) {
    // Appended piece by piece: GCC 12 at -O3 reports a bogus -Wrestrict on "k" + std::to_string(i).
    std::string member = "k";
    member += std::to_string(i);
    member += '=';
    member.append(40, 'v');
    state += "," + member;
    if (expected.size() + 1 + member.size() <= 512) expected += "," + member;
  }
  REQUIRE(state.size() > 512);
  const auto c = weir::parse_traceparent(tp, state);
  REQUIRE(c.has_value());
  CHECK(c->trace_state == expected);
  CHECK(c->trace_state.size() <= 512);
}

TEST_CASE("random trace and span ids are valid and distinct") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto t = weir::TraceId::random();
    const auto s = weir::SpanId::random();
    CHECK(t.valid());
    CHECK(s.valid());
    seen.insert(t.hex());
  }
  CHECK(seen.size() == 1000);
  const auto root = weir::TraceContext::root();
  const auto child = root.child();
  CHECK(child.trace_id == root.trace_id);
  CHECK(child.span_id != root.span_id);
}

namespace {
struct RunIds final : weir::Interceptor {
  std::mutex m;
  weir::RunInfo run;
  std::vector<weir::SpanId> stages;
  void on_run_start(const weir::RunInfo& r) override {
    std::lock_guard lock(m);
    run = r;
  }
  void on_stage_start(const weir::StageInfo& s) override {
    std::lock_guard lock(m);
    stages.push_back(s.span_id);
  }
};
}  // namespace

TEST_CASE("a run with a parent context joins the parent's trace" WEIR_NEEDS_TELEMETRY) {
  const auto parent =
      *weir::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v");
  weir::Pipeline p{"traced"};
  std::vector<int> out;
  p.source(std::vector<int>{1, 2, 3}).map([](int x) { return x + 1; }).sink(weir::collect_into(out));
  auto ids = std::make_shared<RunIds>();
  p.intercept(ids);
  const auto r = p.run(parent);
  CHECK(r.trace.trace_id == parent.trace_id);
  CHECK(r.trace.span_id != parent.span_id);
  CHECK(r.trace.trace_state == "k=v");
  CHECK(ids->run.trace == r.trace);
  CHECK(ids->run.parent_span == parent.span_id);
  REQUIRE(ids->stages.size() == 3);
  for (const auto& s : ids->stages) CHECK(s.valid());
  CHECK(ids->stages[0] != ids->stages[1]);
}

TEST_CASE("a run without a parent starts a new sampled root trace") {
  weir::Pipeline p{"root"};
  p.source(std::vector<int>{1}).sink([](int) {});
  auto ids = std::make_shared<RunIds>();
  p.intercept(ids);
  const auto r = p.run();
  CHECK(r.trace.valid());
  CHECK(r.trace.sampled());
  CHECK_FALSE(ids->run.parent_span.valid());
}
