// OTLP/HTTP JSON: the encoding, the JSON-lines file exporter and the libcurl exporter.
#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "curl_init.hpp"
#include "weir/telemetry/tracing.hpp"

#ifndef WEIR_VERSION
#define WEIR_VERSION "unknown"
#endif

namespace weir::telemetry {

namespace {

// Insertion-ordered objects: small vectors rather than maps, quicker to build, and the output reads
// in the order of the OTLP definitions.
using json = nlohmann::ordered_json;

json any_value(const AttributeValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using V = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<V, std::string>) {
          return {{"stringValue", x}};
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          return {{"intValue", std::to_string(x)}};  // OTLP JSON: 64-bit integers as strings
        } else if constexpr (std::is_same_v<V, double>) {
          return {{"doubleValue", x}};
        } else {
          return {{"boolValue", x}};
        }
      },
      v);
}

json attributes(const std::vector<Attribute>& attrs) {
  json a = json::array();
  for (const auto& x : attrs) a.push_back({{"key", x.key}, {"value", any_value(x.value)}});
  return a;
}

json span_json(const SpanData& s) {
  json j = {{"traceId", s.trace_id.hex()},
            {"spanId", s.span_id.hex()},
            {"name", s.name},
            {"kind", static_cast<int>(s.kind)},
            {"startTimeUnixNano", std::to_string(s.start_unix_nano)},
            {"endTimeUnixNano", std::to_string(s.end_unix_nano)},
            {"flags", static_cast<int>(s.flags)}};
  if (s.parent_span_id.valid()) j["parentSpanId"] = s.parent_span_id.hex();
  if (!s.trace_state.empty()) j["traceState"] = s.trace_state;
  j["attributes"] = attributes(s.attributes);
  if (!s.events.empty()) {
    json ev = json::array();
    for (const auto& e : s.events) {
      ev.push_back({{"timeUnixNano", std::to_string(e.time_unix_nano)},
                    {"name", e.name},
                    {"attributes", attributes(e.attributes)}});
    }
    j["events"] = std::move(ev);
  }
  if (s.dropped_events != 0) j["droppedEventsCount"] = s.dropped_events;
  json status = {{"code", static_cast<int>(s.status)}};
  if (!s.status_message.empty()) status["message"] = s.status_message;
  j["status"] = std::move(status);
  return j;
}

// The direct writer: the same bytes as `otlp_json`'s nlohmann dump, appended to one string.

