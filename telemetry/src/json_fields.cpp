#include "weir/telemetry/json_fields.hpp"

#include <cstdio>
#include <ctime>

namespace weir::telemetry {

using json = nlohmann::json;

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto secs = us / 1'000'000;
  auto frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lldZ", static_cast<long long>(frac));
  return buf;
}

json to_json(const ErrorSummary& e) {
  return json{{"stage", e.stage},
              {"type", e.type},
              {"message", e.message},
              {"retryable", e.retryable},
              {"count", e.count},
              {"first_seen", format_rfc3339(e.first_seen)},
              {"last_seen", format_rfc3339(e.last_seen)}};
}

}  // namespace weir::telemetry
