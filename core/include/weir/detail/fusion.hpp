#pragma once
/// \file Compile-time fusion: a chain of stateless operators run as one loop over a batch. Not API.
///
/// Each operator is an `Op` with `template <bool Keep, class X, class Next> void push(X&&, OpCtx&, Next&&)`:
/// it handles one item, calls `next` with what it emits, and applies its stage's error policy to
/// failures of its own function only. An operator may also have `static void batch_done(const OpCtx&)`,
/// called once per batch after the loop (to send a per-batch event). A FusedKernel<In, Ops...> composes them
/// at compile time, so the whole chain is one loop with the user's functions inlined and no per-item indirect
/// call.

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "weir/detail/runtime.hpp"

namespace weir::detail {

/// The longest chain fused into one loop (a sink may add one more): longer chains are cut into
/// several loops, which keeps compile time and code size linear in the chain's length.
inline constexpr std::size_t max_fused_ops = 8;

class CallGuard;

/// What an operator sees of its stage while pushing one item.
struct OpCtx {
  Stage* stage;
  BatchTally* tally;
  std::uint64_t emitted = 0;  ///< items passed on (counted by operators whose output count varies)
  /// The stage's timeout / circuit breaker, or null. A guarded stage makes the loop keep its items, so
  /// operators only look at it when `Keep` is true: loops of unguarded stages never test it.
  CallGuard* guard = nullptr;
  /// What the stage's functions that take a StageContext record through (weir/user_metrics.hpp).
  StageContext user{};
};

/// The output type of `Op` for input `X` (void for sinks).
template <class Op, class X>
using op_output_t = typename Op::template output<X>;

template <class X, class... Ops>
struct chain_output {
  using type = X;
};
template <class X, class Op, class... Rest>
struct chain_output<X, Op, Rest...> {
  using type = typename chain_output<op_output_t<Op, X>, Rest...>::type;
};

/// Whether `Op` declares that calling it on an `X` leaves it unchanged (see MapOp::pure).
template <class Op, class X>
consteval bool op_pure() {
  if constexpr (requires { Op::template pure<X>; }) {
    return Op::template pure<X>;
  } else {
    return false;
  }
}

template <class X, class... Ops>
struct chain_pure : std::true_type {};
template <class X, class Op, class... Rest>
struct chain_pure<X, Op, Rest...>
    : std::bool_constant<op_pure<Op, X>() && chain_pure<op_output_t<Op, X>, Rest...>::value> {};

/// A fused chain as the runtime sees it: runs a batch through every stage it covers.
class FusedBase {
 public:
  virtual ~FusedBase() = default;
  /// `stages`/`tallies` have one entry per covered stage; `in[k]` receives the items that entered
  /// stage k and `in[size()]` the items that left the last one (for a sink: delivered). The output
  /// batch may be `batch` itself (then `batch` is left empty); otherwise `batch` stays with the caller,
  /// its items consumed, for reuse.
  virtual BatchPtr run(BatchPtr& batch, Stage* const* stages, BatchTally* tallies,
                       std::uint64_t* in) = 0;
  [[nodiscard]] virtual std::size_t size() const noexcept = 0;
};

template <class In, class... Ops>
class FusedKernel final : public FusedBase {
  static constexpr std::size_t N = sizeof...(Ops);
  using Out = typename chain_output<In, Ops...>::type;
  static constexpr bool is_sink = std::is_void_v<Out>;
  /// The loops run a copy of the operators on the stack when that copy is cheap and equivalent: the
  /// compiler then knows the user's captures cannot alias what the loop writes (a sink adding into a
  /// captured reference keeps its pointer in a register instead of reloading it for every item).
  static constexpr bool local_ops =
      (std::is_trivially_copyable_v<Ops> && ...) && chain_pure<In, Ops...>::value;

 public:
  explicit FusedKernel(std::tuple<Ops...> ops) : ops_(std::move(ops)) {}

  [[nodiscard]] std::size_t size() const noexcept override { return N; }

