// Tests of operators written against weir/operator.hpp (run by detail/operator_kernel.hpp): the keyed
// distinct of examples/operators against a plain C++ reference at every partition count and batch
// size, each key's items reaching one instance in order, a serial running sum against a plain loop,
// finish() at end of input, open/close once per instance, the error policies, the timer, the
// context, and the builder's checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>
#include <weir/operator.hpp>
#include <weir/weir.hpp>

#include "distinct.hpp"
#include "operator_cases.hpp"
#include "weir_test.hpp"

namespace {

using weir_test::settings;
using weir_test::sorted;
using weir_test::with_batch;

using namespace std::chrono_literals;

/// An item of the keyed tests: its key and its place in the input.
struct Item {
  std::int64_t key = 0;
  std::int64_t seq = 0;
  bool operator<(const Item& o) const { return seq < o.seq; }
  bool operator==(const Item&) const = default;
};

std::vector<Item> random_items(std::mt19937_64& rng, std::size_t n, std::int64_t keys) {
  const auto ks = weir_test::random_ints(rng, n, 0, keys - 1);
  std::vector<Item> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = Item{ks[i], static_cast<std::int64_t>(i)};
  return v;
}

const auto item_key = [](const Item& x) { return x.key; };

/// Emits the running sum of its input, one output per item; a serial operator.
class RunningSum final : public weir::Operator<std::int64_t, std::int64_t> {
 public:
  void process(std::vector<std::int64_t>& items, std::vector<std::int64_t>& out,
               weir::OperatorContext&) override {
    out.reserve(items.size());
    for (const auto x : items) out.push_back(sum_ += x);
  }

 private:
  std::int64_t sum_ = 0;
};

/// Counts its items and emits the count at the end of input only.
class CountAtEnd final : public weir::Operator<Item, std::size_t> {
 public:
  void process(std::vector<Item>& items, std::vector<std::size_t>&, weir::OperatorContext&) override {
    n_ += items.size();
  }
  void finish(std::vector<std::size_t>& out, weir::OperatorContext&) override { out.push_back(n_); }

 private:
  std::size_t n_ = 0;
};

/// What the instances of an operator did, recorded under a lock (the instances run side by side).
struct Journal {
  std::mutex m;
  int made = 0;
  std::vector<std::string> calls;  ///< per instance: "o", "p" per batch, "f", "c"
  std::map<int, std::set<int>> instances_of_key;
  std::map<int, std::vector<std::int64_t>> seqs_of_key;
  bool ordered_by_partition = true;  ///< every instance served one partition, the one it was made for

  int make() {
    const std::lock_guard lock(m);
    calls.emplace_back();
    return made++;
  }
  void note(int who, char what) {
    const std::lock_guard lock(m);
    calls[static_cast<std::size_t>(who)] += what;
  }
};

/// Records its calls and the items it sees in the journal; passes its items on.
class Recorder final : public weir::Operator<Item, Item> {
 public:
  explicit Recorder(std::shared_ptr<Journal> j) : j_(std::move(j)), me_(j_->make()) {}
  void open(weir::OperatorContext& ctx) override {
    partition_ = ctx.partition();
    j_->note(me_, 'o');
  }
  void process(std::vector<Item>& items, std::vector<Item>& out, weir::OperatorContext& ctx) override {
    j_->note(me_, 'p');
    const std::lock_guard lock(j_->m);
    if (ctx.partition() != partition_) j_->ordered_by_partition = false;
    for (auto& x : items) {
      j_->instances_of_key[static_cast<int>(x.key)].insert(me_);
      j_->seqs_of_key[static_cast<int>(x.key)].push_back(x.seq);
      out.push_back(x);
    }
  }
  void finish(std::vector<Item>&, weir::OperatorContext&) override { j_->note(me_, 'f'); }
  void close(weir::OperatorContext&) override { j_->note(me_, 'c'); }

