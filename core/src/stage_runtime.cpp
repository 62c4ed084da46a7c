#include "stage_runtime.hpp"

#include <cxxabi.h>
#include <oneapi/tbb/task_arena.h>

#include <bit>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "weir/detail/run_control.hpp"

#include "counter_slot.hpp"

namespace weir::detail {

Stage::Stage() = default;
Stage::~Stage() = default;
StageRuntime::StageRuntime() = default;
StageRuntime::~StageRuntime() = default;

namespace {
std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return (status == 0 && out) ? std::string(out.get()) : std::string(name);
}
/// Adds a batch's rare outcomes to a slot (`shared`: the slot of the threads outside the arena).
void add_outcome(CounterSlot& s, const BatchTally& t, bool shared) {
  bump(s.filtered, t.filtered, shared);
  bump(s.errors, t.errors, shared);
  bump(s.skipped, t.skipped, shared);
  bump(s.dead_lettered, t.dead_lettered, shared);
  bump(s.dead_letter_failures, t.dead_letter_failures, shared);
  bump(s.retries, t.retries, shared);
  bump(s.late, t.late, shared);
  bump(s.timeouts, t.timeouts, shared);
}
}  // namespace

ErrorText describe(std::exception_ptr e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return {demangle(typeid(ex).name()), ex.what()};
  } catch (...) {
    const auto* t = abi::__cxa_current_exception_type();
    return {t != nullptr ? demangle(t->name()) : std::string("unknown"), "non-standard exception"};
  }
  return {"unknown", "no exception"};
}

const void*& run_arena_tag() noexcept {
  thread_local const void* tag = nullptr;
  return tag;
}

void StageRuntime::init_slots(int count, const void* run_tag) {
  run_tag_ = run_tag;
  slots_.clear();
  scratch_.clear();
  for (int i = 0; i < count; ++i) {
    slots_.push_back(std::make_unique<CounterSlot>());
    if (telemetry_compiled) scratch_.push_back(std::make_unique<UserScratch>());
  }
}

std::size_t Stage::slot_index() const noexcept {
  const auto last = static_cast<int>(self().slots_.size()) - 1;
  if (run_arena_tag() != self().run_tag_) return static_cast<std::size_t>(last);
  const int idx = tbb::this_task_arena::current_thread_index();
  return static_cast<std::size_t>(idx >= 0 && idx < last ? idx : last);
}

CounterSlot& StageRuntime::slot() noexcept {
  return *slots_[slot_index()];
}

void StageRuntime::finish_batch(std::size_t slot, std::uint64_t in, std::uint64_t out, const BatchTally& t,
                                std::int64_t start_ns, std::int64_t end_ns) {
  auto& s = *slots_[slot];
  const bool shared = slot + 1 == slots_.size();
  bump(s.items_in, in, shared);
  bump(s.items_out, out, shared);
  bump(s.batches, 1U, shared);
  if ((t.filtered | t.errors | t.retries | t.late | t.timeouts) != 0) add_outcome(s, t, shared);
  const std::int64_t d = end_ns - start_ns;
  if (timed()) {
    bump(s.busy_ns, d, shared);
    move_mark(s.first_ns, start_ns, true, shared);
    move_mark(s.last_ns, end_ns, false, shared);
    const auto bucket =
        std::min<int>(histogram_buckets - 1, std::bit_width(static_cast<std::uint64_t>(d > 0 ? d : 0)));
    bump(s.batch_ns_log2[static_cast<std::size_t>(bucket)], 1U, shared);
  }
  if (guard != nullptr && listens()) note_circuit(t);
  if (listens()) {
    const BatchStats bs{
        in, out, t.filtered, t.errors, t.skipped, t.dead_lettered, std::chrono::nanoseconds{d}};
    for (auto it = chain_.rbegin(); it != chain_.rend(); ++it) (*it)->after_batch(info, bs);
  }
}

void Stage::add_blocked(std::chrono::nanoseconds d) {
  const std::size_t slot = slot_index();
  bump(self().slots_[slot]->blocked_ns, d.count(), slot + 1 == self().slots_.size());
}

void Stage::add_delivered(std::uint64_t out, const BatchTally& t, std::int64_t busy_ns) {
  const std::size_t slot = slot_index();
  const bool shared = slot + 1 == self().slots_.size();
  auto& s = *self().slots_[slot];
  bump(s.items_out, out, shared);
  add_outcome(s, t, shared);
  if (timed()) bump(s.busy_ns, busy_ns, shared);
}

void Stage::emit(const Event& e) {
  if (!listens()) return;
  for (const auto& i : self().chain_) i->on_event(info, e);
}

void Stage::flush_user(UserScratch& s) {
  s.drain(
      [this](const UserScratch::Metric& m) {
        emit(events::CustomMetric{m.name, m.value,
                                  m.gauge ? CustomMetricKind::gauge : CustomMetricKind::counter});
      },
      [this](const UserScratch::Record& r) {
        emit(events::CustomEvent{r.name, r.detail});
      });
}