  /// Runs the items [first, last) of a source's range through the chain, with no batch in between:
  /// moved into the first operator when `movable` (an owned container, or a range yielding values)
  /// and no stage needs failed items kept, otherwise passed as const&. Returns the output batch (null
  /// for a sink or when nothing came out); counts as run() does.
  template <class It>
  BatchPtr run_range(It first, It last, bool movable, Stage* const* stages, BatchTally* tallies,
                     std::uint64_t* in) {
    bool keep = !movable;
    for (std::size_t k = 0; k < N; ++k) keep = keep || stages[k]->keeps_failed_items();
    std::array<OpCtx, N> ctx;
    const UserScratchScope scope(make_ctx(stages, tallies, ctx));
    in[0] = static_cast<std::uint64_t>(std::ranges::distance(first, last));
    BatchPtr out;
    if constexpr (is_sink) {
      dispatch(keep, [&](auto k) { loop_range<decltype(k)::value>(first, last, ctx, [](auto&&) {}); });
    } else {
      auto fresh = std::make_shared<Batch<Out>>();
      fill(fresh->items, static_cast<std::size_t>(in[0]), [&](auto& put) {
        dispatch(keep, [&](auto k) { loop_range<decltype(k)::value>(first, last, ctx, put); });
      });
      if (!fresh->items.empty()) out = std::move(fresh);
    }
    count<0>(ctx, in);
    return out;
  }

  BatchPtr run(BatchPtr& batch, Stage* const* stages, BatchTally* tallies,
               std::uint64_t* in) override {
    auto& v = static_cast<Batch<In>&>(*batch).items;
    bool keep = batch.use_count() > 1;
    for (std::size_t k = 0; k < N; ++k) keep = keep || stages[k]->keeps_failed_items();
    std::array<OpCtx, N> ctx;
    const UserScratchScope scope(make_ctx(stages, tallies, ctx));
    in[0] = v.size();
    BatchPtr out;
    if constexpr (is_sink) {
      dispatch(keep, [&](auto k) { loop<decltype(k)::value>(v, ctx, [](auto&&) {}); });
    } else if constexpr (std::is_same_v<Out, In> && std::is_move_assignable_v<In> && !grows()) {
      if (batch.use_count() == 1) {
        // Every stage emits at most one item per input, so outputs overwrite consumed inputs.
        std::size_t w = 0;
        In* const d = v.data();
        auto put = [&](auto&& y) {
          if (static_cast<const void*>(&d[w]) != static_cast<const void*>(&y))
            d[w] = std::forward<decltype(y)>(y);
          ++w;
        };
        dispatch(keep, [&](auto k) { loop<decltype(k)::value>(v, ctx, put); });
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(w), v.end());
        out = std::move(batch);
      }
    }
    if constexpr (!is_sink) {
      if (!out) {
        auto fresh = derived_batch<Out>(*batch, v.size());
        fill(fresh->items, v.size(),
             [&](auto& put) { dispatch(keep, [&](auto k) { loop<decltype(k)::value>(v, ctx, put); }); });
        out = std::move(fresh);
      }
    }
    // Counts: one-to-one stages emit what did not fail; the others counted what they emitted.
    count<0>(ctx, in);
    if constexpr (!is_sink) {
      if (out->size() == 0) {
        if (!batch) batch = std::move(out);  // hand the emptied batch back for reuse
        return nullptr;
      }
    }
    return out;
  }

 private:
  static constexpr bool grows() { return (Ops::may_grow || ...); }

  /// Runs `loop(put)` with a `put` that appends to `dst`, for at most `n` items in all unless the chain
  /// grows. Items of a simple type are written into room made beforehand, not appended one by one: the
  /// loop then has no call and no capacity check per item.
  template <class Loop>
  static void fill(std::vector<Out>& dst, std::size_t n, Loop&& loop) {
    if constexpr (!grows() && std::is_trivially_copyable_v<Out> && std::is_default_constructible_v<Out>) {
      dst.resize(n);
      Out* const d = dst.data();
      std::size_t w = 0;
      auto put = [d, &w](auto&& y) { d[w++] = std::forward<decltype(y)>(y); };
      loop(put);
      dst.resize(w);
    } else {
      dst.reserve(n);
      auto put = [&dst](auto&& y) { dst.push_back(std::forward<decltype(y)>(y)); };
      loop(put);
    }
  }

  /// Fills one OpCtx per stage (functions that take a StageContext record through its scratchpad)
  /// and returns the scratchpad the free functions of weir/user_metrics.hpp record into during the
  /// batch: the first stage's that something listens to. Setting it once per batch, not per item and
  /// stage, keeps the loop free of thread-local stores; a stage that needs its own attribution inside
  /// a longer loop takes a StageContext.
  static UserScratch* make_ctx(Stage* const* stages, BatchTally* tallies, std::array<OpCtx, N>& ctx) {
    UserScratch* first = nullptr;
    for (std::size_t k = 0; k < N; ++k) {
      UserScratch* scratch =
          stages[k]->listens() ? stages[k]->user_scratch(stages[k]->slot_index()) : nullptr;
      ctx[k] = OpCtx{stages[k], &tallies[k], 0, stages[k]->guard.get(), StageContext(scratch)};
      if (first == nullptr) first = scratch;
    }
    return first;
  }

