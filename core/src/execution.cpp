// Execution: deploys the plan on a oneTBB flow graph, moves batches through the groups' loops, and
// runs, cancels and ends a run.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <utility>

#include "execution.hpp"

namespace weir::detail {

std::string Execution::make_run_id() {
  static std::atomic<std::uint64_t> counter{0};
  const auto t = std::chrono::system_clock::now().time_since_epoch().count();
  std::ostringstream os;
  os << std::hex << std::setw(12) << std::setfill('0') << (static_cast<std::uint64_t>(t) & 0xffffffffffffULL)
     << std::setw(4) << (counter.fetch_add(1) & 0xffffU);
  return os.str();
}

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
    std::array<Stage*, max_segment> views;  // the same stages, as their operators see them
    std::array<BatchTally, max_segment> tallies;
    std::array<std::uint64_t, max_segment + 1> counts;
    for (const auto& seg : g.segments) {
      const std::size_t in = direct != nullptr ? direct_n : b->size();
      for (std::size_t k = 0; k < seg.count; ++k) {
        tallies[k] = BatchTally{};
        auto& st = *stages_[static_cast<std::size_t>(g.stages[seg.first + k])];
        sts[k] = &st;
        views[k] = &st;
        current = &st;
        st.before_batch(in);
      }
      BatchPtr out;
      if (direct != nullptr) {
        out = direct->call(direct->self, views.data(), tallies.data(), counts.data());
        if (out) out->ticket = std::move(ticket);
        direct = nullptr;
      } else if (seg.fused != nullptr) {
        out = seg.fused->run(b, views.data(), tallies.data(), counts.data());
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
  const auto interval = options_.timer_interval;
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

  const RunInfo info{name_, run_id_, trace_, parent_span_};
  std::vector<std::shared_ptr<Interceptor>> all;
  for (const auto& st : stages_) {
    for (const auto& i : st->chain()) {
      if (std::find(all.begin(), all.end(), i) == all.end()) all.push_back(i);
    }
  }
  // Start: run hooks, stage hooks, kernels' open() (a failure there fails the run before any item).
  std::size_t opened = 0;
  try {
    for (const auto& i : all) i->on_run_start(info);
    for (const auto& st : stages_) {
      for (const auto& i : st->chain()) i->on_stage_start(st->info);
    }
    for (; opened < nodes_.size(); ++opened) {
      auto& n = *nodes_[opened];
      if (n.kernel) n.kernel->open(*stages_[opened]);
    }
  } catch (...) {
    fail_internal(opened < nodes_.size() ? nodes_[opened]->name : name_, std::current_exception());
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
    if (!timed.empty() && options_.timer_interval.count() > 0) {
      graph_->reserve_wait();
      sources.emplace_back([this, timed] { run_timer(timed); });
    }
    const bool lingers = options_.linger.count() > 0;
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
    for (const auto& ic : stages_[i]->chain()) {
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

Run::Run(std::string pipeline, const PipelineOptions& options,
         std::vector<std::unique_ptr<LogicalNode>>& nodes, const std::vector<LogicalNode::Hook>& hooks,
         const TraceContext& parent)
    : pipeline_(pipeline),
      exec_(std::make_unique<Execution>(std::move(pipeline), options, nodes, hooks, parent)) {}

Run::~Run() {
  stop();
}

void Run::start() {
  runner_ = std::thread([this] {
    try {
      report_ = exec_->run();
    } catch (...) {
      error_ = std::current_exception();
    }
  });
}

RunReport Run::wait() {
  if (runner_.joinable()) runner_.join();
  if (error_) std::rethrow_exception(error_);
  if (!report_) throw std::logic_error("pipeline '" + pipeline_ + "' has no report: wait() called twice?");
  auto r = std::move(*report_);
  report_.reset();
  return finish(std::move(r));
}

void Run::cancel() noexcept {
  exec_->cancel();
}

void Run::stop() noexcept {
  if (!runner_.joinable()) return;
  exec_->cancel();
  runner_.join();
}

}  // namespace weir::detail
