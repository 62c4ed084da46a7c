#pragma once
/// \file The unit that crosses thread boundaries: a batch of items.

#include <cstddef>
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
  /// Keeps the source's in-flight slot taken while any batch derived from it is alive.
  std::shared_ptr<Ticket> ticket;
};
using BatchPtr = std::shared_ptr<AnyBatch>;
}  // namespace detail

/// A batch of items moving between physical nodes (default up to 256 items).
/// Owned by one node at a time, or shared read-only between fan-out branches.
template <class T>
class Batch final : public detail::AnyBatch {
 public:
  Batch() = default;
  explicit Batch(std::vector<T> v) : items(std::move(v)) {}
  [[nodiscard]] std::size_t size() const noexcept override { return items.size(); }
  std::vector<T> items;
};

}  // namespace weir
