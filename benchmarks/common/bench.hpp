// Header-only helpers shared by every benchmark scenario: timing, result
// lines, memory figures, percentiles, command-line options and a sink the
// optimiser cannot see through.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace weir::bench {

// ---------------------------------------------------------------- time ----

/// Current steady_clock time in nanoseconds since the clock's epoch; thread safe.
[[nodiscard]] inline std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Measures wall time on the steady clock from construction or the last
/// restart(); one owner, not thread safe.
class Stopwatch {
 public:
  Stopwatch() noexcept : start_{Clock::now()} {}

  void restart() noexcept { start_ = Clock::now(); }

  [[nodiscard]] double seconds() const noexcept {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

  [[nodiscard]] std::int64_t nanoseconds() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
};

/// Measures the CPU time (user + system) of every thread of this process from
/// construction, on CLOCK_PROCESS_CPUTIME_ID; on a machine shared with other
/// work it shows the cost of a run better than wall time. One owner, not
/// thread safe.
class CpuStopwatch {
 public:
  CpuStopwatch() noexcept : start_{now()} {}

  /// CPU seconds since construction; negative when the clock is unavailable.
  [[nodiscard]] double seconds() const noexcept {
    const double end = now();
    return end < 0.0 || start_ < 0.0 ? -1.0 : end - start_;
  }

 private:
  static double now() noexcept {
    timespec ts{};
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) {
      return -1.0;
    }
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  double start_;
};

// ------------------------------------------------------ do_not_optimize ----

/// Makes the compiler believe `value` is read (and, for a non-const lvalue,
/// possibly changed), so the computation producing it cannot be removed.
template <class T>
inline void do_not_optimize(T& value) noexcept {
  if constexpr (std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(void*)) {
    asm volatile("" : "+r"(value) : : "memory");
  } else {
    asm volatile("" : "+m"(value) : : "memory");
  }
}

/// Read-only form of do_not_optimize for const values and temporaries.
template <class T>
inline void do_not_optimize(const T& value) noexcept {
  asm volatile("" : : "m"(value) : "memory");
}

/// Compiler barrier: every pending memory write is considered observed.
inline void clobber_memory() noexcept {
  asm volatile("" : : : "memory");
}

// --------------------------------------------------------------- random ----

/// SplitMix64: a small, fast generator whose output is the same on every
/// platform and library, so generated inputs are fixed by their seed. One
/// owner, not thread safe.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_{seed} {}

  [[nodiscard]] std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  /// A number in [0, n) for 0 < n <= 2^32, by multiply-shift of the high 32 bits.
  [[nodiscard]] std::uint64_t below(std::uint64_t n) noexcept { return ((next() >> 32) * n) >> 32; }

