#pragma once
/// \file PipelineOptions: the settings of a pipeline and its runs.

#include <chrono>
#include <cstddef>
#include <memory>

#include "weir/clock.hpp"

namespace weir {

/// Settings of a pipeline; every field has a sane default.
struct PipelineOptions {
  /// Items per batch; 0 (the default) means 256 for batches that cross threads and 4096-item slices
  /// where a range source's fused chain keeps everything on the source's thread. A keyed stage's
  /// partitions receive batches of four times this size, and at least 4096 items (see `linger`).
  std::size_t batch_size = 0;
  /// A partial batch leaves a source after this long on `clock` (a ManualClock has to be moved), and
  /// a sending thread's partial batch for a keyed stage's partition goes on after about this long of
  /// real time; 0 sends both at once.
  std::chrono::microseconds linger{1000};
  std::size_t max_in_flight = 0;  ///< batches a source may have in flight; 0 = 8 per thread
  int threads = 0;                ///< oneTBB arena size, busy sources included; 0 = all cores
  bool telemetry = true;          ///< built-in counting interceptor times batches
  /// How often time-driven stages (processing-time windows, buffers) are woken when no batch comes;
  /// zero turns the timer off (they then act only when a batch arrives and at end of input).
  std::chrono::milliseconds timer_interval{50};
  std::shared_ptr<Clock> clock;  ///< null = the system clock
};

}  // namespace weir
