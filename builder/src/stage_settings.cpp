// The stage handles' resilience settings: `.retry()`, `.timeout()`, `.circuit_breaker()`.
#include <memory>
#include <stdexcept>
#include <string>

#include "stage_settings.hpp"
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

StageResilience& resilience_of(LogicalNode& node) {
  if (!node.resilience) node.resilience = std::make_shared<StageResilience>();
  return static_cast<StageResilience&>(*node.resilience);
}

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
  resilience_of(node).retry = std::move(policy);
}

void StageRef::set_timeout(TimeoutOptions options) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  check_guardable(node, "timeout");
  if (options.limit.count() <= 0)
    throw std::invalid_argument("the timeout of stage '" + node.name + "' must be positive");
  if (options.threads < 0)
    throw std::invalid_argument("the timeout threads of stage '" + node.name + "' cannot be negative");
  resilience_of(node).timeout = options;
}

void StageRef::set_circuit_breaker(CircuitBreakerOptions options) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  check_guardable(node, "circuit_breaker");
  check_circuit_options(options, "circuit breaker of stage '" + node.name + "'");
  resilience_of(node).breaker = options;
}

}  // namespace weir::detail