/// Appends `s` as a JSON string. Printable ASCII without `"` or `\` is copied as is; anything else
/// (control characters, non-ASCII, invalid UTF-8) goes through nlohmann's escaping, so the result is
/// the same as otlp_json's.
void put_string(std::string& out, std::string_view s) {
  bool plain = true;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

template <class Int>
void put_int(std::string& out, Int v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// A decimal integer as a JSON string (OTLP JSON's 64-bit integers).
void put_int_string(std::string& out, std::int64_t v) {
  out += '"';
  put_int(out, v);
  out += '"';
}

template <std::size_t N>
void put_hex(std::string& out, const std::array<std::uint8_t, N>& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  char buf[2 * N + 2];
  buf[0] = '"';
  for (std::size_t i = 0; i < N; ++i) {
    buf[1 + 2 * i] = digits[bytes[i] >> 4U];
    buf[2 + 2 * i] = digits[bytes[i] & 0x0fU];
  }
  buf[2 * N + 1] = '"';
  out.append(buf, sizeof buf);
}

void put_value(std::string& out, const AttributeValue& v) {
  std::visit(
      [&](const auto& x) {
        using V = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<V, std::string>) {
          out += "{\"stringValue\":";
          put_string(out, x);
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          out += "{\"intValue\":";
          put_int_string(out, x);
        } else if constexpr (std::is_same_v<V, double>) {
          out += "{\"doubleValue\":";
          out += json(x).dump();  // nlohmann's shortest round-trip form (and null for NaN, inf)
        } else {
          out += x ? "{\"boolValue\":true" : "{\"boolValue\":false";
        }
      },
      v);
  out += '}';
}

void put_attributes(std::string& out, const std::vector<Attribute>& attrs) {
  out += '[';
  bool first = true;
  for (const auto& a : attrs) {
    if (!first) out += ',';
    first = false;
    out += "{\"key\":";
    put_string(out, a.key);
    out += ",\"value\":";
    put_value(out, a.value);
    out += '}';
  }
  out += ']';
}

void put_span(std::string& out, const SpanData& s) {
  out += "{\"traceId\":";
  put_hex(out, s.trace_id.bytes);
  out += ",\"spanId\":";
  put_hex(out, s.span_id.bytes);
  out += ",\"name\":";
  put_string(out, s.name);
  out += ",\"kind\":";
  put_int(out, static_cast<int>(s.kind));
  out += ",\"startTimeUnixNano\":";
  put_int_string(out, s.start_unix_nano);
  out += ",\"endTimeUnixNano\":";
  put_int_string(out, s.end_unix_nano);
  out += ",\"flags\":";
  put_int(out, static_cast<int>(s.flags));
  if (s.parent_span_id.valid()) {
    out += ",\"parentSpanId\":";
    put_hex(out, s.parent_span_id.bytes);
  }
  if (!s.trace_state.empty()) {
    out += ",\"traceState\":";
    put_string(out, s.trace_state);
  }
  out += ",\"attributes\":";
  put_attributes(out, s.attributes);
  if (!s.events.empty()) {
    out += ",\"events\":[";
    bool first = true;
    for (const auto& e : s.events) {
      if (!first) out += ',';
      first = false;
      out += "{\"timeUnixNano\":";
      put_int_string(out, e.time_unix_nano);
      out += ",\"name\":";
      put_string(out, e.name);
      out += ",\"attributes\":";
      put_attributes(out, e.attributes);
      out += '}';
    }
    out += ']';
  }
  if (s.dropped_events != 0) {
    out += ",\"droppedEventsCount\":";
    put_int(out, s.dropped_events);
  }
  out += ",\"status\":{\"code\":";
  put_int(out, static_cast<int>(s.status));
  if (!s.status_message.empty()) {
    out += ",\"message\":";
    put_string(out, s.status_message);
  }
  out += "}}";
}

std::vector<Attribute> resource_attributes(const Resource& resource) {
  std::vector<Attribute> res{
      {"service.name", resource.service_name},
      {"service.version",
       resource.service_version.empty() ? std::string(WEIR_VERSION) : resource.service_version}};
  res.insert(res.end(), resource.attributes.begin(), resource.attributes.end());
  return res;
}

}  // namespace

void append_otlp_json(std::string& out, std::span<const SpanData> spans, const Resource& resource) {
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":";
  put_attributes(out, resource_attributes(resource));
  out += "},\"scopeSpans\":[{\"scope\":{\"name\":\"weir\",\"version\":";
  put_string(out, WEIR_VERSION);
  out += "},\"spans\":[";
  bool first = true;
  for (const auto& s : spans) {
    if (!first) out += ',';
    first = false;
    put_span(out, s);
  }
  out += "]}]}]}";
}

