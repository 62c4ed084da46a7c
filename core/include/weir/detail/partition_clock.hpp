#pragma once
/// \file What a keyed stage's partition knows of its input streams' times: the partition's watermark
/// time, and which streams have gone idle. Not API.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "weir/detail/runtime.hpp"

namespace weir::detail {

/// One partition's view of its input streams (a source, a keyed stage's partition, a serial stateful
/// stage upstream; see docs/architecture.md, "Streams"): per stream, the highest item time it has sent
/// and whether it has gone idle; and the partition's combined time, the lowest of those highest times
/// over the streams that are not idle, which never goes back. A stream is idle when it has sent no
/// batch (items or a watermark marker) for a given processing time, as found by tick(); it counts
/// again from its next batch. Touched by the partition's serial node only: not thread-safe.
class PartitionClock {
 public:
  /// The partition's combined time around one batch (see AnyBatch::time_before_ns, time_high_ns and
  /// others_high_ns).
  struct Times {
    std::int64_t before = lowest_time;  ///< the combined time before the batch
    std::int64_t high = lowest_time;    ///< the combined time with it
    /// The lowest highest time over the streams other than the batch's that are not idle
    /// (highest_time when there is none).
    std::int64_t others = highest_time;
  };

  /// `streams` input streams that have sent nothing yet; idleness counts from `now_ns` (processing
  /// time, the pipeline's clock).
  void reset(std::size_t streams, std::int64_t now_ns) {
    streams_.assign(streams, Stream{lowest_time, now_ns, false});
    combined_ = lowest_time;
  }

  /// A batch of stream `s` whose highest item time is `high` reaches the partition at processing time
  /// `now_ns` (`s` < 0: a batch of none of the input streams, which only takes the streams' idleness
  /// into account). Raises the stream's highest time, counts it as heard from (no longer idle) and
  /// combines.
  Times observe(int s, std::int64_t high, std::int64_t now_ns) noexcept {
    Times t;
    t.before = combined_;
    if (s >= 0) {
      auto& x = streams_[static_cast<std::size_t>(s)];
      x.high = std::max(x.high, high);
      x.heard_ns = now_ns;
      x.idle = false;
    }
    bool any = false;
    std::int64_t lowest = highest_time;
    for (std::size_t k = 0; k < streams_.size(); ++k) {
      const auto& x = streams_[k];
      if (x.idle) continue;
      any = true;
      lowest = std::min(lowest, x.high);
      if (static_cast<int>(k) != s) t.others = std::min(t.others, x.high);
    }
    // When every stream is idle the time stays where it is.
    if (any) combined_ = std::max(combined_, lowest);
    t.high = combined_;
    return t;
  }

  /// A timer tick at processing time `now_ns`: a stream that has sent nothing for `idle_after_ns` (since
  /// its last batch, or since reset()) goes idle, and is left out of the combined time until it sends
  /// again. True when that would move the combined time on (observe(-1, ...) moves it). With
  /// `idle_after_ns` <= 0 or a single stream nothing goes idle.
  bool tick(std::int64_t now_ns, std::int64_t idle_after_ns) noexcept {
    if (idle_after_ns <= 0 || streams_.size() < 2) return false;
    bool any = false;
    std::int64_t lowest = highest_time;
    for (auto& x : streams_) {
      if (!x.idle && now_ns - x.heard_ns >= idle_after_ns) x.idle = true;
      if (x.idle) continue;
      any = true;
      lowest = std::min(lowest, x.high);
    }
    return any && lowest > combined_;
  }

  /// The partition's combined time.
  [[nodiscard]] std::int64_t combined() const noexcept { return combined_; }
  /// Whether stream `s` is left out of the combined time.
  [[nodiscard]] bool idle(std::size_t s) const noexcept { return streams_[s].idle; }
  [[nodiscard]] std::size_t streams() const noexcept { return streams_.size(); }

 private:
  struct Stream {
    std::int64_t high = lowest_time;  ///< the highest item time it has sent
    std::int64_t heard_ns = 0;        ///< when its last batch came (or the start)
    bool idle = false;
  };
  std::vector<Stream> streams_;
  std::int64_t combined_ = lowest_time;
};

}  // namespace weir::detail
