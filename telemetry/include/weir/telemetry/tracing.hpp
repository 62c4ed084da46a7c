#pragma once
/// \file Weir's tracing, all of it: includes the tracer API, the SDK, the exporters and the tracing
/// interceptor. Include the parts instead to depend on less:
///
/// - span_data.hpp: attributes, span events, SpanKind, StatusCode, SpanData (the span record)
/// - trace.hpp: the API: Span, Tracer, TracerOptions, Headers, extract, inject, continue_trace
/// - sdk/sampler.hpp: Sampler and the always-on, always-off, ratio and parent-based samplers
/// - sdk/span_exporter.hpp: SpanExporter, ExportResult
/// - sdk/span_processor.hpp: SpanProcessor, SpanStats, BatchSpanProcessor(Options)
/// - sdk/resource.hpp: Resource
/// - exporters/otlp.hpp: append_otlp_json, otlp_json, OtlpHttpExporter, OtlpHttpOptions
/// - exporters/jsonl.hpp: JsonLinesFileExporter
/// - exporters/memory.hpp: InMemoryExporter
/// - tracing_interceptor.hpp: TracingInterceptor, TracingOptions, trace
///
/// See docs/tracing.md.

#include "weir/telemetry/exporters/jsonl.hpp"
#include "weir/telemetry/exporters/memory.hpp"
#include "weir/telemetry/exporters/otlp.hpp"
#include "weir/telemetry/sdk/resource.hpp"
#include "weir/telemetry/sdk/sampler.hpp"
#include "weir/telemetry/sdk/span_exporter.hpp"
#include "weir/telemetry/sdk/span_processor.hpp"
#include "weir/telemetry/span_data.hpp"
#include "weir/telemetry/trace.hpp"
#include "weir/telemetry/tracing_interceptor.hpp"
