#pragma once
/// \file The logical graph: one node per stage, as the builder records it. Not API.

#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weir/detail/fusion.hpp"
#include "weir/detail/runtime.hpp"
#include "weir/detail/stage_policy.hpp"
#include "weir/error.hpp"
#include "weir/interceptor.hpp"

namespace weir::detail {

/// One stage as the builder records it.
struct LogicalNode {
  int id = 0;
  std::string name;
  std::string kind;
  std::vector<int> inputs;
  std::vector<int> input_ports;  ///< per input: which output of that stage it reads (route branches)
  std::vector<int> outputs;
  std::vector<int> output_ports;  ///< per consumer: which of this stage's outputs it reads
  /// Keyed stages: per input, the partitioner that splits it by key (empty for other stages).
  std::vector<std::shared_ptr<Partitioner>> partitioners;
  int parallelism = 1;
  bool single_threaded = false;  ///< the stage only works with parallelism 1 (sources, ordered sinks)
  /// `.ordered()`: at parallelism above 1, the stage's node sends its output batches on in the order
  /// their input batches came, per input stream.
  bool ordered = false;
  bool is_sink = false;
  ErrorPolicy policy;
  /// `.retry()`, `.timeout()`, `.circuit_breaker()` and on_error::retry; null when none was set.
  std::shared_ptr<ResilienceSpec> resilience;
  const std::type_info* in_type = nullptr;
  struct Hook {
    int priority;
    int order;
    std::shared_ptr<Interceptor> interceptor;
  };
  std::vector<Hook> interceptors;
  std::unique_ptr<Kernel> kernel;      ///< every stage but sources
  std::shared_ptr<SourceBase> source;  ///< sources only
  /// The chain of stateless stages ending here, fused into one loop, and the stages it covers.
  std::shared_ptr<FusedBase> fused;
  std::vector<int> fused_ids;
  /// The same chain reading straight from its range source, when it starts at one.
  std::shared_ptr<RangeConsumerBase> fused_range;
};

}  // namespace weir::detail
