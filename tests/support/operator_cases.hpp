#pragma once
// Settings and seeded random inputs shared by the operator tests, which compare each operator with a
// plain C++ reference at parallelism 1, 2, 3 and 8 and batch sizes 1, 7, 256 and the default.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#include <weir/weir.hpp>

namespace weir_test {

/// One setting of an operator test: the stage's parallelism (the partition count of a keyed stage)
/// and the pipeline's batch size (0: the default).
struct Setting {
  int parallelism = 1;
  std::size_t batch = 0;
  std::size_t index = 0;  ///< the setting's place in settings(), to vary the input size with it

  [[nodiscard]] weir::PipelineOptions options() const {
    weir::PipelineOptions o;
    o.batch_size = batch;
    return o;
  }
  /// For CAPTURE/INFO: "parallelism 3, batch 7".
  [[nodiscard]] std::string str() const {
    std::ostringstream os;
    os << "parallelism " << parallelism << ", batch " << batch;
    return os.str();
  }
};

/// Every pair of parallelism 1, 2, 3, 8 and batch size 1, 7, 256, 0 (the default).
inline std::vector<Setting> settings() {
  std::vector<Setting> v;
  for (const int par : {1, 2, 3, 8}) {
    for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{256}, std::size_t{0}})
      v.push_back(Setting{par, batch, v.size()});
  }
  return v;
}

/// The seeds the operator tests run with.
inline constexpr std::uint64_t seeds[] = {11, 12};

/// An input size for `seed` at `s`: every size of {0, 1, 17, 500, 3000} comes up across the
/// settings of each seed (at most 1000 with one-item batches, to keep the run short).
inline std::size_t input_size(std::uint64_t seed, const Setting& s) {
  static constexpr std::size_t sizes[] = {0, 1, 17, 500, 3000};
  const std::size_t n = sizes[(s.index + seed) % std::size(sizes)];
  return s.batch == 1 ? std::min<std::size_t>(n, 1000) : n;
}

/// A generator seeded from the test's seed and setting.
inline std::mt19937_64 rng_for(std::uint64_t seed, const Setting& s) {
  return std::mt19937_64{seed * 1'000'003 + s.index};
}

/// `n` random integers in [lo, hi].
inline std::vector<std::int64_t> random_ints(std::mt19937_64& rng, std::size_t n, std::int64_t lo,
                                             std::int64_t hi) {
  std::uniform_int_distribution<std::int64_t> d(lo, hi);
  std::vector<std::int64_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

/// `v` sorted: what a parallel stage's output is compared by, since it keeps no order.
template <class T>
std::vector<T> sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// Runs `p` and returns the PipelineError it throws, or nothing when the run completes.
inline std::optional<weir::PipelineError> run_failing(weir::Pipeline& p) {
  try {
    (void)p.run();
  } catch (const weir::PipelineError& e) {
    return e;
  }
  return std::nullopt;
}

}  // namespace weir_test
