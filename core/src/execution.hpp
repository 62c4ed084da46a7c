#pragma once
// The engine's run of one pipeline: the plan deployed on a oneTBB flow graph (Execution), and the
// pieces it moves batches with. Private to weir_core: execution.cpp (deployment, batch path, run),
// keyed_lanes.cpp (keyed inputs: outboxes, partition clocks, watermarks), source_context.cpp (what
// a source's thread runs), report.cpp (counters into reports).

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "counter_slot.hpp"
#include "stage_runtime.hpp"
#include "ticket_pool.hpp"
#include "weir/detail/execution.hpp"
#include "weir/detail/partition_clock.hpp"
#include "weir/detail/plan.hpp"
#include "weir/detail/run_control.hpp"
#include "weir/options.hpp"
#include "weir/snapshot.hpp"

namespace weir::detail {

/// The scratchpad for user code that runs while a thread hands a batch to a keyed stage (drained
/// right after, so one per thread serves every stage).
inline UserScratch& handover_scratch() {
  static thread_local UserScratch scratch;
  return scratch;
}

/// A batch message whose copy transfers ownership, so the batch a node body receives is not also held
/// by the sender (the flow graph copies messages; Weir forwards each one to exactly one node).
/// A message with no batch asks a stateful stage's partition to flush what it holds (end of input)
/// or to do what is due (a timer tick).
struct Msg {
  mutable BatchPtr batch;
  std::uint32_t partition = 0;
  bool timer = false;
  std::uint64_t turn = 0;  ///< in an ordered group: the batch's place in its stream (Turns::taken)
  Msg() = default;
  explicit Msg(BatchPtr b) : batch(std::move(b)) {}
  static Msg control(std::uint32_t partition, bool timer) {
    Msg m;
    m.partition = partition;
    m.timer = timer;
    return m;
  }
  Msg(const Msg& o) noexcept
      : batch(std::move(o.batch)), partition(o.partition), timer(o.timer), turn(o.turn) {}
  Msg& operator=(const Msg& o) noexcept {
    batch = std::move(o.batch);
    partition = o.partition;
    timer = o.timer;
    turn = o.turn;
    return *this;
  }
};

using FlowNode = tbb::flow::function_node<Msg, tbb::flow::continue_msg>;

/// What one sending stream holds back for the partitions of one keyed input: per partition, a batch
/// that fills up over several splits and goes on when full, when time moves into another window's
/// stretch, when it has waited the linger time, or at end of input; and the stream's highest item
/// time. Only the stream's batches use it, one at a time (a stream is serial, or its batches take
/// turns under the lock); the sweeper and the end-of-input drain lock it too.
struct alignas(64) Outbox {
  std::mutex mutex;
  std::vector<BatchPtr> parts;      ///< one per partition, null when nothing is held for it
  bool holding = false;             ///< some part holds items
  std::uint64_t since = 0;          ///< the sweep count when the outbox started holding
  std::int64_t stamp = 0;           ///< AnyBatch::stamp_ns of the items held
  std::int64_t high = lowest_time;  ///< the stream's highest item time (Partitioner::split)
  /// Partitioner::epoch of the stream's highest time; at first none, so with windows in time the
  /// first split goes on at once (a window may be waiting for it).
  std::int64_t epoch = std::numeric_limits<std::int64_t>::min();
};

/// One keyed input (a consumer group and input port): the outboxes of the streams that can reach it.
/// A stateless stage before it that runs in parallel without `.ordered()` promises no order: its
/// instances fill outboxes of their own (one per instance and stream, taken by whichever instance
/// finds it free) and share the stream's highest time. An ordered one sends each stream from one
/// thread at a time, in order, like a serial stage: one outbox per stream.
struct Exchange {
  std::size_t cap = 0;   ///< items per batch a partition receives when input is plentiful (0: send at once)
  bool markers = false;  ///< the partitions have several input streams: send watermarks to all
  /// By stream id (empty for streams that cannot come), then instance.
  std::vector<std::vector<std::unique_ptr<Outbox>>> outboxes;
  /// By stream id: the highest time of a stream whose instances fill several outboxes.
  std::unique_ptr<std::atomic<std::int64_t>[]> highs;
};

/// Marks the threads in a run's arena with the run's tag while they are in it (run_arena_tag()),
/// so that a stage counts them in their own slots and every other thread in the shared one.
class ArenaMembers final : public tbb::task_scheduler_observer {
 public:
  ArenaMembers(tbb::task_arena& arena, const void* tag) : tbb::task_scheduler_observer(arena), tag_(tag) {
    observe(true);
  }
  ArenaMembers(const ArenaMembers&) = delete;
  ArenaMembers& operator=(const ArenaMembers&) = delete;
  ~ArenaMembers() override { observe(false); }
  void on_scheduler_entry(bool /*worker*/) override { run_arena_tag() = tag_; }
  void on_scheduler_exit(bool /*worker*/) override {
    if (run_arena_tag() == tag_) run_arena_tag() = nullptr;
  }

