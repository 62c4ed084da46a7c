#pragma once
/// \file Metrics and events recorded by user code from inside a stage.
///
/// Any callable a stage runs (a map, filter or flat_map function, a sink, a generator, a window's
/// reduce or aggregate, a route predicate, ...) may call these. What it records is attributed to
/// that stage, kept on the calling thread until the stage's batch ends, and then handed to the
/// stage's interceptors as `events::CustomMetric` / `events::CustomEvent` (the metrics interceptor
/// turns them into `MetricsCollector::on_custom_metric` / `on_custom_event`, which Prometheus shows
/// as `weir_user_<name>`).
///
/// A call costs a thread-local read, a comparison with the name recorded last and an add once a
/// name has been seen on the thread; nothing is allocated or locked. Names must match
/// `[a-z_][a-z0-9_]*`; a bad name throws std::invalid_argument the first time a stage records it
/// (inside a stage, that is a failure of the item, handled by the stage's error policy).
///
/// A call does nothing, and checks nothing, when no stage of a pipeline is running on the calling
/// thread, when nothing listens to the stage (no interceptor, e.g. no collector attached), on the
/// threads of a stage's timeout, in key and timestamp functions (they run while items are handed
/// between stages), and in a build with `-DWEIR_TELEMETRY=OFF`, where these functions are empty.

#include <string_view>

#include "weir/detail/user_scratch.hpp"

namespace weir {
namespace metric {

/// Adds `v` to the counter `name` of the running stage (exposed as `weir_user_<name>_total`).
/// Thread-safe: each thread records into its own share of the stage.
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
