// The OTLP/HTTP JSON encoding of spans (ExportTraceServiceRequest); see docs/tracing.md.
#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "weir/telemetry/exporters/otlp.hpp"

#ifndef WEIR_VERSION
#define WEIR_VERSION "unknown"
#endif

namespace weir::telemetry {

namespace {

// One writer appends the whole request body to a string: no JSON tree is built. nlohmann::json is
// used only where its output is the reference: escaping strings that are not plain ASCII (with
// invalid UTF-8 replaced) and the shortest round-trip form of a double.

/// Appends `s` as a JSON string. Printable ASCII without `"` or `\` is copied as is; anything else
/// (control characters, non-ASCII, invalid UTF-8, replaced by U+FFFD) goes through nlohmann's
/// escaping.
void put_string(std::string& out, std::string_view s) {
  bool plain = true;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

template <class Int>
void put_int(std::string& out, Int v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// A decimal integer as a JSON string (OTLP JSON's 64-bit integers).
void put_int_string(std::string& out, std::int64_t v) {
  out += '"';
  put_int(out, v);
  out += '"';
}

template <std::size_t N>
void put_hex(std::string& out, const std::array<std::uint8_t, N>& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  char buf[2 * N + 2];
  buf[0] = '"';
  for (std::size_t i = 0; i < N; ++i) {
    buf[1 + 2 * i] = digits[bytes[i] >> 4U];
    buf[2 + 2 * i] = digits[bytes[i] & 0x0fU];
  }
  buf[2 * N + 1] = '"';
  out.append(buf, sizeof buf);
}

void put_value(std::string& out, const AttributeValue& v) {
  std::visit(
      [&](const auto& x) {
        using V = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<V, std::string>) {
          out += "{\"stringValue\":";
          put_string(out, x);
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          out += "{\"intValue\":";
          put_int_string(out, x);
        } else if constexpr (std::is_same_v<V, double>) {
          out += "{\"doubleValue\":";
          out += nlohmann::json(x).dump();  // nlohmann's shortest round-trip form (and null for NaN, inf)
        } else {
          out += x ? "{\"boolValue\":true" : "{\"boolValue\":false";
        }
      },
      v);
  out += '}';
}

void put_attributes(std::string& out, const std::vector<Attribute>& attrs) {
  out += '[';
  bool first = true;
  for (const auto& a : attrs) {
    if (!first) out += ',';
    first = false;
    out += "{\"key\":";
    put_string(out, a.key);
    out += ",\"value\":";
    put_value(out, a.value);
    out += '}';
  }
  out += ']';
}

void put_span(std::string& out, const SpanData& s) {
  out += "{\"traceId\":";
  put_hex(out, s.trace_id.bytes);
  out += ",\"spanId\":";
  put_hex(out, s.span_id.bytes);
  out += ",\"name\":";
  put_string(out, s.name);
  out += ",\"kind\":";
  put_int(out, static_cast<int>(s.kind));
  out += ",\"startTimeUnixNano\":";
  put_int_string(out, s.start_unix_nano);
  out += ",\"endTimeUnixNano\":";
  put_int_string(out, s.end_unix_nano);
  out += ",\"flags\":";
  put_int(out, static_cast<int>(s.flags));
  if (s.parent_span_id.valid()) {
    out += ",\"parentSpanId\":";
    put_hex(out, s.parent_span_id.bytes);
  }
  if (!s.trace_state.empty()) {
    out += ",\"traceState\":";
    put_string(out, s.trace_state);
  }
  out += ",\"attributes\":";
  put_attributes(out, s.attributes);
  if (!s.events.empty()) {
    out += ",\"events\":[";
    bool first = true;
    for (const auto& e : s.events) {
      if (!first) out += ',';
      first = false;
      out += "{\"timeUnixNano\":";
      put_int_string(out, e.time_unix_nano);
      out += ",\"name\":";
      put_string(out, e.name);
      out += ",\"attributes\":";
      put_attributes(out, e.attributes);
      out += '}';
    }
    out += ']';
  }
  if (s.dropped_events != 0) {
    out += ",\"droppedEventsCount\":";
    put_int(out, s.dropped_events);
  }
  out += ",\"status\":{\"code\":";
  put_int(out, static_cast<int>(s.status));
  if (!s.status_message.empty()) {
    out += ",\"message\":";
    put_string(out, s.status_message);
  }
  out += "}}";
}

std::vector<Attribute> resource_attributes(const Resource& resource) {
  std::vector<Attribute> res{
      {"service.name", resource.service_name},
      {"service.version",
       resource.service_version.empty() ? std::string(WEIR_VERSION) : resource.service_version}};
  res.insert(res.end(), resource.attributes.begin(), resource.attributes.end());
  return res;
}

}  // namespace

void append_otlp_json(std::string& out, std::span<const SpanData> spans, const Resource& resource) {
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":";
  put_attributes(out, resource_attributes(resource));
  out += "},\"scopeSpans\":[{\"scope\":{\"name\":\"weir\",\"version\":";
  put_string(out, WEIR_VERSION);
  out += "},\"spans\":[";
  bool first = true;
  for (const auto& s : spans) {
    if (!first) out += ',';
    first = false;
    put_span(out, s);
  }
  out += "]}]}]}";
}

std::string otlp_json(std::span<const SpanData> spans, const Resource& resource) {
  std::string out;
  append_otlp_json(out, spans, resource);
  return out;
}

}  // namespace weir::telemetry