 private:
  std::shared_ptr<Journal> j_;
  int me_;
  std::uint32_t partition_ = 0;
};

/// Throws from process() when it sees `bad`; passes the rest on.
class Exploding final : public weir::Operator<std::int64_t, std::int64_t> {
 public:
  explicit Exploding(std::int64_t bad, std::shared_ptr<Journal> j = nullptr) : bad_(bad), j_(std::move(j)) {
    if (j_) me_ = j_->make();
  }
  void process(std::vector<std::int64_t>& items, std::vector<std::int64_t>& out,
               weir::OperatorContext&) override {
    for (const auto x : items) {
      if (x == bad_) throw std::runtime_error("bad item " + std::to_string(x));
      out.push_back(x);
    }
  }
  void close(weir::OperatorContext&) override {
    if (j_) j_->note(me_, 'c');
  }

 private:
  std::int64_t bad_;
  std::shared_ptr<Journal> j_;
  int me_ = 0;
};

}  // namespace

TEST_CASE(
    "a keyed distinct emits each key's first item exactly once at every partition count and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const std::size_t n = weir_test::input_size(seed, s);
      const auto input = random_items(rng, n, 1 + static_cast<std::int64_t>(s.index % 4) * 60);
      // The reference: the first item of every key, in input order.
      std::vector<Item> want;
      std::set<std::int64_t> seen;
      for (const auto& x : input) {
        if (seen.insert(x.key).second) want.push_back(x);
      }
      INFO("seed ", seed, ", ", s.str(), ", ", n, " items, ", want.size(), " keys");
      weir::Pipeline p("distinct", s.options());
      std::vector<Item> got;
      p.source(input)
          .key_by(item_key)
          .process(examples::distinct_by<Item>(item_key))
          .name("distinct")
          .parallelism(s.parallelism)
          .sink(weir::collect_into(got));
      const auto r = p.run();
      CHECK(sorted(got) == want);
      CHECK(r.stage("distinct").kind == "process");
      CHECK(r.stage("distinct").parallelism == s.parallelism);
      CHECK(r.stage("distinct").items_in == n);
      CHECK(r.stage("distinct").items_out == want.size());
      CHECK(r.stage("distinct").filtered == n - want.size());
    }
  }
}

TEST_CASE("a keyed operator's instance receives every item of its keys in input order and no other") {
  for (const auto& s : settings()) {
    auto rng = weir_test::rng_for(5, s);
    const std::size_t n = weir_test::input_size(5, s);
    const auto input = random_items(rng, n, 50);
    INFO(s.str(), ", ", n, " items");
    auto j = std::make_shared<Journal>();
    weir::Pipeline p("keyed-order", s.options());
    std::vector<Item> got;
    p.source(input)
        .key_by(item_key)
        .process([j] { return std::make_unique<Recorder>(j); })
        .name("rec")
        .parallelism(s.parallelism)
        .sink(weir::collect_into(got));
    (void)p.run();
    CHECK(j->made == s.parallelism);
    CHECK(j->ordered_by_partition);
    CHECK(sorted(got) == input);
    std::map<int, std::vector<std::int64_t>> want;
    for (const auto& x : input) want[static_cast<int>(x.key)].push_back(x.seq);
    CHECK(j->seqs_of_key == want);
    std::set<int> busy;  // the instances that saw items
    for (const auto& [key, instances] : j->instances_of_key) {
      CAPTURE(key);
      CHECK(instances.size() == 1);
      busy.insert(instances.begin(), instances.end());
    }
    // 50 keys spread over every partition: each instance gets some of them.
    if (n >= 500) CHECK(busy.size() == static_cast<std::size_t>(s.parallelism));
  }
}

