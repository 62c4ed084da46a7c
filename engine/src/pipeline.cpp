#include "weir/pipeline.hpp"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iomanip>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "weir/detail/execution.hpp"
#include "weir/detail/partition_clock.hpp"

namespace weir {
namespace detail {

// ---------------------------------------------------------------------------------------------------
// Run control

void RunControl::request_stop(RunStatus why) noexcept {
  int expected = static_cast<int>(RunStatus::completed);
  if (!status_.compare_exchange_strong(expected, static_cast<int>(why)) && why == RunStatus::failed) {
    status_.store(static_cast<int>(RunStatus::failed));
  }
  stop_.store(true, std::memory_order_release);
  stop_signal_.notify();
  const std::lock_guard lock(mutex_);
  for (auto* p : pools_) p->open_wide();
  for (auto* s : sources_) s->wake();
  for (auto* n : stop_watchers_) n->notify();
}

void RunControl::watch_stop(Notification& n) {
  const std::lock_guard lock(mutex_);
  stop_watchers_.push_back(&n);
  if (stopping()) n.notify();
}

void RunControl::unwatch_stop(Notification& n) noexcept {
  const std::lock_guard lock(mutex_);
  const auto it = std::find(stop_watchers_.begin(), stop_watchers_.end(), &n);
  if (it != stop_watchers_.end()) stop_watchers_.erase(it);
}

void RunControl::record_error(const std::string& stage, const std::string& type, const std::string& message,
                              bool retryable, const Clock& clock) {
  const auto now = clock.system_now();
  const std::lock_guard lock(mutex_);
  for (auto& e : errors_) {
    if (e.stage == stage && e.type == type) {
      ++e.count;
      e.last_seen = now;
      e.retryable = e.retryable || retryable;
      return;
    }
  }
  errors_.push_back(ErrorSummary{stage, type, message, retryable, 1, now, now});
}

std::vector<ErrorSummary> RunControl::errors() const {
  const std::lock_guard lock(mutex_);
  return errors_;
}

void RunControl::watch(TicketPool* pool) {
  const std::lock_guard lock(mutex_);
  pools_.push_back(pool);
  if (stopping()) pool->open_wide();
}

void RunControl::watch(SourceBase* source) {
  const std::lock_guard lock(mutex_);
  sources_.push_back(source);
  if (stopping()) source->wake();
}

// ---------------------------------------------------------------------------------------------------
// Plan: fusion of stateless chains into physical nodes

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
};

struct Plan {
  std::vector<Group> groups;
  std::vector<int> group_of;
};

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

// ---------------------------------------------------------------------------------------------------
// Execution

/// The scratchpad for user code that runs while a thread hands a batch to a keyed stage (drained
/// right after, so one per thread serves every stage).
UserScratch& handover_scratch() {
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
  Execution(Pipeline& p, std::vector<std::unique_ptr<LogicalNode>>& nodes,
            const std::vector<LogicalNode::Hook>& hooks, const TraceContext& parent)
      : pipeline_(p), nodes_(nodes), plan_(make_plan(nodes)) {
    const auto& o = p.options();
    clock_ = o.clock ? o.clock : system_clock();
    threads_ = o.threads > 0 ? o.threads : tbb::info::default_concurrency();
    in_flight_ = o.max_in_flight > 0 ? o.max_in_flight : static_cast<std::size_t>(8 * threads_);
    run_id_ = make_run_id();
    trace_ = parent.valid() ? parent.child() : TraceContext::root();
    if (parent.valid()) parent_span_ = parent.span_id;
    for (const auto& n : nodes) stamps_ = stamps_ || (n->kernel && n->kernel->uses_stamps());
    for (const auto& n : nodes) {
      if (n->source) control_.watch(n->source.get());
    }
    stages_.reserve(nodes.size());
    for (const auto& n : nodes) {
      auto st = std::make_unique<StageRuntime>();
      st->info = StageInfo{
          p.name(),       n->name,         n->kind, n->id, plan_.group_of[static_cast<std::size_t>(n->id)],
          n->parallelism, SpanId::random()};
      st->policy = n->policy;
      std::vector<LogicalNode::Hook> all(hooks.begin(), hooks.end());
      all.insert(all.end(), n->interceptors.begin(), n->interceptors.end());
      std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
        return a.priority != b.priority ? a.priority < b.priority : a.order < b.order;
      });
      // Without telemetry compiled in, interceptors are accepted but never called.
      if (telemetry_compiled) {
        for (auto& h : all) st->chain.push_back(h.interceptor);
      }
      st->timing = o.telemetry && telemetry_compiled;
      st->clock = clock_.get();
      st->run = &control_;
      st->init_slots(threads_ + 1, this);
      attach_resilience(*st, *n);
      stages_.push_back(std::move(st));
    }
    // The first stage of a route's branch reports its batches to the route (one input only: a merge
    // of several could not tell which batch came from the route).
    for (const auto& n : nodes) {
      if (n->inputs.size() != 1) continue;
      const auto& up = *nodes[static_cast<std::size_t>(n->inputs[0])];
      if (!up.kernel) continue;
      const std::string_view route = up.kernel->output_name(static_cast<std::size_t>(n->input_ports[0]));
      if (route.empty()) continue;
      auto& st = *stages_[static_cast<std::size_t>(n->id)];
      st.route_from = stages_[static_cast<std::size_t>(up.id)].get();
      st.route_name = std::string(route);
    }
  }

  Execution(const Execution&) = delete;
  Execution& operator=(const Execution&) = delete;
  ~Execution() {
    if (runner_.joinable()) runner_.join();
  }

  RunReport run();
  void cancel() noexcept { control_.request_stop(RunStatus::cancelled); }
  /// The run so far, from the live counters; any thread.
  Snapshot snapshot() const;
  std::thread runner_;
  std::exception_ptr runner_error_;
  std::optional<RunReport> runner_report_;

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

  Pipeline& pipeline_;
  std::vector<std::unique_ptr<LogicalNode>>& nodes_;
  Plan plan_;
  std::shared_ptr<Clock> clock_;
  int threads_ = 1;
  std::size_t in_flight_ = 8;
  bool stamps_ = false;  ///< sources stamp their batches with the system time
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

