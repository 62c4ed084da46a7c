#pragma once
/// \file The physical plan: the logical stages grouped into the nodes that run them. Not API.
///
/// make_plan() takes every fusion decision, in one place (core/src/plan.cpp): which stages share a
/// node (stateless chains, a source's own thread, keyed partitions), which fused loops cover a node's
/// stages, and whether a source's thread reads its range straight into the loop after it. The builder
/// only offers fused loops (LogicalNode::fused, built with the stages' types); the plan picks them.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "weir/detail/fusion.hpp"
#include "weir/detail/logical_node.hpp"

namespace weir::detail {

/// A run of stages inside a group executed in one step: one stage's kernel, or a fused loop.
struct Segment {
  std::size_t first = 0;
  std::size_t count = 1;
  FusedBase* fused = nullptr;
};

inline constexpr std::size_t max_segment = max_fused_ops + 1;  // a full chain plus its sink
inline constexpr std::size_t default_batch_size = 256;
/// Slices a range source cuts when only keyed stages take its batches and the batch size is the
/// default are this many times the batch size; a partition's batches fill up to the same multiple of
/// the batch size, and to at least keyed_fill_items, or keyed_fill_bytes of small items up to
/// keyed_fill_most items: each batch a partition receives may wake a worker that then spins for more
/// work before it sleeps, so fewer, fuller batches cost less CPU.
inline constexpr std::size_t keyed_fill = 4;
inline constexpr std::size_t keyed_fill_items = 4096;
inline constexpr std::size_t keyed_fill_bytes = 256 * 1024;
inline constexpr std::size_t keyed_fill_most = 16384;

/// An edge between groups: which output of the group's last stage, into which input of the next.
struct Edge {
  int group = 0;
  int out_port = 0;
  int in_port = 0;
};

struct Group {
  std::vector<int> stages;
  int parallelism = 1;
  std::vector<Edge> successors;
  bool source = false;
  std::vector<Segment> segments;  ///< cover the stages after the source (if any)
  bool keyed = false;             ///< one serial node per partition, fed through the head's partitioners
  bool multi = false;             ///< the last stage has several outputs (its batches are MultiBatches)
  /// A stateless group of parallelism above 1 with an ordered stage: its outputs go on in the order
  /// its input batches came, per stream (Execution::in_turn).
  bool ordered = false;
  /// A source's group: the fused loop after the source reads the source's range directly, with no
  /// batch in between (a fused loop first, or a single stateless stage that is not a sink; never
  /// when batches carry stamps); null otherwise.
  RangeConsumerBase* direct = nullptr;
  /// `direct` covers every stage of the group after the source: no batch is made at all.
  bool direct_whole = false;
};

struct Plan {
  std::vector<Group> groups;
  std::vector<int> group_of;
  bool stamps = false;  ///< a stage reads AnyBatch::stamp_ns, so sources stamp their batches
};

/// Groups the stages into nodes; throws std::logic_error for a graph that cannot run (no stages, a
/// stream without a sink, a stage name used twice).
[[nodiscard]] Plan make_plan(const std::vector<std::unique_ptr<LogicalNode>>& nodes);

/// The plan as text: stages, nodes (fused groups), their loops and edges (Pipeline::explain).
[[nodiscard]] std::string explain_plan(const std::string& pipeline,
                                       const std::vector<std::unique_ptr<LogicalNode>>& nodes);

}  // namespace weir::detail