TEST_CASE("a serial operator matches a plain loop at every upstream parallelism and batch size") {
  for (const auto seed : weir_test::seeds) {
    for (const auto& s : settings()) {
      auto rng = weir_test::rng_for(seed, s);
      const auto input =
          weir_test::random_ints(rng, weir_test::input_size(seed, s), -1'000'000'000, 1'000'000'000);
      std::vector<std::int64_t> want;
      std::int64_t sum = 0;
      for (const auto x : input) want.push_back(sum += x);
      INFO("seed ", seed, ", ", s.str(), ", ", input.size(), " items");
      weir::Pipeline p("running-sum", s.options());
      std::vector<std::int64_t> got;
      // An ordered parallel stage before it: the serial operator sees the source's order.
      auto m = p.source(input).map([](std::int64_t x) { return x; }).parallelism(s.parallelism);
      if (s.parallelism > 1) m.ordered();
      m.process(std::make_unique<RunningSum>()).name("sum").sink(weir::collect_into(got));
      const auto r = p.run();
      CHECK(got == want);
      CHECK(r.stage("sum").kind == "process");
      CHECK(r.stage("sum").items_in == input.size());
      CHECK(r.stage("sum").items_out == input.size());
    }
  }
}

TEST_CASE("operators reading a fan-out's shared batches each get every item") {
  const auto input = weir_test::iota(1, 3001);
  std::vector<std::int64_t> wide(input.begin(), input.end());
  std::vector<std::int64_t> want;
  std::int64_t sum = 0;
  for (const auto x : wide) want.push_back(sum += x);
  weir::Pipeline p("fan-out", with_batch(7));
  std::vector<std::int64_t> a;
  std::vector<std::int64_t> b;
  const auto branches = p.source(wide).fan_out(2);
  branches[0].process(std::make_unique<RunningSum>()).sink(weir::collect_into(a));
  branches[1].process(std::make_unique<RunningSum>()).sink(weir::collect_into(b));
  (void)p.run();
  CHECK(a == want);
  CHECK(b == want);
}

TEST_CASE("finish() output arrives at end of input, once per instance") {
  const auto input = [] {
    std::mt19937_64 rng{3};
    return random_items(rng, 2000, 97);
  }();
  SUBCASE("serial") {
    weir::Pipeline p("finish");
    std::vector<std::size_t> got;
    p.source(input).process(std::make_unique<CountAtEnd>()).sink(weir::collect_into(got));
    (void)p.run();
    CHECK(got == std::vector<std::size_t>{input.size()});
  }
  SUBCASE("keyed") {
    for (const int parts : {1, 2, 3, 8}) {
      CAPTURE(parts);
      weir::Pipeline p("finish-keyed");
      std::vector<std::size_t> got;
      p.source(input)
          .key_by(item_key)
          .process([] { return std::make_unique<CountAtEnd>(); })
          .parallelism(parts)
          .sink(weir::collect_into(got));
      (void)p.run();
      REQUIRE(got.size() == static_cast<std::size_t>(parts));
      std::size_t total = 0;
      for (const auto c : got) total += c;
      CHECK(total == input.size());
    }
  }
}

TEST_CASE("open and close are called once per instance, around its batches and its finish") {
  const auto input = [] {
    std::mt19937_64 rng{4};
    return random_items(rng, 1000, 40);
  }();
  for (const int parts : {0, 1, 2, 3, 8}) {  // 0: a serial operator
    CAPTURE(parts);
    auto j = std::make_shared<Journal>();
    weir::Pipeline p("lifecycle", with_batch(7));
    std::vector<Item> got;
    if (parts == 0) {
      p.source(input).process(std::make_unique<Recorder>(j)).sink(weir::collect_into(got));
    } else {
      p.source(input)
          .key_by(item_key)
          .process([j] { return std::make_unique<Recorder>(j); })
          .parallelism(parts)
          .sink(weir::collect_into(got));
    }
    (void)p.run();
    CHECK(j->made == std::max(parts, 1));
    for (const auto& c : j->calls) {
      CAPTURE(c);
      // o, then batches, then f, then c: each of o, f and c exactly once.
      REQUIRE(c.size() >= 3);
      CHECK(c.front() == 'o');
      CHECK(c.substr(c.size() - 2) == "fc");
      CHECK(c.find_first_not_of('p', 1) == c.size() - 2);
    }
    CHECK(got.size() == input.size());
  }
}