// ---------------------------------------------------------------------------------------------------
// User metrics

constinit thread_local UserScratch* current_user_scratch = nullptr;

void check_user_name(std::string_view name, std::string_view what) {
  bool ok = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
  for (const char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  if (!ok) {
    throw std::invalid_argument("weir: '" + std::string(name) + "' is not a valid " + std::string(what) +
                                " name: use lower-case letters, digits and '_', not starting with a digit "
                                "([a-z_][a-z0-9_]*)");
  }
}

UserScratch::Metric* UserScratch::find(std::string_view name, bool gauge) {
  for (auto& m : metrics_) {
    if (m->gauge == gauge && m->name == name) return m.get();
  }
  check_user_name(name, gauge ? "gauge" : "counter");
  if (metrics_.size() >= max_names) return nullptr;
  auto m = std::make_unique<Metric>();
  m->name = name;
  m->gauge = gauge;
  metrics_.push_back(std::move(m));
  return metrics_.back().get();
}

void UserScratch::event(std::string_view name, std::string_view detail) {
  check_user_name(name, "event");
  if (events_used_ == max_events) return;
  if (events_used_ == events_.size()) events_.emplace_back();
  auto& r = events_[events_used_++];
  r.name.assign(name);
  r.detail.assign(detail);
  dirty_ = true;
}

bool Stage::stopping() const noexcept {
  return self().run->stopping();
}

void Stage::note_retry(std::exception_ptr err, int attempt, std::chrono::nanoseconds backoff) {
  if (!listens()) return;
  const auto text = describe(err);
  emit(events::RetryAttempt{attempt, backoff, text.type, text.message});
}

std::optional<CircuitState> StageRuntime::circuit_state() const noexcept {
  return resilience != nullptr ? resilience->circuit_state() : std::nullopt;
}

void Stage::watch_stop(Notification& n) {
  self().run->watch_stop(n);
}

void Stage::unwatch_stop(Notification& n) noexcept {
  self().run->unwatch_stop(n);
}

bool Stage::backoff(std::chrono::nanoseconds d) {
  return self().clock_mut()->sleep_unless(d, self().run->stop_signal()) && !stopping();
}

void StageRuntime::note_circuit(const BatchTally& t) {
  if (t.circuit_rejected != 0) emit(events::CircuitRejected{t.circuit_rejected});
  if (t.circuit_failures != 0) emit(events::CircuitFailure{t.circuit_failures});
  if (t.circuit_successes != 0) emit(events::CircuitSuccess{t.circuit_successes});
}

void Stage::fail_item(const void* item, const std::type_info& type, std::exception_ptr err,
                             int attempts, BatchTally& tally) {
  const auto text = describe(err);
  const bool retried =
      policy.kind == ErrorPolicy::Kind::retry || (resilience != nullptr && resilience->retryable(err));
  auto action = policy.kind == ErrorPolicy::Kind::retry ? policy.exhausted : policy.kind;
  // The builder checks a dead-letter sink against the stage's (first) input type; an item of another
  // input (the right side of a windowed join) cannot become a dead letter and is skipped instead.
  if (action == ErrorPolicy::Kind::dead_letter && policy.dead_letter != nullptr &&
      policy.dead_letter->item_type() != type)
    action = ErrorPolicy::Kind::skip;
  ++tally.errors;
  self().run->record_error(info.name, text.type, text.message, retried, *clock);
  const char* action_name = action == ErrorPolicy::Kind::skip          ? "skip"
                            : action == ErrorPolicy::Kind::dead_letter ? "dead_letter"
                                                                       : "fail";
  if (listens()) emit(events::ItemFailed{text.type, text.message, action_name});
  switch (action) {
    case ErrorPolicy::Kind::skip:
      ++tally.skipped;
      return;
    case ErrorPolicy::Kind::dead_letter: {
      if (policy.dead_letter == nullptr || policy.dead_letter->item_type() != type) {
        ++tally.dead_letter_failures;
        self().run->request_stop(RunStatus::failed);
        return;
      }
      try {
        const std::lock_guard lock(self().dead_letter_mutex_);
        policy.dead_letter->deliver(item, info.name, text.type, text.message, attempts);
      } catch (...) {
        ++tally.dead_letter_failures;
        const auto dl = describe(std::current_exception());
        self().run->record_error(info.name, "dead_letter_handler: " + dl.type, dl.message, false, *clock);
        if (listens()) emit(events::DeadLetterHandlerError{dl.type, dl.message});
        return;
      }
      ++tally.dead_lettered;
      if (listens()) emit(events::DeadLetterSent{text.type, attempts});
      return;
    }
    case ErrorPolicy::Kind::fail:
    case ErrorPolicy::Kind::retry:
      // A call given up because the run was already stopping failed because of the stop: it does not
      // turn a cancelled run into a failed one (its error is still counted and summarised).
      if (resilience == nullptr || !resilience->cut_by_stop(err)) self().run->request_stop(RunStatus::failed);
      return;
  }
}

}  // namespace weir::detail
