// The physical plan: which stages share a node, and the loops that run them.
#include "weir/detail/plan.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace weir::detail {

Plan make_plan(const std::vector<std::unique_ptr<LogicalNode>>& nodes) {
  Plan plan;
  plan.group_of.assign(nodes.size(), -1);
  for (const auto& n : nodes) {
    if (n->outputs.empty() && !n->is_sink) {
      throw std::logic_error("stage '" + n->name + "' has no consumer: end every stream with a sink");
    }
  }
  if (nodes.empty()) throw std::logic_error("the pipeline has no stages");
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (nodes[i]->name == nodes[j]->name)
        throw std::logic_error("stage name '" + nodes[i]->name + "' is used twice");
    }
  }
  for (const auto& n : nodes) {
    int g = -1;
    if (n->source == nullptr && n->inputs.size() == 1 && n->kernel->stateless() && n->partitioners.empty()) {
      const auto& up = *nodes[static_cast<std::size_t>(n->inputs[0])];
      const int ug = plan.group_of[static_cast<std::size_t>(up.id)];
      const auto& tail =
          *nodes[static_cast<std::size_t>(plan.groups[static_cast<std::size_t>(ug)].stages.back())];
      // Fuse into the upstream group when n is its only consumer and runs with the same parallelism.
      // A source's own group takes stateless stages of parallelism 1: they run on the source's thread.
      // Nothing fuses after a stateful stage or a stage with several outputs.
      if (&tail == &up && up.outputs.size() == 1 && up.parallelism == n->parallelism &&
          (up.source != nullptr || (up.kernel->stateless() && up.kernel->outputs() == 1))) {
        g = ug;
      }
    }
    if (g < 0) {
      g = static_cast<int>(plan.groups.size());
      const bool stateful = n->source == nullptr && !n->kernel->stateless();
      const bool keyed = !n->partitioners.empty();
      plan.groups.push_back(
          Group{{}, stateful && !keyed ? 1 : n->parallelism, {}, n->source != nullptr, {}, keyed});
    }
    plan.groups[static_cast<std::size_t>(g)].stages.push_back(n->id);
    plan.group_of[static_cast<std::size_t>(n->id)] = g;
    // An ordered stage orders its whole node's output (what is fused after it at its parallelism too).
    // At parallelism 1 the node is serial and keeps order anyway.
    auto& group = plan.groups[static_cast<std::size_t>(g)];
    group.ordered = group.ordered || (n->ordered && !group.source && !group.keyed && group.parallelism > 1);
  }
  for (const auto& n : nodes) plan.stamps = plan.stamps || (n->kernel && n->kernel->uses_stamps());
  for (auto& g : plan.groups) {
    // Cover the group with the longest fused loops the builder prepared, stage kernels elsewhere.
    for (std::size_t p = g.source ? 1 : 0; p < g.stages.size();) {
      Segment seg{p, 1, nullptr};
      for (std::size_t q = g.stages.size() - 1; q > p; --q) {
        const auto& n = *nodes[static_cast<std::size_t>(g.stages[q])];
        if (n.fused && n.fused_ids.size() == q - p + 1 && q - p + 1 <= max_segment &&
            std::equal(n.fused_ids.begin(), n.fused_ids.end(),
                       g.stages.begin() + static_cast<std::ptrdiff_t>(p))) {
          seg = Segment{p, q - p + 1, n.fused.get()};
          break;
        }
      }
      g.segments.push_back(seg);
      p += seg.count;
    }
    // A source's thread reads its range straight into the chain after it when a fused loop comes
    // first, or a single stateless stage that is not a sink (the segments after it take its output).
    if (g.source && !g.segments.empty() && !plan.stamps) {
      const auto& seg = g.segments[0];
      const auto& n = *nodes[static_cast<std::size_t>(g.stages[seg.first + seg.count - 1])];
      const bool single = seg.fused == nullptr && seg.count == 1 && !n.is_sink && n.fused_ids.size() == 1 &&
                          n.fused_ids[0] == n.id;
      if (seg.fused != nullptr || single) g.direct = n.fused_range.get();
      g.direct_whole = g.direct != nullptr && g.segments.size() == 1;
    }
    const auto& last = *nodes[static_cast<std::size_t>(g.stages.back())];
    g.multi = last.kernel && last.kernel->outputs() > 1;
    // One edge per consumer: a stage that merges a stream with itself receives each batch twice.
    // The edge's input port counts the consumer's earlier inputs from the same output.
    for (std::size_t j = 0; j < last.outputs.size(); ++j) {
      const int c = last.outputs[j];
      const int port = last.output_ports[j];
      int seen = 0;
      for (std::size_t k = 0; k < j; ++k) seen += last.outputs[k] == c && last.output_ports[k] == port;
      const auto& consumer = *nodes[static_cast<std::size_t>(c)];
      int in_port = 0;
      for (std::size_t k = 0; k < consumer.inputs.size(); ++k) {
        if (consumer.inputs[k] == last.id && consumer.input_ports[k] == port && seen-- == 0) {
          in_port = static_cast<int>(k);
          break;
        }
      }
      g.successors.push_back(Edge{plan.group_of[static_cast<std::size_t>(c)], port, in_port});
    }
  }
  return plan;
}

std::string explain_plan(const std::string& pipeline,
                         const std::vector<std::unique_ptr<LogicalNode>>& nodes) {
  const auto plan = make_plan(nodes);
  std::ostringstream os;
  os << "pipeline '" << pipeline << "': " << nodes.size() << " stages in " << plan.groups.size()
     << " nodes\n";
  for (std::size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const auto& g = plan.groups[gi];
    os << "  node " << gi
       << (g.source              ? " [source thread]"
           : g.stages.size() > 1 ? " [fused]"
                                 : "")
       << (g.keyed ? " partitions " : " parallelism ") << g.parallelism << (g.ordered ? " ordered" : "")
       << ":";
    for (std::size_t k = 0; k < g.stages.size(); ++k) {
      const auto& n = *nodes[static_cast<std::size_t>(g.stages[k])];
      os << (k == 0 ? " " : " -> ") << n.name << " (" << n.kind << ")";
    }
    if (!g.successors.empty()) {
      os << "  => node";
      for (const auto& e : g.successors) os << ' ' << e.group;
    }
    os << '\n';
    // How the node runs its stages: one loop per fused chain ("a+b"), the others each on their own.
    if (g.segments.empty()) continue;
    os << "    loops:";
    for (std::size_t k = 0; k < g.segments.size(); ++k) {
      const auto& seg = g.segments[k];
      os << (k == 0 ? " " : ", ");
      for (std::size_t j = 0; j < seg.count; ++j)
        os << (j == 0 ? "" : "+") << nodes[static_cast<std::size_t>(g.stages[seg.first + j])]->name;
    }
    os << '\n';
  }
  return os.str();
}

}  // namespace weir::detail
