#pragma once
/// \file W3C Trace Context: trace and span ids, `traceparent` parsing and formatting.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weir {

/// A 16-byte W3C trace id; all zeros means "none". A plain value.
struct TraceId {
  std::array<std::uint8_t, 16> bytes{};
  [[nodiscard]] bool valid() const noexcept;
  /// 32 lowercase hex digits.
  [[nodiscard]] std::string hex() const;
  /// A random, valid id (a per-thread generator; thread-safe).
  [[nodiscard]] static TraceId random() noexcept;
  /// Parses 32 lowercase hex digits; none for anything else (all zeros included).
  [[nodiscard]] static std::optional<TraceId> from_hex(std::string_view s) noexcept;
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

/// An 8-byte W3C span (parent) id; all zeros means "none". A plain value.
struct SpanId {
  std::array<std::uint8_t, 8> bytes{};
  [[nodiscard]] bool valid() const noexcept;
  /// 16 lowercase hex digits.
  [[nodiscard]] std::string hex() const;
  /// A random, valid id (a per-thread generator; thread-safe).
  [[nodiscard]] static SpanId random() noexcept;
  /// Parses 16 lowercase hex digits; none for anything else (all zeros included).
  [[nodiscard]] static std::optional<SpanId> from_hex(std::string_view s) noexcept;
  friend bool operator==(const SpanId&, const SpanId&) = default;
};

/// The context a span passes on: trace id, span id, trace flags and the vendor `tracestate`, carried
/// through unchanged. A plain value; default-constructed it is invalid (no trace).
struct TraceContext {
  TraceId trace_id;
  SpanId span_id;
  std::uint8_t flags = 0;   ///< bit 0: sampled
  std::string trace_state;  ///< the `tracestate` header as received, if valid (see parse_traceparent)

  [[nodiscard]] bool valid() const noexcept { return trace_id.valid() && span_id.valid(); }
  [[nodiscard]] bool sampled() const noexcept { return (flags & 0x01U) != 0; }
  /// A context in the same trace, with a new span id and the same flags and trace state.
  [[nodiscard]] TraceContext child() const;
  /// A new root: a random trace id and span id, flags as given.
  [[nodiscard]] static TraceContext root(std::uint8_t flags = 0x01U);

  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

/// Parses a `traceparent` header (version 00, or a later version read as 00 as the W3C
/// specification asks); none when it is malformed: wrong length or separators, upper-case or
/// non-hex digits, an all-zero trace or span id, or version ff. `trace_state` (the `tracestate`
/// header) is kept as given when it is a valid W3C tracestate (at most 32 `key=value` members of
/// the specification's characters, no key twice) of at most 512 characters; a longer valid one keeps
/// its members, joined by commas, without those over 128 characters and then without the last ones
/// until it fits in 512; an invalid one (a line break or a byte outside printable ASCII, say) is
/// dropped, and the `traceparent` still counts.
[[nodiscard]] std::optional<TraceContext> parse_traceparent(std::string_view traceparent,
                                                            std::string_view trace_state = {});

/// Formats `ctx` as a version-00 `traceparent` header: `00-<trace id>-<span id>-<flags>`.
[[nodiscard]] std::string format_traceparent(const TraceContext& ctx);

}  // namespace weir
