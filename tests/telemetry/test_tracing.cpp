// Tests of the tracer: samplers, the span tree of a traced run, parent contexts, the batch span
// processor (full queue, flush, shutdown), propagation, and a record's trace through a pipeline.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <weir/telemetry/tracing.hpp>
#include <weir/weir.hpp>

#include "weir_test.hpp"

namespace {

namespace wt = weir::telemetry;
using namespace std::chrono_literals;
using weir_test::iota;
using weir_test::with_batch;

/// A trace id whose last 8 bytes (the part ratio sampling reads) are `low`, big-endian.
weir::TraceId trace_id_with_low(std::uint64_t low) {
  weir::TraceId id;
  id.bytes[0] = 1;
  for (int i = 0; i < 8; ++i)
    id.bytes[static_cast<std::size_t>(15 - i)] = static_cast<std::uint8_t>(low >> (8 * i));
  return id;
}

weir::TraceContext context(std::uint8_t flags) {
  auto c = weir::TraceContext::root(flags);
  return c;
}

/// A tracer exporting to memory; the processor only exports when flushed.
struct MemoryTracer {
  std::shared_ptr<wt::InMemoryExporter> memory = std::make_shared<wt::InMemoryExporter>();
  std::shared_ptr<wt::Tracer> tracer;
  explicit MemoryTracer(wt::TracerOptions o = {}, wt::BatchSpanProcessorOptions po = {}) {
    po.schedule_delay = std::chrono::hours{1};
    tracer = std::make_shared<wt::Tracer>(std::make_shared<wt::BatchSpanProcessor>(memory, po), std::move(o));
  }
  std::vector<wt::SpanData> flushed() const {
    REQUIRE(tracer->force_flush(10s));
    return memory->spans();
  }
};

std::int64_t int_attr(const wt::SpanData& s, std::string_view key) {
  const auto* v = s.attribute(key);
  REQUIRE_MESSAGE(v != nullptr, key);
  return std::get<std::int64_t>(*v);
}

std::string str_attr(const wt::SpanData& s, std::string_view key) {
  const auto* v = s.attribute(key);
  REQUIRE_MESSAGE(v != nullptr, key);
  return std::get<std::string>(*v);
}

const wt::SpanData* find_span(const std::vector<wt::SpanData>& spans, const std::string& name) {
  for (const auto& s : spans) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool has_event(const wt::SpanData& s, const std::string& name) {
  for (const auto& e : s.events) {
    if (e.name == name) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("samplers: always, never, ratio by trace id, and parent-based following the parent") {
  const weir::TraceContext none;
  const auto id = weir::TraceId::random();
  CHECK(wt::always_on_sampler()->should_sample(none, id));
  CHECK_FALSE(wt::always_off_sampler()->should_sample(none, id));

  // Ratio: sampled when the trace id's low 8 bytes are below ratio * 2^64.
  const auto quarter = wt::ratio_sampler(0.25);
  CHECK(quarter->should_sample(none, trace_id_with_low(0)));
  CHECK(quarter->should_sample(none, trace_id_with_low(0x3fffffffffffffffULL)));
  CHECK_FALSE(quarter->should_sample(none, trace_id_with_low(0x4000000000000000ULL)));
  CHECK_FALSE(quarter->should_sample(none, trace_id_with_low(~0ULL)));
  CHECK(wt::ratio_sampler(1.0)->should_sample(none, trace_id_with_low(~0ULL)));
  CHECK_FALSE(wt::ratio_sampler(0.0)->should_sample(none, trace_id_with_low(0)));
  CHECK_THROWS_AS(wt::ratio_sampler(1.5), std::invalid_argument);
  CHECK_THROWS_AS(wt::ratio_sampler(-0.1), std::invalid_argument);

  // Over many trace ids (a fixed seed) about a quarter are sampled, and a trace id always decides the
  // same way, whatever the parent span.
  std::mt19937_64 gen{42};
  int sampled = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto t = trace_id_with_low(gen());
    const bool first = quarter->should_sample(none, t);
    CHECK(first == quarter->should_sample(context(1), t));
    sampled += first ? 1 : 0;
  }
  CHECK(sampled > 4500);
  CHECK(sampled < 5500);

  // Parent-based: the parent's flag decides; without a parent, the root sampler.
  const auto follow_never = wt::parent_based_sampler(wt::always_off_sampler());
  const auto follow_always = wt::parent_based_sampler(wt::always_on_sampler());
  CHECK(follow_never->should_sample(context(0x01), id));
  CHECK_FALSE(follow_always->should_sample(context(0x00), id));
  CHECK_FALSE(follow_never->should_sample(none, id));
  CHECK(follow_always->should_sample(none, id));
  CHECK(follow_always->description() == "ParentBased{root=AlwaysOnSampler}");
}

TEST_CASE("a traced run records a run span, a span per stage and batch spans under their stages") {
  MemoryTracer mt;
  weir::Pipeline p("orders", with_batch(10));
  std::atomic<int> calls_of_5{0};
  std::vector<int> out;
  p.source(iota(0, 100))
      .name("numbers")
      .map([&](int x) {
        if (x == 5 && calls_of_5.fetch_add(1) == 0) throw std::runtime_error("flaky");
        if (x == 7) throw std::invalid_argument("seven");
        return x;
      })
      .name("parse")
      .on_error(weir::on_error::retry(2, 0ms, weir::on_error::dead_letter([](weir::DeadLetter<int>) {})))
      .sink(weir::collect_into(out))
      .name("out");
  wt::TracingOptions to;
  to.batch_sample_every = 1;
  REQUIRE(wt::trace(p, mt.tracer, to) != nullptr);
  const auto report = p.run();
  REQUIRE(out.size() == 99);
  // The run's end flushed its spans (flush_timeout), so they are already exported.
  const auto spans = mt.memory->spans();

  const auto* run = find_span(spans, "run orders");
  REQUIRE(run != nullptr);
  CHECK(run->span_id == report.trace.span_id);
  CHECK(run->trace_id == report.trace.trace_id);
  CHECK_FALSE(run->parent_span_id.valid());
  CHECK(str_attr(*run, "weir.pipeline") == "orders");
  CHECK(str_attr(*run, "weir.run_id") == report.run_id);
  CHECK(str_attr(*run, "weir.run.status") == "completed");
  CHECK(run->status == wt::StatusCode::unset);
  CHECK(run->start_unix_nano <= run->end_unix_nano);

  std::map<std::string, const wt::SpanData*> stages;
  std::map<std::uint64_t, std::string> stage_of_id;
  for (const auto& s : spans) {
    CHECK(s.trace_id == report.trace.trace_id);
    if (s.name.rfind("stage ", 0) == 0) {
      stages[s.name.substr(6)] = &s;
      CHECK(s.parent_span_id == run->span_id);
    }
  }
  REQUIRE(stages.size() == report.stages.size());
  for (const auto& sr : report.stages) {
    CAPTURE(sr.name);
    REQUIRE(stages.count(sr.name) == 1);
    const auto& st = *stages.at(sr.name);
    CHECK(int_attr(st, "weir.stage.items_in") == static_cast<std::int64_t>(sr.items_in));
    CHECK(int_attr(st, "weir.stage.items_out") == static_cast<std::int64_t>(sr.items_out));
    CHECK(str_attr(st, "weir.stage.kind") == sr.kind);
    CHECK(st.start_unix_nano >= run->start_unix_nano);
    CHECK(st.end_unix_nano <= run->end_unix_nano);
  }

  // Every batch is sampled here: per stage, the batch spans add up to the stage's items.
  std::map<std::string, std::int64_t> batch_items_in;
  for (const auto& s : spans) {
    if (s.name.rfind("batch ", 0) != 0) continue;
    const std::string stage = s.name.substr(6);
    REQUIRE(stages.count(stage) == 1);
    CHECK(s.parent_span_id == stages.at(stage)->span_id);
    CHECK(str_attr(s, "weir.stage") == stage);
    CHECK(int_attr(s, "weir.batch.items_in") >= int_attr(s, "weir.batch.items_out"));
    batch_items_in[stage] += int_attr(s, "weir.batch.items_in");
  }
  CHECK(batch_items_in["numbers"] == 100);
  CHECK(batch_items_in["parse"] == 100);
  CHECK(batch_items_in["out"] == 99);

  // The retry and the dead letter are events of the map's stage span.
  const auto& parse = *stages.at("parse");
  CHECK(has_event(parse, "retry"));
  CHECK(has_event(parse, "dead_letter"));
  for (const auto& e : parse.events) {
    if (e.name != "dead_letter") continue;
    REQUIRE(!e.attributes.empty());
    CHECK(std::get<std::string>(e.attributes[0].value).find("invalid_argument") != std::string::npos);
  }
  CHECK(parse.status == wt::StatusCode::unset);
  CHECK_FALSE(has_event(*stages.at("out"), "retry"));
}

TEST_CASE("a failed run and its failing stage have status error with the message") {
  MemoryTracer mt;
  weir::Pipeline p("failing", with_batch(10));
  p.source(iota(0, 50))
      .map([](int x) {
        if (x == 3) throw std::runtime_error("bad record 3");
        return x;
      })
      .name("parse")
      .sink([](int) {});
  wt::trace(p, mt.tracer);
  CHECK_THROWS_AS(p.run(), weir::PipelineError);
  const auto spans = mt.flushed();
  const auto* run = find_span(spans, "run failing");
  REQUIRE(run != nullptr);
  CHECK(run->status == wt::StatusCode::error);
  CHECK(run->status_message.find("bad record 3") != std::string::npos);
  CHECK(run->status_message.find("parse") != std::string::npos);
  CHECK(str_attr(*run, "weir.run.status") == "failed");
  const auto* parse = find_span(spans, "stage parse");
  REQUIRE(parse != nullptr);
  CHECK(parse->status == wt::StatusCode::error);
  CHECK(parse->status_message.find("bad record 3") != std::string::npos);
  CHECK(has_event(*parse, "exception"));
}

TEST_CASE("run(parent) makes the run span a child of the parent, and an unsampled parent records nothing") {
  SUBCASE("sampled parent") {
    MemoryTracer mt;
    const auto parent =
        *weir::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=abc");
    weir::Pipeline p("child", with_batch(10));
    p.source(iota(0, 20)).sink([](int) {});
    wt::trace(p, mt.tracer);
    const auto report = p.run(parent);
    const auto spans = mt.flushed();
    const auto* run = find_span(spans, "run child");
    REQUIRE(run != nullptr);
    CHECK(run->trace_id == parent.trace_id);
    CHECK(run->parent_span_id == parent.span_id);
    CHECK(run->span_id == report.trace.span_id);
    CHECK(run->trace_state == "vendor=abc");
    for (const auto& s : spans) CHECK(s.trace_id == parent.trace_id);
  }
  SUBCASE("unsampled parent, parent-based sampler") {
    MemoryTracer mt;
    const auto parent = *weir::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    weir::Pipeline p("child", with_batch(10));
    p.source(iota(0, 20)).sink([](int) {});
    wt::TracingOptions to;
    to.batch_sample_every = 1;
    wt::trace(p, mt.tracer, to);
    (void)p.run(parent);
    CHECK(mt.flushed().empty());
  }
  SUBCASE("a ratio sampler of 0 records no run") {
    wt::TracerOptions o;
    o.sampler = wt::ratio_sampler(0.0);
    MemoryTracer mt(o);
    weir::Pipeline p("never", with_batch(10));
    p.source(iota(0, 20)).sink([](int) {});
    wt::trace(p, mt.tracer);
    (void)p.run();
    CHECK(mt.flushed().empty());
  }
}

TEST_CASE("batch spans are sampled one in N per stage and thread, and never with N = 0") {
  for (const std::uint32_t every : {4U, 0U}) {
    CAPTURE(every);
    MemoryTracer mt;
    weir::Pipeline p("sampled", with_batch(10));
    // A range source and its fused chain run on the source's thread: 10 batches per stage.
    p.source(iota(0, 100)).map([](int x) { return x + 1; }).name("inc").sink([](int) {}).name("out");
    wt::TracingOptions to;
    to.batch_sample_every = every;
    wt::trace(p, mt.tracer, to);
    (void)p.run();
    std::map<std::string, int> batches;
    for (const auto& s : mt.flushed()) {
      if (s.name.rfind("batch ", 0) == 0) ++batches[s.name];
    }
    if (every == 0) {
      CHECK(batches.empty());
    } else {
      // Batches 1, 5 and 9 of each stage.
      CHECK(batches["batch inc"] == 3);
      CHECK(batches["batch out"] == 3);
    }
  }
}

TEST_CASE("a full span queue drops spans and counts them instead of blocking") {
  wt::BatchSpanProcessorOptions po;
  po.max_queue_size = 8;
  po.max_export_batch_size = 100;  // never reached: no early export
  MemoryTracer mt({}, po);
  for (int i = 0; i < 20; ++i) {
    auto s = mt.tracer->start_span("work");
    s.set_attribute("i", i);
  }
  CHECK(mt.tracer->stats().dropped_queue_full == 12);
  CHECK(mt.tracer->stats().exported == 0);
  CHECK(mt.flushed().size() == 8);
  CHECK(mt.tracer->stats().exported == 8);
  CHECK(mt.tracer->stats().dropped() == 12);
}

TEST_CASE("spans ended on several threads are all flushed, and each thread's queue is bounded on its own") {
  wt::BatchSpanProcessorOptions po;
  po.max_queue_size = 8;
  po.max_export_batch_size = 100;  // never reached: no early export
  MemoryTracer mt({}, po);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&mt, t] {
      for (int i = 0; i < 10; ++i) {
        auto s = mt.tracer->start_span("thread " + std::to_string(t));
        s.set_attribute("i", i);
      }
    });
  }
  for (auto& th : threads) th.join();  // the threads are gone before their spans are exported
  CHECK(mt.tracer->stats().dropped_queue_full == 3 * 2);
  const auto spans = mt.flushed();
  REQUIRE(spans.size() == 3 * 8);
  for (int t = 0; t < 3; ++t) {
    std::vector<std::int64_t> seen;
    for (const auto& s : spans) {
      if (s.name == "thread " + std::to_string(t)) seen.push_back(int_attr(s, "i"));
    }
    CHECK(seen == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7});  // a thread's spans in order
  }
  REQUIRE(mt.tracer->force_flush(10s));  // the exited threads' queues are let go: their counts stay
  CHECK(mt.tracer->stats().exported == 3 * 8);
  CHECK(mt.tracer->stats().dropped_queue_full == 3 * 2);
}

