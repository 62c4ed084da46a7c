// The OTLP/HTTP endpoint check, on libcurl's URL parser alone, so that a program can validate its
// command line without the rest of the telemetry library.
#include "weir/telemetry/otlp_endpoint.hpp"

#include <curl/curl.h>

#include <cctype>
#include <string>
#include <string_view>

#include "curl_init.hpp"

namespace weir::telemetry {

namespace {

/// Lower-case ASCII.
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// One part of a parsed URL, or an empty string when it has none.
std::string url_part(CURLU* u, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(u, part, &value, 0) != CURLUE_OK || value == nullptr) return {};
  std::string out(value);
  curl_free(value);
  return out;
}

}  // namespace

namespace detail {

void curl_init_once() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

}  // namespace detail

std::string otlp_endpoint_error(std::string_view endpoint) {
  const std::string text(endpoint);
  if (text.empty()) return "the endpoint is empty; give a URL such as http://127.0.0.1:4318";
  for (const char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0 || std::iscntrl(static_cast<unsigned char>(c)) != 0)
      return "\"" + text + "\" contains spaces or control characters";
  }
  const auto colon = text.find("://");
  if (colon == std::string::npos)
    return "\"" + text + "\" is not a URL; give one such as http://127.0.0.1:4318";
  const std::string scheme = lower(text.substr(0, colon));
  if (scheme != "http" && scheme != "https")
    return "\"" + text + "\" has the scheme " + scheme + "; only http or https is allowed";
  const std::size_t authority = colon + 3;
  if (authority == text.size() || text[authority] == '/') return "\"" + text + "\" has no host";
  detail::curl_init_once();
  CURLU* u = curl_url();
  if (u == nullptr) return "no memory to parse \"" + text + "\"";
  std::string error;
  const CURLUcode rc = curl_url_set(u, CURLUPART_URL, text.c_str(), 0);
  if (rc != CURLUE_OK) {
    error = "\"" + text + "\" is not a valid URL: " + curl_url_strerror(rc);
  } else if (url_part(u, CURLUPART_HOST).empty()) {
    error = "\"" + text + "\" has no host";
  } else if (!url_part(u, CURLUPART_QUERY).empty() || text.find('?') != std::string::npos) {
    error = "\"" + text + "\" has a query; spans go to <endpoint>/v1/traces";
  } else if (!url_part(u, CURLUPART_FRAGMENT).empty() || text.find('#') != std::string::npos) {
    error = "\"" + text + "\" has a fragment; spans go to <endpoint>/v1/traces";
  }
  curl_url_cleanup(u);
  return error;
}

}  // namespace weir::telemetry
