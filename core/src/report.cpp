#include "weir/report.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include "execution.hpp"

namespace weir {

std::string_view to_string(RunStatus s) noexcept {
  switch (s) {
    case RunStatus::completed:
      return "completed";
    case RunStatus::failed:
      return "failed";
    case RunStatus::cancelled:
      return "cancelled";
  }
  return "unknown";
}

const StageReport& RunReport::stage(std::string_view name) const {
  for (const auto& s : stages) {
    if (s.name == name) return s;
  }
  throw std::out_of_range("no stage named '" + std::string(name) + "' in pipeline '" + pipeline + "'");
}

std::string RunReport::to_string() const {
  std::string out;
  char line[512];
  const double wall_s = std::chrono::duration<double>(wall).count();
  std::snprintf(line, sizeof line, "pipeline '%s' run %s: %s in %.3f s\n", pipeline.c_str(), run_id.c_str(),
                std::string(weir::to_string(status)).c_str(), wall_s);
  out += line;
  // The timeouts column only when a stage timed out, so that the usual table stays narrow.
  const bool timeouts =
      std::any_of(stages.begin(), stages.end(), [](const StageReport& s) { return s.timeouts > 0; });
  std::snprintf(line, sizeof line, "  %-24s %-10s %4s %12s %12s %10s %8s %8s %8s", "stage", "kind", "node",
                "in", "out", "filtered", "errors", "skipped", "dlq");
  out += line;
  if (timeouts) {
    std::snprintf(line, sizeof line, " %8s", "timeouts");
    out += line;
  }
  std::snprintf(line, sizeof line, " %8s %9s %9s %8s %8s\n", "late", "p50 batch", "p99 batch", "busy%",
                "blocked%");
  out += line;
  for (const auto& s : stages) {
    const double base = wall.count() > 0 ? static_cast<double>(wall.count()) : 1.0;
    std::snprintf(line, sizeof line, "  %-24s %-10s %4d %12llu %12llu %10llu %8llu %8llu %8llu",
                  s.name.c_str(), s.kind.c_str(), s.node, static_cast<unsigned long long>(s.items_in),
                  static_cast<unsigned long long>(s.items_out), static_cast<unsigned long long>(s.filtered),
                  static_cast<unsigned long long>(s.errors), static_cast<unsigned long long>(s.skipped),
                  static_cast<unsigned long long>(s.dead_lettered));
    out += line;
    if (timeouts) {
      std::snprintf(line, sizeof line, " %8llu", static_cast<unsigned long long>(s.timeouts));
      out += line;
    }
    std::snprintf(
        line, sizeof line, " %8llu %7.1fus %7.1fus %7.1f%% %7.1f%%\n",
        static_cast<unsigned long long>(s.late), static_cast<double>(s.batch_p50.count()) / 1e3,
        static_cast<double>(s.batch_p99.count()) / 1e3,
        100.0 * static_cast<double>(s.busy.count()) / base / (s.parallelism > 0 ? s.parallelism : 1),
        100.0 * static_cast<double>(s.blocked.count()) / base);
    out += line;
  }
  for (const auto& e : errors) {
    out += "  error: stage '" + e.stage + "' " + e.type + ": " + e.message + " (" + std::to_string(e.count) +
           (e.count == 1 ? " time" : " times") + (e.retryable ? ", retried" : "") + ")\n";
  }
  return out;
}

// A run's counters, summed into its report.
namespace detail {

Snapshot Execution::snapshot() const {
  static_assert(histogram_buckets == batch_histogram_buckets);
  Snapshot s;
  s.phase = static_cast<RunPhase>(phase_.load());
  const std::int64_t wall = wall_ns_.load();
  const std::int64_t elapsed = wall >= 0                      ? wall
                               : s.phase == RunPhase::running ? now_ns() - start_ns_.load()
                                                              : 0;
  s.report = report(std::chrono::nanoseconds{elapsed}, &s.batch_histogram);
  for (const auto& n : nodes_) s.inputs.push_back(n->inputs);
  return s;
}

RunReport Execution::report(std::chrono::nanoseconds wall,
                            std::vector<std::array<std::uint64_t, histogram_buckets>>* hists) const {
  RunReport r;
  r.pipeline = name_;
  r.run_id = run_id_;
  r.trace = trace_;
  r.status = control_.status();
  r.wall = wall;
  r.errors = control_.errors();
  for (const auto& stp : stages_) {
    const auto& st = *stp;
    StageReport s;
    s.name = st.info.name;
    s.kind = st.info.kind;
    s.node = st.info.node;
    s.parallelism = st.info.parallelism;
    std::int64_t first = std::numeric_limits<std::int64_t>::max();
    std::int64_t last = 0;
    std::array<std::uint64_t, histogram_buckets> hist{};
    auto get = [](const auto& a) { return a.load(std::memory_order_relaxed); };
    for (const auto& slot : st.slots()) {
      s.items_in += get(slot->items_in);
      s.items_out += get(slot->items_out);
      s.filtered += get(slot->filtered);
      s.errors += get(slot->errors);
      s.skipped += get(slot->skipped);
      s.dead_lettered += get(slot->dead_lettered);
      s.dead_letter_failures += get(slot->dead_letter_failures);
      s.retries += get(slot->retries);
      s.late += get(slot->late);
      s.timeouts += get(slot->timeouts);
      s.batches += get(slot->batches);
      s.busy += std::chrono::nanoseconds{get(slot->busy_ns)};
      s.blocked += std::chrono::nanoseconds{get(slot->blocked_ns)};
      first = std::min(first, get(slot->first_ns));
      last = std::max(last, get(slot->last_ns));
      for (std::size_t b = 0; b < hist.size(); ++b) hist[b] += get(slot->batch_ns_log2[b]);
    }
    s.circuit = st.circuit_state();
    if (last > first) s.wall = std::chrono::nanoseconds{last - first};
    if (hists != nullptr) hists->push_back(hist);
    std::uint64_t total = 0;
    for (auto h : hist) total += h;
    auto pct = [&](double q) {
      std::uint64_t seen = 0;
      const auto want = static_cast<std::uint64_t>(q * static_cast<double>(total));
      for (std::size_t b = 0; b < hist.size(); ++b) {
        seen += hist[b];
        if (seen > want) return std::chrono::nanoseconds{b == 0 ? 0 : (std::int64_t{1} << b) - 1};
      }
      return std::chrono::nanoseconds{0};
    };
    if (total > 0) {
      s.batch_p50 = pct(0.50);
      s.batch_p99 = pct(0.99);
    }
    r.stages.push_back(std::move(s));
  }
  return r;
}

std::string summarize_failure(const RunReport& r) {
  std::ostringstream os;
  os << "pipeline '" << r.pipeline << "' failed";
  if (r.errors.empty()) return os.str();
  os << ": ";
  bool first = true;
  for (const auto& e : r.errors) {
    if (!first) os << "; ";
    first = false;
    os << "stage '" << e.stage << "' raised " << e.type << ": " << e.message;
    if (e.count > 1) os << " (" << e.count << " times)";
  }
  return os.str();
}

RunReport finish(RunReport r) {
  if (r.status == RunStatus::failed) {
    auto shared = std::make_shared<const RunReport>(r);
    throw PipelineError(summarize_failure(r), r.errors, shared);
  }
  return r;
}

}  // namespace detail
}  // namespace weir
