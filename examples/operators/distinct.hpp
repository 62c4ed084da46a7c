#pragma once
/// \file A keyed distinct, written against the public operator interface only (weir/operator.hpp):
/// emits the first item of each key and drops the repeats.
///
///     p.source(visits).key_by(user).process(examples::distinct_by<Visit>(user)).parallelism(4)
///
/// The stream is keyed by the same function the operator uses, so all items of a key reach the same
/// instance and each instance only needs to remember the keys of its own partition.

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>
#include <weir/operator.hpp>

namespace examples {

/// The key type `KeyF` returns for items of type T.
template <class T, class KeyF>
using key_of = std::remove_cvref_t<std::invoke_result_t<KeyF&, const T&>>;

/// Emits the first item of each key (by `key(item)`), in input order, and drops the later ones,
/// which the stage counts as filtered. Keeps every key it has seen in a std::unordered_set (hashed
/// by `Hash`), so its memory grows with the number of distinct keys of its partition. Not
/// thread-safe, and needs not be: the runtime calls one instance at a time, one per partition.
template <class T, class KeyF, class Hash = std::hash<key_of<T, KeyF>>>
class Distinct final : public weir::Operator<T, T> {
 public:
  explicit Distinct(KeyF key) : key_(std::move(key)) {}

  void process(std::vector<T>& items, std::vector<T>& out, weir::OperatorContext& ctx) override {
    std::uint64_t repeats = 0;
    for (auto& x : items) {
      if (seen_.insert(std::invoke(key_, std::as_const(x))).second) {
        out.push_back(std::move(x));  // the batch is the operator's: move the item on
      } else {
        ++repeats;
      }
    }
    ctx.count_filtered(repeats);
    // A custom metric of the stage (weir_user_distinct_keys_total): new keys over all partitions.
    if (ctx.metrics().recording()) ctx.metrics().add("distinct_keys", static_cast<double>(out.size()));
  }

 private:
  KeyF key_;
  std::unordered_set<key_of<T, KeyF>, Hash> seen_;
};

/// A factory for `KeyedStream::process`: one Distinct per partition, each with a copy of `key`.
template <class T, class KeyF>
auto distinct_by(KeyF key) {
  return [key] { return std::make_unique<Distinct<T, KeyF>>(key); };
}

}  // namespace examples