std::string otlp_json(std::span<const SpanData> spans, const Resource& resource) {
  const std::vector<Attribute> res = resource_attributes(resource);
  json list = json::array();
  for (const auto& s : spans) list.push_back(span_json(s));
  const json body = {
      {"resourceSpans",
       json::array({{{"resource", {{"attributes", attributes(res)}}},
                     {"scopeSpans", json::array({{{"scope", {{"name", "weir"}, {"version", WEIR_VERSION}}},
                                                  {"spans", std::move(list)}}})}}})}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------------
// JsonLinesFileExporter

struct JsonLinesFileExporter::Impl {
  std::mutex mutex;
  std::ofstream out;  // guarded by mutex
  std::string line;   ///< reused for each export; guarded by mutex
  Resource resource;
};

JsonLinesFileExporter::JsonLinesFileExporter(std::filesystem::path path, Resource resource, bool append)
    : impl_(std::make_unique<Impl>()) {
  impl_->resource = std::move(resource);
  impl_->out.open(path, append ? std::ios::app : std::ios::trunc);
  if (!impl_->out) throw std::runtime_error("cannot open trace file " + path.string());
}

JsonLinesFileExporter::~JsonLinesFileExporter() = default;

ExportResult JsonLinesFileExporter::export_spans(std::span<const SpanData> spans) noexcept {
  if (spans.empty()) return ExportResult::success;
  try {
    const std::lock_guard lock(impl_->mutex);
    std::string& line = impl_->line;
    line.clear();
    append_otlp_json(line, spans, impl_->resource);
    line += '\n';
    impl_->out.write(line.data(), static_cast<std::streamsize>(line.size()));
    impl_->out.flush();
    return impl_->out ? ExportResult::success : ExportResult::failure;
  } catch (...) {
    return ExportResult::failure;
  }
}

// ---------------------------------------------------------------------------------------------------
// OtlpHttpExporter

namespace {
std::size_t discard_body(char*, std::size_t size, std::size_t n, void*) {
  return size * n;
}

/// Keeps the value of a `Retry-After` response header (in the std::string at `out`).
std::size_t keep_retry_after(char* data, std::size_t size, std::size_t n, void* out) {
  const std::string_view line(data, size * n);
  constexpr std::string_view name = "retry-after:";
  if (line.size() > name.size()) {
    bool match = true;
    for (std::size_t i = 0; i < name.size() && match; ++i)
      match = std::tolower(static_cast<unsigned char>(line[i])) == name[i];
    if (match) {
      auto v = line.substr(name.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
      static_cast<std::string*>(out)->assign(v);
    }
  }
  return size * n;
}

/// The wait a `Retry-After` value asks for: delta-seconds, or an HTTP-date (parsed by libcurl) less
/// the time now; nothing when it is neither.
std::optional<std::chrono::milliseconds> retry_after_wait(const std::string& value) {
  if (value.empty()) return std::nullopt;
  long long seconds = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc{} && end == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return std::chrono::seconds{std::min<long long>(seconds, 1LL << 30)};
  }
  const time_t at = curl_getdate(value.c_str(), nullptr);
  if (at == -1) return std::nullopt;
  const auto until = std::chrono::system_clock::from_time_t(at) - std::chrono::system_clock::now();
  return std::max(std::chrono::milliseconds{0}, std::chrono::duration_cast<std::chrono::milliseconds>(until));
}

}  // namespace

struct OtlpHttpExporter::Impl {
  OtlpHttpOptions options;
  std::string url;
  std::mutex mutex;  ///< one export at a time; guards curl
  CURL* curl = nullptr;
  CURLM* multi = nullptr;  ///< runs `curl`, so that shutdown can wake and abort a request in flight
  curl_slist* headers = nullptr;
  std::atomic<std::uint64_t> requests{0};
  std::atomic<bool> aborting{false};  ///< set by shutdown: a request in flight ends at once

  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopped = false;  // guarded by stop_mutex

  /// Waits `d` unless shut down first; false when shut down.
  bool backoff(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mutex);
    return !stop_cv.wait_for(lock, d, [&] { return stopped; });
  }
  bool is_stopped() {
    const std::lock_guard lock(stop_mutex);
    return stopped;
  }

  /// Runs the prepared request on the multi handle until it ends, or until shutdown sets `aborting`
  /// (curl_multi_wakeup ends the wait at once).
  CURLcode perform() {
    if (aborting.load()) return CURLE_ABORTED_BY_CALLBACK;
    if (curl_multi_add_handle(multi, curl) != CURLM_OK) return CURLE_FAILED_INIT;
    CURLcode result = CURLE_OK;
    bool done = false;
    int running = 1;
    while (!done) {
      if (curl_multi_perform(multi, &running) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
      int left = 0;
      while (const CURLMsg* msg = curl_multi_info_read(multi, &left)) {
        if (msg->msg == CURLMSG_DONE) {
          result = msg->data.result;
          done = true;
        }
      }
      if (done || running == 0) break;
      if (aborting.load()) {
        result = CURLE_ABORTED_BY_CALLBACK;
        break;
      }
      // Waits for the socket, curl's own timers or a wakeup; curl's timeouts end the request.
      if (curl_multi_poll(multi, nullptr, 0, 1000, nullptr) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
    }
    curl_multi_remove_handle(multi, curl);
    return result;
  }

  /// One POST within `limit`; the HTTP status, or 0 after a connection error or timeout. Sets
  /// `retry_after` to the response's Retry-After header (empty when there is none).
  long post(const std::string& body, std::chrono::milliseconds limit, std::string& error,
            std::string& retry_after) {
    retry_after.clear();
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    const auto connect = std::min(options.connect_timeout, limit);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::max<long long>(1, connect.count())));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<long long>(1, limit.count())));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &discard_body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &keep_retry_after);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &retry_after);
    requests.fetch_add(1, std::memory_order_relaxed);
    const CURLcode rc = perform();
    if (rc != CURLE_OK) {
      error = aborting.load() ? "aborted by shutdown" : curl_easy_strerror(rc);
      return 0;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }
};