TEST_CASE("an exception from process() fails the run with the stage's name, and every instance closes") {
  std::vector<std::int64_t> input(500);
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<std::int64_t>(i);
  for (const int parts : {0, 3}) {
    CAPTURE(parts);
    auto j = std::make_shared<Journal>();
    weir::Pipeline p("explode", with_batch(16));
    std::vector<std::int64_t> got;
    if (parts == 0) {
      p.source(input).process(std::make_unique<Exploding>(321, j)).name("boom").sink(weir::collect_into(got));
    } else {
      p.source(input)
          .key_by([](std::int64_t x) { return x % 10; })
          .process([j] { return std::make_unique<Exploding>(321, j); })
          .name("boom")
          .parallelism(parts)
          .sink(weir::collect_into(got));
    }
    const auto err = weir_test::run_failing(p);
    REQUIRE(err.has_value());
    REQUIRE(!err->errors().empty());
    CHECK(err->errors()[0].stage == "boom");
    CHECK(err->errors()[0].type == "std::runtime_error");
    CHECK(err->errors()[0].message == "bad item 321");
    CHECK(err->report().stage("boom").errors == 1);
    CHECK(j->made == std::max(parts, 1));
    for (const auto& c : j->calls) CHECK(c == "c");
  }
}

TEST_CASE("under skip, a batch whose process() throws is counted and the run goes on") {
  std::vector<std::int64_t> input(500);
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<std::int64_t>(i);
  weir::Pipeline p("skip", with_batch(10));
  std::vector<std::int64_t> got;
  p.source(input)
      .process(std::make_unique<Exploding>(55))
      .name("boom")
      .on_error(weir::on_error::skip())
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(r.stage("boom").errors == 1);
  CHECK(r.stage("boom").skipped == 1);
  // The batch of items 50..59 stopped at 55: what the operator wrote before the throw goes on.
  CHECK(got.size() == input.size() - 5);
  CHECK(got[54] == 54);
  CHECK(got[55] == 60);
}

TEST_CASE("ctx.fail(item) applies the stage's error policy to one item: dead letters") {
  // Drops odd items to the dead-letter sink, one by one, and passes the even ones on.
  class EvenOnly final : public weir::Operator<std::int64_t, std::int64_t> {
   public:
    void process(std::vector<std::int64_t>& items, std::vector<std::int64_t>& out,
                 weir::OperatorContext& ctx) override {
      for (const auto x : items) {
        try {
          if (x % 2 != 0) throw std::invalid_argument("odd");
          out.push_back(x);
        } catch (...) {
          ctx.fail(x);
        }
      }
    }
  };
  std::vector<std::int64_t> input(301);
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<std::int64_t>(i);
  weir::Pipeline p("dead-letters", with_batch(7));
  std::vector<std::int64_t> got;
  std::vector<weir::DeadLetter<std::int64_t>> dead;
  p.source(input)
      .process(std::make_unique<EvenOnly>())
      .name("even")
      .on_error(weir::on_error::dead_letter([&](weir::DeadLetter<std::int64_t> d) { dead.push_back(d); }))
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got.size() == 151);
  REQUIRE(dead.size() == 150);
  CHECK(dead[0].item == 1);
  CHECK(dead[0].stage == "even");
  CHECK(dead[0].error_type == "std::invalid_argument");
  CHECK(dead[0].message == "odd");
  CHECK(r.stage("even").errors == 150);
  CHECK(r.stage("even").dead_lettered == 150);
}

