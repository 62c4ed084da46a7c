#include "weir/trace_context.hpp"

#include <chrono>
#include <functional>
#include <random>
#include <thread>

namespace weir {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

std::uint64_t next_random() noexcept {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    std::seed_seq seq{rd(),
                      rd(),
                      rd(),
                      rd(),
                      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()),
                      static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id()))};
    return std::mt19937_64{seq};
  }()};
  return gen();
}

template <std::size_t N>
void fill_random(std::array<std::uint8_t, N>& bytes) noexcept {
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      const std::uint64_t r = next_random();
      for (std::size_t j = 0; j < 8 && i + j < N; ++j) bytes[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
    }
  } while (bytes == std::array<std::uint8_t, N>{});
}

template <std::size_t N>
std::string to_hex(const std::array<std::uint8_t, N>& bytes) {
  std::string s(2 * N, '0');
  for (std::size_t i = 0; i < N; ++i) {
    s[2 * i] = hex_digits[bytes[i] >> 4];
    s[2 * i + 1] = hex_digits[bytes[i] & 0x0f];
  }
  return s;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is not allowed by the W3C specification
}

template <std::size_t N>
bool from_hex_into(std::string_view s, std::array<std::uint8_t, N>& bytes) noexcept {
  if (s.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = hex_value(s[2 * i]);
    const int lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return bytes != std::array<std::uint8_t, N>{};
}

// tracestate (W3C Trace Context): list-members `key=value`, separated by commas with optional
// spaces and tabs around them; empty members are allowed.

constexpr std::size_t max_trace_state_members = 32;
constexpr std::size_t max_trace_state_size = 512;  // what the specification asks to propagate
constexpr std::size_t long_trace_state_member = 128;

bool is_lcalpha(char c) noexcept {
  return c >= 'a' && c <= 'z';
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
/// The characters of a key after its first: lcalpha, DIGIT, '_', '-', '*', '/'.
bool is_key_tail(std::string_view s) noexcept {
  for (const char c : s) {
    if (!is_lcalpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '*' && c != '/') return false;
  }
  return true;
}
/// simple-key = lcalpha 0*255(key char); multi-tenant-key = tenant-id "@" system-id with
/// tenant-id = (lcalpha / DIGIT) 0*240(key char) and system-id = lcalpha 0*13(key char).
bool is_trace_state_key(std::string_view k) noexcept {
  const std::size_t at = k.find('@');
  if (at == std::string_view::npos)
    return !k.empty() && k.size() <= 256 && is_lcalpha(k[0]) && is_key_tail(k.substr(1));
  const std::string_view tenant = k.substr(0, at);
  const std::string_view system = k.substr(at + 1);
  return !tenant.empty() && tenant.size() <= 241 && (is_lcalpha(tenant[0]) || is_digit(tenant[0])) &&
         is_key_tail(tenant.substr(1)) && !system.empty() && system.size() <= 14 && is_lcalpha(system[0]) &&
         is_key_tail(system.substr(1));
}
/// value = 0*255(chr) nblk-chr: printable ASCII but ',' and '=', not ending in a space.
bool is_trace_state_value(std::string_view v) noexcept {
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  for (const char c : v) {
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
  }
  return true;
}

/// `state` as a trace state to keep: as received when it is a valid tracestate of at most 512
/// characters; when it is valid but longer, its members joined by commas, without those longer
/// than 128 characters and then without the last ones until it fits; empty when it is invalid.
std::string kept_trace_state(std::string_view state) {
  std::array<std::string_view, max_trace_state_members> members{};
  std::size_t count = 0;
  std::size_t pos = 0;
  while (true) {
    std::size_t end = state.find(',', pos);
    if (end == std::string_view::npos) end = state.size();
    std::string_view m = state.substr(pos, end - pos);
    while (!m.empty() && (m.front() == ' ' || m.front() == '\t')) m.remove_prefix(1);
    while (!m.empty() && (m.back() == ' ' || m.back() == '\t')) m.remove_suffix(1);
    if (!m.empty()) {
      const std::size_t eq = m.find('=');
      if (eq == std::string_view::npos || count == members.size()) return {};
      const std::string_view key = m.substr(0, eq);
      if (!is_trace_state_key(key) || !is_trace_state_value(m.substr(eq + 1))) return {};
      for (std::size_t i = 0; i < count; ++i) {
        if (members[i].substr(0, members[i].find('=')) == key) return {};  // a key twice
      }
      members[count++] = m;
    }
    if (end == state.size()) break;
    pos = end + 1;
  }
  if (state.size() <= max_trace_state_size) return std::string(state);
  const auto joined_size = [&] {
    std::size_t size = 0;
    for (std::size_t i = 0; i < count; ++i) size += members[i].size() + (i == 0 ? 0 : 1);
    return size;
  };
  std::size_t kept = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (members[i].size() <= long_trace_state_member) members[kept++] = members[i];
  }
  count = kept;
  while (count > 0 && joined_size() > max_trace_state_size) --count;
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i != 0) out += ',';
    out += members[i];
  }
  return out;
}

}  // namespace

