#pragma once
/// \file The operator interface: what a user implements to add a stateful operator of their own.
///
/// An operator derives from `weir::Operator<In, Out>` and is added to a pipeline with
/// `Stream<In>::process(std::make_unique<MyOp>(...))` (one serial instance) or
/// `stream.key_by(key).process(factory)` (one instance per key partition, made by `factory`). The
/// runtime calls `process()` once per batch with the batch's items and an empty output vector;
/// nothing is called per item. An instance is only ever called by one thread at a time, so its
/// state needs no lock. See docs/writing-operators.md.

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weir/clock.hpp"
#include "weir/interceptor.hpp"
#include "weir/user_metrics.hpp"

namespace weir {

namespace detail {
class Stage;
struct BatchTally;
template <class In, class Out>
class OperatorKernel;
}  // namespace detail

/// What an operator may use while the runtime calls it: the stage's identity and the pipeline's
/// clock, the stage's interceptors (events, custom metrics), its counters of filtered and late
/// items, and its error policy for items that failed. The runtime makes one for each call (a
/// batch, a timer tick, the end of input, open or close); it is valid during that call only. Not
/// thread-safe, and needs not be: an operator instance is called by one thread at a time.
class OperatorContext {
 public:
  OperatorContext(const OperatorContext&) = delete;
  OperatorContext& operator=(const OperatorContext&) = delete;

  /// The stage: its pipeline, name, kind ("process"), index and parallelism (for a keyed operator,
  /// the partition count).
  [[nodiscard]] const StageInfo& stage() const noexcept { return *info_; }
  /// The pipeline's clock (PipelineOptions::clock): read time through it, never the system's, so
  /// that tests with a ManualClock stay deterministic.
  [[nodiscard]] const Clock& clock() const noexcept { return *clock_; }
  /// The key partition this instance owns, in [0, stage().parallelism); 0 for a serial operator.
  [[nodiscard]] std::uint32_t partition() const noexcept { return partition_; }
  /// Whether anything listens to the stage's events (interceptors, a collector): check it before
  /// building an event. Always false in a build with `-DWEIR_TELEMETRY=OFF`.
  [[nodiscard]] bool listening() const noexcept { return listening_; }
  /// Whether the run is stopping (cancelled or failed): a long process() may return early.
  [[nodiscard]] bool stopping() const noexcept;
  /// Hands an operator event (weir::events::...) to the stage's interceptors, on the calling thread.
  /// Does nothing unless listening().
  void emit(const Event& e);
  /// Counts `n` input items the operator dropped on purpose (StageReport::filtered). Adds to a local
  /// counter, folded into the stage's counters when the call returns.
  void count_filtered(std::uint64_t n = 1) noexcept { filtered_ += n; }
  /// Counts `n` input items that came too late to be used (StageReport::late); local like
  /// count_filtered().
  void count_late(std::uint64_t n = 1) noexcept { late_ += n; }
  /// Applies the stage's error policy to one input item whose handling failed with `error` (by
  /// default the exception being handled: call it in a catch block). Counts an error; then `fail`
  /// (the default policy) fails the run, `skip` drops the item, `dead_letter` hands `item` to the
  /// dead-letter sink (when its type is the stage's input type; other items are skipped). Retries do
  /// not apply here: the operator decides what to call again.
  template <class T>
  void fail(const T& item, std::exception_ptr error = std::current_exception()) {
    fail_erased(&item, typeid(T), std::move(error));
  }
  /// Where the operator records custom metrics and events of its stage (weir/user_metrics.hpp);
  /// they reach the interceptors when the call returns.
  [[nodiscard]] StageContext& metrics() noexcept { return metrics_; }

 private:
  template <class, class>
  friend class detail::OperatorKernel;
  OperatorContext(detail::Stage& st, detail::BatchTally& tally, std::uint32_t partition);
  void fail_erased(const void* item, const std::type_info& type, std::exception_ptr error);

  detail::Stage* st_;
  detail::BatchTally* tally_;
  const StageInfo* info_;
  const Clock* clock_;
  StageContext metrics_;
  std::uint32_t partition_;
  bool listening_;
  std::uint64_t filtered_ = 0;
  std::uint64_t late_ = 0;
};

/// A stateful operator of the user's, from items of type `In` to items of type `Out`. The runtime
/// calls an instance serially, never from two threads at once (possibly from a different thread
/// from one call to the next), so its members need no lock:
///
///   open() once, process() once per input batch, on_timer() every timer tick when wants_timer(),
///   finish() once at the end of input, close() once.
///
/// A serial operator (`Stream::process`) has one instance that sees every item, in order per input
/// stream. A keyed operator (`KeyedStream::process`) has one instance per key partition, made by
/// the factory given to the builder: an instance sees every item of the keys of its partition, in
/// order per input stream, and no other item. Each virtual call handles a whole batch; nothing is
/// called per item. Thread safety: an instance is touched by one thread at a time; distinct
/// instances of a keyed operator run at the same time on different threads.
template <class In, class Out>
class Operator {
 public:
  using input_type = In;
  using output_type = Out;

  virtual ~Operator() = default;
  /// Before the first batch, once. May throw to fail the run before any item moves.
  virtual void open(OperatorContext& /*ctx*/) {}
  /// One batch of input, never empty: append the results to `out` (empty on entry, the output
  /// batch's own storage, so reserve() there pays off). `items` belongs to the operator for the call:
  /// move from it freely. An exception that escapes applies the stage's error policy to the batch
  /// as a whole (see docs/writing-operators.md); ctx.fail(item) handles one item instead.
  virtual void process(std::vector<In>& items, std::vector<Out>& out, OperatorContext& ctx) = 0;
  /// At the end of input, once, after every upstream stage has finished: append what the operator
  /// still holds. Not called when the run failed.
  virtual void finish(std::vector<Out>& /*out*/, OperatorContext& /*ctx*/) {}
  /// Every PipelineOptions::timer_interval while the sources run, when wants_timer(): append what is
  /// due (read the time from ctx.clock()). Serialised with process().
  virtual void on_timer(std::vector<Out>& /*out*/, OperatorContext& /*ctx*/) {}
  /// Whether the operator wants on_timer() calls; asked once when the run starts.
  [[nodiscard]] virtual bool wants_timer() const noexcept { return false; }
  /// After the last call, once, also when the run failed or was cancelled: release what open() took.
  /// Cannot send anything on.
  virtual void close(OperatorContext& /*ctx*/) {}
};

/// An operator class for a stream of T: it derives from weir::Operator<T, Out> (publicly) and names
/// its types as Operator does (`input_type`, `output_type`).
template <class Op, class T>
concept OperatorFor = requires {
  typename Op::input_type;
  typename Op::output_type;
}
&&std::same_as<typename Op::input_type, T>&& std::derived_from<Op, Operator<T, typename Op::output_type>>;

/// A factory of operators for a keyed stream of T: copyable, callable without arguments, returning
/// a std::unique_ptr to an operator for T (see OperatorFor). Called once per partition when the run
/// starts, on the thread that starts it.
template <class F, class T>
concept OperatorFactoryFor = std::copy_constructible<F> && std::invocable<F&> && requires(F& f) {
  typename std::invoke_result_t<F&>::element_type;
  requires std::same_as<std::invoke_result_t<F&>,
                        std::unique_ptr<typename std::invoke_result_t<F&>::element_type>>;
  requires OperatorFor<typename std::invoke_result_t<F&>::element_type, T>;
};

/// The operator class a factory makes.
template <class F>
using factory_operator_t = typename std::invoke_result_t<F&>::element_type;

}  // namespace weir
