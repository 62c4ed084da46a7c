#pragma once
/// \file The fluent builder: Pipeline, Stream<T>, sources and sinks.

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

#include "weir/clock.hpp"
#include "weir/concepts.hpp"
#include "weir/detail/plan.hpp"
#include "weir/error.hpp"
#include "weir/interceptor.hpp"
#include "weir/ops/filter.hpp"
#include "weir/ops/flat_map.hpp"
#include "weir/ops/map.hpp"
#include "weir/ops/pass.hpp"
#include "weir/ops/sinks.hpp"
#include "weir/ops/sources.hpp"
#include "weir/report.hpp"

namespace weir {

/// Settings of a pipeline; every field has a sane default.
struct PipelineOptions {
  std::size_t batch_size = 256;            ///< items per batch
  std::chrono::microseconds linger{1000};  ///< a partial batch leaves a source after this long
  std::size_t max_in_flight = 0;           ///< batches a source may have in flight; 0 = 8 per thread
  int threads = 0;                         ///< oneTBB arena size; 0 = all cores
  bool telemetry = true;                   ///< built-in counting interceptor times batches
  std::shared_ptr<Clock> clock;            ///< null = the system clock
};

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

namespace detail {
/// Shared part of Stream and SinkStage: a reference to one stage of a pipeline.
class StageRef {
 public:
  StageRef(Pipeline* p, int id) : pipeline_(p), id_(id) {}
  [[nodiscard]] int id() const noexcept { return id_; }
  [[nodiscard]] Pipeline& pipeline() const noexcept { return *pipeline_; }
  [[nodiscard]] const std::string& stage_name() const;

 protected:
  void set_name(std::string name);
  void set_parallelism(int n);
  void set_policy(ErrorPolicy policy);
  void set_retry(RetryPolicy policy);
  void set_timeout(TimeoutOptions options);
  void set_circuit_breaker(CircuitBreakerOptions options);
  void add_interceptor(std::shared_ptr<Interceptor> i, int priority);
  Pipeline* pipeline_;
  int id_;
};

/// Fluent setters shared by streams and sinks; each applies to the stage the handle refers to.
template <class Self>
class StageSetters : public StageRef {
 public:
  using StageRef::StageRef;
  /// Names the stage (unique within the pipeline).
  Self name(std::string n) {
    set_name(std::move(n));
    return self();
  }
  /// Runs the stage on up to `n` threads at once (stateless stages only).
  Self parallelism(int n) {
    set_parallelism(n);
    return self();
  }
  /// Sets what happens when the stage's function throws (see weir::on_error).
  Self on_error(ErrorPolicy policy) {
    set_policy(std::move(policy));
    return self();
  }
  /// Calls a failed function again per `policy` before the error policy applies (see weir::RetryPolicy);
  /// independent of `.on_error(...)`, in either order.
  Self retry(RetryPolicy policy) {
    set_retry(std::move(policy));
    return self();
  }
  /// Runs each call on a thread of the stage's own; a call still running after `limit` fails with
  /// weir::TimeoutError (map, filter, flat_map and callback sink stages).
  Self timeout(std::chrono::nanoseconds limit) { return timeout(TimeoutOptions{limit}); }
  /// The same with the executor's thread count (see weir::TimeoutOptions).
  Self timeout(TimeoutOptions options) {
    set_timeout(options);
    return self();
  }
  /// Guards the stage's calls with a circuit breaker (map, filter, flat_map and callback sink stages).
  Self circuit_breaker(CircuitBreakerOptions options) {
    set_circuit_breaker(options);
    return self();
  }
  /// Adds an interceptor to this stage only.
  Self intercept(std::shared_ptr<Interceptor> i, int priority = 0) {
    add_interceptor(std::move(i), priority);
    return self();
  }