bool TraceId::valid() const noexcept {
  return bytes != decltype(bytes){};
}
std::string TraceId::hex() const {
  return to_hex(bytes);
}
TraceId TraceId::random() noexcept {
  TraceId id;
  fill_random(id.bytes);
  return id;
}
std::optional<TraceId> TraceId::from_hex(std::string_view s) noexcept {
  TraceId id;
  if (!from_hex_into(s, id.bytes)) return std::nullopt;
  return id;
}

bool SpanId::valid() const noexcept {
  return bytes != decltype(bytes){};
}
std::string SpanId::hex() const {
  return to_hex(bytes);
}
SpanId SpanId::random() noexcept {
  SpanId id;
  fill_random(id.bytes);
  return id;
}
std::optional<SpanId> SpanId::from_hex(std::string_view s) noexcept {
  SpanId id;
  if (!from_hex_into(s, id.bytes)) return std::nullopt;
  return id;
}

TraceContext TraceContext::child() const {
  TraceContext c = *this;
  c.span_id = SpanId::random();
  return c;
}

TraceContext TraceContext::root(std::uint8_t flags) {
  TraceContext c;
  c.trace_id = TraceId::random();
  c.span_id = SpanId::random();
  c.flags = flags;
  return c;
}

std::optional<TraceContext> parse_traceparent(std::string_view h, std::string_view trace_state) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  constexpr std::size_t length = 55;
  if (h.size() < length) return std::nullopt;
  const int v_hi = hex_value(h[0]);
  const int v_lo = hex_value(h[1]);
  if (v_hi < 0 || v_lo < 0) return std::nullopt;
  const int version = (v_hi << 4) | v_lo;
  if (version == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append fields after a '-'.
  if (version == 0 && h.size() != length) return std::nullopt;
  if (h.size() > length && h[length] != '-') return std::nullopt;
  if (h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  TraceContext c;
  if (!from_hex_into(h.substr(3, 32), c.trace_id.bytes)) return std::nullopt;
  if (!from_hex_into(h.substr(36, 16), c.span_id.bytes)) return std::nullopt;
  const int f_hi = hex_value(h[53]);
  const int f_lo = hex_value(h[54]);
  if (f_hi < 0 || f_lo < 0) return std::nullopt;
  c.flags = static_cast<std::uint8_t>((f_hi << 4) | f_lo);
  c.trace_state = kept_trace_state(trace_state);
  return c;
}

std::string format_traceparent(const TraceContext& ctx) {
  std::string s = "00-" + ctx.trace_id.hex() + "-" + ctx.span_id.hex() + "-";
  s += hex_digits[ctx.flags >> 4];
  s += hex_digits[ctx.flags & 0x0f];
  return s;
}

}  // namespace weir
