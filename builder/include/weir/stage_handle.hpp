#pragma once
/// \file Handles to one stage of a pipeline (StageRef, SinkStage) and the fluent setters every handle
/// shares: name, parallelism, ordered, error policy, retry, timeout, circuit breaker, interceptors.

#include <chrono>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "weir/check.hpp"
#include "weir/error.hpp"
#include "weir/interceptor.hpp"
#include "weir/resilience/circuit_breaker.hpp"
#include "weir/resilience/retry.hpp"
#include "weir/resilience/timeout.hpp"

namespace weir {

class Pipeline;

namespace detail {
/// Which output of a stage a stream reads (route branches, a window's late items).
struct OutputPort {
  int index = 0;
};
}  // namespace detail

namespace detail {
/// Shared part of Stream and SinkStage: a reference to one stage of a pipeline.
class StageRef {
 public:
  StageRef(Pipeline* p, int id, int port = 0) : pipeline_(p), id_(id), port_(port) {}
  [[nodiscard]] int id() const noexcept { return id_; }
  /// Which output of the stage this handle reads (route branches, side outputs); 0 otherwise.
  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] Pipeline& pipeline() const noexcept { return *pipeline_; }
  [[nodiscard]] const std::string& stage_name() const;

 protected:
  void set_name(std::string name);
  void set_parallelism(int n);
  void set_ordered();
  void set_policy(ErrorPolicy policy);
  void set_retry(RetryPolicy policy);
  void set_timeout(TimeoutOptions options);
  void set_circuit_breaker(CircuitBreakerOptions options);
  void add_interceptor(std::shared_ptr<Interceptor> i, int priority);
  Pipeline* pipeline_;
  int id_;
  int port_;
};

/// Fluent setters shared by streams and sinks; each applies to the stage the handle refers to and
/// returns the handle as its own type `Self`. `In` is the stage's input type, or void when the handle
/// does not know it (then a dead-letter sink's type is checked when the policy is set, not when the
/// program compiles). A class that derives from a handle (WindowStream) repeats these setters so that
/// they return it.
template <class Self, class In = void>
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
  /// Keeps order at any parallelism: the stage's output batches go on in the order its input batches
  /// came, per input stream (stateless stages with an output: map, filter, flat_map, route, fan_out,
  /// merge, join with a table). Changes nothing at parallelism 1, where order is kept anyway. Throws
  /// std::invalid_argument for a source, a sink or a keyed or stateful stage.
  Self ordered() {
    set_ordered();
    return self();
  }
  /// Sets what happens when the stage's function throws (see weir::on_error).
  Self on_error(ErrorPolicy policy) {
    set_policy(std::move(policy));
    return self();
  }
  /// The same with a dead-letter sink of `weir::DeadLetter<U>`: U must be the stage's input type.
  template <class U>
  Self on_error(DeadLetterPolicy<U> policy) {
    if constexpr (!std::is_void_v<In>) check::dead_letter_sink<DeadLetter<In>, DeadLetter<U>>();
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

/// Handle to a sink stage of items of type T, for naming it and setting its policy. A cheap value.
template <class T>
class SinkStage : public detail::StageSetters<SinkStage<T>, T> {
 public:
  using detail::StageSetters<SinkStage<T>, T>::StageSetters;
};

}  // namespace weir
