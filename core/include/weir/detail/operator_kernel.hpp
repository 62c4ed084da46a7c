#pragma once
/// \file The kernel that runs a user's weir::Operator (weir/operator.hpp) as a stage. Not API.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weir/batch.hpp"
#include "weir/detail/runtime.hpp"
#include "weir/operator.hpp"

namespace weir::detail {

/// Runs operators of the user's: one instance for a serial stage, or one per key partition of a keyed
/// stage (made by the factory when the run opens; the partitioner in front of the stage sends each
/// partition the items of its keys). The instances live in `parts_`, indexed by partition: each is
/// touched only by its partition's serial node, so they need no lock. Per batch: one virtual call,
/// one output batch (sharing the input's ticket, stamp and stream), and a copy of the input only when
/// the batch is shared with another stage (a fan-out).
template <class In, class Out>
class OperatorKernel final : public Kernel {
 public:
  using Factory = std::function<std::unique_ptr<Operator<In, Out>>()>;

  /// A serial stage running `op`.
  explicit OperatorKernel(std::unique_ptr<Operator<In, Out>> op) : parts_(1) { parts_[0].op = std::move(op); }
  /// A keyed stage: `factory` makes one instance per partition.
  explicit OperatorKernel(Factory factory) : factory_(std::move(factory)) {}

  [[nodiscard]] bool stateless() const noexcept override { return false; }
  /// Known once open() has made the instances (the runtime asks after it).
  [[nodiscard]] bool wants_timer() const noexcept override { return timer_; }

  void open(Stage& st) override {
    if (factory_) {
      parts_.clear();
      parts_.resize(static_cast<std::size_t>(std::max(1, st.info.parallelism)));
      for (auto& part : parts_) {
        part.op = factory_();
        if (!part.op)
          throw std::logic_error("the operator factory of stage '" + st.info.name + "' returned null");
      }
    }
    timer_ = false;
    for (std::size_t p = 0; p < parts_.size(); ++p) {
      BatchTally tally{};
      OperatorContext ctx(st, tally, static_cast<std::uint32_t>(p));
      try {
        parts_[p].op->open(ctx);
      } catch (...) {
        close_first(p, st);  // the run will not close a stage whose open() failed
        throw;
      }
      parts_[p].timer = parts_[p].op->wants_timer();
      timer_ = timer_ || parts_[p].timer;
    }
  }

  BatchPtr apply(BatchPtr in, Stage& st, BatchTally& tally) override {
    auto& items = static_cast<Batch<In>&>(*in).items;
    if (items.empty()) return nullptr;  // a marker of the keyed exchange: nothing for the operator
    const std::uint32_t partition = factory_ && in->partition < parts_.size() ? in->partition : 0;
    auto& part = parts_[partition];
    std::vector<In>* mine = &items;
    if (in.use_count() != 1) {
      // Other stages read the batch too: the operator gets a copy it may move from.
      part.copy.assign(items.begin(), items.end());
      mine = &part.copy;
    }
    auto out = derived_batch<Out>(*in, 0);
    call(st, tally, partition, [&](OperatorContext& ctx) { part.op->process(*mine, out->items, ctx); });
    part.copy.clear();
    if (out->items.empty()) return nullptr;
    return out;
  }

  BatchPtr flush(std::uint32_t partition, Stage& st, BatchTally& tally) override {
    if (partition >= parts_.size()) return nullptr;
    auto out = std::make_shared<Batch<Out>>();
    call(st, tally, partition, [&](OperatorContext& ctx) { parts_[partition].op->finish(out->items, ctx); });
    if (out->items.empty()) return nullptr;
    return out;
  }

  BatchPtr on_timer(std::uint32_t partition, Stage& st, BatchTally& tally) override {
    if (partition >= parts_.size() || !parts_[partition].timer) return nullptr;
    auto out = std::make_shared<Batch<Out>>();
    call(st, tally, partition,
         [&](OperatorContext& ctx) { parts_[partition].op->on_timer(out->items, ctx); });
    if (out->items.empty()) return nullptr;
    return out;
  }

  void close(Stage& st) override { close_first(parts_.size(), st); }

 private:
  /// One instance and what it needs per batch; a cache line of its own, as partitions run at once.
  struct alignas(64) Part {
    std::unique_ptr<Operator<In, Out>> op;
    std::vector<In> copy;  ///< a shared batch's items, copied for the operator
    bool timer = false;
  };

  /// Calls `fn` with a context of the stage; an exception that escapes it goes to the stage's error
  /// policy as one failure (no item to dead-letter: under a dead-letter policy it is skipped).
  template <class Fn>
  void call(Stage& st, BatchTally& tally, std::uint32_t partition, Fn&& fn) {
    OperatorContext ctx(st, tally, partition);
    try {
      fn(ctx);
    } catch (...) {
      st.fail_item(nullptr, typeid(void), std::current_exception(), 1, tally);
    }
    tally.filtered += ctx.filtered_;
    tally.late += ctx.late_;
  }

  /// Closes the first `n` instances, each even when another's close() throws; rethrows the first
  /// exception.
  void close_first(std::size_t n, Stage& st) {
    std::exception_ptr first;
    for (std::size_t p = 0; p < n && p < parts_.size(); ++p) {
      BatchTally tally{};
      OperatorContext ctx(st, tally, static_cast<std::uint32_t>(p));
      try {
        parts_[p].op->close(ctx);
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) std::rethrow_exception(first);
  }

  Factory factory_;
  std::vector<Part> parts_;
  bool timer_ = false;
};

}  // namespace weir::detail