 private:
  const void* tag_;
};

/// A source's HelpingWait: its thread joins the run's arena and runs the graph's tasks until a slot is
/// free. The wait is an empty flow graph's, made in the arena (reserve_wait, wait_for_all, release_wait).
class ArenaWait final : public HelpingWait {
 public:
  explicit ArenaWait(tbb::task_arena& arena) {
    arena.execute([this] { graph_ = std::make_unique<tbb::flow::graph>(); });
  }
  void arm() override { graph_->reserve_wait(); }
  void wait() override { graph_->wait_for_all(); }
  void disarm() noexcept override { graph_->release_wait(); }

 private:
  std::unique_ptr<tbb::flow::graph> graph_;
};

/// An ordered group's turns in one input stream. Batches of the stream take numbers as they are put on
/// the group's node (`taken`), run on any of its threads, and their outputs go on in number order:
/// an output whose turn has not come waits here with its batch's in-flight slot (so at most the
/// stream's in-flight batches wait), and one thread at a time sends outputs on (`sending`), so what
/// follows receives the stream from one sender at a time, as from a serial stage.
struct Turns {
  /// The numbers given so far. An atomic increment, so that the stream's batches may come from several
  /// threads (a parallel stage before, or branches of the stream merged again).
  alignas(64) std::atomic<std::uint64_t> taken{0};
  struct Done {
    BatchPtr out;  ///< null: the batch gave nothing (filtered out, failed, dead-lettered)
    std::shared_ptr<Ticket> ticket;
    bool done = false;
  };
  alignas(64) std::mutex mutex;
  std::uint64_t next = 0;    ///< the number whose output goes on next
  bool sending = false;      ///< a thread is sending outputs on
  std::deque<Done> waiting;  ///< waiting[i] is number next + i (finished or not)
};

class Execution {
 public:
  Execution(std::string name, const PipelineOptions& options,
            std::vector<std::unique_ptr<LogicalNode>>& nodes, const std::vector<LogicalNode::Hook>& hooks,
            const TraceContext& parent)
      : name_(std::move(name)), options_(options), nodes_(nodes), plan_(make_plan(nodes)) {
    const auto& o = options_;
    clock_ = o.clock ? o.clock : system_clock();
    threads_ = o.threads > 0 ? o.threads : tbb::info::default_concurrency();
    in_flight_ = o.max_in_flight > 0 ? o.max_in_flight : static_cast<std::size_t>(8 * threads_);
    run_id_ = make_run_id();
    trace_ = parent.valid() ? parent.child() : TraceContext::root();
    if (parent.valid()) parent_span_ = parent.span_id;
    for (const auto& n : nodes) {
      if (n->source) control_.watch(n->source.get());
    }
    stages_.reserve(nodes.size());
    for (const auto& n : nodes) {
      auto st = std::make_unique<StageRuntime>();
      st->info = StageInfo{
          name_,          n->name,         n->kind, n->id, plan_.group_of[static_cast<std::size_t>(n->id)],
          n->parallelism, SpanId::random()};
      st->policy = n->policy;
      std::vector<LogicalNode::Hook> all(hooks.begin(), hooks.end());
      all.insert(all.end(), n->interceptors.begin(), n->interceptors.end());
      std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
        return a.priority != b.priority ? a.priority < b.priority : a.order < b.order;
      });
      // Without telemetry compiled in, interceptors are accepted but never called.
      if (telemetry_compiled) {
        std::vector<std::shared_ptr<Interceptor>> chain;
        for (auto& h : all) chain.push_back(h.interceptor);
        st->set_chain(std::move(chain));
      }
      st->set_timing(o.telemetry && telemetry_compiled);
      st->clock = clock_.get();
      st->run = &control_;
      st->init_slots(threads_ + 1, this);
      if (n->resilience) n->resilience->equip(*st);
      stages_.push_back(std::move(st));
    }
    // The first stage of a route's branch reports its batches to the route (one input only: a merge
    // of several could not tell which batch came from the route), through an interceptor of its own
    // that tells the route's chain; only when something listens to the route.
    for (const auto& n : nodes) {
      if (n->inputs.size() != 1) continue;
      const auto& up = *nodes[static_cast<std::size_t>(n->inputs[0])];
      if (!up.kernel) continue;
      const std::string_view route = up.kernel->output_name(static_cast<std::size_t>(n->input_ports[0]));
      auto& from = *stages_[static_cast<std::size_t>(up.id)];
      if (route.empty() || !from.listens()) continue;
      auto& st = *stages_[static_cast<std::size_t>(n->id)];
      auto chain = st.chain();
      chain.push_back(std::make_shared<RouteReporter>(from, std::string(route), st.timed()));
      st.set_chain(std::move(chain));
    }
  }

  Execution(const Execution&) = delete;
  Execution& operator=(const Execution&) = delete;
  ~Execution() = default;

  RunReport run();
  void cancel() noexcept { control_.request_stop(RunStatus::cancelled); }
  /// The run so far, from the live counters; any thread.
  Snapshot snapshot() const;

 private:
  class SourceCtx;
  static std::string make_run_id();
  /// Runs `b` through the group's segments and forwards the result. On return `b` holds a batch
  /// nobody else references that the caller may reuse, or is null.
  /// `start_ns` is the clock reading the caller took just before (0: read it here); returns the
  /// reading taken at the end, so consecutive steps share clock reads.
  /// With `direct`, the group's first segment reads `direct_n` items from the source's range instead
  /// of `b` (null then), and its output takes `ticket`.
  /// With `keep`, the output is left in `*keep` (null when there is none) instead of being sent on.
  std::int64_t process(std::size_t group, BatchPtr& b, std::int64_t start_ns = 0,
                       const DirectRun* direct = nullptr, std::size_t direct_n = 0,
                       std::shared_ptr<Ticket> ticket = {}, BatchPtr* keep = nullptr) noexcept;
  /// A batch message on a (non-source) group's node: processed, and in an ordered group sent on in
  /// its turn.
  void process(std::size_t group, const Msg& m) noexcept;
  /// The message that puts `b`, of stream `stream`, on group `group`'s node: in an ordered group it
  /// takes the stream's next number.
  Msg numbered(std::size_t group, BatchPtr b, std::uint32_t stream) noexcept;
  /// An ordered group's batch number `turn` of `stream` has finished with output `out` (null: none):
  /// sends it on when its turn comes, with every waiting output whose turn follows. `ticket` is the
  /// input batch's in-flight slot, held until then.
  void in_turn(std::size_t group, std::uint32_t stream, std::uint64_t turn, BatchPtr out,
               std::shared_ptr<Ticket> ticket) noexcept;
  /// Sends the group's output `b`, of stream `stream`, to its successors.
  void forward(const Group& g, BatchPtr b, std::uint32_t stream);
  /// Sends `b` along one edge: to the next group's node, or split by key among its partitions
  /// through the stream's outbox.
  void send(const Edge& e, BatchPtr b, std::uint32_t stream);
  /// Sends every batch `box` holds on to its partition; they carry `ticket` (see send()). The caller
  /// holds the outbox's lock.
  void release(Outbox& box, std::vector<std::unique_ptr<FlowNode>>& nodes,
               const std::shared_ptr<Ticket>& ticket = nullptr);
  /// Sends every partition of a keyed input an empty batch that carries the stream's highest time.
  void send_markers(const Edge& e, std::uint32_t stream, std::int64_t high, const std::vector<bool>* skip);
  /// Sends on what every stream holds for the inputs of `group` (end of input).
  void drain(std::size_t group);
  /// Sends on, every half linger time, what an outbox has held for a linger time, until every source
  /// has ended (the end-of-input drain takes what is left).
  void run_sweeper();
  /// Numbers the streams, makes the keyed inputs' outboxes and the partitions' clocks.
  void plan_streams();
  /// The stream of a group's output when the group starts one (a source, a stateful stage, a keyed
  /// stage's partition); stateless groups pass their input's stream on.
  [[nodiscard]] std::uint32_t own_stream(std::size_t group, std::uint32_t partition) const noexcept {
    return stream_base_[group] + partition;
  }
  /// Before a keyed stage's kernel sees `b`: the partition's combined watermark times (see AnyBatch).
  /// `now` is a clock reading taken for the batch, or 0.
  void observe(std::size_t group, AnyBatch& b, std::int64_t now) noexcept;
  /// On a timer tick, for a keyed stage whose input streams may go idle: leaves out of the
  /// partition's watermark the streams that have sent nothing for the stage's idle time, and when
  /// that moves the watermark, lets the kernel see it in an empty batch of no stream.
  void check_idle(std::size_t group, std::uint32_t partition) noexcept;
  /// End of input (or a timer tick) for a stateful group's partition: the output of its kernel's
  /// flush() (or on_timer()) goes on like a batch.
  void flush(std::size_t group, std::uint32_t partition, bool timer) noexcept;
  /// Sends timer ticks to the time-driven groups until every source has ended.
  void run_timer(std::vector<std::size_t> groups);
  void run_source(std::size_t group) noexcept;
  /// While the sources run, and the thread that called run() is not in the arena: every few
  /// milliseconds, when no task has started since the last look, lends this thread to the arena.
  void watch_sources();
  /// Runs the arena's tasks on this thread until a few passes over its queue find no more.
  void lend_thread();
  void fail_internal(const std::string& stage, std::exception_ptr e) noexcept;
  RunReport report(std::chrono::nanoseconds wall,
                   std::vector<std::array<std::uint64_t, histogram_buckets>>* hists = nullptr) const;
  [[nodiscard]] std::int64_t now_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->steady_now().time_since_epoch())
        .count();
  }

  std::string name_;
  PipelineOptions options_;
  std::vector<std::unique_ptr<LogicalNode>>& nodes_;
  Plan plan_;
  std::shared_ptr<Clock> clock_;
  int threads_ = 1;
  std::size_t in_flight_ = 8;
  std::mutex timer_mutex_;
  std::condition_variable timer_cv_;
  int live_sources_ = 0;  ///< guarded by timer_mutex_
  std::string run_id_;
  TraceContext trace_;  ///< the run span's context
  SpanId parent_span_;
  RunControl control_;
  std::vector<std::unique_ptr<StageRuntime>> stages_;
  std::vector<std::unique_ptr<TicketPool>> pools_;
  /// Per ordered group, per stream id (null for streams that cannot come): the stream's turns. After
  /// pools_: the tickets of outputs still waiting (in a failed run) go back before the pools go.
  std::vector<std::vector<std::unique_ptr<Turns>>> turns_;
  std::unique_ptr<tbb::task_arena> arena_;
  std::unique_ptr<ArenaMembers> members_;  // after arena_: stops observing before the arena goes
  std::vector<std::unique_ptr<ArenaWait>> source_waits_;  // declared after the arena: destroyed before
  std::unique_ptr<ArenaWait> lent_wait_;                  // the wait of lend_thread()
  std::atomic<std::uint64_t> runs_{0};                    ///< node bodies started (a progress sign)
  std::unique_ptr<tbb::flow::graph> graph_;               // declared before the nodes: destroyed after them
  std::vector<std::vector<std::unique_ptr<FlowNode>>> flow_;  // per group, per partition; none for sources
  /// Streams: the first id of each group that starts streams (npos for stateless groups), how many
  /// there are, and the streams each group's output may carry.
  std::vector<std::uint32_t> stream_base_;
  std::uint32_t stream_count_ = 0;
  std::vector<std::vector<std::uint32_t>> origins_;
  /// Per keyed group, per input port: the outboxes of the streams that feed it.
  std::vector<std::vector<std::unique_ptr<Exchange>>> exchanges_;
  /// Per keyed group: per input port and stream id, the stream's index in a partition's clock (-1:
  /// cannot come); per partition, the clock; and the processing time after which an input stream
  /// that sends nothing is idle (0: never, or a single input stream).
  std::vector<std::vector<std::vector<int>>> clock_index_;
  std::vector<std::vector<PartitionClock>> clocks_;
  std::vector<std::int64_t> idle_after_;
  std::atomic<std::uint64_t> sweeps_{0};                      ///< sweeps run so far (the outboxes' clock)
  std::atomic<int> phase_{static_cast<int>(RunPhase::idle)};  // for snapshots
  std::atomic<std::int64_t> start_ns_{0}, wall_ns_{-1};
};

/// Throws PipelineError for a failed run's report; returns any other report as it is.
RunReport finish(RunReport r);

}  // namespace weir::detail
