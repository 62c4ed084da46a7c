#pragma once
/// \file map: one output item per input item.

#include <functional>
#include <type_traits>
#include <utility>

#include "weir/detail/runtime.hpp"

namespace weir::ops {

/// Applies `F` to every item of a batch. Stateless: fused with its neighbours, may run in parallel,
/// so `F` must be safe to call from several threads when the stage's parallelism is above one.
template <class T, class F>
class MapKernel final : public detail::Kernel {
 public:
  using Out = std::remove_cvref_t<std::invoke_result_t<F&, T&&>>;
  explicit MapKernel(F fn) : fn_(std::move(fn)) {}

  detail::BatchPtr apply(detail::BatchPtr in, detail::StageRuntime& st, detail::BatchTally& tally) override {
    auto& src = static_cast<Batch<T>&>(*in).items;
    const bool shared = in.use_count() > 1;
    const bool keep = shared || st.keeps_failed_items();
    if constexpr (std::is_same_v<T, Out> && std::is_move_assignable_v<T>) {
      if (!shared) return keep ? in_place<true>(std::move(in), src, st, tally) : in_place<false>(std::move(in), src, st, tally);
    }
    return keep ? to_new<true>(*in, src, st, tally) : to_new<false>(*in, src, st, tally);
  }

 private:
  template <bool Keep>
  decltype(auto) call(T& x) {
    if constexpr (Keep) {
      return std::invoke(fn_, detail::pass_kept(fn_, x));
    } else {
      return std::invoke(fn_, std::move(x));
    }
  }

  template <bool Keep>
  detail::BatchPtr in_place(detail::BatchPtr in, std::vector<T>& v, detail::StageRuntime& st,
                            detail::BatchTally& tally) {
    const std::size_t n = v.size();
    std::size_t i = 0;
    try {
      for (; i < n; ++i) v[i] = call<Keep>(v[i]);
      return in;
    } catch (...) {
    }
    // Slow path: from the first failure on, compact the survivors.
    std::size_t w = i;
    auto fail = [&](std::size_t k) {
      if (st.recover(v[k], [&] { v[w] = std::invoke(fn_, detail::pass_kept(fn_, v[k])); }, tally)) ++w;
    };
    fail(i);
    detail::per_item_slow_path(
        i + 1, n,
        [&](std::size_t k) {
          Out o = call<Keep>(v[k]);
          v[w] = std::move(o);
          ++w;
        },
        fail);
    v.erase(v.begin() + static_cast<std::ptrdiff_t>(w), v.end());
    return in;
  }

  template <bool Keep>
  detail::BatchPtr to_new(const detail::AnyBatch& from, std::vector<T>& v, detail::StageRuntime& st,
                          detail::BatchTally& tally) {
    auto out = detail::derived_batch<Out>(from, v.size());
    auto& dst = out->items;
    const std::size_t n = v.size();
    std::size_t i = 0;
    try {
      for (; i < n; ++i) dst.push_back(call<Keep>(v[i]));
      return out;
    } catch (...) {
    }
    auto fail = [&](std::size_t k) {
      st.recover(v[k], [&] { dst.push_back(std::invoke(fn_, detail::pass_kept(fn_, v[k]))); }, tally);
    };
    fail(i);
    detail::per_item_slow_path(i + 1, n, [&](std::size_t k) { dst.push_back(call<Keep>(v[k])); }, fail);
    return out;
  }

  F fn_;
};

}  // namespace weir::ops
