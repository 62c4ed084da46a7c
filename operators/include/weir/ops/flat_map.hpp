#pragma once
/// \file flat_map: zero or more output items per input item.

#include <functional>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>

#include "weir/detail/fusion.hpp"
#include "weir/detail/call_guard.hpp"

namespace weir::ops {

/// Calls `F`, which returns a range, and emits its elements in order. Stateless. The range is built
/// before any element leaves, so a call that throws emits nothing.
template <class F>
struct FlatMapOp {
  template <class X>
  using range = std::remove_cvref_t<detail::user_result_t<F, X&&>>;
  template <class X>
  using output = std::remove_cvref_t<std::ranges::range_reference_t<range<X>>>;
  static constexpr bool may_grow = true;
  static constexpr bool counts_emitted = true;
  static constexpr bool is_filter = false;
  /// Calling the function does not change it, so the fused loop may run a copy of this operator.
  template <class X>
  static constexpr bool pure = detail::user_invocable<const F&, X&&>;
  F fn;

  template <bool Keep, class X, class Next>
  void push(X&& x, detail::OpCtx& c, Next&& next) {
    using R = range<std::remove_cvref_t<X>>;
    std::optional<R> r;
    if constexpr (Keep) {
      if (c.guard != nullptr) [[unlikely]] {
        if (auto g = call_guarded(x, c.guard, c.stage, c.tally, &c.user)) emit(*g, c, next);
        return;
      }
    }
    try {
      if constexpr (Keep) {
        r.emplace(detail::invoke_user(fn, c.user, detail::pass_kept(fn, x)));
      } else {
        r.emplace(detail::invoke_user(fn, c.user, std::forward<X>(x)));
      }
    } catch (...) {
      if (!c.stage->recover(
              x, [&] { r.emplace(detail::invoke_user(fn, c.user, detail::pass_kept(fn, x))); }, *c.tally))
        return;
    }
    emit(*r, c, next);
  }

  /// The call through the stage's timeout / circuit breaker (see detail::CallGuard). Kept out of line,
  /// and given values rather than the OpCtx, so that the fused loop compiles as it does without it.
  template <class X>
  [[gnu::noinline, gnu::cold]] std::optional<range<X>> call_guarded(const X& x, detail::CallGuard* guard,
                                                                    detail::Stage* stage,
                                                                    detail::BatchTally* tally,
                                                                    StageContext* user) {
    std::optional<range<X>> r;
    auto call = [&] { r.emplace(detail::guarded_call(*guard, fn, x, *tally, *user)); };
    try {
      call();
    } catch (...) {
      if (!stage->recover(x, call, *tally)) return std::nullopt;
    }
    return r;
  }

  template <class R, class Next>
  static void emit(R& r, detail::OpCtx& c, Next& next) {
    for (auto&& u : r) {
      ++c.emitted;
      if constexpr (!std::ranges::view<R> && std::is_lvalue_reference_v<decltype(u)>) {
        next(std::move(u));  // the range is a container this call owns
      } else {
        next(std::forward<decltype(u)>(u));
      }
    }
  }
};

}  // namespace weir::ops
