// What a source's thread runs: the source, the stages fused after it, and the hand-over of its batches
// to the graph (in-flight slots, reading a range straight into a fused chain).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <utility>

#include "execution.hpp"

namespace weir::detail {

class Execution::SourceCtx final : public SourceContext {
 public:
  SourceCtx(Execution& e, std::size_t group, StageRuntime& st, TicketPool& pool)
      : exec_(e), group_(group), stage_(st), pool_(pool), leaves_(!e.plan_.groups[group].successors.empty()) {
    const auto& g = e.plan_.groups[group];
    direct_ = g.direct;  // decided by the plan (make_plan)
    whole_ = g.direct_whole;
    keyed_only_ = !g.successors.empty() && e.options_.linger.count() > 0;
    for (const auto& edge : g.successors) {
      keyed_only_ = keyed_only_ && e.plan_.groups[static_cast<std::size_t>(edge.group)].keyed;
    }
  }
  /// Counts `n` items leaving the source and, when they leave its thread, takes an in-flight slot
  /// (waiting for one). Returns the slot, and the clock reading in `t0`.
  std::shared_ptr<Ticket> hand_over(std::size_t n, std::int64_t& t0) {
    stage_.before_batch(n);
    t0 = stage_.timed() ? exec_.now_ns() : 0;
    // What the source's own code recorded while producing the batch.
    stage_.flush_user(slot_);
    // Busy time of a source: producing the batch, from the end of the previous hand-over.
    BatchTally none{};
    stage_.finish_batch(slot_, n, n, none, last_ns_ == 0 ? t0 : last_ns_, t0);
    // Only batches that leave the source's thread need an in-flight slot.
    if (!leaves_) return nullptr;
    const auto waited = pool_.acquire(*exec_.clock_);
    if (waited.count() > 0) {
      stage_.add_blocked(waited);
      if (stage_.listens()) stage_.emit(events::Backpressure{waited});
      if (stage_.timed()) t0 = exec_.now_ns();
    }
    return std::make_shared<Ticket>(pool_);
  }
  void emit(BatchPtr batch) override {
    std::int64_t t0 = 0;
    batch->ticket = hand_over(batch->size(), t0);
    if (exec_.plan_.stamps)
      batch->stamp_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(exec_.clock_->system_now().time_since_epoch())
              .count();
    // The stateless stages fused into the source's group run here, on the source's thread.
    const AnyBatch* sent = batch.get();
    const std::int64_t t1 = exec_.process(group_, batch, t0);
    if (batch && batch.get() == sent && batch.use_count() == 1) {
      batch->ticket.reset();
      spare_ = std::move(batch);
    }
    last_ns_ = t1;
  }
  BatchPtr take_spare() noexcept override { return std::move(spare_); }
  [[nodiscard]] RangeConsumerBase* direct() noexcept override { return direct_; }
  [[nodiscard]] std::size_t direct_slice() const noexcept override {
    const std::size_t b = exec_.options_.batch_size;
    if (b > 0) return b;
    if (!leaves_ && whole_) return 4096;
    // Keyed stages re-batch what they receive per partition: a larger slice costs them nothing and
    // saves the source's thread per-slice work.
    return keyed_only_ ? keyed_fill * default_batch_size : default_batch_size;
  }
  void emit_direct(std::size_t n, DirectRun run) override {
    std::int64_t t0 = 0;
    auto ticket = hand_over(n, t0);
    BatchPtr none_in;
    last_ns_ = exec_.process(group_, none_in, t0, &run, n, std::move(ticket));
  }
  [[nodiscard]] bool stopping() const noexcept override { return exec_.control_.stopping(); }
  [[nodiscard]] std::size_t batch_size() const noexcept override {
    const std::size_t b = exec_.options_.batch_size;
    return b > 0 ? b : default_batch_size;
  }
  [[nodiscard]] std::chrono::nanoseconds linger() const noexcept override { return exec_.options_.linger; }
  [[nodiscard]] const Clock& clock() const noexcept override { return *exec_.clock_; }
  [[nodiscard]] StageRuntime& stage() noexcept override { return stage_; }
  void start() { last_ns_ = stage_.timed() ? exec_.now_ns() : 0; }
  /// The source's slot: its thread is not one of the arena's.
  [[nodiscard]] std::size_t slot() const noexcept { return slot_; }

 private:
  Execution& exec_;
  std::size_t group_;
  StageRuntime& stage_;
  TicketPool& pool_;
  bool leaves_;
  std::size_t slot_ = stage_.slot_index();
  std::int64_t last_ns_ = 0;
  BatchPtr spare_;
  RangeConsumerBase* direct_ = nullptr;
  bool whole_ = false;       ///< direct_ covers the whole chain after the source (no batch is made at all)
  bool keyed_only_ = false;  ///< every batch leaving the source's thread goes to a filling keyed input
};

void Execution::run_source(std::size_t group) noexcept {
  const int id = plan_.groups[group].stages.front();
  auto& st = *stages_[static_cast<std::size_t>(id)];
  try {
    SourceCtx ctx(*this, group, st, *pools_[group]);
    ctx.start();
    {
      const UserScratchScope scope(st.user_scratch(ctx.slot()));
      nodes_[static_cast<std::size_t>(id)]->source->run(ctx);
    }
    st.flush_user(ctx.slot());  // recorded after the last batch
    // The source's stream has ended: keyed stages it feeds directly that also have other input
    // streams stop waiting for its watermark.
    const std::uint32_t stream = own_stream(group, 0);
    for (const auto& e : plan_.groups[group].successors) {
      if (!plan_.groups[static_cast<std::size_t>(e.group)].keyed) continue;
      auto& ex = *exchanges_[static_cast<std::size_t>(e.group)][static_cast<std::size_t>(e.in_port)];
      if (!ex.markers) continue;
      auto& box = *ex.outboxes[stream].front();
      const std::lock_guard lock(box.mutex);
      if (box.holding) release(box, flow_[static_cast<std::size_t>(e.group)]);
      box.high = highest_time;
      send_markers(e, stream, highest_time, nullptr);
    }
  } catch (...) {
    fail_internal(st.info.name, std::current_exception());
  }
  {
    const std::lock_guard lock(timer_mutex_);
    --live_sources_;
  }
  timer_cv_.notify_all();
  graph_->release_wait();
}

}  // namespace weir::detail
