#pragma once
/// \file SpanProcessor, the interface a Tracer hands finished spans to, and BatchSpanProcessor, which
/// queues them on bounded per-thread rings and exports them from a thread of its own, so that a slow
/// or unreachable collector never blocks a pipeline: a full queue drops spans and counts them. Part
/// of the tracing SDK.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "weir/telemetry/sdk/span_exporter.hpp"
#include "weir/telemetry/span_data.hpp"
#include "weir/telemetry/structured_logger.hpp"

namespace weir::telemetry {

/// What a processor did so far. A plain value.
struct SpanStats {
  std::uint64_t exported = 0;            ///< spans the exporter accepted
  std::uint64_t dropped_queue_full = 0;  ///< spans that found their queue full (or the processor shut down)
  std::uint64_t dropped_export_failed = 0;  ///< spans whose export failed for good
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_queue_full + dropped_export_failed; }
};

/// Receives spans as they end. Thread-safe: `make_span_data` and `on_end` are called on any thread,
/// concurrently.
class SpanProcessor {
 public:
  virtual ~SpanProcessor() = default;
  /// Storage for a sampled span that starts on the calling thread; the tracer resets every field
  /// (it reuses the attribute list's elements and trims the unused ones when the span ends) before
  /// the span comes back through `on_end`. The default allocates a new SpanData; a processor may
  /// hand out the storage of spans it has exported, to save allocations.
  [[nodiscard]] virtual std::unique_ptr<SpanData> make_span_data() { return std::make_unique<SpanData>(); }
  /// Takes a finished span; never blocks.
  virtual void on_end(std::unique_ptr<SpanData> span) noexcept = 0;
  /// Exports every span ended before the call; false when `timeout` passed first.
  virtual bool force_flush(std::chrono::milliseconds timeout) = 0;
  /// Flushes (within `timeout`), stops the export thread and the exporter; later spans are dropped.
  virtual bool shutdown(std::chrono::milliseconds timeout) = 0;
  [[nodiscard]] virtual SpanStats stats() const noexcept = 0;
};

/// Settings of a BatchSpanProcessor. A plain value.
struct BatchSpanProcessorOptions {
  /// Spans waiting for export, per recording thread; more are dropped and counted.
  std::size_t max_queue_size = 2048;
  std::size_t max_export_batch_size = 512;  ///< spans per export call; this many queued wake the thread
  std::chrono::milliseconds schedule_delay{1000};  ///< the thread exports at least this often
  /// Where the warning about failed exports goes.
  StructuredLogger logger = StructuredLogger(stderr_logger());
};

/// Queues finished spans on a bounded single-producer ring per recording thread and exports them
/// from a thread of its own every `schedule_delay` or as soon as a thread has ended
/// `max_export_batch_size` more. A full ring drops the span and counts it; a failed export drops
/// its spans, counts them and logs a warning (at most one every 10 s). Exported spans' storage is
/// reused for later spans of the same thread. Thread-safe.
class BatchSpanProcessor final : public SpanProcessor {
 public:
  explicit BatchSpanProcessor(std::shared_ptr<SpanExporter> exporter, BatchSpanProcessorOptions options = {});
  /// Shuts down with a 5 s timeout when not shut down yet (an export request in progress still
  /// finishes).
  ~BatchSpanProcessor() override;
  BatchSpanProcessor(const BatchSpanProcessor&) = delete;
  BatchSpanProcessor& operator=(const BatchSpanProcessor&) = delete;

  [[nodiscard]] std::unique_ptr<SpanData> make_span_data() override;
  void on_end(std::unique_ptr<SpanData> span) noexcept override;
  bool force_flush(std::chrono::milliseconds timeout) override;
  bool shutdown(std::chrono::milliseconds timeout) override;
  [[nodiscard]] SpanStats stats() const noexcept override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir::telemetry