TEST_CASE("the context gives the stage, the partition, the pipeline's clock, and counts late items") {
  struct Seen {
    std::mutex m;
    std::set<std::uint32_t> partitions;
    std::set<std::string> names;
    bool same_clock = true;
  };
  auto seen = std::make_shared<Seen>();
  auto clock = std::make_shared<weir::ManualClock>();
  // Counts every item below 100 as late and drops it.
  class Probe final : public weir::Operator<Item, Item> {
   public:
    Probe(std::shared_ptr<Seen> s, const weir::Clock* c) : s_(std::move(s)), c_(c) {}
    void process(std::vector<Item>& items, std::vector<Item>& out, weir::OperatorContext& ctx) override {
      {
        const std::lock_guard lock(s_->m);
        s_->partitions.insert(ctx.partition());
        s_->names.insert(ctx.stage().name + "/" + ctx.stage().kind + "/" +
                         std::to_string(ctx.stage().parallelism));
        if (&ctx.clock() != c_) s_->same_clock = false;
      }
      for (auto& x : items) {
        if (x.seq < 100) {
          ctx.count_late();
        } else {
          out.push_back(x);
        }
      }
    }

   private:
    std::shared_ptr<Seen> s_;
    const weir::Clock* c_;
  };
  std::vector<Item> input(1000);
  for (std::size_t i = 0; i < input.size(); ++i)
    input[i] = Item{static_cast<std::int64_t>(i % 64), static_cast<std::int64_t>(i)};
  weir::PipelineOptions o;
  o.clock = clock;
  o.batch_size = 16;
  weir::Pipeline p("context", o);
  std::vector<Item> got;
  const weir::Clock* c = clock.get();
  p.source(input)
      .key_by(item_key)
      .process([seen, c] { return std::make_unique<Probe>(seen, c); })
      .name("probe")
      .parallelism(4)
      .sink(weir::collect_into(got));
  const auto r = p.run();
  CHECK(got.size() == 900);
  CHECK(r.stage("probe").late == 100);
  CHECK(seen->partitions == std::set<std::uint32_t>{0, 1, 2, 3});
  CHECK(seen->names == std::set<std::string>{"probe/process/4"});
  CHECK(seen->same_clock);
}

TEST_CASE("an operator that wants the timer gets on_timer() while its source is idle") {
  // Holds its items and emits them on the next timer tick.
  class Hold final : public weir::Operator<int, int> {
   public:
    void process(std::vector<int>& items, std::vector<int>&, weir::OperatorContext&) override {
      held_.insert(held_.end(), items.begin(), items.end());
    }
    void on_timer(std::vector<int>& out, weir::OperatorContext&) override {
      out.insert(out.end(), held_.begin(), held_.end());
      held_.clear();
    }
    void finish(std::vector<int>& out, weir::OperatorContext& ctx) override { on_timer(out, ctx); }
    [[nodiscard]] bool wants_timer() const noexcept override { return true; }

   private:
    std::vector<int> held_;
  };
  auto push = std::make_shared<weir::ops::PushSource<int>>(16);
  std::mutex m;
  std::vector<int> out;
  weir::PipelineOptions o;
  o.timer_interval = 5ms;
  weir::Pipeline p("timer", o);
  p.source(push).process(std::make_unique<Hold>()).sink([&](int x) {
    const std::lock_guard lock(m);
    out.push_back(x);
  });
  p.start();
  push->push(1);
  push->push(2);
  CHECK(weir_test::eventually([&] {
    const std::lock_guard lock(m);
    return out.size() == 2;
  }));
  push->close();
  p.wait();
  CHECK(out == std::vector<int>{1, 2});
}

TEST_CASE("a factory that returns null fails the run with the stage's name") {
  std::vector<Item> input(10);
  weir::Pipeline p("null-factory");
  std::vector<Item> got;
  p.source(input)
      .key_by(item_key)
      .process([]() -> std::unique_ptr<Recorder> { return nullptr; })
      .name("nothing")
      .sink(weir::collect_into(got));
  const auto err = weir_test::run_failing(p);
  REQUIRE(err.has_value());
  REQUIRE(!err->errors().empty());
  CHECK(err->errors()[0].stage == "nothing");
}

TEST_CASE("a serial operator's stage rejects a parallelism above one and a null operator") {
  weir::Pipeline p("serial");
  const auto s = p.source(std::vector<std::int64_t>{1, 2, 3});
  auto sum = s.process(std::make_unique<RunningSum>());
  CHECK_THROWS_AS(sum.parallelism(2), std::invalid_argument);
  CHECK_THROWS_AS(s.process(std::unique_ptr<RunningSum>{}), std::invalid_argument);
  CHECK_NOTHROW(sum.parallelism(1));
}
