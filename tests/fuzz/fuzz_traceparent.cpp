// Fuzz target: W3C trace context parsing (parse_traceparent with its tracestate). The input is the
// traceparent header, a newline, and the tracestate header. Checks, against an independent reading
// of the W3C Trace Context grammar, that
// - a traceparent is accepted exactly when it is well formed, and then gives the ids and flags
//   written in it, and format_traceparent writes it back (as version 00) so that it parses the same;
// - the trace state kept is a valid tracestate of at most 512 characters: the one received when it
//   is valid and fits, nothing when it is invalid, and a subset of its members when it is too long.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weir/trace_context.hpp>

#include "fuzz_check.hpp"

namespace {

bool lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zeros(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

bool well_formed_traceparent(std::string_view h) {
  if (h.size() < 55 || !lower_hex(h.substr(0, 2)) || h.substr(0, 2) == "ff") return false;
  if (h.substr(0, 2) == "00" ? h.size() != 55 : (h.size() > 55 && h[55] != '-')) return false;
  if (h[2] != '-' || h[35] != '-' || h[52] != '-') return false;
  const auto trace = h.substr(3, 32);
  const auto span = h.substr(36, 16);
  return lower_hex(trace) && !all_zeros(trace) && lower_hex(span) && !all_zeros(span) &&
         lower_hex(h.substr(53, 2));
}

// tracestate (W3C Trace Context, 3.3.1): list-members "key=value" separated by commas with optional
// spaces and tabs; empty members allowed; at most 32 members; no key twice.
bool lcalpha(char c) {
  return c >= 'a' && c <= 'z';
}
bool digit(char c) {
  return c >= '0' && c <= '9';
}
bool key_rest(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
  });
}
bool valid_key(std::string_view k) {
  const auto at = k.find('@');
  if (at == std::string_view::npos)
    return !k.empty() && k.size() <= 256 && lcalpha(k[0]) && key_rest(k.substr(1));
  const auto tenant = k.substr(0, at);
  const auto system = k.substr(at + 1);
  return !tenant.empty() && tenant.size() <= 241 && (lcalpha(tenant[0]) || digit(tenant[0])) &&
         key_rest(tenant.substr(1)) && !system.empty() && system.size() <= 14 && lcalpha(system[0]) &&
         key_rest(system.substr(1));
}
bool valid_value(std::string_view v) {
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  return std::all_of(v.begin(), v.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

/// The members of a valid tracestate, or none when it is not valid.
std::optional<std::vector<std::string_view>> members_of(std::string_view state) {
  std::vector<std::string_view> members;
  std::vector<std::string_view> keys;
  std::size_t pos = 0;
  while (true) {
    std::size_t end = state.find(',', pos);
    if (end == std::string_view::npos) end = state.size();
    std::string_view m = state.substr(pos, end - pos);
    while (!m.empty() && (m.front() == ' ' || m.front() == '\t')) m.remove_prefix(1);
    while (!m.empty() && (m.back() == ' ' || m.back() == '\t')) m.remove_suffix(1);
    if (!m.empty()) {
      const auto eq = m.find('=');
      if (eq == std::string_view::npos || !valid_key(m.substr(0, eq)) || !valid_value(m.substr(eq + 1)))
        return std::nullopt;
      if (std::find(keys.begin(), keys.end(), m.substr(0, eq)) != keys.end()) return std::nullopt;
      keys.push_back(m.substr(0, eq));
      members.push_back(m);
    }
    if (end == state.size()) break;
    pos = end + 1;
  }
  if (members.size() > 32) return std::nullopt;
  return members;
}

void check_trace_state(std::string_view received, const std::string& kept) {
  const auto in = members_of(received);
  if (!in) {
    WEIR_FUZZ_CHECK(kept.empty(), kept);
    return;
  }
  if (received.size() <= 512) {
    WEIR_FUZZ_CHECK(kept == received, kept);
    return;
  }
  WEIR_FUZZ_CHECK(kept.size() <= 512, kept);
  const auto out = members_of(kept);
  WEIR_FUZZ_CHECK(out.has_value(), kept);
  for (const auto m : *out) WEIR_FUZZ_CHECK(std::find(in->begin(), in->end(), m) != in->end(), m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = text.find('\n');
  const std::string_view header = text.substr(0, newline);
  const std::string_view state =
      newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);

  const auto ctx = weir::parse_traceparent(header, state);
  WEIR_FUZZ_CHECK(ctx.has_value() == well_formed_traceparent(header), header);
  if (!ctx) return 0;
  WEIR_FUZZ_CHECK(ctx->valid());
  WEIR_FUZZ_CHECK(ctx->trace_id.hex() == header.substr(3, 32), header);
  WEIR_FUZZ_CHECK(ctx->span_id.hex() == header.substr(36, 16), header);
  WEIR_FUZZ_CHECK(ctx->flags == std::stoi(std::string(header.substr(53, 2)), nullptr, 16), header);
  check_trace_state(state, ctx->trace_state);

  const std::string written = weir::format_traceparent(*ctx);
  WEIR_FUZZ_CHECK(written == "00" + std::string(header.substr(2, 53)), written);
  const auto again = weir::parse_traceparent(written, ctx->trace_state);
  WEIR_FUZZ_CHECK(again.has_value() && *again == *ctx, written);
  return 0;
}