std::string Execution::make_run_id() {
  static std::atomic<std::uint64_t> counter{0};
  const auto t = std::chrono::system_clock::now().time_since_epoch().count();
  std::ostringstream os;
  os << std::hex << std::setw(12) << std::setfill('0') << (static_cast<std::uint64_t>(t) & 0xffffffffffffULL)
     << std::setw(4) << (counter.fetch_add(1) & 0xffffU);
  return os.str();
}

class Execution::SourceCtx final : public SourceContext {
 public:
  SourceCtx(Execution& e, std::size_t group, StageRuntime& st, TicketPool& pool)
      : exec_(e), group_(group), stage_(st), pool_(pool), leaves_(!e.plan_.groups[group].successors.empty()) {
    // The chain after the source can read its range directly when a fused loop comes first, or a
    // single stateless stage that is not a sink (the segments after it take its output batch).
    const auto& g = e.plan_.groups[group];
    if (!g.segments.empty() && !e.stamps_) {
      const auto& seg = g.segments[0];
      const auto& n = *e.nodes_[static_cast<std::size_t>(g.stages[seg.first + seg.count - 1])];
      const bool single = seg.fused == nullptr && seg.count == 1 && !n.is_sink && n.fused_ids.size() == 1 &&
                          n.fused_ids[0] == n.id;
      if (seg.fused != nullptr || single) direct_ = n.fused_range.get();
      whole_ = direct_ != nullptr && g.segments.size() == 1;
    }
    keyed_only_ = !g.successors.empty() && e.pipeline_.options().linger.count() > 0;
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
    if (exec_.stamps_)
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
    const std::size_t b = exec_.pipeline_.options().batch_size;
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
    const std::size_t b = exec_.pipeline_.options().batch_size;
    return b > 0 ? b : default_batch_size;
  }
  [[nodiscard]] std::chrono::nanoseconds linger() const noexcept override {
    return exec_.pipeline_.options().linger;
  }
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

void Execution::fail_internal(const std::string& stage, std::exception_ptr e) noexcept {
  try {
    const auto t = describe(e);
    control_.record_error(stage, t.type, t.message, false, *clock_);
  } catch (...) {
  }
  control_.request_stop(RunStatus::failed);
}

void Execution::forward(const Group& g, BatchPtr b, std::uint32_t stream) {
  const auto n = g.successors.size();
  // The batch takes its stream before any successor can see it (a stateless stage's output already
  // has it: nothing is written to a batch another thread may read).
  if (g.multi) {
    auto* multi = static_cast<MultiBatch*>(b.get());
    for (auto& part : multi->outputs) {
      if (part && part->stream != stream) part->stream = stream;
    }
    // Each edge takes the batch of the output it reads; edges reading one output share it.
    for (const auto& e : g.successors) {
      const auto& part = multi->outputs[static_cast<std::size_t>(e.out_port)];
      if (part && part->size() > 0) send(e, part, stream);
    }
    return;
  }
  if (b->stream != stream) b->stream = stream;
  for (std::size_t i = 0; i < n; ++i) send(g.successors[i], i + 1 == n ? std::move(b) : b, stream);
}

void Execution::send(const Edge& e, BatchPtr b, std::uint32_t stream) {
  auto& nodes = flow_[static_cast<std::size_t>(e.group)];
  const auto& target = plan_.groups[static_cast<std::size_t>(e.group)];
  if (!target.keyed) {
    nodes[0]->try_put(numbered(static_cast<std::size_t>(e.group), std::move(b), stream));
    return;
  }
  const auto& head = *nodes_[static_cast<std::size_t>(target.stages.front())];
  // The keyed stage's key, timestamp and map functions run here, on the sending thread: what they
  // record goes to a scratchpad of the thread's own, handed to the keyed stage's chain at once.
  auto& keyed = *stages_[static_cast<std::size_t>(target.stages.front())];
  UserScratch* scratch = keyed.listens() ? &handover_scratch() : nullptr;
  const auto& partitioner = *head.partitioners[static_cast<std::size_t>(e.in_port)];
  auto& ex = *exchanges_[static_cast<std::size_t>(e.group)][static_cast<std::size_t>(e.in_port)];
  // The stream's own outbox: a partition receives each stream's batches in the stream's order, and
  // its watermark from each stream apart, whichever thread runs the stream's batches.
  auto& boxes = ex.outboxes[stream];
  std::unique_lock<std::mutex> lock;
  Outbox* found = boxes.size() == 1 ? boxes[0].get() : nullptr;
  for (std::size_t k = 0; found == nullptr && k < boxes.size(); ++k) {
    lock = std::unique_lock(boxes[k]->mutex, std::try_to_lock);
    if (lock) found = boxes[k].get();
  }
  if (!lock) {
    if (found == nullptr) found = boxes[0].get();
    lock = std::unique_lock(found->mutex);
  }
  Outbox& box = *found;
  const bool shared = boxes.size() > 1;
  if (shared) box.high = std::max(box.high, ex.highs[stream].load(std::memory_order_relaxed));
  const std::size_t n = nodes.size();
  // What the outbox sends from here takes the in-flight slot of the batch being split: a partition
  // that falls behind then holds the source back, and its queue stays bounded (held batches give
  // their slots back, so holding never keeps the source waiting for itself).
  const std::shared_ptr<Ticket> ticket = b->ticket;
  // Items of different stamps cannot share a batch (processing-time windows read the stamp).
  if (box.holding && box.stamp != b->stamp_ns) release(box, nodes, ticket);
  box.stamp = b->stamp_ns;
  {
    const UserScratchScope scope(scratch);
    partitioner.split(std::move(b), box.parts, static_cast<std::uint32_t>(e.in_port), box.high);
  }
  if (scratch != nullptr && scratch->dirty()) keyed.flush_user(*scratch);
  if (shared) {
    auto& high = ex.highs[stream];
    std::int64_t seen = high.load(std::memory_order_relaxed);
    while (box.high > seen && !high.compare_exchange_weak(seen, box.high, std::memory_order_relaxed)) {
    }
  }
  // Late or failed items go on at once, after what the outbox held for their partition (order per key).
  for (std::size_t k = n; k < box.parts.size(); ++k) {
    auto& extra = box.parts[k];
    if (!extra || extra->size() == 0) continue;
    const std::size_t p = extra->partition % n;
    if (box.parts[p] && box.parts[p]->size() > 0) {
      box.parts[p]->ticket = ticket;
      box.parts[p]->stream = stream;
      nodes[p]->try_put(Msg(std::move(box.parts[p])));
    }
    box.parts[p] = nullptr;
    extra->stream = stream;
    nodes[p]->try_put(Msg(std::move(extra)));
  }
  box.parts.resize(n);
  // Time that moved into another window's stretch must reach the partitions now: a window may close.
  const std::int64_t epoch = partitioner.epoch(box.high);
  const bool moved = epoch != box.epoch;
  box.epoch = epoch;
  std::vector<bool> sent;
  if (moved && ex.markers) sent.assign(n, false);
  bool holding = false;
  for (std::size_t p = 0; p < n; ++p) {
    auto& part = box.parts[p];
    if (!part) continue;
    if (part->size() == 0) {
      part = nullptr;
    } else if (moved || part->size() >= ex.cap) {
      part->ticket = ticket;
      part->stream = stream;
      nodes[p]->try_put(Msg(std::move(part)));
      part = nullptr;
      if (!sent.empty()) sent[p] = true;
    } else {
      part->ticket.reset();  // held items do not count against the source's in-flight batches
      // A part that fills fast grows to the cap at once rather than by doublings (and their copies); a
      // trickle keeps its small batch.
      if (part->size() >= ex.cap / 16) part->reserve(ex.cap);
      holding = true;
    }
  }
  // Partitions with several input streams take the lowest of their watermarks: those this stream
  // sent nothing to learn its progress from an empty batch.
  if (!sent.empty()) send_markers(e, stream, box.high, &sent);
  if (holding && !box.holding) box.since = sweeps_.load(std::memory_order_relaxed);
  box.holding = holding;
}

void Execution::send_markers(const Edge& e, std::uint32_t stream, std::int64_t high,
                             const std::vector<bool>* skip) {
  auto& nodes = flow_[static_cast<std::size_t>(e.group)];
  const auto& head =
      *nodes_[static_cast<std::size_t>(plan_.groups[static_cast<std::size_t>(e.group)].stages.front())];
  const auto& partitioner = *head.partitioners[static_cast<std::size_t>(e.in_port)];
  for (std::size_t p = 0; p < nodes.size(); ++p) {
    if (skip != nullptr && (*skip)[p]) continue;
    auto m = partitioner.marker();
    m->partition = static_cast<std::uint32_t>(p);
    m->port = static_cast<std::uint32_t>(e.in_port);
    m->stream = stream;
    m->time_before_ns = high;
    m->time_high_ns = high;
    nodes[p]->try_put(Msg(std::move(m)));
  }
}

void Execution::release(Outbox& box, std::vector<std::unique_ptr<FlowNode>>& nodes,
                        const std::shared_ptr<Ticket>& ticket) {
  for (std::size_t p = 0; p < box.parts.size(); ++p) {
    auto& part = box.parts[p];
    if (part && part->size() > 0) {
      part->ticket = ticket;
      nodes[p % nodes.size()]->try_put(Msg(std::move(part)));
    }
    part = nullptr;
  }
  box.holding = false;
}

void Execution::drain(std::size_t group) {
  for (auto& ex : exchanges_[group]) {
    for (auto& boxes : ex->outboxes) {
      for (auto& box : boxes) {
        const std::lock_guard lock(box->mutex);
        if (box->holding) release(*box, flow_[group]);
      }
    }
  }
}

void Execution::run_sweeper() {
  const auto step = std::max(std::chrono::nanoseconds{pipeline_.options().linger} / 2,
                             std::chrono::nanoseconds{std::chrono::microseconds{50}});
  std::unique_lock lock(timer_mutex_);
  while (!timer_cv_.wait_for(lock, step, [this] { return live_sources_ == 0; })) {
    lock.unlock();
    const std::uint64_t now = sweeps_.fetch_add(1, std::memory_order_relaxed) + 1;
    for (std::size_t gi = 0; gi < exchanges_.size(); ++gi) {
      for (auto& ex : exchanges_[gi]) {
        for (auto& boxes : ex->outboxes) {
          for (auto& box : boxes) {
            // An outbox in use is looked at again on the next sweep.
            const std::unique_lock held(box->mutex, std::try_to_lock);
            if (held && box->holding && box->since + 2 <= now) release(*box, flow_[gi]);
          }
        }
      }
    }
    lock.lock();
  }
  lock.unlock();
  graph_->release_wait();
}

void Execution::plan_streams() {
  const auto ng = plan_.groups.size();
  constexpr auto none = std::numeric_limits<std::uint32_t>::max();
  stream_base_.assign(ng, none);
  origins_.assign(ng, {});
  std::vector<std::vector<std::size_t>> preds(ng);
  for (std::size_t gi = 0; gi < ng; ++gi) {
    for (const auto& e : plan_.groups[gi].successors) preds[static_cast<std::size_t>(e.group)].push_back(gi);
  }
  // Groups are numbered in topological order: every input's origins are known before its consumer's.
  for (std::size_t gi = 0; gi < ng; ++gi) {
    const auto& g = plan_.groups[gi];
    const bool stateful =
        !g.source && !nodes_[static_cast<std::size_t>(g.stages.front())]->kernel->stateless();
    if (g.source || g.keyed || stateful) {
      const auto count = static_cast<std::uint32_t>(g.keyed ? g.parallelism : 1);
      stream_base_[gi] = stream_count_;
      for (std::uint32_t k = 0; k < count; ++k) origins_[gi].push_back(stream_count_ + k);
      stream_count_ += count;
    } else {
      for (const auto up : preds[gi]) {
        for (const auto s : origins_[up]) {
          if (std::find(origins_[gi].begin(), origins_[gi].end(), s) == origins_[gi].end())
            origins_[gi].push_back(s);
        }
      }
    }
  }
  exchanges_.resize(ng);
  clock_index_.resize(ng);
  clocks_.resize(ng);
  idle_after_.assign(ng, 0);
  const auto linger = pipeline_.options().linger;
  const std::size_t batch =
      pipeline_.options().batch_size > 0 ? pipeline_.options().batch_size : default_batch_size;
  for (std::size_t gi = 0; gi < ng; ++gi) {
    const auto& g = plan_.groups[gi];
    if (!g.keyed) continue;
    const auto& head = *nodes_[static_cast<std::size_t>(g.stages.front())];
    const std::size_t ports = head.partitioners.size();
    exchanges_[gi].resize(ports);
    clock_index_[gi].assign(ports, std::vector<int>(stream_count_, -1));
    int streams = 0;
    for (std::size_t port = 0; port < ports; ++port) {
      const int up = plan_.group_of[static_cast<std::size_t>(head.inputs[port])];
      auto ex = std::make_unique<Exchange>();
      // A partition's batches are larger than those crossing other edges: each costs a hand-over and
      // often a wake-up, and the linger time bounds the wait. Without a linger, every part goes at once.
      const std::size_t bytes = std::max<std::size_t>(1, head.partitioners[port]->item_bytes());
      const std::size_t fill = std::clamp(keyed_fill_bytes / bytes, keyed_fill_items, keyed_fill_most);
      ex->cap = linger.count() > 0 ? std::max(fill, keyed_fill * batch) : 0;
      ex->outboxes.resize(stream_count_);
      // A parallel stateless stage's instances each fill their own outboxes, unless it is ordered.
      const auto& ug = plan_.groups[static_cast<std::size_t>(up)];
      const bool parallel =
          stream_base_[static_cast<std::size_t>(up)] == none && ug.parallelism > 1 && !ug.ordered;
      const auto instances = static_cast<std::size_t>(parallel ? ug.parallelism : 1);
      if (parallel) {
        ex->highs = std::make_unique<std::atomic<std::int64_t>[]>(stream_count_);
        for (std::uint32_t k = 0; k < stream_count_; ++k) ex->highs[k].store(lowest_time);
      }
      for (const auto s : origins_[static_cast<std::size_t>(up)]) {
        for (std::size_t k = 0; k < instances; ++k) {
          auto box = std::make_unique<Outbox>();
          box->parts.resize(static_cast<std::size_t>(g.parallelism));
          ex->outboxes[s].push_back(std::move(box));
        }
        clock_index_[gi][port][s] = streams++;
      }
      exchanges_[gi][port] = std::move(ex);
    }
    for (auto& ex : exchanges_[gi]) ex->markers = streams > 1;
    clocks_[gi].resize(static_cast<std::size_t>(g.parallelism));
    const std::int64_t now = now_ns();
    for (auto& c : clocks_[gi]) c.reset(static_cast<std::size_t>(streams), now);
    // With one input stream, the watermark cannot move without data: nothing to check.
    if (streams > 1) idle_after_[gi] = head.kernel->idle_after_ns();
  }
  // An ordered group keeps the turns of each stream its input may carry.
  turns_.resize(ng);
  for (std::size_t gi = 0; gi < ng; ++gi) {
    if (!plan_.groups[gi].ordered) continue;
    turns_[gi].resize(stream_count_);
    for (const auto s : origins_[gi]) turns_[gi][s] = std::make_unique<Turns>();
  }
}

void Execution::observe(std::size_t group, AnyBatch& b, std::int64_t now) noexcept {
  auto& clock = clocks_[group][b.partition];
  const auto port = static_cast<std::size_t>(b.port & input_port_mask);
  const auto& index = clock_index_[group];
  const int s = port < index.size() && b.stream < index[port].size() ? index[port][b.stream] : -1;
  // When its input streams may go idle, the partition notes when each last sent a batch.
  if (idle_after_[group] > 0 && now == 0) now = now_ns();
  const auto t = clock.observe(s, b.time_high_ns, now);
  b.time_before_ns = t.before;
  b.time_high_ns = t.high;
  b.others_high_ns = t.others;
}

void Execution::check_idle(std::size_t group, std::uint32_t partition) noexcept {
  if (idle_after_[group] <= 0 || !clocks_[group][partition].tick(now_ns(), idle_after_[group])) return;
  try {
    const auto& head = *nodes_[static_cast<std::size_t>(plan_.groups[group].stages.front())];
    BatchPtr b = head.partitioners.front()->marker();
    b->partition = partition;
    b->port = 0;
    b->stream = stream_count_;  // none of the input streams: observe() only combines
    process(group, b);
  } catch (...) {
    fail_internal(stages_[static_cast<std::size_t>(plan_.groups[group].stages.front())]->info.name,
                  std::current_exception());
  }
}

void Execution::flush(std::size_t group, std::uint32_t partition, bool timer) noexcept {
  if (timer) check_idle(group, partition);
  const auto& g = plan_.groups[group];
  auto& st = *stages_[static_cast<std::size_t>(g.stages.front())];
  try {
    const std::int64_t t0 = st.hooks() ? now_ns() : 0;
    const std::size_t slot = st.slot_index();
    BatchTally tally{};
    auto& kernel = *nodes_[static_cast<std::size_t>(g.stages.front())]->kernel;
    BatchPtr out;
    {
      const UserScratchScope scope(st.user_scratch(slot));
      out = timer ? kernel.on_timer(partition, st, tally) : kernel.flush(partition, st, tally);
    }
    st.flush_user(slot);  // what user code recorded while the stage emitted (a window's aggregate)
    const std::uint64_t n = out ? out->size() : 0;
    const BatchTally none{};
    if (n == 0 && std::memcmp(&tally, &none, sizeof tally) == 0) return;  // nothing held: no batch to report
    st.before_batch(0);
    st.finish_batch(slot, 0, n, tally, t0, st.hooks() ? now_ns() : 0);
    if (n > 0) forward(g, std::move(out), own_stream(group, partition));
  } catch (...) {
    fail_internal(st.info.name, std::current_exception());
  }
}

std::int64_t Execution::process(std::size_t group, BatchPtr& b, std::int64_t start_ns,
                                const DirectRun* direct, std::size_t direct_n, std::shared_ptr<Ticket> ticket,
                                BatchPtr* keep) noexcept {
  const auto& g = plan_.groups[group];
  const StageRuntime* current = nullptr;
  const auto& head = *stages_[static_cast<std::size_t>(g.stages.front())];
  const bool timed = head.hooks();
  std::int64_t t = timed && start_ns == 0 ? now_ns() : start_ns;
  try {
    // The stream of what the group sends on: its own (a source's, a stateful stage's, a keyed stage's
    // partition's), or the one its input came in.
    const bool starts = stream_base_[group] != std::numeric_limits<std::uint32_t>::max();
    const std::uint32_t stream = starts ? own_stream(group, g.keyed ? b->partition : 0) : b->stream;
    if (g.keyed) observe(group, *b, t);
    const std::size_t slot = head.slot_index();
    std::array<StageRuntime*, max_segment> sts;
    std::array<BatchTally, max_segment> tallies;
    std::array<std::uint64_t, max_segment + 1> counts;
    for (const auto& seg : g.segments) {
      const std::size_t in = direct != nullptr ? direct_n : b->size();
      for (std::size_t k = 0; k < seg.count; ++k) {
        tallies[k] = BatchTally{};
        auto& st = *stages_[static_cast<std::size_t>(g.stages[seg.first + k])];
        sts[k] = &st;
        current = &st;
        st.before_batch(in);
      }
      BatchPtr out;
      if (direct != nullptr) {
        out = direct->call(direct->self, sts.data(), tallies.data(), counts.data());
        if (out) out->ticket = std::move(ticket);
        direct = nullptr;
      } else if (seg.fused != nullptr) {
        out = seg.fused->run(b, sts.data(), tallies.data(), counts.data());
      } else {
        const UserScratchScope scope(sts[0]->user_scratch(slot));
        out = nodes_[static_cast<std::size_t>(g.stages[seg.first])]->kernel->apply(std::move(b), *sts[0],
                                                                                   tallies[0]);
        counts[0] = in;
        counts[1] = out ? out->size() : tallies[0].delivered;
      }
      // What user code recorded, per stage, before the batch's figures (fused loops set each stage's
      // scratchpad themselves).
      for (std::size_t k = 0; k < seg.count; ++k) sts[k]->flush_user(slot);
      const std::int64_t t2 = timed ? now_ns() : 0;
      // A fused loop is timed as a whole: each of its stages reports the loop's time.
      for (std::size_t k = 0; k < seg.count; ++k)
        sts[k]->finish_batch(slot, counts[k], counts[k + 1], tallies[k], t, t2);
      t = t2;
      if (!out) return t;
      b = std::move(out);
    }
    if (keep != nullptr) {
      *keep = std::move(b);
    } else {
      forward(g, std::move(b), stream);
    }
    b = nullptr;
  } catch (...) {
    fail_internal(current != nullptr ? current->info.name : std::string("node"), std::current_exception());
  }
  return t;
}

void Execution::process(std::size_t group, const Msg& m) noexcept {
  if (!plan_.groups[group].ordered) {
    process(group, m.batch);
    return;
  }
  // Whatever becomes of the batch (an output, nothing, a failure), its turn is taken here, after it
  // ran, so the stream goes on. Until its turn its in-flight slot stays taken.
  const std::uint32_t stream = m.batch->stream;
  std::shared_ptr<Ticket> ticket = m.batch->ticket;
  BatchPtr out;
  process(group, m.batch, 0, nullptr, 0, {}, &out);
  in_turn(group, stream, m.turn, std::move(out), std::move(ticket));
}

Msg Execution::numbered(std::size_t group, BatchPtr b, std::uint32_t stream) noexcept {
  Msg m(std::move(b));
  if (plan_.groups[group].ordered)
    m.turn = turns_[group][stream]->taken.fetch_add(1, std::memory_order_relaxed);
  return m;
}

void Execution::in_turn(std::size_t group, std::uint32_t stream, std::uint64_t turn, BatchPtr out,
                        std::shared_ptr<Ticket> ticket) noexcept {
  const auto& g = plan_.groups[group];
  auto& turns = *turns_[group][stream];
  const auto fail = [&] {
    fail_internal(nodes_[static_cast<std::size_t>(g.stages.back())]->name, std::current_exception());
  };
  try {
    const std::lock_guard lock(turns.mutex);
    if (turns.sending || turn != turns.next) {
      // Not its turn, or another thread is sending: the output waits, and whoever sends the output
      // before it sends it on.
      const auto i = static_cast<std::size_t>(turn - turns.next);
      if (turns.waiting.size() <= i) turns.waiting.resize(i + 1);
      turns.waiting[i] = Turns::Done{std::move(out), std::move(ticket), true};
      return;
    }
    turns.sending = true;
  } catch (...) {
    fail();  // no memory for a waiting output: the run fails, and the stream stops here
    return;
  }
  // This thread sends on, outside the lock, its own output and then those whose turn follows.
  for (;;) {
    if (out) {
      try {
        forward(g, std::move(out), stream);
      } catch (...) {
        fail();
      }
    }
    out = nullptr;
    ticket = nullptr;
    const std::lock_guard lock(turns.mutex);
    if (!turns.waiting.empty()) turns.waiting.pop_front();
    ++turns.next;
    if (turns.waiting.empty() || !turns.waiting.front().done) {
      turns.sending = false;
      return;
    }
    out = std::move(turns.waiting.front().out);
    ticket = std::move(turns.waiting.front().ticket);
  }
}

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

void Execution::watch_sources() {
  // oneTBB's workers are shared by every arena in the process: while another pipeline keeps them
  // busy, a batch put by a source that then waits for its own input (a push source, say) could wait
  // for one indefinitely. A look costs a wake-up; looks that find nothing to run back off.
  constexpr auto first = std::chrono::milliseconds{5};
  constexpr auto longest = std::chrono::milliseconds{100};
  auto interval = first;
  std::uint64_t seen = runs_.load(std::memory_order_relaxed);
  std::unique_lock lock(timer_mutex_);
  while (!timer_cv_.wait_for(lock, interval, [this] { return live_sources_ == 0; })) {
    const std::uint64_t now = runs_.load(std::memory_order_relaxed);
    if (now != seen) {
      seen = now;
      interval = first;
      continue;
    }
    lock.unlock();
    lend_thread();
    const std::uint64_t after = runs_.load(std::memory_order_relaxed);
    interval = after != seen ? first : std::min(longest, interval * 2);
    seen = after;
    lock.lock();
  }
}

void Execution::lend_thread() {
  // A task queued behind what the arena holds ends the wait once it has seen no task start over a few
  // of its own turns (queued tasks are taken from several lanes, so one turn may come first).
  struct Check {
    Execution* e;
    std::uint64_t last;
    int idle;
    void operator()() const {
      const std::uint64_t now = e->runs_.load(std::memory_order_relaxed);
      const int quiet = now == last ? idle + 1 : 0;
      if (quiet >= 4) {
        e->lent_wait_->disarm();
      } else {
        e->arena_->enqueue(Check{e, now, quiet});
      }
    }
  };
  lent_wait_->arm();
  arena_->enqueue(Check{this, runs_.load(std::memory_order_relaxed), 0});
  lent_wait_->wait();
}

void Execution::run_timer(std::vector<std::size_t> groups) {
  const auto interval = pipeline_.options().timer_interval;
  std::unique_lock lock(timer_mutex_);
  while (!timer_cv_.wait_for(lock, interval, [this] { return live_sources_ == 0; })) {
    for (auto gi : groups) {
      for (std::size_t part = 0; part < flow_[gi].size(); ++part)
        flow_[gi][part]->try_put(Msg::control(static_cast<std::uint32_t>(part), true));
    }
  }
  graph_->release_wait();
}

RunReport Execution::run() {
  const auto t_start = clock_->steady_now();
  start_ns_.store(now_ns());
  phase_.store(static_cast<int>(RunPhase::running));
  // Sources run on threads of their own, outside the arena, and the stages fused into them run there
  // too. The arena has `threads` slots, one reserved for each of the first `threads - 1` sources,
  // whose thread joins the arena to run tasks while it waits for an in-flight slot; the others go to
  // oneTBB workers. The thread that called run() stays out until the sources end (watch_sources), so
  // a busy source and the arena's threads together use `threads` cores (one thread more would only
  // spin for work between the source's batches), and a source held back by its downstream lends its
  // core to it. With `threads = 1` no source is reserved a slot: the caller's thread runs the tasks
  // from the start, as the arena has no worker.
  const auto source_count = static_cast<int>(
      std::count_if(plan_.groups.begin(), plan_.groups.end(), [](const Group& g) { return g.source; }));
  const int helpers = std::min(source_count, threads_ - 1);
  arena_ = std::make_unique<tbb::task_arena>(threads_, static_cast<unsigned>(std::max(1, helpers)));
  members_ = std::make_unique<ArenaMembers>(*arena_, this);
  flow_.resize(plan_.groups.size());
  pools_.resize(plan_.groups.size());
  plan_streams();
  arena_->execute([&] {
    graph_ = std::make_unique<tbb::flow::graph>();
    for (std::size_t gi = 0; gi < plan_.groups.size(); ++gi) {
      const auto& g = plan_.groups[gi];
      if (g.source) {
        pools_[gi] = std::make_unique<TicketPool>(static_cast<std::ptrdiff_t>(in_flight_));
        if (helpers > 0 && !lent_wait_) lent_wait_ = std::make_unique<ArenaWait>(*arena_);
        if (std::cmp_less(source_waits_.size(), helpers)) {
          source_waits_.push_back(std::make_unique<ArenaWait>(*arena_));
          pools_[gi]->help_with(source_waits_.back().get());
        }
        control_.watch(pools_[gi].get());
        continue;
      }
      // A keyed group has one serial node per partition: a partition's state is only ever touched by
      // one thread. Other groups have one node, serial or parallel.
      const int copies = g.keyed ? g.parallelism : 1;
      const std::size_t conc = g.keyed || g.parallelism <= 1 ? std::size_t{tbb::flow::serial}
                                                             : static_cast<std::size_t>(g.parallelism);
      for (int part = 0; part < copies; ++part) {
        flow_[gi].push_back(std::make_unique<FlowNode>(*graph_, conc, [this, gi](const Msg& m) {
          runs_.fetch_add(1, std::memory_order_relaxed);
          if (m.batch) {
            process(gi, m);
          } else {
            flush(gi, m.partition, m.timer);
          }
          return tbb::flow::continue_msg{};
        }));
      }
    }
  });

  const RunInfo info{pipeline_.name(), run_id_, trace_, parent_span_};
  std::vector<std::shared_ptr<Interceptor>> all;
  for (const auto& st : stages_) {
    for (const auto& i : st->chain) {
      if (std::find(all.begin(), all.end(), i) == all.end()) all.push_back(i);
    }
  }
  // Start: run hooks, stage hooks, kernels' open() (a failure there fails the run before any item).
  std::size_t opened = 0;
  try {
    for (const auto& i : all) i->on_run_start(info);
    for (const auto& st : stages_) {
      for (const auto& i : st->chain) i->on_stage_start(st->info);
    }
    for (; opened < nodes_.size(); ++opened) {
      auto& n = *nodes_[opened];
      if (n.kernel) n.kernel->open(*stages_[opened]);
    }
  } catch (...) {
    fail_internal(opened < nodes_.size() ? nodes_[opened]->name : pipeline_.name(), std::current_exception());
  }

  if (!control_.stopping()) {
    std::vector<std::thread> sources;
    std::vector<std::size_t> timed;
    for (std::size_t gi = 0; gi < plan_.groups.size(); ++gi) {
      const auto& g = plan_.groups[gi];
      if (!g.source && nodes_[static_cast<std::size_t>(g.stages.front())]->kernel->wants_timer())
        timed.push_back(gi);
      if (!g.source) continue;
      graph_->reserve_wait();
      ++live_sources_;
    }
    for (std::size_t gi = 0; gi < plan_.groups.size(); ++gi) {
      if (plan_.groups[gi].source) sources.emplace_back([this, gi] { run_source(gi); });
    }
    if (!timed.empty() && pipeline_.options().timer_interval.count() > 0) {
      graph_->reserve_wait();
      sources.emplace_back([this, timed] { run_timer(timed); });
    }
    const bool lingers = pipeline_.options().linger.count() > 0;
    if (lingers &&
        std::any_of(exchanges_.begin(), exchanges_.end(), [](const auto& x) { return !x.empty(); })) {
      graph_->reserve_wait();
      sources.emplace_back([this] { run_sweeper(); });
    }
    if (helpers == 0) {
      arena_->execute([&] { graph_->wait_for_all(); });
    } else {
      watch_sources();
    }
    for (auto& t : sources) t.join();
    arena_->execute([&] { graph_->wait_for_all(); });
    // End of input: stateful stages flush in topological order (groups are numbered that way), each
    // after everything upstream, its flushes and what sending threads held back included, has arrived.
    for (std::size_t gi = 0; gi < plan_.groups.size() && control_.status() != RunStatus::failed; ++gi) {
      const auto& g = plan_.groups[gi];
      if (!exchanges_[gi].empty()) {
        arena_->execute([&] {
          drain(gi);
          graph_->wait_for_all();
        });
      }
      if (g.source || nodes_[static_cast<std::size_t>(g.stages.front())]->kernel->stateless()) continue;
      arena_->execute([&] {
        for (std::size_t part = 0; part < flow_[gi].size(); ++part)
          flow_[gi][part]->try_put(Msg::control(static_cast<std::uint32_t>(part), false));
        graph_->wait_for_all();
      });
    }
  }

  // Close in order: a stage's close() may still deliver (async sinks drain), so wait after each.
  for (std::size_t i = 0; i < opened; ++i) {
    try {
      if (nodes_[i]->kernel) nodes_[i]->kernel->close(*stages_[i]);
    } catch (...) {
      fail_internal(nodes_[i]->name, std::current_exception());
    }
    arena_->execute([&] { graph_->wait_for_all(); });
  }

  auto rep = report(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->steady_now() - t_start));
  wall_ns_.store(rep.wall.count());
  phase_.store(static_cast<int>(RunPhase::finished));
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    for (const auto& ic : stages_[i]->chain) {
      try {
        ic->on_stage_stop(stages_[i]->info, rep.stages[i]);
      } catch (...) {
      }
    }
  }
  for (const auto& ic : all) {
    try {
      ic->on_run_stop(info, rep);
    } catch (...) {
    }
  }
  return rep;
}

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
  r.pipeline = pipeline_.name();
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

