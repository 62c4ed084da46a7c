#pragma once
/// \file Metrics and events recorded by user code from inside a stage.
///
/// Two ways to record, both attributed to a stage, kept on the calling thread until the stage's
/// batch ends, and then handed to the stage's interceptors as `events::CustomMetric` /
/// `events::CustomEvent` (the metrics interceptor turns them into `MetricsCollector::on_custom_metric`
/// / `on_custom_event`, which Prometheus shows as `weir_user_<name>`):
///
/// - A `map`, `filter`, `flat_map` or `sink` function may take a `weir::StageContext&` after the item
///   (`[](Order o, weir::StageContext& ctx) { ctx.add("orders"); ... }`). What it records belongs to
///   exactly that stage, also inside a chain of stages fused into one loop, and a function that does
///   not take the context costs nothing.
/// - The free functions `weir::metric::add`, `weir::metric::set` and `weir::emit_event` work from any
///   callable a stage runs (a generator, a window's reduce or aggregate, a route predicate, a
///   map-reduce function, an async sink, ...). They find the stage through a pointer the runtime sets
///   on the thread once per batch. Where several stages run fused into one loop (`Pipeline::explain()`
///   shows the fused groups), that pointer names the first stage of the loop that something listens
///   to, so free calls from the later stages of the loop count under it; take a `StageContext&` there.
///
/// A call costs at most a comparison with the name recorded last and an add once a name has been
/// seen on the thread; nothing is allocated or locked. Names must match `[a-z_][a-z0-9_]*`; a bad
/// name throws std::invalid_argument the first time a stage records it (inside a stage, that is a
/// failure of the item, handled by the stage's error policy).
///
/// A call does nothing, and checks nothing, when nothing listens to the stage (no interceptor, e.g.
/// no collector attached), outside a running stage (free functions), on the threads of a stage's
/// timeout, in key and timestamp functions (they run while items are handed between stages), and in
/// a build with `-DWEIR_TELEMETRY=OFF`, where these functions are empty.

#include <concepts>
#include <functional>
#include <string_view>
#include <utility>

#include "weir/detail/user_scratch.hpp"

namespace weir {

/// What a `map`, `filter`, `flat_map` or `sink` function that takes it as its last parameter sees
/// of its stage: where to record metrics and events. Valid while the stage handles the item (for
/// `flat_map`, also while the range it returned is read). Not thread-safe, and needs not be: each
/// thread of a stage gets a context of its own.
class StageContext {
 public:
  explicit StageContext(detail::UserScratch* scratch = nullptr) noexcept : scratch_(scratch) {}

  /// Adds `v` to the counter `name` of this stage (exposed as `weir_user_<name>_total`).
  void add([[maybe_unused]] std::string_view name, [[maybe_unused]] double v = 1) {
    if constexpr (detail::telemetry_compiled) {
      if (scratch_ != nullptr) scratch_->record(name, v, false);
    }
  }
  /// Sets the gauge `name` of this stage to `v` (exposed as `weir_user_<name>`; per batch the last
  /// value set on a thread is reported, across the threads of a parallel stage the last report wins).
  void set([[maybe_unused]] std::string_view name, [[maybe_unused]] double v) {
    if constexpr (detail::telemetry_compiled) {
      if (scratch_ != nullptr) scratch_->record(name, v, true);
    }
  }
  /// Records the event `name` with free-form `detail` (copied; at most 1024 per batch and thread).
  void emit_event([[maybe_unused]] std::string_view name, [[maybe_unused]] std::string_view detail = {}) {
    if constexpr (::weir::detail::telemetry_compiled) {
      if (scratch_ != nullptr) scratch_->event(name, detail);
    }
  }
  /// Whether anything listens to the stage, i.e. whether recording has an effect: lets a function
  /// skip building an expensive event detail nobody receives.
  [[nodiscard]] bool recording() const noexcept { return detail::telemetry_compiled && scratch_ != nullptr; }

 private:
  detail::UserScratch* scratch_;
};

namespace detail {

/// Whether `F` can be called with an `X`, directly or with a StageContext after it.
template <class F, class X>
concept user_invocable = std::invocable<F, X> || std::invocable<F, X, StageContext&>;

/// Calls `f(x)`, or `f(x, ctx)` when `f` asks for the context.
template <class F, class X>
requires user_invocable<F&, X&&>
decltype(auto) invoke_user(F& f, [[maybe_unused]] StageContext& ctx, X&& x) {
  if constexpr (std::invocable<F&, X&&>) {
    return std::invoke(f, std::forward<X>(x));
  } else {
    return std::invoke(f, std::forward<X>(x), ctx);
  }
}

/// What `F` returns for an `X` (either form, as invoke_user calls it).
template <class F, class X>
using user_result_t =
    decltype(invoke_user(std::declval<F&>(), std::declval<StageContext&>(), std::declval<X>()));

}  // namespace detail

namespace metric {

/// Adds `v` to the counter `name` of the running stage (exposed as `weir_user_<name>_total`).
/// Thread-safe: each thread records into its own share of the stage. Costs a thread-local read on
/// top of what StageContext::add costs.
inline void add([[maybe_unused]] std::string_view name, [[maybe_unused]] double v = 1) {
  if constexpr (detail::telemetry_compiled) {
    if (auto* s = detail::current_user_scratch) s->record(name, v, false);
  }
}

/// Sets the gauge `name` of the running stage to `v` (exposed as `weir_user_<name>`): per batch,
/// the last value set on a thread is reported; across the threads of a parallel stage, the last
/// report wins. Thread-safe.
inline void set([[maybe_unused]] std::string_view name, [[maybe_unused]] double v) {
  if constexpr (detail::telemetry_compiled) {
    if (auto* s = detail::current_user_scratch) s->record(name, v, true);
  }
}

}  // namespace metric

/// Records the event `name` with free-form `detail` in the running stage; the stage's interceptors
/// receive it when the batch ends, in order (at most 1024 events per batch and thread; later ones
/// are dropped). Copies `detail`, reusing storage across batches. Thread-safe.
inline void emit_event([[maybe_unused]] std::string_view name,
                       [[maybe_unused]] std::string_view detail = {}) {
  if constexpr (::weir::detail::telemetry_compiled) {
    if (auto* s = ::weir::detail::current_user_scratch) s->event(name, detail);
  }
}

}  // namespace weir
