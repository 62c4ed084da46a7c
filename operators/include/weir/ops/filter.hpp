#pragma once
/// \file filter: keeps the items a predicate accepts.

#include <functional>
#include <type_traits>
#include <utility>

#include "weir/detail/runtime.hpp"

namespace weir::ops {

/// Keeps the items for which `P` returns true; the rest are counted as filtered. Stateless.
template <class T, class P>
class FilterKernel final : public detail::Kernel {
 public:
  explicit FilterKernel(P pred) : pred_(std::move(pred)) {}

  detail::BatchPtr apply(detail::BatchPtr in, detail::StageRuntime& st, detail::BatchTally& tally) override {
    auto& v = static_cast<Batch<T>&>(*in).items;
    const std::size_t n = v.size();
    const auto errors_before = tally.errors;
    if (in.use_count() > 1) {  // another branch reads this batch: copy the survivors out
      auto out = detail::derived_batch<T>(*in, n);
      run(v, st, tally, [&](std::size_t k) { out->items.push_back(v[k]); });
      tally.filtered += n - out->items.size() - (tally.errors - errors_before);
      return out->items.empty() ? nullptr : out;
    }
    std::size_t w = 0;
    run(v, st, tally, [&](std::size_t k) {
      if (w != k) v[w] = std::move(v[k]);
      ++w;
    });
    tally.filtered += n - w - (tally.errors - errors_before);
    v.erase(v.begin() + static_cast<std::ptrdiff_t>(w), v.end());
    return w == 0 ? nullptr : in;
  }

 private:
  bool test(const T& x) { return static_cast<bool>(std::invoke(pred_, x)); }

  /// Calls `keep(k)` for every accepted item, in order.
  template <class Keep>
  void run(std::vector<T>& v, detail::StageRuntime& st, detail::BatchTally& tally, Keep&& keep) {
    const std::size_t n = v.size();
    std::size_t i = 0;
    try {
      for (; i < n; ++i)
        if (test(v[i])) keep(i);
      return;
    } catch (...) {
    }
    auto fail = [&](std::size_t k) {
      bool accepted = false;
      if (st.recover(v[k], [&] { accepted = test(v[k]); }, tally) && accepted) keep(k);
    };
    fail(i);
    detail::per_item_slow_path(
        i + 1, n,
        [&](std::size_t k) {
          if (test(v[k])) keep(k);
        },
        fail);
  }

  P pred_;
};

}  // namespace weir::ops