TEST_CASE("a span recorded in the storage of an exported span carries nothing of it") {
  wt::BatchSpanProcessorOptions po;
  // A span ending in a ring of 2 slots takes the storage of the span before the one before it; the
  // next span reuses that storage: plain spans reuse rich ones' storage, and rich ones plain ones'.
  po.max_queue_size = 2;
  MemoryTracer mt({}, po);
  const std::string long_value(100, 'v');
  for (int round = 0; round < 4; ++round) {
    {
      auto rich = mt.tracer->start_span("rich");
      rich.set_attribute("weir.a.rather.long.key", long_value);
      rich.set_attribute("weir.another.long.key", std::int64_t{round});
      rich.set_attribute("flag", true);
      rich.add_event("happened", {{"n", std::int64_t{1}}});
      rich.set_status(wt::StatusCode::error, "broken");
    }
    REQUIRE(mt.tracer->force_flush(10s));
    {
      auto plain = mt.tracer->start_span("plain", weir::TraceContext::root());
      plain.set_attribute("flag", 2.5);
      plain.set_attribute("weir.another.long.key", "text");
      plain.set_attribute("flag", 3.5);  // set twice: one attribute
    }
    REQUIRE(mt.tracer->force_flush(10s));
  }
  const auto spans = mt.memory->spans();
  REQUIRE(spans.size() == 8);
  CHECK(mt.tracer->stats().dropped() == 0);
  for (std::size_t i = 0; i < spans.size(); ++i) {
    CAPTURE(i);
    const auto& s = spans[i];
    if (i % 2 == 0) {
      CHECK(s.name == "rich");
      REQUIRE(s.attributes.size() == 3);
      CHECK(str_attr(s, "weir.a.rather.long.key") == long_value);
      CHECK(int_attr(s, "weir.another.long.key") == static_cast<std::int64_t>(i / 2));
      CHECK(std::get<bool>(*s.attribute("flag")));
      REQUIRE(s.events.size() == 1);
      CHECK(s.status == wt::StatusCode::error);
      CHECK(s.status_message == "broken");
      CHECK_FALSE(s.parent_span_id.valid());
    } else {
      CHECK(s.name == "plain");
      REQUIRE(s.attributes.size() == 2);
      CHECK(s.attributes[0].key == "flag");
      CHECK(std::get<double>(s.attributes[0].value) == 3.5);
      CHECK(str_attr(s, "weir.another.long.key") == "text");
      CHECK(s.events.empty());
      CHECK(s.dropped_events == 0);
      CHECK(s.status == wt::StatusCode::unset);
      CHECK(s.status_message.empty());
      CHECK(s.parent_span_id.valid());
      CHECK(s.trace_id != spans[i - 1].trace_id);
    }
    CHECK(s.end_unix_nano >= s.start_unix_nano);
  }
}