// -----------------------------------------------------------------------------------------------------
// Live view

std::string_view to_string(RunPhase p) noexcept {
  switch (p) {
    case RunPhase::idle:
      return "idle";
    case RunPhase::running:
      return "running";
    case RunPhase::finished:
      return "finished";
  }
  return "unknown";
}

Snapshot LiveView::snapshot() const {
  const std::lock_guard lock(mutex_);
  if (exec_ == nullptr) return last_;
  return exec_->snapshot();
}

void LiveView::bind(const detail::Execution* e) {
  const std::lock_guard lock(mutex_);
  exec_ = e;
}

void LiveView::unbind() {
  const std::lock_guard lock(mutex_);
  if (exec_ != nullptr) last_ = exec_->snapshot();
  exec_ = nullptr;
}

// -----------------------------------------------------------------------------------------------------
// Builder

namespace {
void check_name(const std::string& n) {
  if (n.empty()) throw std::invalid_argument("a stage name cannot be empty");
}
}  // namespace

Pipeline::Pipeline(std::string name, PipelineOptions options)
    : name_(std::move(name)),
      options_(std::move(options)),
      live_(std::make_shared<LiveView>(LiveView::Token{}, name_)) {
  if (name_.empty()) throw std::invalid_argument("a pipeline needs a name");
  if (options_.threads < 0) throw std::invalid_argument("threads cannot be negative");
}

