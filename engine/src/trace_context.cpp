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
  c.trace_state = std::string(trace_state);
  return c;
}

std::string format_traceparent(const TraceContext& ctx) {
  std::string s = "00-" + ctx.trace_id.hex() + "-" + ctx.span_id.hex() + "-";
  s += hex_digits[ctx.flags >> 4];
  s += hex_digits[ctx.flags & 0x0f];
  return s;
}

}  // namespace weir
