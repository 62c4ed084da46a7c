#include "weir/telemetry/logs.hpp"

#include <string>
#include <weir/observable.hpp>

#include "weir/telemetry/json_fields.hpp"

namespace weir::telemetry {

using json = nlohmann::json;

RunLogger::RunLogger(StructuredLogger logger) : logger_(std::move(logger)) {}

void RunLogger::on_run_stop(const RunInfo& info, const RunReport& r) {
  const auto level = r.status == RunStatus::failed ? LogLevel::error : LogLevel::info;
  if (!logger_.should_log(level)) return;
  const std::string trace = info.trace.trace_id.hex();
  const std::string span = info.trace.span_id.hex();
  const LogContext c{info.run_id, info.pipeline, {}, trace, span};
  std::string table = r.to_string();
  if (!table.empty() && table.back() == '\n') table.pop_back();
  if (logger_.format() == LogFormat::text) {
    logger_.log(level, c, table);
    return;
  }
  json errors = json::array();
  for (const auto& e : r.errors) errors.push_back(to_json(e));
  const std::string message =
      "pipeline " + info.pipeline + " run " + info.run_id + " " + std::string(weir::to_string(r.status));
  logger_.log(level, c, message,
              json{{"status", weir::to_string(r.status)},
                   {"duration_ns", r.wall.count()},
                   {"report", table},
                   {"errors", std::move(errors)}});
}

std::shared_ptr<RunLogger> log_runs(Observable& pipeline, StructuredLogger logger) {
#if defined(WEIR_TELEMETRY) && WEIR_TELEMETRY
  auto interceptor = std::make_shared<RunLogger>(std::move(logger));
  pipeline.intercept(interceptor, 1000);
  return interceptor;
#else
  (void)pipeline;
  (void)logger;
  return nullptr;
#endif
}

}  // namespace weir::telemetry
