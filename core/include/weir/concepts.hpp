#pragma once
/// \file Concepts that check user callables, so a wrong lambda fails with a readable name.

#include <concepts>
#include <functional>
#include <optional>
#include <ranges>
#include <type_traits>

#include "weir/user_metrics.hpp"

namespace weir {

// The functions of map, filter, flat_map and sink may take a weir::StageContext& after the item
// (see weir/user_metrics.hpp); the concepts accept both forms.

/// A function for `map`: takes a T (by value, const& or &&), and optionally a StageContext&, and
/// returns a non-void value.
template <class F, class T>
concept MapFn = std::copy_constructible<F> && detail::user_invocable<F&, T&&> &&
    !std::is_void_v<detail::user_result_t<F, T&&>>;

/// A predicate without a context, for `route`'s branches: takes a const T& and returns something
/// testable as bool.
template <class F, class T>
concept Predicate = std::copy_constructible<F> && std::predicate<F&, const T&>;

/// A predicate for `filter`: takes a const T& (and optionally a StageContext&) and returns something
/// testable as bool.
template <class F, class T>
concept FilterFn = Predicate<F, T> ||
    (std::copy_constructible<F>&& std::predicate<F&, const T&, StageContext&>);

/// A function for `flat_map`: takes a T (and optionally a StageContext&) and returns a range whose
/// elements are emitted in order.
template <class F, class T>
concept FlatMapFn = std::copy_constructible<F> && detail::user_invocable<F&, T&&> &&
    std::ranges::input_range<detail::user_result_t<F, T&&>>;

/// A function for `sink`: takes a T (and optionally a StageContext&); its result is ignored.
template <class F, class T>
concept SinkFn = detail::user_invocable<F&, T&&>;

namespace detail {
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
}  // namespace detail

/// What a stream can carry: items are moved where they can be and copied where a fan-out branch
/// or a dead-letter sink needs its own copy, so they must be copyable.
template <class T>
concept Item = std::copy_constructible<T> && std::is_copy_assignable_v<T> && std::movable<T>;

/// A generator for `from_generator`: called with no argument, returns std::optional<T>; nullopt ends it.
template <class F>
concept GeneratorFn = std::invocable<F&> && detail::is_optional<std::invoke_result_t<F&>>::value &&
    Item<typename std::invoke_result_t<F&>::value_type>;

/// A range a source can own or view: its elements are copied or moved into batches.
template <class R>
concept SourceRange = std::ranges::input_range<R> && std::ranges::viewable_range<R> &&
    Item<std::remove_cvref_t<std::ranges::range_reference_t<R>>>;

}  // namespace weir
