#pragma once
/// \file filter: keeps the items a predicate accepts.

#include <functional>
#include <type_traits>
#include <utility>

#include "weir/detail/fusion.hpp"
#include "weir/detail/call_guard.hpp"

namespace weir::ops {

/// Keeps the items for which `P` returns true; the others are counted as filtered. Stateless.
template <class P>
struct FilterOp {
  template <class X>
  using output = X;
  static constexpr bool may_grow = false;
  static constexpr bool counts_emitted = true;
  static constexpr bool is_filter = true;
  /// Calling the function does not change it, so the fused loop may run a copy of this operator.
  template <class X>
  static constexpr bool pure = detail::user_invocable<const P&, X&&>;
  P pred;

  template <bool Keep, class X, class Next>
  void push(X&& x, detail::OpCtx& c, Next&& next) {
    bool pass = false;
    if constexpr (Keep) {
      if (c.guard != nullptr) [[unlikely]] {
        pass = call_guarded(x, c.guard, c.stage, c.tally, &c.user);
        if (pass) {
          ++c.emitted;
          next(std::forward<X>(x));
        }
        return;
      }
    }
    try {
      pass = static_cast<bool>(detail::invoke_user(pred, c.user, std::as_const(x)));
    } catch (...) {
      c.stage->recover(
          x, [&] { pass = static_cast<bool>(detail::invoke_user(pred, c.user, std::as_const(x))); },
          *c.tally);
    }
    if (pass) {
      ++c.emitted;
      next(std::forward<X>(x));
    }
  }

  /// The call through the stage's timeout / circuit breaker (see detail::CallGuard). Kept out of line,
  /// and given values rather than the OpCtx, so that the fused loop compiles as it does without it.
  template <class X>
  [[gnu::noinline, gnu::cold]] bool call_guarded(const X& x, detail::CallGuard* guard,
                                                 detail::Stage* stage, detail::BatchTally* tally,
                                                 StageContext* user) {
    bool pass = false;
    auto call = [&] { pass = static_cast<bool>(detail::guarded_call(*guard, pred, x, *tally, *user)); };
    try {
      call();
    } catch (...) {
      stage->recover(x, call, *tally);
    }
    return pass;
  }
};

}  // namespace weir::ops
