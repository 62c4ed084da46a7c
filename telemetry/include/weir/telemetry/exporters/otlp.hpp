#pragma once
/// \file OTLP/HTTP JSON: the encoding of spans as an ExportTraceServiceRequest (append_otlp_json, the
/// one encoder, which the JSON-lines exporter uses too) and OtlpHttpExporter, which POSTs it to a
/// collector with libcurl. See docs/tracing.md for the mapping.

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "weir/telemetry/otlp_endpoint.hpp"  // otlp_endpoint_error
#include "weir/telemetry/sdk/resource.hpp"
#include "weir/telemetry/sdk/span_exporter.hpp"
#include "weir/telemetry/span_data.hpp"
#include "weir/telemetry/structured_logger.hpp"
#include "weir/telemetry/trace.hpp"  // Headers

namespace weir::telemetry {

/// Appends `spans` as one OTLP/HTTP JSON request body (ExportTraceServiceRequest: resourceSpans ->
/// scopeSpans (scope "weir") -> spans) to `out`, written directly (no JSON tree); the exporters'
/// encoder. Reuse `out` across calls to avoid reallocating it. See docs/tracing.md for the mapping.
void append_otlp_json(std::string& out, std::span<const SpanData> spans, const Resource& resource);
/// The same body as a new string: `append_otlp_json` to an empty one.
[[nodiscard]] std::string otlp_json(std::span<const SpanData> spans, const Resource& resource);

/// Settings of an OtlpHttpExporter. A plain value.
struct OtlpHttpOptions {
  /// The collector's base URL; spans are POSTed to `<endpoint>/v1/traces`. Checked by the
  /// exporter's constructor (see otlp_endpoint_error).
  std::string endpoint = "http://127.0.0.1:4318";
  Headers headers;  ///< extra request headers (e.g. authorization)
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{10000};  ///< one request, connection included
  /// One export in all (every request and every wait between them): it never takes longer.
  std::chrono::milliseconds export_timeout{30000};
  int max_attempts = 5;                            ///< attempts per batch, the first included
  std::chrono::milliseconds initial_backoff{200};  ///< before the first retry; doubled each retry
  /// The longest wait between attempts, a server's `Retry-After` included.
  std::chrono::milliseconds max_backoff{5000};
  Resource resource;
  /// Where a failed export is logged (at debug, with its cause).
  StructuredLogger logger = StructuredLogger(stderr_logger());
};

/// POSTs spans as OTLP/HTTP JSON with libcurl, retrying connection errors, 429 and 5xx with
/// exponential backoff, or after the `Retry-After` a 429 or 503 asks for (capped by `max_backoff`),
/// within `export_timeout` per export; only the processor's export thread waits. `shutdown` ends a
/// backoff and aborts a request in flight at once. Thread-safe.
class OtlpHttpExporter final : public SpanExporter {
 public:
  /// Throws std::invalid_argument naming the problem when `options.endpoint` is not an http or
  /// https URL (see otlp_endpoint_error).
  explicit OtlpHttpExporter(OtlpHttpOptions options);
  ~OtlpHttpExporter() override;
  ExportResult export_spans(std::span<const SpanData> spans) noexcept override;
  void shutdown() noexcept override;
  /// HTTP requests made so far (retries included).
  [[nodiscard]] std::uint64_t requests() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir::telemetry
