#pragma once
/// \file Checking an OTLP/HTTP collector URL before an exporter is made with it: what a command line
/// or a config validates. Needs only libcurl's URL parser (see docs/tracing.md).

#include <string>
#include <string_view>

namespace weir::telemetry {

/// Why `endpoint` cannot be an OtlpHttpExporter's endpoint, or an empty string when it can: it must
/// be an absolute `http://` or `https://` URL with a host, an optional port and path, and no query,
/// fragment or spaces (e.g. `http://127.0.0.1:4318`). For validating a command line or a config.
/// Thread-safe.
[[nodiscard]] std::string otlp_endpoint_error(std::string_view endpoint);

}  // namespace weir::telemetry
