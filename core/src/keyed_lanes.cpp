// Keyed inputs: what a sending stream holds back per partition (outboxes), how its batches are split
// by key and sent on, the sweeper that sends what has lingered, and each partition's clock of its
// input streams (watermarks, idle streams).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <utility>

#include "execution.hpp"

namespace weir::detail {

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
  const auto step = std::max(std::chrono::nanoseconds{options_.linger} / 2,
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
  const auto linger = options_.linger;
  const std::size_t batch = options_.batch_size > 0 ? options_.batch_size : default_batch_size;
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

}  // namespace weir::detail
