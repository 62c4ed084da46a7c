#pragma once
/// \file The fluent builder: Pipeline, Stream<T>, sources and sinks. Stage handles and their setters
/// are in weir/stage_handle.hpp, keyed streams and windows in weir/keyed_stream.hpp (included at the end).
/// Stream stays whole here: every operator the builder offers is one of its methods.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weir/check.hpp"
#include "weir/clock.hpp"
#include "weir/concepts.hpp"
#include "weir/detail/logical_node.hpp"
#include "weir/detail/operator_kernel.hpp"
#include "weir/error.hpp"
#include "weir/interceptor.hpp"
#include "weir/observable.hpp"
#include "weir/operator.hpp"
#include "weir/ops/buffer.hpp"
#include "weir/ops/filter.hpp"
#include "weir/ops/flat_map.hpp"
#include "weir/ops/join.hpp"
#include "weir/ops/key_by.hpp"
#include "weir/ops/map.hpp"
#include "weir/ops/map_reduce.hpp"
#include "weir/ops/pass.hpp"
#include "weir/ops/route.hpp"
#include "weir/ops/sinks.hpp"
#include "weir/ops/sources.hpp"
#include "weir/ops/window.hpp"
#include "weir/ops/window_join.hpp"
#include "weir/options.hpp"
#include "weir/report.hpp"
#include "weir/resilience/circuit_breaker.hpp"
#include "weir/resilience/retry.hpp"
#include "weir/resilience/timeout.hpp"
#include "weir/snapshot.hpp"
#include "weir/stage_handle.hpp"

