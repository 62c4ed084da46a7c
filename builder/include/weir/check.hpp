#pragma once
/// \file Readable compile errors for the builder's common mistakes.
///
/// When a function given to a Stream method does not fit (a map taking the wrong type, a key nobody
/// can hash, a sink of another item type, ...), the method's unconstrained overload calls one of the
/// functions below, which fails with a static_assert. The compiler's first lines then read, for
/// `map` on a stream of `Flight`:
///
///     In instantiation of 'constexpr void weir::check::map_function() [with T = Flight; F = ...]':
///     ...
///     error: static assertion failed: map: the function must be callable as f(T) or
///            f(T, weir::StageContext&) with T the item type, and return a value (weir::MapFn)
///
/// followed by the part of the concept that failed. A static_assert message
/// must be a plain string in C++20, so the types are named by the instantiation line, whose
/// template parameters are the names the message uses (T, K, Expected, Given). The functions return
/// `auto` so that a call instantiates them at once (to learn their type): their error comes first,
/// before any error of the code that goes on with the result.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>

#include "weir/concepts.hpp"
#include "weir/error.hpp"
#include "weir/operator.hpp"
#include "weir/ops/key_by.hpp"
#include "weir/ops/window.hpp"

namespace weir::check {

/// `map(fn)` on a stream of T.
template <class T, class F>
constexpr auto map_function() {
  static_assert(MapFn<F, T>,
                "map: the function must be callable as f(T) or f(T, weir::StageContext&) with T the "
                "item type, and return a value (weir::MapFn)");
}

/// `filter(pred)` on a stream of T.
template <class T, class F>
constexpr auto filter_function() {
  static_assert(
      FilterFn<F, T>,
      "filter: the predicate must be callable as f(const T&) or f(const T&, "
      "weir::StageContext&) with T the item type, and return something testable as bool (weir::FilterFn)");
}

/// `flat_map(fn)` on a stream of T.
template <class T, class F>
constexpr auto flat_map_function() {
  static_assert(FlatMapFn<F, T>,
                "flat_map: the function must be callable as f(T) or f(T, weir::StageContext&) with T "
                "the item type, and return a range (weir::FlatMapFn)");
}

/// `sink(fn)` on a stream of T.
template <class T, class F>
constexpr auto sink_function() {
  static_assert(SinkFn<F, T>,
                "sink: the function must be callable as f(T) or f(T, weir::StageContext&) with T the "
                "item type (weir::SinkFn)");
}

/// `sink(weir::collect_into(v))` with `v` a std::vector<Given> on a stream of T.
template <class T, class Given>
constexpr auto collect_into_vector() {
  static_assert(std::is_same_v<T, Given>,
                "sink: weir::collect_into needs a std::vector<T> with T the item type");
}

/// `sink(weir::async_sink{fn})` on a stream of T.
template <class T, class F>
constexpr auto async_sink_function() {
  static_assert(std::invocable<F&, T&&>,
                "sink: the function of weir::async_sink must be callable as f(T) with T the item type");
}

/// The key type K that a key function returns for items of type T.
template <class K, class T, class F>
constexpr auto key_type() {
  static_assert(
      KeyFn<F, T>,
      "key_by: the key type K must be hashable by weir::KeyHash<K> (std::hash<K>, or a pair or "
      "tuple of such) and comparable with ==: specialise weir::KeyHash<K> for your type (weir::KeyFn)");
}

/// `key_by(fn)` on a stream of T.
template <class T, class F>
constexpr auto key_function() {
  if constexpr (std::copy_constructible<F> && std::invocable<F&, const T&>) {
    key_type<std::remove_cvref_t<std::invoke_result_t<F&, const T&>>, T, F>();
  } else {
    static_assert(std::copy_constructible<F> && std::invocable<F&, const T&>,
                  "key_by: the key function must be callable as f(const T&) with T the item type, and "
                  "return the key (weir::KeyFn)");
  }
}

/// `event_time(fn)` on a windowed stream of T.
template <class T, class F>
constexpr auto timestamp_function() {
  static_assert(TimestampFn<F, T>,
                "event_time: the timestamp function must be callable as f(const T&) with T the item "
                "type, and return a std::chrono::system_clock::time_point (weir::TimestampFn)");
}

/// Whether X is a std::unique_ptr to an operator for a stream of T (weir::OperatorFor).
template <class X, class T>
inline constexpr bool operator_ptr_for = false;
template <class Op, class T>
inline constexpr bool operator_ptr_for<std::unique_ptr<Op>, T> = OperatorFor<Op, T>;

/// `process(op)` on a stream of T, with `op` of type Given.
template <class T, class Given>
constexpr auto process_operator() {
  static_assert(operator_ptr_for<Given, T>,
                "process: the operator must be a std::unique_ptr to a class derived from "
                "weir::Operator<T, Out> with T the item type (weir::OperatorFor)");
}

/// `key_by(key).process(factory)` on a stream of T.
template <class T, class F>
constexpr auto operator_factory() {
  static_assert(OperatorFactoryFor<F, T>,
                "process: a keyed stream takes a factory, a copyable function f() that returns a "
                "std::unique_ptr to a class derived from weir::Operator<T, Out> with T the item type "
                "(weir::OperatorFactoryFor)");
}

/// `.on_error(weir::on_error::dead_letter(sink))` on a stage whose input type is T: the sink takes
/// Given, and must take Expected = weir::DeadLetter<T>.
template <class Expected, class Given>
constexpr auto dead_letter_sink() {
  static_assert(std::is_same_v<Expected, Given>,
                "on_error: the dead-letter sink must take Expected, weir::DeadLetter<T> with T the "
                "stage's input type");
}

}  // namespace weir::check