 private:
  Self self() const { return static_cast<const Self&>(*this); }
};
}  // namespace detail

/// Handle to a sink stage, for naming it and setting its policy.
class SinkStage : public detail::StageSetters<SinkStage> {
 public:
  using StageSetters::StageSetters;
};

/// A run's execution state; not API.
namespace detail {
class Execution;
}

/// A dataflow pipeline: build it with `source(...)` and the Stream methods, then `run()` it.
/// Building is single-threaded; `cancel()` may be called from any thread. A pipeline runs once.
class Pipeline {
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
    return add_source<T>("range",
                         std::make_shared<ops::RangeSource<V>>(std::views::all(std::forward<R>(range))));
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
  void intercept(std::shared_ptr<Interceptor> interceptor, int priority = 0);

  /// Runs to the end of every source. Throws PipelineError when the run fails.
  RunReport run();
  /// Starts the run on a thread of its own.
  void start();
  /// Waits for a started run; returns its report or throws PipelineError.
  RunReport wait();
  /// Stops the sources; what is in flight drains to the sinks; the run ends as cancelled.
  void cancel() noexcept;

  /// The plan: stages, fused groups (physical nodes) and edges.
  [[nodiscard]] std::string explain() const;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const PipelineOptions& options() const noexcept { return options_; }

  // Builder internals used by Stream; not API.
  detail::LogicalNode& node(int id);
  int add_node(std::string kind, std::vector<int> inputs, const std::type_info* in_type,
               std::unique_ptr<detail::Kernel> kernel, bool single_threaded, bool is_sink);

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
  std::unique_ptr<detail::Execution> exec_;
  friend class detail::StageRef;
};

/// Named branches of a fan-out.
template <class T>
class FanOut {
 public:
  /// The branch called `name`; throws std::out_of_range for an unknown name.
  Stream<T> operator[](const std::string& name) const { return branches_.at(name); }
  [[nodiscard]] std::size_t size() const noexcept { return branches_.size(); }

 private:
  template <class, class>
  friend class Stream;
  std::map<std::string, Stream<T>> branches_;
};

/// A stream of T leaving a stage. A cheap handle: copy it freely; every operator appends a stage.
/// Using one stream as input to several stages gives each the same items (as fan_out does).
/// `Chain` carries the stateless operators since the last boundary so that they compile into one
/// loop; a `Stream<T>` (no chain) converts from any `Stream<T, Chain>`.
template <class T, class Chain>
class Stream : public detail::StageSetters<Stream<T, Chain>> {
  using Base = detail::StageSetters<Stream<T, Chain>>;
  template <class, class>
  friend class Stream;

 public:
  using value_type = T;
  Stream(Pipeline* p, int id) : Base(p, id) {}
  Stream(Pipeline* p, int id, std::shared_ptr<const Chain> chain) : Base(p, id), chain_(std::move(chain)) {}
  /// Forgets the chain (the next operator starts a new fused loop).
  template <class C2>
  requires std::is_void_v<Chain> Stream(const Stream<T, C2>& other) : Base(&other.pipeline(), other.id()) {}

  /// One output per input: `fn(item)`.
  template <MapFn<T> F>
  auto map(F fn) const {
    using U = std::remove_cvref_t<std::invoke_result_t<F&, T&&>>;
    return extend<U>("map", ops::MapOp<F>{std::move(fn)});
  }
  /// Keeps the items for which `pred(item)` is true.
  template <FilterFn<T> P>
  auto filter(P pred) const {
    return extend<T>("filter", ops::FilterOp<P>{std::move(pred)});
  }
  /// Zero or more outputs per input: the elements of the range `fn(item)` returns.
  template <FlatMapFn<T> F>
  auto flat_map(F fn) const {
    using U = typename ops::FlatMapOp<F>::template output<T>;
    return extend<U>("flat_map", ops::FlatMapOp<F>{std::move(fn)});
  }
  /// The same items to `n` branches (no copy unless a branch changes items in place).
  std::vector<Stream<T>> fan_out(std::size_t n) const {
    if (n < 1) throw std::invalid_argument("fan_out needs at least one branch");
    const Stream<T> hub = boundary("fan_out", std::make_unique<ops::FanOutKernel>(n));
    return std::vector<Stream<T>>(n, hub);
  }
  /// The same items to branches with names.
  FanOut<T> fan_out(std::initializer_list<std::string> names) const {
    if (names.size() < 1) throw std::invalid_argument("fan_out needs at least one branch");
    const Stream<T> hub = boundary("fan_out", std::make_unique<ops::FanOutKernel>(names.size()));
    FanOut<T> out;
    for (const auto& n : names) {
      if (!out.branches_.emplace(n, hub).second)
        throw std::invalid_argument("fan_out branch named twice: " + n);
    }
    return out;
  }
  /// One stream of the items of this and `others` (same item type); each input keeps its order.
  template <class... S>
  requires(std::same_as<typename S::value_type, T>&&...) Stream<T> merge(const S&... others)
  const {
    std::vector<int> inputs{this->id(), others.id()...};
    auto& p = this->pipeline();
    const int id = p.add_node("merge", inputs, &typeid(T), std::make_unique<ops::MergeKernel>(inputs.size()),
                              false, false);
    return Stream<T>(&p, id);
  }

