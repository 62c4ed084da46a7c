#pragma once
/// \file The data of a span: attributes, events, kind, status and SpanData, the record a Span writes
/// into while it is recorded and that processors and exporters receive when it ends. Plain values,
/// shared by the tracer API (trace.hpp), the SDK (sdk/) and the exporters (exporters/).

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>
#include <weir/trace_context.hpp>

namespace weir::telemetry {

/// What a span stands for, as OTLP numbers it.
enum class SpanKind : int {
  unspecified = 0,
  internal = 1,
  server = 2,
  client = 3,
  producer = 4,
  consumer = 5
};

/// A span's status, as OTLP numbers it: unset (the default), ok, or error with a message.
enum class StatusCode : int { unset = 0, ok = 1, error = 2 };

/// The value of an attribute: a string, an integer, a floating-point number or a bool.
using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;

/// A key and its value. A plain value.
struct Attribute {
  std::string key;
  AttributeValue value;
};

/// Turns integers, floating-point numbers, bools and strings into an AttributeValue.
template <class V>
[[nodiscard]] AttributeValue attribute_value(V&& v) {
  using D = std::remove_cvref_t<V>;
  if constexpr (std::is_same_v<D, bool>) {
    return AttributeValue{v};
  } else if constexpr (std::is_integral_v<D>) {
    return AttributeValue{static_cast<std::int64_t>(v)};
  } else if constexpr (std::is_floating_point_v<D>) {
    return AttributeValue{static_cast<double>(v)};
  } else {
    return AttributeValue{std::string(std::string_view(std::forward<V>(v)))};
  }
}

/// Something that happened during a span, with its time. A plain value.
struct SpanEvent {
  std::string name;
  std::int64_t time_unix_nano = 0;
  std::vector<Attribute> attributes;
};

/// A finished span as exporters receive it. A plain value.
struct SpanData {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  ///< invalid for a root span
  std::uint8_t flags = 0x01U;
  std::string trace_state;
  std::string name;
  SpanKind kind = SpanKind::internal;
  std::int64_t start_unix_nano = 0;
  std::int64_t end_unix_nano = 0;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  std::uint32_t dropped_events = 0;  ///< events past the tracer's per-span limit
  StatusCode status = StatusCode::unset;
  std::string status_message;

  /// The attribute called `key`, or null.
  [[nodiscard]] const AttributeValue* attribute(std::string_view key) const noexcept;
};

}  // namespace weir::telemetry
