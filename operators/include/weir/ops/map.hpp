#pragma once
/// \file map: one output item per input item.

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "weir/detail/fusion.hpp"
#include "weir/detail/call_guard.hpp"

namespace weir::ops {

/// Applies `F` to each item. Stateless: fused with its neighbours into one loop and may run in parallel,
/// so `F` must be safe to call from several threads when the stage's parallelism is above one.
template <class F>
struct MapOp {
  template <class X>
  using output = std::remove_cvref_t<detail::user_result_t<F, X&&>>;
  static constexpr bool may_grow = false;
  static constexpr bool counts_emitted = false;
  static constexpr bool is_filter = false;
  /// Calling the function does not change it, so the fused loop may run a copy of this operator.
  template <class X>
  static constexpr bool pure = detail::user_invocable<const F&, X&&>;
  F fn;

  template <bool Keep, class X, class Next>
  void push(X&& x, detail::OpCtx& c, Next&& next) {
    if constexpr (Keep) {
      if (c.guard != nullptr) [[unlikely]] {
        auto y = call_guarded(x, c.guard, c.stage, c.tally, &c.user);
        if (y) next(std::move(*y));
        return;
      }
    }
    std::optional<output<std::remove_cvref_t<X>>> y;
    try {
      if constexpr (Keep) {
        y.emplace(detail::invoke_user(fn, c.user, detail::pass_kept(fn, x)));
      } else {
        y.emplace(detail::invoke_user(fn, c.user, std::forward<X>(x)));
      }
    } catch (...) {
      if (!c.stage->recover(
              x, [&] { y.emplace(detail::invoke_user(fn, c.user, detail::pass_kept(fn, x))); }, *c.tally))
        return;
    }
    next(std::move(*y));
  }

  /// The call through the stage's timeout / circuit breaker (see detail::CallGuard). Kept out of line,
  /// and given values rather than the OpCtx, so that the fused loop compiles as it does without it.
  template <class X>
  [[gnu::noinline, gnu::cold]] std::optional<output<X>> call_guarded(const X& x, detail::CallGuard* guard,
                                                                     detail::Stage* stage,
                                                                     detail::BatchTally* tally,
                                                                     StageContext* user) {
    std::optional<output<X>> y;
    auto call = [&] { y.emplace(detail::guarded_call(*guard, fn, x, *tally, *user)); };
    try {
      call();
    } catch (...) {
      if (!stage->recover(x, call, *tally)) return std::nullopt;
    }
    return y;
  }
};

}  // namespace weir::ops
