// libcurl's global initialisation, shared by the OTLP exporter and the endpoint check.
#pragma once

namespace weir::telemetry::detail {

/// Calls curl_global_init once per process, on first use; thread-safe.
void curl_init_once();

}  // namespace weir::telemetry::detail
