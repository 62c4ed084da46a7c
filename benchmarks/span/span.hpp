// Scenario "span": what tracing costs. `weir` starts a span, sets three attributes, ends it and
// hands it to a BatchSpanProcessor (a no-op exporter behind it), one thread; `file_export` is the
// JSON-lines exporter's throughput on prepared spans.
#pragma once

#include <cstdint>

/// Spans per run: full and --quick.
inline constexpr std::uint64_t span_default_spans = 2'000'000;
inline constexpr std::uint64_t span_quick_spans = 200'000;
inline constexpr std::uint64_t span_export_default_spans = 1'000'000;
inline constexpr std::uint64_t span_export_quick_spans = 100'000;

/// Outcome of one run: spans handled, wall seconds, and how many the processor exported and dropped
/// (exported + dropped must equal spans).
struct SpanResult {
  std::uint64_t spans = 0;
  double seconds = 0;
  std::uint64_t exported = 0;
  std::uint64_t dropped = 0;
};

/// Starts, decorates and ends `n` spans (benchmarks/span/weir.cpp).
SpanResult run_weir_spans(std::uint64_t n);
/// Exports `n` prepared spans with the JSON-lines exporter in batches of 512.
SpanResult run_weir_file_export(std::uint64_t n);
