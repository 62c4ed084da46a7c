#pragma once
// The engine's side of a stage: its interceptor chain, per-thread counter slots and run control.
// Private to weir_core; operators see the stage as detail::Stage.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "weir/detail/runtime.hpp"

namespace weir::detail {

struct CounterSlot;  // counter_slot.hpp

/// Everything one logical stage needs while running, beyond what its operator sees: the chain, the
/// counters, the run. Shared by every thread running the stage; mutable parts are per-thread slots or
/// locked.
class StageRuntime final : public Stage {
 public:
  StageRuntime();
  ~StageRuntime();

  /// Sorted; empty means no hooks at all (always empty in a `-DWEIR_TELEMETRY=OFF` build).
  [[nodiscard]] const std::vector<std::shared_ptr<Interceptor>>& chain() const noexcept { return chain_; }
  void set_chain(std::vector<std::shared_ptr<Interceptor>> chain) {
    chain_ = std::move(chain);
    listening_ = !chain_.empty();
  }
  /// Whether the built-in counting measures time (never without telemetry).
  void set_timing(bool on) noexcept { timing_ = on; }
  RunControl* run = nullptr;

  /// `count` slots for the threads of the run `run_tag` stands for (see in_run_arena()).
  void init_slots(int count, const void* run_tag);
  /// The calling thread's slot: threads in the run's arena by arena index, every other thread (a
  /// source's own thread, an async sink's thread) in the last one, shared. A thread outside the run's
  /// arena may still have an arena index (0 in oneTBB's implicit arena), so the run's arena is
  /// recognised by run_arena_tag(), not by the index.
  [[nodiscard]] CounterSlot& slot() noexcept;
  [[nodiscard]] const std::vector<std::unique_ptr<CounterSlot>>& slots() const noexcept { return slots_; }

  /// Folds one batch into the counters and calls the chain's after-batch hooks.
  void finish_batch(std::uint64_t in, std::uint64_t out, const BatchTally& t, std::int64_t start_ns,
                    std::int64_t end_ns) {
    finish_batch(slot_index(), in, out, t, start_ns, end_ns);
  }
  /// The same with the calling thread's slot index looked up once by the caller.
  void finish_batch(std::size_t slot, std::uint64_t in, std::uint64_t out, const BatchTally& t,
                    std::int64_t start_ns, std::int64_t end_ns);
  /// Calls the chain's before-batch hooks.
  void before_batch(std::uint64_t in) {
    if (listens()) {
      for (const auto& i : chain_) i->before_batch(info, in);
    }
  }
  /// The state of the stage's circuit breaker, read live from any thread; nothing without a breaker.
  [[nodiscard]] std::optional<CircuitState> circuit_state() const noexcept;

 private:
  friend class Stage;
  /// Emits the batch's circuit-breaker counts (one event per kind and batch, when not zero).
  void note_circuit(const BatchTally& t);
  [[nodiscard]] Clock* clock_mut() const noexcept { return const_cast<Clock*>(clock); }
  std::vector<std::shared_ptr<Interceptor>> chain_;
  std::vector<std::unique_ptr<CounterSlot>> slots_;
  const void* run_tag_ = nullptr;
  std::mutex dead_letter_mutex_;
};

/// Tells a route stage's chain of every batch the first stage of one of its branches finished
/// (events::RouteProcessed), from that stage's chain: installed on branches of routes that have
/// listeners, so the batch path knows nothing of routes.
class RouteReporter final : public Interceptor {
 public:
  /// `timed`: whether the branch's stage times its batches (else the duration sent is zero).
  RouteReporter(Stage& route, std::string branch, bool timed)
      : route_(route), branch_(std::move(branch)), timed_(timed) {}
  void after_batch(const StageInfo&, const BatchStats& b) override {
    route_.emit(events::RouteProcessed{branch_, static_cast<std::size_t>(b.items_in),
                                       timed_ ? b.duration : std::chrono::nanoseconds{0}});
  }

 private:
  Stage& route_;
  std::string branch_;
  bool timed_;
};

inline StageRuntime& Stage::self() noexcept {
  return static_cast<StageRuntime&>(*this);
}
inline const StageRuntime& Stage::self() const noexcept {
  return static_cast<const StageRuntime&>(*this);
}

}  // namespace weir::detail