namespace weir {

/// Sources for `Pipeline::source`.
template <GeneratorFn F>
struct from_generator {
  F fn;
};
template <class F>
from_generator(F) -> from_generator<F>;

/// The lines of a text file, as std::string items.
struct from_lines {
  std::filesystem::path path;
};

/// Sink descriptors for `Stream::sink`.
template <class T>
struct collect_into {
  std::vector<T>* out;
  explicit collect_into(std::vector<T>& v) : out(&v) {}
};

namespace detail {
struct to_json_fmt {
  template <class T>
  nlohmann::json operator()(const T& x) const {
    return nlohmann::json(x);
  }
};
}  // namespace detail

/// Writes items as JSON lines; `fmt` returns an nlohmann::json or a string (default: nlohmann::json(item)).
template <class Fmt = detail::to_json_fmt>
struct jsonl_file {
  std::filesystem::path path;
  Fmt fmt{};
};
template <class Fmt>
jsonl_file(std::filesystem::path, Fmt) -> jsonl_file<Fmt>;
jsonl_file(std::filesystem::path)->jsonl_file<detail::to_json_fmt>;
jsonl_file(const char*)->jsonl_file<detail::to_json_fmt>;

/// Calls `fn` on a thread of its own behind a queue of at most `capacity` batches.
template <class F>
struct async_sink {
  F fn;
  std::size_t capacity = 16;
};
template <class F>
async_sink(F) -> async_sink<F>;
template <class F>
async_sink(F, std::size_t) -> async_sink<F>;

class Pipeline;
template <class T, class Chain = void>
class Stream;
template <class T, class KeyF>
class KeyedStream;

/// A run's execution state; not API.
namespace detail {
class Run;
}

/// A dataflow pipeline: build it with `source(...)` and the Stream methods, then `run()` it.
/// Building is single-threaded; `cancel()` may be called from any thread. A pipeline runs once.
class Pipeline : public Observable {
 public:
  explicit Pipeline(std::string name, PipelineOptions options = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// A source over a range: an rvalue container is moved in, an lvalue is viewed (it must outlive the run).
  template <SourceRange R>
  auto source(R&& range) {
    using V = decltype(std::views::all(std::forward<R>(range)));
    using T = std::remove_cvref_t<std::ranges::range_reference_t<V>>;
    const int id = add_source_node(
        "range", std::make_shared<ops::RangeSource<V>>(std::views::all(std::forward<R>(range))));
    // The stateless operators that follow can read the range directly on the source's thread.
    using F = detail::RangeFusion<V, T>;
    return Stream<T, F>(this, id, std::make_shared<const F>());
  }
  /// A source calling a generator until it returns std::nullopt.
  template <class F>
  auto source(from_generator<F> g) {
    using T = typename std::invoke_result_t<F&>::value_type;
    return add_source<T>("generator", std::make_shared<ops::GeneratorSource<F>>(std::move(g.fn)));
  }
  /// A source reading a text file line by line.
  Stream<std::string> source(from_lines lines);
  /// A source fed by other threads (see ops::PushSource).
  template <class T>
  Stream<T> source(std::shared_ptr<ops::PushSource<T>> push) {
    return add_source<T>("push", std::move(push));
  }

  /// Adds an interceptor to every stage. Lower priority runs first; equal priorities in registration order.
  void intercept(std::shared_ptr<Interceptor> interceptor, int priority = 0) override;

  /// Runs to the end of every source. Throws PipelineError when the run fails.
  /// With a valid `parent` (e.g. from parse_traceparent), the run's span is its child, in its trace.
  RunReport run(const TraceContext& parent = {});
  /// Starts the run on a thread of its own (with `parent` as in run()).
  void start(const TraceContext& parent = {});
  /// Waits for a started run; returns its report or throws PipelineError.
  RunReport wait();
  /// Stops the sources; what is in flight drains to the sinks; the run ends as cancelled.
  void cancel() noexcept;

  /// The plan: stages, fused groups (physical nodes) and edges.
  [[nodiscard]] std::string explain() const;
  [[nodiscard]] const std::string& name() const noexcept override { return name_; }
  [[nodiscard]] const PipelineOptions& options() const noexcept { return options_; }
  /// The live counters of this pipeline's run, for telemetry backends; thread-safe, may outlive the pipeline.
  [[nodiscard]] std::shared_ptr<const LiveView> live() const noexcept override { return live_; }
  /// The clock of the options; null for the system clock.
  [[nodiscard]] std::shared_ptr<Clock> clock() const noexcept override { return options_.clock; }
  /// The run as it is now (see LiveView::snapshot); callable from any thread.
  [[nodiscard]] Snapshot snapshot() const { return live_->snapshot(); }

  // Builder internals used by Stream; not API.
  detail::LogicalNode& node(int id);
  int add_node(std::string kind, std::vector<int> inputs, const std::type_info* in_type,
               std::unique_ptr<detail::Kernel> kernel, bool single_threaded, bool is_sink,
               std::vector<int> ports = {});

 private:
  template <class T>
  Stream<T> add_source(std::string kind, std::shared_ptr<detail::SourceBase> src);
  int add_source_node(std::string kind, std::shared_ptr<detail::SourceBase> src);
  void check_building() const;

  std::string name_;
  PipelineOptions options_;
  std::vector<std::unique_ptr<detail::LogicalNode>> nodes_;
  std::vector<detail::LogicalNode::Hook> hooks_;
  int hook_order_ = 0;
  std::unique_ptr<detail::Run> run_;
  std::shared_ptr<LiveView> live_;
  friend class detail::StageRef;
};

/// Named branches of a fan-out or a route; the setters (name, on_error, ...) apply to the fan-out or
/// route stage itself.
template <class T>
class Branches : public detail::StageSetters<Branches<T>, T> {
 public:
  Branches(Pipeline* p, int id) : detail::StageSetters<Branches<T>, T>(p, id) {}
  /// The branch called `name`; throws std::out_of_range for an unknown name.
  Stream<T> operator[](const std::string& name) const { return branches_.at(name); }
  [[nodiscard]] std::size_t size() const noexcept { return branches_.size(); }