Pipeline::~Pipeline() {
  if (exec_ && exec_->runner_.joinable()) {
    exec_->cancel();
    exec_->runner_.join();
  }
  live_->unbind();  // views that outlive the pipeline keep its last snapshot
}

void Pipeline::check_building() const {
  if (exec_) throw std::logic_error("pipeline '" + name_ + "' has already run; build a new one");
}

detail::LogicalNode& Pipeline::node(int id) {
  return *nodes_.at(static_cast<std::size_t>(id));
}

int Pipeline::add_node(std::string kind, std::vector<int> inputs, const std::type_info* in_type,
                       std::unique_ptr<detail::Kernel> kernel, bool single_threaded, bool is_sink,
                       std::vector<int> ports) {
  check_building();
  auto n = std::make_unique<detail::LogicalNode>();
  n->id = static_cast<int>(nodes_.size());
  n->name = kind + "#" + std::to_string(n->id);
  n->kind = std::move(kind);
  n->inputs = std::move(inputs);
  n->in_type = in_type;
  n->kernel = std::move(kernel);
  n->single_threaded = single_threaded;
  n->is_sink = is_sink;
  ports.resize(n->inputs.size(), 0);
  for (std::size_t k = 0; k < n->inputs.size(); ++k) {
    auto& up = node(n->inputs[k]);
    const std::size_t outs = up.source ? 1U : up.kernel->outputs();
    if (ports[k] < 0 || static_cast<std::size_t>(ports[k]) >= outs)
      throw std::logic_error("stage '" + up.name + "' has no output " + std::to_string(ports[k]));
    up.outputs.push_back(n->id);
    up.output_ports.push_back(ports[k]);
  }
  n->input_ports = std::move(ports);
  nodes_.push_back(std::move(n));
  return nodes_.back()->id;
}

