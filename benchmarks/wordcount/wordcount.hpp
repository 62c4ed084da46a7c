// Scenario "wordcount": lines of words drawn from a Zipf vocabulary -> split
// into words -> count per word. Every competitor splits with `Words` below
// and must produce the same counts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <ranges>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/bench.hpp"

/// The words of a line (separated by one or more spaces) as string_views into the line; a view.
class Words : public std::ranges::view_interface<Words> {
 public:
  class iterator {
   public:
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::forward_iterator_tag;

    iterator() = default;
    iterator(const char* first, const char* last) noexcept : last_{last} { seek(first); }

    std::string_view operator*() const noexcept {
      return {word_, static_cast<std::size_t>(word_end_ - word_)};
    }
    iterator& operator++() noexcept {
      seek(word_end_);
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.word_ == b.word_; }
    friend bool operator==(const iterator& a, std::default_sentinel_t) noexcept { return a.word_ == a.last_; }

   private:
    void seek(const char* p) noexcept {
      while (p != last_ && *p == ' ') {
        ++p;
      }
      word_ = p;
      while (p != last_ && *p != ' ') {
        ++p;
      }
      word_end_ = p;
    }
    const char* word_ = nullptr;
    const char* word_end_ = nullptr;
    const char* last_ = nullptr;
  };

  Words() = default;
  explicit Words(std::string_view line) noexcept : line_{line} {}
  [[nodiscard]] iterator begin() const noexcept { return {line_.data(), line_.data() + line_.size()}; }
  [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

 private:
  std::string_view line_;
};

inline constexpr std::size_t wordcount_vocabulary = 100'000;

/// The generated input: one text buffer and its lines (views into it), made before any timing.
struct WordcountInput {
  std::string text;
  std::vector<std::string_view> lines;
  std::uint64_t words = 0;
};

/// `words` words with a fixed seed: a vocabulary of 100'000 distinct random lowercase words of 2 to
/// 10 letters, drawn by a Zipf law of exponent 1 (the word of rank r with probability proportional
/// to 1/r), 1 to 20 words per line, separated by single spaces.
[[nodiscard]] inline WordcountInput make_wordcount_input(std::uint64_t words) {
  weir::bench::SplitMix64 rng{0x5eed'0002};
  std::vector<std::string> vocabulary;
  vocabulary.reserve(wordcount_vocabulary);
  std::unordered_set<std::string> seen;
  while (vocabulary.size() < wordcount_vocabulary) {
    std::string w(2 + rng.below(9), 'a');
    for (char& c : w) {
      c = static_cast<char>('a' + rng.below(26));
    }
    if (seen.insert(w).second) {
      vocabulary.push_back(std::move(w));
    }
  }
  std::vector<double> cdf(wordcount_vocabulary);
  double sum = 0.0;
  for (std::size_t r = 0; r < wordcount_vocabulary; ++r) {
    sum += 1.0 / static_cast<double>(r + 1);
    cdf[r] = sum;
  }
  for (double& c : cdf) {
    c /= sum;
  }

  WordcountInput in;
  in.words = words;
  in.text.reserve(words * 8);
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // offsets first: the text may grow
  for (std::uint64_t left = words; left > 0;) {
    const std::uint64_t count = std::min<std::uint64_t>(left, 1 + rng.below(20));
    const std::size_t begin = in.text.size();
    for (std::uint64_t k = 0; k < count; ++k) {
      const auto rank =
          static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), rng.unit()) - cdf.begin());
      if (k > 0) {
        in.text.push_back(' ');
      }
      in.text += vocabulary[std::min(rank, wordcount_vocabulary - 1)];
    }
    spans.emplace_back(begin, in.text.size() - begin);
    left -= count;
  }
  in.lines.reserve(spans.size());
  for (const auto& [begin, size] : spans) {
    in.lines.emplace_back(in.text.data() + begin, size);
  }
  return in;
}

/// The counts own their words (std::string; every generated word fits the small-string buffer).
using WordCounts = std::vector<std::pair<std::string, std::uint64_t>>;

/// Outcome of one run: input words, wall seconds of the run, and the count of every distinct word
/// (any order).
struct WordcountResult {
  std::uint64_t items;
  double seconds;
  double cpu_seconds;  ///< CPU time of the process during the run (every thread)
  WordCounts counts;
};

/// One loop on the calling thread into a std::unordered_map<std::string, std::uint64_t>, looked up
/// by string_view (a std::string is made only for a new word).
WordcountResult run_hand_loop(const WordcountInput& in);
/// The Weir pipeline (wordcount/weir.cpp).
WordcountResult run_weir(const WordcountInput& in);
