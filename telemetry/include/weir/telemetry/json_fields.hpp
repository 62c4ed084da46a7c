#pragma once
/// \file The JSON forms that events and JSON logs share: times as RFC 3339 and error summaries.
/// Included by events.hpp and used by the structured logs, so that neither includes the other.

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <weir/error.hpp>

namespace weir::telemetry {

/// `t` as RFC 3339 in UTC with microseconds: 2026-11-24T08:00:00.123456Z.
[[nodiscard]] std::string format_rfc3339(std::chrono::system_clock::time_point t);

/// An error summary as JSON: {stage, type, message, retryable, count, first_seen, last_seen}, the
/// times in RFC 3339. Events and JSON logs render summaries with this one function.
[[nodiscard]] nlohmann::json to_json(const ErrorSummary& e);

}  // namespace weir::telemetry