  /// Calls `fn(keep)` with `keep` as a std::bool_constant.
  template <class Fn>
  static void dispatch(bool keep, Fn&& fn) {
    keep ? fn(std::true_type{}) : fn(std::false_type{});
  }

  template <bool Keep, class Put>
  void loop(std::vector<In>& v, std::array<OpCtx, N>& shared_ctx, Put&& put) {
    // A copy per instantiation, so that the item-keeping loop (which may call out of line) does not
    // stop the compiler from keeping the other loop's counters in registers.
    std::array<OpCtx, N> ctx = shared_ctx;
    const std::size_t n = v.size();
    In* const d = v.data();
    auto run = [&](std::tuple<Ops...>& ops) {
      for (std::size_t i = 0; i < n; ++i) {
        if constexpr (Keep) {
          push<0, Keep>(ops, static_cast<const In&>(d[i]), ctx, put);
        } else {
          push<0, Keep>(ops, std::move(d[i]), ctx, put);
        }
      }
    };
    with_ops(run);
    shared_ctx = ctx;
  }

  template <bool Keep, class It, class Put>
  void loop_range(It first, It last, std::array<OpCtx, N>& shared_ctx, Put&& put) {
    std::array<OpCtx, N> ctx = shared_ctx;  // as in loop()
    auto run = [&](std::tuple<Ops...>& ops) {
      for (; first != last; ++first) {
        if constexpr (Keep) {
          const In& x = *first;
          push<0, Keep>(ops, x, ctx, put);
        } else {
          push<0, Keep>(ops, In(std::move(*first)), ctx, put);
        }
      }
    };
    with_ops(run);
    shared_ctx = ctx;
  }

  /// Calls `run` with the operators: a local copy when local_ops, else the kernel's own.
  template <class Run>
  void with_ops(Run& run) {
    if constexpr (local_ops) {
      std::tuple<Ops...> ops = ops_;
      run(ops);
    } else {
      run(ops_);
    }
  }

  template <std::size_t K, bool Keep, class X, class Put>
  static void push(std::tuple<Ops...>& ops, X&& x, std::array<OpCtx, N>& ctx, Put& put) {
    if constexpr (K == N) {
      put(std::forward<X>(x));
    } else {
      std::get<K>(ops).template push<Keep>(std::forward<X>(x), ctx[K], [&](auto&& y) {
        push<K + 1, Keep>(ops, std::forward<decltype(y)>(y), ctx, put);
      });
    }
  }

  template <std::size_t K>
  void count(const std::array<OpCtx, N>& ctx, std::uint64_t* in) const {
    if constexpr (K < N) {
      using Op = std::tuple_element_t<K, std::tuple<Ops...>>;
      in[K + 1] = Op::counts_emitted ? ctx[K].emitted : in[K] - ctx[K].tally->errors;
      if constexpr (Op::is_filter) ctx[K].tally->filtered += in[K] - ctx[K].emitted - ctx[K].tally->errors;
      if constexpr (requires { Op::batch_done(ctx[K]); }) Op::batch_done(ctx[K]);
      count<K + 1>(ctx, in);
    }
  }

  std::tuple<Ops...> ops_;
};

/// A fused chain that reads straight from a range source (see RangeFusion). The non-template base
/// lets the source find the one typed for its range.
class RangeConsumerBase {
 public:
  virtual ~RangeConsumerBase() = default;
};

template <class R>
class RangeConsumer : public RangeConsumerBase {
 public:
  using iterator = std::ranges::iterator_t<R>;
  /// As FusedKernel::run_range.
  virtual BatchPtr run_range(iterator first, iterator last, bool movable, Stage* const* stages,
                             BatchTally* tallies, std::uint64_t* in) = 0;
};

template <class R, class In, class... Ops>
class FusedRangeKernel final : public RangeConsumer<R> {
 public:
  explicit FusedRangeKernel(std::tuple<Ops...> ops) : fused_(std::move(ops)) {}
  BatchPtr run_range(typename RangeConsumer<R>::iterator first, typename RangeConsumer<R>::iterator last,
                     bool movable, Stage* const* stages, BatchTally* tallies,
                     std::uint64_t* in) override {
    return fused_.run_range(first, last, movable, stages, tallies, in);
  }

