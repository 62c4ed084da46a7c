#pragma once
/// \file flat_map: zero or more output items per input item.

#include <functional>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>

#include "weir/detail/fusion.hpp"
#include "weir/detail/guard.hpp"

namespace weir::ops {

/// Calls `F`, which returns a range, and emits its elements in order. Stateless. The range is built
/// before any element leaves, so a call that throws emits nothing.
template <class F>
struct FlatMapOp {
  template <class X>
  using range = std::remove_cvref_t<std::invoke_result_t<F&, X&&>>;
  template <class X>
  using output = std::remove_cvref_t<std::ranges::range_reference_t<range<X>>>;
  static constexpr bool may_grow = true;
  static constexpr bool counts_emitted = true;
  static constexpr bool is_filter = false;
  F fn;

  template <bool Keep, class X, class Next>
  void push(X&& x, detail::OpCtx& c, Next&& next) {
    using R = range<std::remove_cvref_t<X>>;
    std::optional<R> r;
    if constexpr (Keep) {
      if (c.guard != nullptr) [[unlikely]] {
        // The call through the stage's timeout / circuit breaker (see detail::StageGuard).
        auto call = [&] { r.emplace(c.guard->call(fn, x, *c.tally)); };
        try {
          call();
        } catch (...) {
          if (!c.stage->recover(x, call, *c.tally)) return;
        }
        emit(*r, c, next);
        return;
      }
    }
    try {
      if constexpr (Keep) {
        r.emplace(std::invoke(fn, detail::pass_kept(fn, x)));
      } else {
        r.emplace(std::invoke(fn, std::forward<X>(x)));
      }
    } catch (...) {
      if (!c.stage->recover(
              x, [&] { r.emplace(std::invoke(fn, detail::pass_kept(fn, x))); }, *c.tally))
        return;
    }
    emit(*r, c, next);
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
