#pragma once
/// \file Resource: who produced the exported spans (service name, version, more attributes). Part of
/// the tracing SDK; the exporters write it.

#include <string>
#include <vector>

#include "weir/telemetry/span_data.hpp"

namespace weir::telemetry {

/// The `resource` of exported spans: who produced them. A plain value.
struct Resource {
  std::string service_name = "weir";
  std::string service_version;        ///< empty: Weir's version
  std::vector<Attribute> attributes;  ///< more resource attributes
};

}  // namespace weir::telemetry
