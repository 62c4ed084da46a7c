// Builder settings and runtime wiring of the resilience operators: retry, timeout, circuit breaker.
#include <memory>
#include <stdexcept>
#include <string>

#include "weir/detail/guard.hpp"
#include "weir/detail/plan.hpp"
#include "weir/pipeline.hpp"

namespace weir::detail {

namespace {
/// Timeouts and breakers wrap the user's function of a map, filter, flat_map or callback sink.
void check_guardable(const LogicalNode& node, const char* what) {
  const auto& k = node.kind;
  if (k != "map" && k != "filter" && k != "flat_map" && k != "sink") {
    throw std::invalid_argument(std::string(what) +
                                " applies to map, filter, flat_map and callback sink stages, not to '" +
                                node.name + "' (" + k + ")");
  }
}
}  // namespace

void throw_retry_set_twice(const std::string& stage) {
  throw std::invalid_argument("stage '" + stage +
                              "' has retries from both .retry() and weir::on_error::retry: use one of them");
}

void StageRef::set_retry(RetryPolicy policy) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  if (node.source)
    throw std::invalid_argument("source '" + node.name + "' cannot retry: a failing source fails the run");
  check_retry_policy(policy, ("retry policy of stage '" + node.name + "'").c_str());
  if (node.policy.kind == ErrorPolicy::Kind::retry) throw_retry_set_twice(node.name);
  node.retry = std::move(policy);
}

void StageRef::set_timeout(TimeoutOptions options) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  check_guardable(node, "timeout");
  if (options.limit.count() <= 0)
    throw std::invalid_argument("the timeout of stage '" + node.name + "' must be positive");
  if (options.threads < 0)
    throw std::invalid_argument("the timeout threads of stage '" + node.name + "' cannot be negative");
  node.timeout = options;
}

void StageRef::set_circuit_breaker(CircuitBreakerOptions options) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  check_guardable(node, "circuit_breaker");
  check_circuit_options(options, "circuit breaker of stage '" + node.name + "'");
  node.breaker = options;
}

void attach_resilience(StageRuntime& st, const LogicalNode& node) {
  st.policy = node.policy;
  if (node.policy.kind == ErrorPolicy::Kind::retry) {
    // on_error::retry(n, backoff, then): the same machinery, without jitter or cap.
    RetryPolicy r;
    r.max_attempts = node.policy.max_attempts;
    r.initial_backoff = node.policy.backoff;
    r.multiplier = node.policy.multiplier;
    r.max_backoff = std::chrono::nanoseconds::max();
    st.retry = std::make_shared<const RetryPolicy>(std::move(r));
    st.policy.kind = node.policy.exhausted;
  } else if (node.retry) {
    st.retry = std::make_shared<const RetryPolicy>(*node.retry);
  }
  if (node.timeout || node.breaker) st.guard = std::make_shared<StageGuard>(st, node.timeout, node.breaker);
}

}  // namespace weir::detail
