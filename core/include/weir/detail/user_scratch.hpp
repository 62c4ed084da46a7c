#pragma once
/// \file Where the metrics and events that user code records inside a stage wait for the end of the
/// batch (see weir/user_metrics.hpp). Not API.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace weir::detail {

/// Whether the telemetry hooks are compiled in (`-DWEIR_TELEMETRY=OFF` turns them off): a constant,
/// so that code behind `if (telemetry_compiled && ...)` disappears from a build without them.
#if defined(WEIR_TELEMETRY) && WEIR_TELEMETRY
inline constexpr bool telemetry_compiled = true;
#else
inline constexpr bool telemetry_compiled = false;
#endif

/// Throws std::invalid_argument unless `name` matches [a-z_][a-z0-9_]*; `what` says whose name it is
/// ("metric", "event").
void check_user_name(std::string_view name, std::string_view what);

/// What user code recorded in one stage on one thread since the stage's last batch ended: counters
/// (summed), gauges (the last value) and events (in order). Only the thread that owns its slot of
/// the stage touches it; the runtime drains it once per batch. Storage is kept across batches, so a
/// name recorded again allocates nothing.
class UserScratch {
 public:
  /// At most this many names per stage and thread (new names beyond it are ignored), and at most
  /// this many events per batch (later ones are dropped).
  static constexpr std::size_t max_names = 256;
  static constexpr std::size_t max_events = 1024;

  /// One counter or gauge, by name.
  struct Metric {
    std::string name;
    double value = 0;
    bool gauge = false;
    bool touched = false;  ///< recorded since the last drain
  };
  /// One event.
  struct Record {
    std::string name;
    std::string detail;
  };

  /// Adds `v` to the counter `name`, or sets the gauge `name` to `v`. The name recorded last is
  /// tried first, so a stage that records one name per call site finds it with one comparison.
  void record(std::string_view name, double v, bool gauge) {
    Metric* m = last_;
    if (m == nullptr || m->gauge != gauge || std::string_view(m->name) != name) {
      m = find(name, gauge);
      if (m == nullptr) return;
    }
    m->value = gauge ? v : m->value + v;
    m->touched = true;
    last_ = m;
    dirty_ = true;
  }
  /// Appends an event (dropped past max_events in one batch).
  void event(std::string_view name, std::string_view detail);

  [[nodiscard]] bool dirty() const noexcept { return dirty_; }
  /// Calls `metric(const Metric&)` for every name recorded since the last drain (in order of first
  /// use) and `event(const Record&)` for every event, then forgets the values and keeps the storage.
  template <class OnMetric, class OnEvent>
  void drain(OnMetric&& metric, OnEvent&& event) {
    for (auto& m : metrics_) {
      if (!m->touched) continue;
      metric(static_cast<const Metric&>(*m));
      m->touched = false;
      m->value = 0;
    }
    for (std::size_t i = 0; i < events_used_; ++i) event(static_cast<const Record&>(events_[i]));
    events_used_ = 0;
    dirty_ = false;
  }

 private:
  /// The metric of that name and kind: found by its characters, else checked and added (null when
  /// max_names are in use).
  Metric* find(std::string_view name, bool gauge);

  std::vector<std::unique_ptr<Metric>> metrics_;  ///< stable addresses for last_
  std::vector<Record> events_;                    ///< [0, events_used_) hold this batch's events
  std::size_t events_used_ = 0;
  Metric* last_ = nullptr;
  bool dirty_ = false;
};

/// The scratchpad of the stage whose user code runs on this thread, or null (no stage runs here, or
/// nothing listens to the stage).
extern constinit thread_local UserScratch* current_user_scratch;

/// Makes `s` the thread's current scratchpad for its lifetime, then puts back the one before (does
/// nothing without telemetry).
class UserScratchScope {
 public:
  explicit UserScratchScope([[maybe_unused]] UserScratch* s) noexcept {
    if constexpr (telemetry_compiled) {
      saved_ = current_user_scratch;
      current_user_scratch = s;
    }
  }
  UserScratchScope(const UserScratchScope&) = delete;
  UserScratchScope& operator=(const UserScratchScope&) = delete;
  ~UserScratchScope() {
    if constexpr (telemetry_compiled) current_user_scratch = saved_;
  }

 private:
  UserScratch* saved_ = nullptr;
};

}  // namespace weir::detail