int Pipeline::add_source_node(std::string kind, std::shared_ptr<detail::SourceBase> src) {
  check_building();
  if (!src) throw std::invalid_argument("a source cannot be null");
  auto n = std::make_unique<detail::LogicalNode>();
  n->id = static_cast<int>(nodes_.size());
  n->name = kind + "#" + std::to_string(n->id);
  n->kind = "source";
  n->source = std::move(src);
  n->single_threaded = true;
  nodes_.push_back(std::move(n));
  return nodes_.back()->id;
}

void Pipeline::intercept(std::shared_ptr<Interceptor> interceptor, int priority) {
  check_building();
  if (!interceptor) throw std::invalid_argument("an interceptor cannot be null");
  hooks_.push_back({priority, hook_order_++, std::move(interceptor)});
}

RunReport Pipeline::run(const TraceContext& parent) {
  start(parent);
  return wait();
}

void Pipeline::start(const TraceContext& parent) {
  check_building();
  exec_ = std::make_unique<detail::Execution>(*this, nodes_, hooks_, parent);
  live_->bind(exec_.get());
  auto* e = exec_.get();
  e->runner_ = std::thread([e] {
    try {
      e->runner_report_ = e->run();
    } catch (...) {
      e->runner_error_ = std::current_exception();
    }
  });
}

