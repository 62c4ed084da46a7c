#pragma once
/// \file filter: keeps the items a predicate accepts.

#include <functional>
#include <utility>

#include "weir/detail/fusion.hpp"
#include "weir/detail/guard.hpp"

namespace weir::ops {

/// Keeps the items for which `P` returns true; the others are counted as filtered. Stateless.
template <class P>
struct FilterOp {
  template <class X>
  using output = X;
  static constexpr bool may_grow = false;
  static constexpr bool counts_emitted = true;
  static constexpr bool is_filter = true;
  P pred;

  template <bool Keep, class X, class Next>
  void push(X&& x, detail::OpCtx& c, Next&& next) {
    bool pass = false;
    if constexpr (Keep) {
      if (c.guard != nullptr) [[unlikely]] {
        // The call through the stage's timeout / circuit breaker (see detail::StageGuard).
        auto call = [&] { pass = static_cast<bool>(c.guard->call(pred, std::as_const(x), *c.tally)); };
        try {
          call();
        } catch (...) {
          c.stage->recover(x, call, *c.tally);
        }
        if (pass) {
          ++c.emitted;
          next(std::forward<X>(x));
        }
        return;
      }
    }
    try {
      pass = static_cast<bool>(std::invoke(pred, std::as_const(x)));
    } catch (...) {
      c.stage->recover(
          x, [&] { pass = static_cast<bool>(std::invoke(pred, std::as_const(x))); }, *c.tally);
    }
    if (pass) {
      ++c.emitted;
      next(std::forward<X>(x));
    }
  }
};

}  // namespace weir::ops
