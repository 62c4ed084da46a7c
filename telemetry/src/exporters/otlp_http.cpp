// OtlpHttpExporter: OTLP/HTTP JSON (append_otlp_json) POSTed to a collector with libcurl.
#include "weir/telemetry/exporters/otlp.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "../curl_init.hpp"

namespace weir::telemetry {

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
