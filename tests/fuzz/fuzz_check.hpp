// What the fuzz targets share: a check that stops the run with a message (libFuzzer then saves the
// input), and small predicates on text.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace weir_fuzz {

/// Prints `what` (and `detail`, escaped) and aborts, which libFuzzer reports as a crash.
[[noreturn]] inline void fail(const char* file, int line, const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
  if (!detail.empty()) {
    std::string shown;
    for (const char c : detail.substr(0, 512)) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20 || byte >= 0x7f) {
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02x", byte);
        shown += hex;
      } else {
        shown += c;
      }
    }
    std::fprintf(stderr, "  detail: %s\n", shown.c_str());
  }
  std::abort();
}

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
/// U+10FFFF).
inline bool is_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned min = 0;
    unsigned cp = 0;
    if ((b0 & 0xe0U) == 0xc0U) {
      n = 1, min = 0x80, cp = b0 & 0x1fU;
    } else if ((b0 & 0xf0U) == 0xe0U) {
      n = 2, min = 0x800, cp = b0 & 0x0fU;
    } else if ((b0 & 0xf8U) == 0xf0U) {
      n = 3, min = 0x10000, cp = b0 & 0x07U;
    } else {
      return false;
    }
    if (text.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xc0U) != 0x80U) return false;
      cp = (cp << 6U) | (b & 0x3fU);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

/// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by
/// `replacement`.
inline std::string to_utf8(std::string_view text, std::string_view replacement = "?") {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t n = 1;
    while (n <= 4 && i + n <= text.size() && !is_utf8(text.substr(i, n))) ++n;
    if (n <= 4 && i + n <= text.size()) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += replacement;
      ++i;
    }
  }
  return out;
}

/// The deepest nesting of '[' and '{' in `text` outside JSON strings. The checks compare parsed JSON
/// values, which recurses, only for texts nested at most a few hundred levels.
inline std::size_t nesting_depth(std::string_view text) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

/// Nesting the checks compare values at (see nesting_depth).
inline constexpr std::size_t max_compared_depth = 256;

/// True when `text` has no line break or other control byte (what a one-line message promises).
inline bool is_one_line(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return false;
  }
  return true;
}

}  // namespace weir_fuzz

/// Checks `cond`; on failure prints it (and the optional detail text) and aborts.
#define WEIR_FUZZ_CHECK(cond, ...)                                                        \
  do {                                                                                    \
    if (!(cond)) ::weir_fuzz::fail(__FILE__, __LINE__, #cond __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)
