// TraceContext::valid() for the tracer's hot path, shared by the tracer and the parent-based sampler.
#pragma once

#include <cstdint>
#include <cstring>
#include <weir/trace_context.hpp>

namespace weir::telemetry::detail {

/// TraceContext::valid(), with the ids read as machine words (no call, no memcmp): it is asked
/// several times for every span.
inline bool has_ids(const TraceContext& c) noexcept {
  std::uint64_t t0 = 0;
  std::uint64_t t1 = 0;
  std::uint64_t s = 0;
  std::memcpy(&t0, c.trace_id.bytes.data(), sizeof t0);
  std::memcpy(&t1, c.trace_id.bytes.data() + sizeof t0, sizeof t1);
  std::memcpy(&s, c.span_id.bytes.data(), sizeof s);
  return (t0 | t1) != 0 && s != 0;
}

}  // namespace weir::telemetry::detail