RunReport Pipeline::wait() {
  if (!exec_) throw std::logic_error("pipeline '" + name_ + "' was not started");
  if (exec_->runner_.joinable()) exec_->runner_.join();
  if (exec_->runner_error_) std::rethrow_exception(exec_->runner_error_);
  if (!exec_->runner_report_)
    throw std::logic_error("pipeline '" + name_ + "' has no report: wait() called twice?");
  auto r = std::move(*exec_->runner_report_);
  exec_->runner_report_.reset();
  return detail::finish(std::move(r));
}

void Pipeline::cancel() noexcept {
  if (exec_) exec_->cancel();
}

std::string Pipeline::explain() const {
  const auto plan = detail::make_plan(nodes_);
  std::ostringstream os;
  os << "pipeline '" << name_ << "': " << nodes_.size() << " stages in " << plan.groups.size() << " nodes\n";
  for (std::size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const auto& g = plan.groups[gi];
    os << "  node " << gi
       << (g.source              ? " [source thread]"
           : g.stages.size() > 1 ? " [fused]"
                                 : "")
       << (g.keyed ? " partitions " : " parallelism ") << g.parallelism << (g.ordered ? " ordered" : "")
       << ":";
    for (std::size_t k = 0; k < g.stages.size(); ++k) {
      const auto& n = *nodes_[static_cast<std::size_t>(g.stages[k])];
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
        os << (j == 0 ? "" : "+") << nodes_[static_cast<std::size_t>(g.stages[seg.first + j])]->name;
    }
    os << '\n';
  }
  return os.str();
}

