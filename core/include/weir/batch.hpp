#pragma once
/// \file The unit that crosses thread boundaries: a batch of items.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace weir {

namespace detail {
class Ticket;

/// Type-erased batch; the runtime moves `std::shared_ptr<AnyBatch>` between nodes.
class AnyBatch {
 public:
  AnyBatch() = default;
  AnyBatch(const AnyBatch&) = default;
  AnyBatch& operator=(const AnyBatch&) = default;
  virtual ~AnyBatch() = default;
  [[nodiscard]] virtual std::size_t size() const noexcept = 0;
  /// Makes room for `n` items, so that a batch that fills up over several sends grows at most once.
  virtual void reserve(std::size_t /*n*/) {}
  /// Keeps the source's in-flight slot taken while any batch derived from it is alive.
  std::shared_ptr<Ticket> ticket;
  /// Set on the batches a key partitioner makes: the partition that owns their keys, and which input
  /// of a stage with several inputs (a join) they came through.
  std::uint32_t partition = 0;
  std::uint32_t port = 0;
  /// When the batch left its source, in system-clock nanoseconds since the epoch; set only when a
  /// stage of the pipeline uses it (processing-time windows), 0 otherwise.
  std::int64_t stamp_ns = 0;
  /// The stream the batch belongs to (a source, a keyed stage's partition, a serial stateful
  /// stage): stateless stages pass it on, and a keyed stage's exchange keeps each stream's order and
  /// watermark apart.
  std::uint32_t stream = 0;
  /// Batches split for a time-windowed stage: when sent, the highest item time of their stream
  /// before this batch and with it. When the keyed stage receives them, the runtime replaces both by
  /// the partition's combined watermark time (the lowest over its input streams) before and after
  /// the batch, and for late-item batches sets `others_high_ns`, the lowest over the other streams.
  std::int64_t time_before_ns = 0;
  std::int64_t time_high_ns = 0;
  std::int64_t others_high_ns = 0;
};
using BatchPtr = std::shared_ptr<AnyBatch>;

/// What a stage with several outputs (route, a window with a late-item output) returns: one batch
/// per output, null where that output gets nothing.
class MultiBatch final : public AnyBatch {
 public:
  explicit MultiBatch(std::size_t count) : outputs(count) {}
  [[nodiscard]] std::size_t size() const noexcept override {
    std::size_t n = 0;
    for (const auto& b : outputs) n += b ? b->size() : 0;
    return n;
  }
  std::vector<BatchPtr> outputs;
};
}  // namespace detail

/// A batch of items moving between physical nodes (default up to 256 items).
/// Owned by one node at a time, or shared read-only between fan-out branches.
template <class T>
class Batch final : public detail::AnyBatch {
 public:
  Batch() = default;
  explicit Batch(std::vector<T> v) : items(std::move(v)) {}
  [[nodiscard]] std::size_t size() const noexcept override { return items.size(); }
  void reserve(std::size_t n) override { items.reserve(n); }
  std::vector<T> items;
};

}  // namespace weir