  /// Calls `fn(item)` for every item.
  template <SinkFn<T> F>
  SinkStage sink(F fn) const {
    return SinkStage(&this->pipeline(), extend_node("sink", ops::SinkOp<F>{std::move(fn)}, true).first);
  }
  /// Appends every item to a vector (in order per input).
  SinkStage sink(collect_into<T> c) const {
    return sink_node("collect", std::make_unique<ops::CollectSink<T>>(*c.out));
  }
  /// Writes every item as one JSON line.
  template <class Fmt>
  SinkStage sink(jsonl_file<Fmt> f) const {
    return sink_node("jsonl_file",
                     std::make_unique<ops::JsonlFileSink<T, Fmt>>(std::move(f.path), std::move(f.fmt)));
  }
  /// Calls `fn(item)` on a thread of its own behind a bounded queue.
  template <SinkFn<T> F>
  SinkStage sink(async_sink<F> a) const {
    return sink_node("async_sink", std::make_unique<ops::AsyncSink<T, F>>(std::move(a.fn), a.capacity));
  }

 private:
  /// Appends a stateless stage and extends the fused chain with its operator; returns the stage id
  /// and the extended chain.
  template <class Op>
  auto extend_node(std::string kind, Op op, bool sink) const {
    auto& p = this->pipeline();
    const int id = p.add_node(std::move(kind), {this->id()}, &typeid(T),
                              std::make_unique<detail::OpKernel<T, Op>>(op), false, sink);
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
      return std::pair{id, std::move(f)};
    }
  }
  template <class U, class Op>
  auto extend(std::string kind, Op op) const {
    if constexpr (!std::is_void_v<Chain>) {
      if constexpr (std::tuple_size_v<decltype(Chain::ops)> >= detail::max_fused_ops) {
        return Stream<T>(*this).template extend<U>(std::move(kind), std::move(op));
      } else {
        auto [id, f] = extend_node(std::move(kind), std::move(op), false);
        return Stream<U, typename decltype(f)::element_type>(&this->pipeline(), id, std::move(f));
      }
    } else {
      auto [id, f] = extend_node(std::move(kind), std::move(op), false);
      return Stream<U, typename decltype(f)::element_type>(&this->pipeline(), id, std::move(f));
    }
  }
  /// A pass-through stage (fan_out) that ends the chain; it keeps the parallelism of its input so it
  /// can still join its input's node.
  Stream<T> boundary(std::string kind, std::unique_ptr<detail::Kernel> k) const {
    auto& p = this->pipeline();
    const int id = p.add_node(std::move(kind), {this->id()}, &typeid(T), std::move(k), false, false);
    if (p.node(this->id()).source == nullptr) p.node(id).parallelism = p.node(this->id()).parallelism;
    return Stream<T>(&p, id);
  }
  SinkStage sink_node(std::string kind, std::unique_ptr<detail::Kernel> k) const {
    auto& p = this->pipeline();
    const int id = p.add_node(std::move(kind), {this->id()}, &typeid(T), std::move(k), true, true);
    return SinkStage(&p, id);
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