// ---------------------------------------------------------------------------------------------------
// Stage handles

namespace detail {

const std::string& StageRef::stage_name() const {
  return pipeline_->node(id_).name;
}

void StageRef::set_name(std::string name) {
  check_name(name);
  pipeline_->check_building();
  for (const auto& n : pipeline_->nodes_) {
    if (n->id != id_ && n->name == name) {
      throw std::invalid_argument("stage name '" + name + "' is already used in pipeline '" +
                                  pipeline_->name() + "'");
    }
  }
  pipeline_->node(id_).name = std::move(name);
}

void StageRef::set_parallelism(int n) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  if (n < 1) throw std::invalid_argument("parallelism of '" + node.name + "' must be at least 1");
  if (node.single_threaded && n != 1) {
    throw std::invalid_argument("stage '" + node.name + "' (" + node.kind + ") runs on one thread only");
  }
  node.parallelism = n;
}

void StageRef::set_ordered() {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  if (node.source) {
    throw std::invalid_argument("source '" + node.name +
                                "' cannot be ordered: a source's items keep their order already");
  }
  if (node.is_sink) {
    throw std::invalid_argument("sink '" + node.name +
                                "' cannot be ordered: it has no output; a sink at parallelism 1 receives "
                                "its input in order");
  }
  if (!node.kernel->stateless()) {
    throw std::invalid_argument("stage '" + node.name + "' (" + node.kind +
                                ") cannot be ordered: only stateless stages take .ordered(); a keyed or "
                                "stateful stage runs serially per partition and keeps order already");
  }
  node.ordered = true;
}

void StageRef::set_policy(ErrorPolicy policy) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  if (node.source)
    throw std::invalid_argument("source '" + node.name +
                                "' has no error policy: a failing source fails the run");
  const bool wants_dlq =
      policy.kind == ErrorPolicy::Kind::dead_letter || policy.exhausted == ErrorPolicy::Kind::dead_letter;
  if (wants_dlq && (policy.dead_letter == nullptr || policy.dead_letter->item_type() != *node.in_type)) {
    throw std::invalid_argument("the dead-letter sink of stage '" + node.name +
                                "' must take weir::DeadLetter<T> with T the stage's input type");
  }
  if (policy.kind == ErrorPolicy::Kind::retry && node.retry) throw_retry_set_twice(node.name);
  node.policy = std::move(policy);
}

void StageRef::add_interceptor(std::shared_ptr<Interceptor> i, int priority) {
  pipeline_->check_building();
  if (!i) throw std::invalid_argument("an interceptor cannot be null");
  pipeline_->node(id_).interceptors.push_back({priority, pipeline_->hook_order_++, std::move(i)});
}

}  // namespace detail
}  // namespace weir
