#pragma once
/// \file Keyed streams and windows: KeyedStream (key_by), WindowedStream (a window being set up) and
/// WindowStream (a window stage's results and late items).

#include "weir/pipeline.hpp"

namespace weir {

/// The results of a window stage. `late()` is the stream of the items that came after their window
/// closed; without it they are counted (StageReport::late) and dropped. A cheap handle, like Stream.
template <class R, class T>
class WindowStream : public Stream<R> {
 public:
  /// `control` is the window stage's kernel, owned by the pipeline's node `id`.
  WindowStream(Pipeline* p, int id, ops::WindowControl* control) : Stream<R>(p, id), control_(control) {}

  // The setters of Stream (detail::StageSetters), returning the window's handle so that late()
  // stays in reach: `.count().name("counts").parallelism(4).late()`.
  WindowStream name(std::string n) { return again(Stream<R>::name(std::move(n))); }
  WindowStream parallelism(int n) { return again(Stream<R>::parallelism(n)); }
  WindowStream on_error(ErrorPolicy policy) { return again(Stream<R>::on_error(std::move(policy))); }
  template <class U>
  WindowStream on_error(DeadLetterPolicy<U> policy) {
    check::dead_letter_sink<DeadLetter<T>, DeadLetter<U>>();
    return on_error(ErrorPolicy(std::move(policy)));
  }
  WindowStream retry(RetryPolicy policy) { return again(Stream<R>::retry(std::move(policy))); }
  WindowStream timeout(std::chrono::nanoseconds limit) { return again(Stream<R>::timeout(limit)); }
  WindowStream timeout(TimeoutOptions options) { return again(Stream<R>::timeout(options)); }
  WindowStream circuit_breaker(CircuitBreakerOptions o) { return again(Stream<R>::circuit_breaker(o)); }
  WindowStream intercept(std::shared_ptr<Interceptor> i, int priority = 0) {
    return again(Stream<R>::intercept(std::move(i), priority));
  }
  /// The late items, as a stream of their own.
  [[nodiscard]] Stream<T> late() const {
    control_->send_late_items(true);
    return Stream<T>(&this->pipeline(), this->id(), detail::OutputPort{1});
  }

 private:
  WindowStream again(const Stream<R>&) const { return *this; }
  ops::WindowControl* control_;
};

/// A keyed stream with a window: pick event time and lateness if wanted, then an aggregation.
/// A builder value; the stage is added by count(), reduce() or aggregate().
template <class T, class KeyF, class TsF = ops::NoTimestamp>
class WindowedStream {
 public:
  using key_type = key_t<KeyF, T>;
  WindowedStream(Stream<T> in, KeyF key, ops::WindowSpec spec, TsF ts = {})
      : in_(std::move(in)), key_(std::move(key)), ts_(std::move(ts)), spec_(spec) {}

  /// Event time: `ts(item)` is the item's time; the watermark trails the highest time seen by
  /// `max_out_of_orderness`, and a window closes when the watermark passes its end. With
  /// `idle_after` (processing time on PipelineOptions::clock; 0: never), an input stream that sends
  /// nothing for that long is left out of the watermark until it sends again, so a quiet source
  /// does not hold the windows back; checked on the pipeline timer's ticks.
  template <TimestampFn<T> F>
  WindowedStream<T, KeyF, F> event_time(F ts, std::chrono::nanoseconds max_out_of_orderness = {},
                                        std::chrono::nanoseconds idle_after = {}) const {
    if (spec_.kind == ops::WindowSpec::Kind::count)
      throw std::invalid_argument("count windows have no event time");
    if (max_out_of_orderness.count() < 0)
      throw std::invalid_argument("max_out_of_orderness cannot be negative");
    if (idle_after.count() < 0) throw std::invalid_argument("idle_after cannot be negative");
    auto spec = spec_;
    spec.kind = ops::WindowSpec::Kind::event_time;
    spec.out_of_orderness_ns = max_out_of_orderness.count();
    spec.idle_after_ns = idle_after.count();
    return WindowedStream<T, KeyF, F>(in_, key_, spec, std::move(ts));
  }
  /// A function that is not a TimestampFn, with or without the durations: a static assertion that
  /// names the concept (weir/check.hpp), the compiler's first error.
  template <class F, class... Rest>
  requires(!TimestampFn<F, T> && sizeof...(Rest) <= 2) void event_time(F, const Rest&...) const {
    check::timestamp_function<T, F>();
  }
  /// Keeps each window open for `d` after the watermark passed its end, so items up to `d` late still
  /// count; the window is emitted once, when that time has passed too.
  WindowedStream allowed_lateness(std::chrono::nanoseconds d) const {
    if (d.count() < 0) throw std::invalid_argument("allowed_lateness cannot be negative");
    auto w = *this;
    w.spec_.lateness_ns = d.count();
    return w;
  }

