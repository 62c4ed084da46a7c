#pragma once
/// \file fan_out and merge: stages that move batches without touching items.

#include <cstddef>

#include "weir/detail/runtime.hpp"

namespace weir::ops {

/// Hands every batch to all branches of a fan-out. Branches share the batch; a branch that changes
/// items copies it first, so a batch is copied at most once per changing branch.
class FanOutKernel final : public detail::Kernel {
 public:
  explicit FanOutKernel(std::size_t branches) : branches_(branches) {}
  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally&) override {
    if (st.listens()) st.emit(events::FanOut{branches_, in->size()});
    return in;
  }

 private:
  std::size_t branches_;
};

/// Joins several streams of one type; the batches of each input keep their order when the merge
/// runs with parallelism 1.
class MergeKernel final : public detail::Kernel {
 public:
  explicit MergeKernel(std::size_t inputs) : inputs_(inputs) {}
  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally&) override {
    if (st.listens()) st.emit(events::FanIn{inputs_, in->size()});
    return in;
  }

 private:
  std::size_t inputs_;
};

}  // namespace weir::ops
