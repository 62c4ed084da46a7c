#pragma once
// Shared by the builder's sources: a stage's resilience settings.

#include <string>

#include "weir/detail/logical_node.hpp"
#include "weir/resilience/stage_resilience.hpp"

namespace weir::detail {

/// The node's resilience settings, made on first use.
StageResilience& resilience_of(LogicalNode& node);

/// Throws std::invalid_argument: a stage's retries were set by both `.retry()` and on_error::retry.
[[noreturn]] void throw_retry_set_twice(const std::string& stage);

}  // namespace weir::detail