 private:
  FusedKernel<In, Ops...> fused_;
};

/// The chain a Stream carries: the operators since the last fusion boundary and their stage ids.
template <class In, class... Ops>
struct Fusion {
  using input = In;
  std::tuple<Ops...> ops;
  std::vector<int> ids;

  template <class Op>
  [[nodiscard]] std::shared_ptr<const Fusion<In, Ops..., Op>> extend(Op op, int id) const {
    std::vector<int> more = ids;
    more.push_back(id);
    return std::make_shared<const Fusion<In, Ops..., Op>>(
        Fusion<In, Ops..., Op>{std::tuple_cat(ops, std::tuple<Op>(std::move(op))), std::move(more)});
  }
  [[nodiscard]] std::shared_ptr<FusedBase> kernel() const {
    return std::make_shared<FusedKernel<In, Ops...>>(ops);
  }
  [[nodiscard]] std::shared_ptr<RangeConsumerBase> range_kernel() const { return nullptr; }
};

/// A chain that starts at a range source of type R: besides the batch kernel, it makes one that
/// the source's thread runs over slices of the range directly.
template <class R, class In, class... Ops>
struct RangeFusion {
  using input = In;
  std::tuple<Ops...> ops;
  std::vector<int> ids;

  template <class Op>
  [[nodiscard]] std::shared_ptr<const RangeFusion<R, In, Ops..., Op>> extend(Op op, int id) const {
    std::vector<int> more = ids;
    more.push_back(id);
    return std::make_shared<const RangeFusion<R, In, Ops..., Op>>(
        RangeFusion<R, In, Ops..., Op>{std::tuple_cat(ops, std::tuple<Op>(std::move(op))), std::move(more)});
  }
  [[nodiscard]] std::shared_ptr<FusedBase> kernel() const {
    return std::make_shared<FusedKernel<In, Ops...>>(ops);
  }
  [[nodiscard]] std::shared_ptr<RangeConsumerBase> range_kernel() const {
    return std::make_shared<FusedRangeKernel<R, In, Ops...>>(ops);
  }
};

/// A single operator used as a stage kernel on its own (when its stage is not part of a longer chain).
/// `state` keeps alive what the operator points to (a lookup join's table), for as long as the stage
/// exists; an operator with `open(Stage&) const` has it called when the run starts.
template <class In, class Op>
class OpKernel final : public Kernel {
 public:
  explicit OpKernel(Op op, std::shared_ptr<const void> state = {})
      : fused_(std::tuple<Op>(op)), op_(std::move(op)), state_(std::move(state)) {}
  void open(Stage& st) override {
    if constexpr (requires { op_.open(st); }) op_.open(st);
  }
  BatchPtr apply(BatchPtr in, Stage& st, BatchTally& tally) override {
    Stage* stages[1] = {&st};
    std::uint64_t counts[2] = {0, 0};
    auto out = fused_.run(in, stages, &tally, counts);
    if (!out) tally.delivered += counts[1];
    return out;
  }

 private:
  FusedKernel<In, Op> fused_;
  Op op_;
  std::shared_ptr<const void> state_;
};

/// The input type of the last operator of `Ops` when the chain starts with an `In` (void for none).
template <class In, class... Ops>
struct last_op_input {
  using type = void;
};
template <class In, class Op>
struct last_op_input<In, Op> {
  using type = In;
};
template <class In, class Op, class Next, class... Rest>
struct last_op_input<In, Op, Next, Rest...> {
  using type = typename last_op_input<op_output_t<Op, In>, Next, Rest...>::type;
};

/// The input type of the stage a `Stream<T, Chain>` reads: that of the chain's last operator, or
/// void when the handle does not know it (no chain, or a source).
template <class Chain>
struct chain_stage_input {
  using type = void;
};
template <class In, class... Ops>
struct chain_stage_input<Fusion<In, Ops...>> : last_op_input<In, Ops...> {};
template <class R, class In, class... Ops>
struct chain_stage_input<RangeFusion<R, In, Ops...>> : last_op_input<In, Ops...> {};
template <class Chain>
struct chain_stage_input<const Chain> : chain_stage_input<Chain> {};

}  // namespace weir::detail
