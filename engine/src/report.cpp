#include "weir/report.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>

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

}  // namespace weir