  /// Items per key and window.
  auto count() const { return add(ops::CountAgg{}); }
  /// `fn(const T& accumulated, const T& next) -> T` over the items of each key and window.
  template <class F>
  requires std::invocable<F&, const T&, const T&> &&
      std::convertible_to<std::invoke_result_t<F&, const T&, const T&>, T>
  auto reduce(F fn) const { return add(ops::ReduceAgg<T, F>{std::move(fn)}); }
  /// Starts from a copy of `init`, calls `add(A&, const T&)` per item, and emits `result(const A&)`.
  template <class A, class Add, class Res = ops::Identity>
  requires std::invocable<Add&, A&, const T&> && std::invocable<Res&, const A&>
  auto aggregate(A init, Add add_fn, Res result = {}) const {
    return add(ops::AggregateAgg<A, Add, Res>{std::move(init), std::move(add_fn), std::move(result)});
  }

 private:
  template <class Agg>
  auto add(Agg agg) const {
    using K = ops::WindowKernel<T, KeyF, Agg, TsF>;
    auto& p = in_.pipeline();
    auto kernel = std::make_unique<K>(key_, std::move(agg), spec_, ts_);
    ops::WindowControl* control = kernel.get();
    const int id = p.add_node("window", {in_.id()}, &typeid(T), std::move(kernel), false, false, {in_.port()});
    if (spec_.kind == ops::WindowSpec::Kind::count) {
      p.node(id).partitioners.push_back(std::make_shared<ops::KeyPartitioner<T, KeyF>>(key_));
    } else if constexpr (std::is_same_v<TsF, ops::NoTimestamp>) {
      p.node(id).partitioners.push_back(std::make_shared<ops::KeyPartitioner<T, KeyF, ops::BatchStamp>>(
          key_, ops::BatchStamp{}, late_rule()));
    } else {
      p.node(id).partitioners.push_back(
          std::make_shared<ops::KeyPartitioner<T, KeyF, TsF>>(key_, ts_, late_rule()));
    }
    return WindowStream<typename K::Result, T>(&p, id, control);
  }

  [[nodiscard]] ops::LateRule late_rule() const noexcept {
    return ops::LateRule{spec_.size_ns, spec_.out_of_orderness_ns, spec_.lateness_ns};
  }

  Stream<T> in_;
  KeyF key_;
  TsF ts_;
  ops::WindowSpec spec_;
};

/// A stream partitioned by key (see Stream::key_by). A builder value.
template <class T, class KeyF>
class KeyedStream {
 public:
  using key_type = key_t<KeyF, T>;
  KeyedStream(Stream<T> in, KeyF key) : in_(std::move(in)), key_(std::move(key)) {}

  /// Tumbling windows of `w.size` (processing time until event_time() is called).
  WindowedStream<T, KeyF> window(tumbling w) const {
    if (w.size.count() <= 0) throw std::invalid_argument("a tumbling window needs a positive size");
    ops::WindowSpec spec;
    spec.kind = ops::WindowSpec::Kind::processing_time;
    spec.size_ns = w.size.count();
    return WindowedStream<T, KeyF>(in_, key_, spec);
  }
  /// Windows of `w.size` items per key.
  WindowedStream<T, KeyF> window(tumbling_count w) const {
    if (w.size < 1) throw std::invalid_argument("a count window needs at least one item");
    ops::WindowSpec spec;
    spec.kind = ops::WindowSpec::Kind::count;
    spec.count = w.size;
    return WindowedStream<T, KeyF>(in_, key_, spec);
  }

  /// Runs an operator of the user's (weir::Operator<T, Out>, weir/operator.hpp) per key partition,
  /// as a stage of kind "process": `factory()` makes one instance per partition when the run starts,
  /// and each instance sees every item of its partition's keys, in order per input stream, and no
  /// other item. `.parallelism(n)` on the result sets the partition count, as for windows.
  template <OperatorFactoryFor<T> F>
  Stream<typename factory_operator_t<F>::output_type> process(F factory) const {
    using U = typename factory_operator_t<F>::output_type;
    auto& p = in_.pipeline();
    typename detail::OperatorKernel<T, U>::Factory make = std::move(factory);
    const int id = p.add_node("process", {in_.id()}, &typeid(T),
                              std::make_unique<detail::OperatorKernel<T, U>>(std::move(make)), false, false,
                              {in_.port()});
    p.node(id).partitioners.push_back(std::make_shared<ops::KeyPartitioner<T, KeyF>>(key_));
    return Stream<U>(&p, id);
  }
  /// Anything else: fails to compile, saying what a keyed process expects (see weir/check.hpp).
  template <class F>
  requires(!OperatorFactoryFor<F, T>) auto process(F) const { check::operator_factory<T, F>(); }

  [[nodiscard]] const Stream<T>& stream() const noexcept { return in_; }
  [[nodiscard]] const KeyF& key() const noexcept { return key_; }

 private:
  Stream<T> in_;
  KeyF key_;
};

}  // namespace weir
