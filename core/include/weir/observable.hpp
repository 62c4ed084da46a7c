#pragma once
/// \file What telemetry attaches to: a pipeline as its observers see it.

#include <memory>
#include <string>

#include "weir/clock.hpp"
#include "weir/interceptor.hpp"
#include "weir/snapshot.hpp"

namespace weir {

/// A pipeline as telemetry sees it: interceptors can be added to it, and its live counters and clock
/// read. weir::Pipeline is one; telemetry takes this interface so that it does not depend on the
/// builder or on any operator. Same thread safety as the pipeline behind it: intercept() while
/// building, the rest from any thread.
class Observable {
 public:
  virtual ~Observable() = default;
  /// Adds an interceptor to every stage. Lower priority runs first; equal priorities in registration
  /// order.
  virtual void intercept(std::shared_ptr<Interceptor> interceptor, int priority = 0) = 0;
  /// The pipeline's name.
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  /// The live counters of the pipeline's run; thread-safe, may outlive the pipeline.
  [[nodiscard]] virtual std::shared_ptr<const LiveView> live() const noexcept = 0;
  /// The clock the pipeline runs on; null for the system clock.
  [[nodiscard]] virtual std::shared_ptr<Clock> clock() const noexcept = 0;
};

}  // namespace weir