TEST_CASE("a span started on one thread and ended on another is exported") {
  MemoryTracer mt;
  auto span = mt.tracer->start_span("handed over");
  span.set_attribute("where", "started here");
  std::thread([s = std::move(span)]() mutable {
    s.set_attribute("ended", true);
    s.end();
  }).join();
  const auto spans = mt.flushed();
  REQUIRE(spans.size() == 1);
  CHECK(str_attr(spans[0], "where") == "started here");
  CHECK(spans[0].attributes.size() == 2);
}

namespace {
/// An exporter that holds its first export until released.
class GateExporter final : public wt::SpanExporter {
 public:
  wt::ExportResult export_spans(std::span<const wt::SpanData> spans) noexcept override {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return open_; });
    count_ += spans.size();
    return wt::ExportResult::success;
  }
  void open() {
    {
      const std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  std::size_t count() {
    const std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
  std::size_t count_ = 0;
};
}  // namespace

TEST_CASE(
    "force_flush exports what ended before it, or says it ran out of time; shutdown drops later spans") {
  auto gate = std::make_shared<GateExporter>();
  wt::BatchSpanProcessorOptions po;
  po.schedule_delay = std::chrono::hours{1};
  auto processor = std::make_shared<wt::BatchSpanProcessor>(gate, po);
  wt::Tracer tracer(processor);
  for (int i = 0; i < 3; ++i) tracer.start_span("work").end();
  CHECK(gate->count() == 0);
  CHECK_FALSE(tracer.force_flush(30ms));  // the exporter is held
  gate->open();
  CHECK(tracer.force_flush(10s));
  CHECK(gate->count() == 3);
  CHECK(tracer.stats().exported == 3);

  tracer.start_span("last").end();
  CHECK(tracer.shutdown(10s));
  CHECK(gate->count() == 4);
  tracer.start_span("too late").end();
  CHECK(tracer.stats().dropped_queue_full == 1);
  CHECK(tracer.shutdown(10s));  // twice is fine
}

TEST_CASE("spans carry attributes, events, status and a context with the sampled flag") {
  MemoryTracer mt;
  {
    auto s = mt.tracer->start_span("op", {}, wt::SpanKind::server);
    CHECK(s.recording());
    CHECK(s.context().valid());
    CHECK(s.context().sampled());
    s.set_attribute("text", "hello");
    s.set_attribute("count", 3);
    s.set_attribute("ratio", 0.5);
    s.set_attribute("flag", true);
    s.set_attribute("count", 4);  // replaces
    s.add_event("checkpoint", {{"step", std::int64_t{1}}});
    s.record_error("std::runtime_error", "boom");
  }
  const auto spans = mt.flushed();
  REQUIRE(spans.size() == 1);
  const auto& d = spans[0];
  CHECK(d.kind == wt::SpanKind::server);
  CHECK(std::get<std::string>(*d.attribute("text")) == "hello");
  CHECK(std::get<std::int64_t>(*d.attribute("count")) == 4);
  CHECK(std::get<double>(*d.attribute("ratio")) == 0.5);
  CHECK(std::get<bool>(*d.attribute("flag")));
  CHECK(d.attributes.size() == 4);
  REQUIRE(d.events.size() == 2);
  CHECK(d.events[0].name == "checkpoint");
  CHECK(d.events[1].name == "exception");
  CHECK(d.status == wt::StatusCode::error);
  CHECK(d.status_message == "boom");

  // Not sampled: nothing recorded, but a context in the parent's trace with the flag cleared.
  wt::TracerOptions off;
  off.sampler = wt::always_off_sampler();
  MemoryTracer none(off);
  const auto parent = weir::TraceContext::root();
  auto s = none.tracer->start_span("op", parent);
  CHECK_FALSE(s.recording());
  CHECK(s.context().trace_id == parent.trace_id);
  CHECK(s.context().span_id != parent.span_id);
  CHECK_FALSE(s.context().sampled());
  s.end();
  CHECK(none.flushed().empty());
}

TEST_CASE("extract ignores and counts a malformed traceparent; inject writes it and passes tracestate on") {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const auto before = wt::propagation_stats();
  const auto ctx = wt::extract({{"traceparent", tp}, {"tracestate", "a=1,b=2"}});
  REQUIRE(ctx.valid());
  CHECK(ctx.span_id.hex() == "00f067aa0ba902b7");
  CHECK(ctx.trace_state == "a=1,b=2");
  CHECK(wt::extract({{"Traceparent", tp}}).valid());  // HTTP header names ignore case

  const std::vector<std::string> bad = {"",
                                        "garbage",
                                        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                                        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                                        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                                        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"};
  for (const auto& b : bad) {
    CAPTURE(b);
    CHECK_FALSE(wt::extract({{"traceparent", b}}).valid());
  }
  CHECK_FALSE(wt::extract({{"other", "x"}}).valid());  // no header: not a rejection
  const auto after = wt::propagation_stats();
  CHECK(after.rejected - before.rejected == bad.size());
  CHECK(after.extracted - before.extracted == 2);

  wt::Headers h{{"tracestate", "stale"}};
  wt::inject(ctx, h);
  CHECK(h.at("traceparent") == tp);
  CHECK(h.at("tracestate") == "a=1,b=2");
  auto no_state = ctx;
  no_state.trace_state.clear();
  wt::inject(no_state, h);
  CHECK(h.count("tracestate") == 0);
  wt::Headers untouched;
  wt::inject(weir::TraceContext{}, untouched);
  CHECK(untouched.empty());
}

namespace {
struct Record {
  wt::Headers headers;
  int value = 0;
};
}  // namespace

TEST_CASE("a record's upstream trace continues through the pipeline to the sink's headers") {
  MemoryTracer mt;
  const auto upstream = weir::TraceContext::root();
  std::vector<Record> in(30);
  for (int i = 0; i < 30; ++i) in[static_cast<std::size_t>(i)].value = i;
  wt::inject(upstream, in[7].headers);
  in[8].headers["traceparent"] = "00-broken";
  const auto rejected_before = wt::propagation_stats().rejected;

  std::vector<Record> out;
  std::mutex mutex;
  weir::Pipeline p("records", with_batch(8));
  p.source(std::move(in))
      .map([tracer = mt.tracer](Record r) {
        auto span = wt::continue_trace(*tracer, "process record", r.headers);
        span.set_attribute("record.value", r.value);
        return r;
      })
      .name("process")
      .sink([&](Record r) {
        const std::lock_guard lock(mutex);
        out.push_back(std::move(r));
      })
      .name("publish");
  wt::trace(p, mt.tracer);
  (void)p.run();
  REQUIRE(out.size() == 30);
  const auto spans = mt.flushed();

  std::map<int, weir::TraceContext> leaving;
  for (const auto& r : out) {
    auto ctx = weir::parse_traceparent(r.headers.at("traceparent"));
    REQUIRE(ctx.has_value());
    leaving[r.value] = *ctx;
  }
  // The record that came with upstream's context leaves in upstream's trace, as the child of a span
  // Weir exported, itself the child of upstream's span.
  const auto& out7 = leaving.at(7);
  CHECK(out7.trace_id == upstream.trace_id);
  CHECK(out7.span_id != upstream.span_id);
  const wt::SpanData* span7 = nullptr;
  for (const auto& s : spans) {
    if (s.span_id == out7.span_id) span7 = &s;
  }
  REQUIRE(span7 != nullptr);
  CHECK(span7->name == "process record");
  CHECK(span7->trace_id == upstream.trace_id);
  CHECK(span7->parent_span_id == upstream.span_id);
  CHECK(int_attr(*span7, "record.value") == 7);
  CHECK(span7->kind == wt::SpanKind::consumer);

  // A malformed header was ignored and counted: that record starts a trace of its own.
  CHECK(wt::propagation_stats().rejected == rejected_before + 1);
  CHECK(leaving.at(8).trace_id != upstream.trace_id);
  CHECK(leaving.at(8).trace_id != leaving.at(9).trace_id);
}

TEST_CASE("circuit state changes and emitted windows are events of their stage spans") {
  MemoryTracer mt;
  weir::Pipeline p("events", with_batch(10));
  p.source(iota(0, 40))
      .map([](int x) {
        if (x >= 5) throw std::runtime_error("remote down");
        return x;
      })
      .name("remote")
      .circuit_breaker(weir::CircuitBreakerOptions{2, std::chrono::hours{1}, 1})
      .on_error(weir::on_error::skip())
      .sink([](int) {})
      .name("remote_out");
  p.source(iota(0, 40))
      .key_by([](int x) { return x % 4; })
      .window(weir::tumbling_count{5})
      .count()
      .name("windows")
      .sink([](const weir::WindowResult<int, std::uint64_t>&) {});
  wt::trace(p, mt.tracer);
  (void)p.run();
  const auto spans = mt.flushed();
  const auto* remote = find_span(spans, "stage remote");
  REQUIRE(remote != nullptr);
  bool opened = false;
  for (const auto& e : remote->events) {
    if (e.name != "circuit_state_changed") continue;
    for (const auto& a : e.attributes)
      opened |= a.key == "weir.circuit.to" && std::get<std::string>(a.value) == "open";
  }
  CHECK(opened);
  CHECK(has_event(*remote, "item_failed"));  // skipped items
  const auto* windows = find_span(spans, "stage windows");
  REQUIRE(windows != nullptr);
  int emitted = 0;
  for (const auto& e : windows->events) emitted += e.name == "window_emitted" ? 1 : 0;
  CHECK(emitted >= 4);  // 40 items, 4 keys, windows of 5: 8 windows (one event per window and partition)
}

TEST_CASE("a span keeps at most max_events_per_span events and counts the rest") {
  wt::TracerOptions o;
  o.max_events_per_span = 2;
  MemoryTracer mt(o);
  {
    auto s = mt.tracer->start_span("chatty");
    for (int i = 0; i < 5; ++i) s.add_event("tick");
  }
  const auto spans = mt.flushed();
  REQUIRE(spans.size() == 1);
  CHECK(spans[0].events.size() == 2);
  CHECK(spans[0].dropped_events == 3);
  CHECK(wt::otlp_json(spans, {}).find("\"droppedEventsCount\":3") != std::string::npos);
}