  /// A double in [0, 1).
  [[nodiscard]] double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

// --------------------------------------------------------------- memory ----

namespace detail {

/// Value of a "Key:   123 kB" line of /proc/self/status in bytes, or -1.
[[nodiscard]] inline std::int64_t proc_status_bytes(std::string_view key) {
  std::ifstream status{"/proc/self/status"};
  std::string line;
  while (std::getline(status, line)) {
    if (line.size() <= key.size() || line.compare(0, key.size(), key) != 0 || line[key.size()] != ':') {
      continue;
    }
    const char* first = line.data() + key.size() + 1;
    const char* last = line.data() + line.size();
    while (first != last && (*first == ' ' || *first == '\t')) {
      ++first;
    }
    std::int64_t kib = 0;
    const auto [ptr, ec] = std::from_chars(first, last, kib);
    if (ec != std::errc{} || ptr == first) {
      return -1;
    }
    return kib * 1024;
  }
  return -1;
}

}  // namespace detail

/// Resident set size of this process now (VmRSS), in bytes; -1 when unknown.
[[nodiscard]] inline std::int64_t current_rss_bytes() {
  return detail::proc_status_bytes("VmRSS");
}

/// Peak resident set size of this process (VmHWM), in bytes; -1 when unknown.
/// Process-wide: it covers everything run before unless reset_peak_rss() worked.
[[nodiscard]] inline std::int64_t peak_rss_bytes() {
  return detail::proc_status_bytes("VmHWM");
}

/// Resets VmHWM to the current RSS by writing "5" to /proc/self/clear_refs
/// (Linux >= 4.0). Returns false when the kernel refused or the file is absent.
inline bool reset_peak_rss() {
  std::ofstream clear_refs{"/proc/self/clear_refs"};
  if (!clear_refs) {
    return false;
  }
  clear_refs << '5';
  clear_refs.flush();
  return static_cast<bool>(clear_refs);
}

/// Hands the allocator's free memory back and merges its free lists (glibc's
/// malloc_trim), so that a variant does not pay, inside its timed run, for
/// the memory the previous one freed (a million freed hash-map nodes make the
/// next large allocation walk them all). A no-op on other C libraries.
inline void release_free_memory() noexcept {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

// ---------------------------------------------------------- percentiles ----

/// Nearest-rank percentile `p` (0..100) of `samples`; T{} for an empty input.
/// Takes a copy so the caller's order is kept.
template <class T>
[[nodiscard]] T percentile(std::vector<T> samples, double p) {
  if (samples.empty()) {
    return T{};
  }
  const auto n = samples.size();
  const double clamped = std::clamp(p, 0.0, 100.0);
  // Rank in 1..n: ceil(p/100 * n), at least 1.
  auto rank = static_cast<std::size_t>(clamped / 100.0 * static_cast<double>(n));
  if (static_cast<double>(rank) < clamped / 100.0 * static_cast<double>(n)) {
    ++rank;
  }
  rank = std::clamp<std::size_t>(rank, 1, n);
  const auto nth = samples.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(samples.begin(), nth, samples.end());
  return *nth;
}

// ---------------------------------------------------------- result line ----

/// One result: a flat JSON object printed as one line on stdout, fields in the
/// order they were added. Non-finite doubles print as null. Not thread safe.
class JsonLine {
 public:
  JsonLine(std::string_view scenario, std::string_view variant) {
    add("scenario", scenario);
    add("variant", variant);
  }

  JsonLine& add(std::string_view key, std::string_view value) {
    object_[std::string{key}] = std::string{value};
    return *this;
  }

  JsonLine& add(std::string_view key, const char* value) { return add(key, std::string_view{value}); }

  template <class T>
  requires std::is_arithmetic_v<T> JsonLine& add(std::string_view key, T value) {
    object_[std::string{key}] = value;
    return *this;
  }

  /// Adds items, seconds and items_per_second (items / seconds).
  JsonLine& add_throughput(std::uint64_t items, double seconds) {
    add("items", items);
    add("seconds", seconds);
    add("items_per_second", seconds > 0.0 ? static_cast<double>(items) / seconds : 0.0);
    return *this;
  }

  [[nodiscard]] std::string str() const { return object_.dump(); }

  /// Writes the line to stdout and flushes, so partial runs still leave results.
  void print() const { std::cout << str() << '\n' << std::flush; }

 private:
  nlohmann::ordered_json object_ = nlohmann::ordered_json::object();
};

/// Writes one human-readable line to stderr, prefixed with the scenario.
inline void log(std::string_view scenario, std::string_view message) {
  std::cerr << "[bench_" << scenario << "] " << message << '\n';
}

// -------------------------------------------------------------- options ----

/// Command-line options common to every benchmark executable.
struct Options {
  bool quick = false;  ///< --quick: smaller workload, whole run well under 15 s
  int repeat = 1;      ///< --repeat K: run every variant K times (one line each)
  /// --only NAME (repeatable): run only these competitors, besides the reference every scenario
  /// runs first (empty: all).
  std::vector<std::string> only;

  /// Whether the competitor `name` runs.
  [[nodiscard]] bool selected(std::string_view name) const {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  }
};

/// The shortest timed run worth reporting: below it, timer and scheduler noise swing a ratio by
/// tens of percent. A scenario whose fastest variant finishes sooner repeats that variant's work
/// within one measurement until it has run this long (not with --quick).
inline constexpr double min_timed_seconds = 0.5;

namespace detail {

[[noreturn]] inline void usage_and_exit(std::string_view scenario, int code) {
  (code == 0 ? std::cout : std::cerr)
      << "usage: bench_" << scenario << " [--quick] [--repeat K]\n"
      << "  --quick       smaller workload (whole run well under 15 s)\n"
      << "  --repeat K    run every variant K times, one JSON line per run (default 1)\n"
      << "  --only NAME   run only this competitor besides the reference (repeatable)\n"
      << "Results go to stdout as one JSON object per line; logs go to stderr.\n";
  std::exit(code);
}

[[nodiscard]] inline bool parse_repeat(std::string_view text, int& out) {
  int value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size() || value < 1) {
    return false;
  }
  out = value;
  return true;
}

}  // namespace detail

/// Parses --quick, --repeat K (or --repeat=K) and --help; prints usage and
/// exits with status 2 on anything else.
[[nodiscard]] inline Options parse_args(int argc, char** argv, std::string_view scenario) {
  Options options;
  std::vector<std::string_view> args;
  for (int i = 1; i < argc; ++i) {
    args.emplace_back(argv[i]);
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--help" || arg == "-h") {
      detail::usage_and_exit(scenario, 0);
    } else if (arg == "--repeat") {
      if (i + 1 >= args.size() || !detail::parse_repeat(args[i + 1], options.repeat)) {
        std::cerr << "bench_" << scenario << ": --repeat needs a positive integer\n";
        detail::usage_and_exit(scenario, 2);
      }
      ++i;
    } else if (arg == "--only" || arg.starts_with("--only=")) {
      const bool split = arg == "--only";
      if (split && i + 1 >= args.size()) {
        std::cerr << "bench_" << scenario << ": --only needs a competitor name\n";
        detail::usage_and_exit(scenario, 2);
      }
      options.only.emplace_back(split ? args[++i] : arg.substr(7));
    } else if (arg.starts_with("--repeat=")) {
      if (!detail::parse_repeat(arg.substr(9), options.repeat)) {
        std::cerr << "bench_" << scenario << ": --repeat needs a positive integer\n";
        detail::usage_and_exit(scenario, 2);
      }
    } else {
      std::cerr << "bench_" << scenario << ": unknown argument '" << arg << "'\n";
      detail::usage_and_exit(scenario, 2);
    }
  }
  return options;
}

}  // namespace weir::bench