 private:
  template <class, class>
  friend class Stream;
  std::map<std::string, Stream<T>> branches_;
};

template <class T>
using FanOut = Branches<T>;
template <class T>
using Routes = Branches<T>;

/// A stream of T leaving a stage. A cheap handle: copy it freely; every operator appends a stage.
/// Using one stream as input to several stages gives each the same items (as fan_out does).
/// `Chain` carries the stateless operators since the last boundary so that they compile into one
/// loop; a `Stream<T>` (no chain) converts from any `Stream<T, Chain>`.
template <class T, class Chain>
class Stream
    : public detail::StageSetters<Stream<T, Chain>, typename detail::chain_stage_input<Chain>::type> {
  using Base = detail::StageSetters<Stream<T, Chain>, typename detail::chain_stage_input<Chain>::type>;
  template <class, class>
  friend class Stream;

 public:
  using value_type = T;
  Stream(Pipeline* p, int id) : Base(p, id) {}
  Stream(Pipeline* p, int id, std::shared_ptr<const Chain> chain) : Base(p, id), chain_(std::move(chain)) {}
  Stream(Pipeline* p, int id, detail::OutputPort port) : Base(p, id, port.index) {}
  /// Forgets the chain (the next operator starts a new fused loop).
  template <class C2>
  requires std::is_void_v<Chain> Stream(const Stream<T, C2>& other)
      : Base(&other.pipeline(), other.id(), other.port()) {}

  /// One output per input: `fn(item)`, or `fn(item, ctx)` for a function that takes a
  /// weir::StageContext& to record metrics and events (weir/user_metrics.hpp); likewise below.
  template <MapFn<T> F>
  auto map(F fn) const {
    using U = std::remove_cvref_t<detail::user_result_t<F, T&&>>;
    return extend<U>("map", ops::MapOp<F>{std::move(fn)});
  }
  /// A function that does not fit: fails to compile, saying what map expects (see weir/check.hpp).
  template <class F>
  requires(!MapFn<F, T>) auto map(F) const { check::map_function<T, F>(); }
  /// Keeps the items for which `pred(item)` is true.
  template <FilterFn<T> P>
  auto filter(P pred) const {
    return extend<T>("filter", ops::FilterOp<P>{std::move(pred)});
  }
  template <class P>
  requires(!FilterFn<P, T>) auto filter(P) const { check::filter_function<T, P>(); }
  /// Zero or more outputs per input: the elements of the range `fn(item)` returns.
  template <FlatMapFn<T> F>
  auto flat_map(F fn) const {
    using U = typename ops::FlatMapOp<F>::template output<T>;
    return extend<U>("flat_map", ops::FlatMapOp<F>{std::move(fn)});
  }
  template <class F>
  requires(!FlatMapFn<F, T>) auto flat_map(F) const { check::flat_map_function<T, F>(); }
  /// Partitions the stream by `key(item)`: the keyed operators that follow (window, ...) keep their state
  /// in serial partitions, every item of a key in the same one. Their parallelism is the partition count.
  template <KeyFn<T> F>
  KeyedStream<T, F> key_by(F key) const {
    return KeyedStream<T, F>(Stream<T>(*this), std::move(key));
  }
  template <class F>
  requires(!KeyFn<F, T>) auto key_by(F) const { check::key_function<T, F>(); }
  /// The same items to `n` branches (no copy unless a branch changes items in place).
  std::vector<Stream<T>> fan_out(std::size_t n) const {
    if (n < 1) throw std::invalid_argument("fan_out needs at least one branch");
    const Stream<T> hub = boundary("fan_out", std::make_unique<ops::FanOutKernel>(n));
    return std::vector<Stream<T>>(n, hub);
  }
  /// The same items to branches with names.
  Branches<T> fan_out(std::initializer_list<std::string> names) const {
    if (names.size() < 1) throw std::invalid_argument("fan_out needs at least one branch");
    const Stream<T> hub = boundary("fan_out", std::make_unique<ops::FanOutKernel>(names.size()));
    Branches<T> out(&this->pipeline(), hub.id());
    for (const auto& n : names) {
      if (!out.branches_.emplace(n, hub).second)
        throw std::invalid_argument("fan_out branch named twice: " + n);
    }
    return out;
  }
  /// Sends each item to the branches whose predicate accepts it: the first such (the default) or all
  /// of them; items no branch takes go to `options.otherwise` or are dropped and counted as filtered.
  /// `route(weir::RouteOptions{}, weir::when{"big", is_big}, weir::when{"small", is_small})["big"]`.
  template <class... P>
  requires(Predicate<P, T>&&...) Routes<T> route(RouteOptions options, when<P>... branches)
  const {
    std::vector<std::string> names{branches.name...};
    if (!options.otherwise.empty()) names.push_back(options.otherwise);
    for (std::size_t k = 0; k < names.size(); ++k) {
      if (names[k].empty()) throw std::invalid_argument("a route branch needs a name");
      for (std::size_t j = 0; j < k; ++j) {
        if (names[j] == names[k]) throw std::invalid_argument("route branch named twice: " + names[k]);
      }
    }
    auto kernel = std::make_unique<ops::RouteKernel<T, P...>>(options, names,
                                                              std::tuple<P...>(std::move(branches.pred)...));
    const Stream<T> hub = boundary("route", std::move(kernel));
    Routes<T> out(&this->pipeline(), hub.id());
    for (std::size_t k = 0; k < names.size(); ++k)
      out.branches_.emplace(names[k],
                            Stream<T>(&this->pipeline(), hub.id(), detail::OutputPort{static_cast<int>(k)}));
    return out;
  }
  /// Joins each item with the row of `table` whose `key_b(row)` equals `key_a(item)`, emitting
  /// `combine(item, row)`; items without a row are dropped (counted as filtered) or failed with
  /// weir::JoinMissError (options.unmatched). The table is indexed now; keys must be unique.
  template <class R, KeyFn<T> KA, KeyFn<R> KB, class C>
  requires std::same_as<key_t<KA, T>, key_t<KB, R>> && std::invocable<C&, const T&, const R&>
      Stream<std::remove_cvref_t<std::invoke_result_t<C&, const T&, const R&>>> join_by_key(
          table<R> tbl, KA key_a, KB key_b, C combine, JoinOptions options = {})
  const {
    using U = std::remove_cvref_t<std::invoke_result_t<C&, const T&, const R&>>;
    auto& p = this->pipeline();
    auto index = ops::index_join_table(std::move(tbl.rows), key_b);
    if (index->size() >= ops::lookup_join_prefetch_rows) {
      auto kernel = std::make_unique<ops::LookupJoinKernel<T, R, KA, C>>(std::move(index), std::move(key_a),
                                                                         std::move(combine), options);
      return Stream<U>(&p, boundary("join", std::move(kernel)).id());
    }
    // A small table: the lookup runs in the fused loop of the stages before it.
    const auto* rows = index.get();
    const Stream<U> out = extend<U>(
        "join", ops::LookupJoinOp<T, R, KA, C>{rows, std::move(key_a), std::move(combine), options.unmatched},
        std::move(index));
    // Like the large table's stage, it keeps the parallelism of a stage before it.
    if (p.node(this->id()).source == nullptr) p.node(out.id()).parallelism = p.node(this->id()).parallelism;
    return out;
  }
  /// Joins this stream with `other` in event-time tumbling windows: for each key and window, every
  /// pair of an item of this stream and one of `other` gives `combine(const T&, const R&)`, emitted
  /// when the window closes (or at end of input). Keyed: `parallelism(n)` partitions.
  template <class R, class C2, KeyFn<T> KA, KeyFn<R> KB, TimestampFn<T> TsA, TimestampFn<R> TsB, class C>
  requires std::same_as<key_t<KA, T>, key_t<KB, R>> && std::invocable<C&, const T&, const R&>
  auto join_by_key(const Stream<R, C2>& other, KA key_a, KB key_b, C combine, join_window<TsA, TsB> w) const {
    if (w.size.count() <= 0) throw std::invalid_argument("a join window needs a positive size");
    if (w.max_out_of_orderness.count() < 0)
      throw std::invalid_argument("max_out_of_orderness cannot be negative");
    if (w.idle_after.count() < 0) throw std::invalid_argument("idle_after cannot be negative");
    using K = ops::WindowJoinKernel<T, R, KA, KB, TsA, TsB, C>;
    auto& p = this->pipeline();
    // Each side's partitioner judges its items against its stream's watermark just before each of
    // them; the partition then weighs the other streams' (see WindowJoinKernel). The rule's window
    // also tells when batches held back to fill up must go on (the watermark may close a window).
    const ops::LateRule rule{w.size.count(), w.max_out_of_orderness.count(), 0};
    auto pa = std::make_shared<ops::KeyPartitioner<T, KA, TsA>>(key_a, w.time_a, rule);
    auto pb = std::make_shared<ops::KeyPartitioner<R, KB, TsB>>(key_b, w.time_b, rule);
    const int id =
        p.add_node("join", {this->id(), other.id()}, &typeid(T),
                   std::make_unique<K>(std::move(key_a), std::move(key_b), std::move(w), std::move(combine)),
                   false, false, {this->port(), other.port()});
    p.node(id).partitioners = {std::move(pa), std::move(pb)};
    return Stream<typename K::Out>(&p, id);
  }
  /// Maps every item to key-value pairs (`map(const T&)` returns a std::pair<K, V> or a range of them),
  /// shuffles them by key and folds the values of each key with `reduce(V, V) -> V`; at end of input the
  /// stream carries one std::pair<K, V> per key, in no particular order. The map and the shuffle run on
  /// the threads of the stage before, the reduce in `parallelism(n)` partitions.
  template <MapReduceMapFn<T> M, class Rd>
  requires std::invocable < Rd&, typename map_reduce_pair_t<M, T>::second_type,
  typename map_reduce_pair_t<M, T>::second_type >
      Stream<map_reduce_pair_t<M, T>> map_reduce(M map_fn, Rd reduce) const {
    using Pair = map_reduce_pair_t<M, T>;
    auto& p = this->pipeline();
    auto stats = std::make_shared<ops::MapReduceStats>();
    const int id = p.add_node("map_reduce", {this->id()}, &typeid(T),
                              std::make_unique<ops::ReduceKernel<T, Pair, Rd>>(std::move(reduce), stats),
                              false, false, {this->port()});
    auto clock = p.options().clock ? p.options().clock : system_clock();
    p.node(id).partitioners.push_back(
        std::make_shared<ops::MapShuffle<T, M>>(std::move(map_fn), clock, stats));
    return Stream<Pair>(&p, id);
  }
  /// Groups items into vectors of up to `size`, emitted when full, when the oldest has waited
  /// `max_delay` (zero: no limit), and at end of input; for sinks that want big writes. Serial.
  Stream<std::vector<T>> buffer(std::size_t size, std::chrono::nanoseconds max_delay = {}) const {
    if (size < 1) throw std::invalid_argument("buffer needs a size of at least one");
    if (max_delay.count() < 0) throw std::invalid_argument("buffer max_delay cannot be negative");
    auto& p = this->pipeline();
    const int id =
        p.add_node("buffer", {this->id()}, &typeid(T),
                   std::make_unique<ops::BufferKernel<T>>(size, max_delay), true, false, {this->port()});
    return Stream<std::vector<T>>(&p, id);
  }
  /// Runs `op`, an operator of the user's (weir::Operator<T, Out>, weir/operator.hpp), as a serial
  /// stateful stage of kind "process": one instance sees every item, in order per input stream, one
  /// batch per call. Its parallelism stays 1; key the stream first (key_by(...).process(factory)) to
  /// run instances side by side.
  template <class Op>
  requires OperatorFor<Op, T> Stream<typename Op::output_type> process(std::unique_ptr<Op> op)
  const {
    using U = typename Op::output_type;
    if (!op) throw std::invalid_argument("process needs an operator, not a null pointer");
    auto& p = this->pipeline();
    std::unique_ptr<Operator<T, U>> base = std::move(op);
    const int id = p.add_node("process", {this->id()}, &typeid(T),
                              std::make_unique<detail::OperatorKernel<T, U>>(std::move(base)), true, false,
                              {this->port()});
    return Stream<U>(&p, id);
  }
  /// Anything else: fails to compile, saying what process expects (see weir/check.hpp).
  template <class X>
  requires(!check::operator_ptr_for<X, T>) auto process(X) const { check::process_operator<T, X>(); }
  /// One stream of the items of this and `others` (same item type); each input keeps its order.
  template <class... S>
  requires(std::same_as<typename S::value_type, T>&&...) Stream<T> merge(const S&... others)
  const {
    std::vector<int> inputs{this->id(), others.id()...};
    auto& p = this->pipeline();
    const int id = p.add_node("merge", inputs, &typeid(T), std::make_unique<ops::MergeKernel>(inputs.size()),
                              false, false, {this->port(), others.port()...});
    return Stream<T>(&p, id);
  }

  /// Calls `fn(item)` (or `fn(item, ctx)`) for every item.
  template <SinkFn<T> F>
  SinkStage<T> sink(F fn) const {
    return SinkStage<T>(&this->pipeline(), extend_node("sink", ops::SinkOp<F>{std::move(fn)}, true).first);
  }
  template <class F>
  requires(!SinkFn<F, T>) auto sink(F) const { check::sink_function<T, F>(); }
  /// Appends every item to a vector (in order per input).
  SinkStage<T> sink(collect_into<T> c) const {
    return sink_node("collect", std::make_unique<ops::CollectSink<T>>(*c.out));
  }
  template <class U>
  requires(!std::same_as<U, T>) auto sink(collect_into<U>) const { check::collect_into_vector<T, U>(); }
  /// Writes every item as one JSON line.
  template <class Fmt>
  SinkStage<T> sink(jsonl_file<Fmt> f) const {
    return sink_node("jsonl_file",
                     std::make_unique<ops::JsonlFileSink<T, Fmt>>(std::move(f.path), std::move(f.fmt)));
  }
  /// Calls `fn(item)` on a thread of its own behind a bounded queue.
  template <class F>
  requires std::invocable<F&, T&&> SinkStage<T> sink(async_sink<F> a)
  const {
    return sink_node("async_sink", std::make_unique<ops::AsyncSink<T, F>>(std::move(a.fn), a.capacity));
  }
  template <class F>
  requires(!std::invocable<F&, T&&>) auto sink(async_sink<F>) const { check::async_sink_function<T, F>(); }

 private:
  /// Appends a stateless stage and extends the fused chain with its operator; returns the stage id
  /// and the extended chain.
  template <class Op>
  auto extend_node(std::string kind, Op op, bool sink, std::shared_ptr<const void> state = {}) const {
    auto& p = this->pipeline();
    const int id = p.add_node(std::move(kind), {this->id()}, &typeid(T),
                              std::make_unique<detail::OpKernel<T, Op>>(op, std::move(state)), false, sink,
                              {this->port()});
    auto& node = p.node(id);
    if constexpr (std::is_void_v<Chain>) {
      auto f = std::make_shared<const detail::Fusion<T, Op>>(
          detail::Fusion<T, Op>{std::tuple<Op>(std::move(op)), {id}});
      node.fused = f->kernel();
      node.fused_ids = f->ids;
      return std::pair{id, std::move(f)};
    } else {
      auto f = chain_->extend(std::move(op), id);
      node.fused = f->kernel();
      node.fused_ids = f->ids;
      node.fused_range = f->range_kernel();
      return std::pair{id, std::move(f)};
    }
  }
  /// `state`: what the operator points to, kept alive by the stage (see detail::OpKernel).
  template <class U, class Op>
  auto extend(std::string kind, Op op, std::shared_ptr<const void> state = {}) const {
    if constexpr (!std::is_void_v<Chain>) {
      if constexpr (std::tuple_size_v<decltype(Chain::ops)> >= detail::max_fused_ops) {
        return Stream<T>(*this).template extend<U>(std::move(kind), std::move(op), std::move(state));
      } else {
        auto [id, f] = extend_node(std::move(kind), std::move(op), false, std::move(state));
        return Stream<U, typename decltype(f)::element_type>(&this->pipeline(), id, std::move(f));
      }
    } else {
      auto [id, f] = extend_node(std::move(kind), std::move(op), false, std::move(state));
      return Stream<U, typename decltype(f)::element_type>(&this->pipeline(), id, std::move(f));
    }
  }
  /// A pass-through stage (fan_out) that ends the chain; it keeps the parallelism of its input so it
  /// can still join its input's node.
  Stream<T> boundary(std::string kind, std::unique_ptr<detail::Kernel> k) const {
    auto& p = this->pipeline();
    const int id =
        p.add_node(std::move(kind), {this->id()}, &typeid(T), std::move(k), false, false, {this->port()});
    if (p.node(this->id()).source == nullptr) p.node(id).parallelism = p.node(this->id()).parallelism;
    return Stream<T>(&p, id);
  }
  SinkStage<T> sink_node(std::string kind, std::unique_ptr<detail::Kernel> k) const {
    auto& p = this->pipeline();
    const int id =
        p.add_node(std::move(kind), {this->id()}, &typeid(T), std::move(k), true, true, {this->port()});
    return SinkStage<T>(&p, id);
  }

  std::shared_ptr<const Chain> chain_;
};

template <class T>
Stream<T> Pipeline::add_source(std::string kind, std::shared_ptr<detail::SourceBase> src) {
  return Stream<T>(this, add_source_node(std::move(kind), std::move(src)));
}

inline Stream<std::string> Pipeline::source(from_lines lines) {
  return add_source<std::string>("lines", std::make_shared<ops::LinesSource>(std::move(lines.path)));
}

}  // namespace weir

// KeyedStream, WindowedStream and WindowStream build on Stream.
#include "weir/keyed_stream.hpp"
