#pragma once
/// \file route: content-based routing of each item to named branches.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "weir/detail/runtime.hpp"

namespace weir {

/// Whether an item goes to the first branch whose predicate holds or to every such branch.
enum class RouteMode { first_match, all_matches };

/// Settings of `Stream::route`: the mode, and the branch that takes items no predicate accepted
/// (empty: such items are dropped, counted as filtered, and reported with a NoRoute event).
struct RouteOptions {
  RouteMode mode = RouteMode::first_match;
  std::string otherwise;
};

/// One branch of a route: its name and the predicate that sends an item there.
template <class P>
struct when {
  std::string name;
  P pred;
};
template <class P>
when(std::string, P) -> when<P>;
template <class P>
when(const char*, P) -> when<P>;

}  // namespace weir

namespace weir::ops {

/// Sends each item to the outputs whose predicates accept it (output k for branch k, then the
/// `otherwise` branch if any). Stateless; predicates must be safe to call from several threads when
/// the stage runs in parallel. Items are moved to the last branch that takes them and copied to the others.
template <class T, class... P>
class RouteKernel final : public detail::Kernel {
  static constexpr std::size_t N = sizeof...(P);
  static_assert(N >= 1 && N < 64, "a route has 1 to 63 branches");

 public:
  RouteKernel(RouteOptions options, std::vector<std::string> names, std::tuple<P...> preds)
      : mode_(options.mode),
        otherwise_(!options.otherwise.empty()),
        names_(std::move(names)),
        preds_(std::move(preds)) {}

  [[nodiscard]] std::size_t outputs() const noexcept override { return N + (otherwise_ ? 1 : 0); }
  [[nodiscard]] std::string_view output_name(std::size_t k) const noexcept override {
    return k < outputs() ? std::string_view(names_[k]) : std::string_view();
  }

  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally& tally) override {
    auto& items = static_cast<Batch<T>&>(*in).items;
    const bool own = in.use_count() == 1;
    auto multi = std::make_shared<detail::MultiBatch>(outputs());
    std::array<Batch<T>*, N + 1> outs{};
    auto to = [&](std::size_t k) -> std::vector<T>& {
      if (outs[k] == nullptr) {
        auto b = detail::derived_batch<T>(*in, items.size());
        outs[k] = b.get();
        multi->outputs[k] = std::move(b);
      }
      return outs[k]->items;
    };
    std::uint64_t dropped = 0;
    for (auto& x : items) {
      std::uint64_t mask = 0;
      try {
        mask = match(std::as_const(x), std::make_index_sequence<N>{});
      } catch (...) {
        st.fail_item(&x, typeid(T), std::current_exception(), 1, tally);
        continue;
      }
      if (mask == 0) {
        if (otherwise_) {
          put(to(N), x, own);
        } else {
          ++dropped;
        }
        continue;
      }
      while (mask != 0) {
        const auto k = static_cast<std::size_t>(std::countr_zero(mask));
        mask &= mask - 1;
        if (mask == 0) {
          put(to(k), x, own);
        } else {
          to(k).push_back(x);
        }
      }
    }
    tally.filtered += dropped;
    if (st.listens()) {
      for (std::size_t k = 0; k < outputs(); ++k) {
        if (outs[k] != nullptr)
          st.emit(events::RouteSelected{k < N ? names_[k] : names_.back(), outs[k]->items.size()});
      }
      if (dropped > 0) st.emit(events::NoRoute{dropped});
    }
    if (outputs() == 1) return std::move(multi->outputs[0]);  // one output: a plain batch
    return multi;
  }

 private:
  static void put(std::vector<T>& v, T& x, bool own) {
    if (own) {
      v.push_back(std::move(x));
    } else {
      v.push_back(x);
    }
  }

  template <std::size_t... K>
  std::uint64_t match(const T& x, std::index_sequence<K...>) {
    std::uint64_t mask = 0;
    if (mode_ == RouteMode::first_match) {
      // Stops at the first predicate that holds.
      (void)((std::invoke(std::get<K>(preds_), x) ? (mask = std::uint64_t{1} << K, true) : false) || ...);
    } else {
      ((mask |= std::invoke(std::get<K>(preds_), x) ? std::uint64_t{1} << K : 0), ...);
    }
    return mask;
  }

  RouteMode mode_;
  bool otherwise_;
  std::vector<std::string> names_;  ///< the branches', then the otherwise branch's
  std::tuple<P...> preds_;
};

}  // namespace weir::ops