OtlpHttpExporter::OtlpHttpExporter(OtlpHttpOptions options) : impl_(std::make_unique<Impl>()) {
  detail::curl_init_once();
  auto& m = *impl_;
  if (const auto why = otlp_endpoint_error(options.endpoint); !why.empty())
    throw std::invalid_argument("OtlpHttpExporter: endpoint " + why);
  m.options = std::move(options);
  if (m.options.max_attempts < 1) m.options.max_attempts = 1;
  std::string base = m.options.endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  m.url = base + "/v1/traces";
  m.curl = curl_easy_init();
  if (m.curl == nullptr) throw std::runtime_error("OtlpHttpExporter: curl_easy_init failed");
  m.multi = curl_multi_init();
  if (m.multi == nullptr) {
    curl_easy_cleanup(m.curl);
    throw std::runtime_error("OtlpHttpExporter: curl_multi_init failed");
  }
  m.headers = curl_slist_append(m.headers, "Content-Type: application/json");
  for (const auto& [k, v] : m.options.headers)
    m.headers = curl_slist_append(m.headers, (k + ": " + v).c_str());
}

OtlpHttpExporter::~OtlpHttpExporter() {
  curl_multi_cleanup(impl_->multi);
  curl_slist_free_all(impl_->headers);
  curl_easy_cleanup(impl_->curl);
}

std::uint64_t OtlpHttpExporter::requests() const noexcept {
  return impl_->requests.load(std::memory_order_relaxed);
}

void OtlpHttpExporter::shutdown() noexcept {
  {
    const std::lock_guard lock(impl_->stop_mutex);
    impl_->stopped = true;
  }
  impl_->stop_cv.notify_all();
  impl_->aborting.store(true);
  curl_multi_wakeup(impl_->multi);  // thread-safe: ends the export thread's wait in perform()
}

ExportResult OtlpHttpExporter::export_spans(std::span<const SpanData> spans) noexcept {
  auto& m = *impl_;
  if (spans.empty()) return ExportResult::success;
  try {
    std::string body;
    append_otlp_json(body, spans, m.options.resource);
    const std::lock_guard lock(m.mutex);
    using std::chrono::milliseconds;
    const auto deadline = std::chrono::steady_clock::now() + m.options.export_timeout;
    const auto left = [&] {
      return std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    };
    auto backoff = m.options.initial_backoff;
    std::string last;
    for (int attempt = 1; attempt <= m.options.max_attempts; ++attempt) {
      if (m.is_stopped()) return ExportResult::failure;
      const auto budget = left();
      if (budget.count() <= 0) {
        last = "export timeout of " + std::to_string(m.options.export_timeout.count()) + " ms reached";
        break;
      }
      std::string error;
      std::string retry_after;
      const long status = m.post(body, std::min(m.options.timeout, budget), error, retry_after);
      if (status >= 200 && status < 300) return ExportResult::success;
      // Retryable: no answer, 429 Too Many Requests, 5xx. Anything else is final.
      const bool retryable = status == 0 || status == 429 || status >= 500;
      last = status == 0 ? error : "HTTP " + std::to_string(status);
      if (!retryable || attempt == m.options.max_attempts) break;
      // A 429 or 503 may say when to come back; the wait stays within max_backoff either way.
      auto wait = backoff;
      if (status == 429 || status == 503) {
        if (const auto asked = retry_after_wait(retry_after)) wait = *asked;
      }
      wait = std::min(wait, m.options.max_backoff);
      backoff = std::min(backoff * 2, m.options.max_backoff);
      // No wait that would leave no time for the next request: give up now instead.
      if (wait >= left()) {
        last += "; no time left for another attempt within the export timeout";
        break;
      }
      if (!m.backoff(wait)) break;
    }
    if (m.options.logger.should_log(LogLevel::debug))
      m.options.logger.log(LogLevel::debug, {}, "tracing: OTLP export to " + m.url + " failed: " + last);
    return ExportResult::failure;
  } catch (...) {
    return ExportResult::failure;
  }
}

}  // namespace weir::telemetry
