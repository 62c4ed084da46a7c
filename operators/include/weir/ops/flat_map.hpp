#pragma once
/// \file flat_map: zero or more output items per input item.

#include <functional>
#include <ranges>
#include <type_traits>
#include <utility>

#include "weir/detail/runtime.hpp"

namespace weir::ops {

/// Calls `F`, which returns a range, and emits its elements in order. Stateless.
template <class T, class F>
class FlatMapKernel final : public detail::Kernel {
 public:
  using Range = std::invoke_result_t<F&, T&&>;
  using Out = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
  explicit FlatMapKernel(F fn) : fn_(std::move(fn)) {}

  detail::BatchPtr apply(detail::BatchPtr in, detail::StageRuntime& st, detail::BatchTally& tally) override {
    auto& v = static_cast<Batch<T>&>(*in).items;
    const bool keep = in.use_count() > 1 || st.keeps_failed_items();
    auto out = detail::derived_batch<Out>(*in, v.size());
    auto& dst = out->items;
    auto append = [&dst](auto&& range) {
      for (auto&& u : range) dst.push_back(std::forward<decltype(u)>(u));
    };
    auto one = [&](std::size_t k) {
      if (keep) {
        append(std::invoke(fn_, detail::pass_kept(fn_, v[k])));
      } else {
        append(std::invoke(fn_, std::move(v[k])));
      }
    };
    // A call that throws half-way through its range has appended nothing: ranges are built first.
    detail::per_item_slow_path(0, v.size(), one, [&](std::size_t k) {
      st.recover(v[k], [&] { append(std::invoke(fn_, detail::pass_kept(fn_, v[k]))); }, tally);
    });
    return dst.empty() ? nullptr : out;
  }

 private:
  F fn_;
};

}  // namespace weir::ops
