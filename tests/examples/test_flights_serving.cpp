// Tests of the flights example's --metrics-port and --keep-serving: the example binary runs as a
// child process on a free port; the test reads the port from its stderr, scrapes the endpoints
// while the example waits for its input (a FIFO the test fills), after the run while it keeps
// serving, and ends it with SIGTERM. Every wait is bounded and only on the child and its server.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hostile_clients.hpp"

#ifndef WEIR_FLIGHTS_ETL
#error "WEIR_FLIGHTS_ETL must name the flights_etl binary"
#endif
#ifndef WEIR_DATA_DIR
#error "WEIR_DATA_DIR must name the data/ folder"
#endif

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// A fresh directory under the system's temporary directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "weir_serving_XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// The example running as a child process, its stderr read through a pipe. Killed (SIGKILL) and
/// reaped at the end if the test has not ended it.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(fds[1], STDERR_FILENO);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> argv;
      std::string binary = WEIR_FLIGHTS_ETL;
      argv.push_back(binary.data());
      std::vector<std::string> copies = args;
      for (auto& a : copies) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    err_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (err_ >= 0) ::close(err_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }

  /// Reads stderr until a line containing `part` arrives (returns it) or `limit` passes.
  std::optional<std::string> line_with(const std::string& part,
                                       std::chrono::seconds limit = std::chrono::seconds{60}) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      for (auto nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n')) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        seen_ += line + "\n";
        if (line.find(part) != std::string::npos) return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{err_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t got = ::read(err_, chunk, sizeof chunk);
      if (got <= 0) return std::nullopt;  // the child closed stderr: it ended
      buffer_.append(chunk, static_cast<std::size_t>(got));
    }
  }
  /// Every stderr line read so far.
  [[nodiscard]] const std::string& seen() const { return seen_; }

  /// Waits up to `limit` for the child to end; its exit status (128 + signal when killed), or nothing.
  std::optional<int> wait_exit(std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
  std::string buffer_;
  std::string seen_;
};

struct Response {
  long status = 0;  // 0: no response
  std::string body;
};

std::size_t append(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Response get(const std::string& url) {
  Response r;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return r;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(curl);
  return r;
}

/// The value of the sample `series` (name and labels as exposed), or -1.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};
const CurlGlobal curl_global;

}  // namespace

TEST_CASE("the flights example serves metrics on a free port and keeps serving until SIGTERM") {
  const TempDir dir;
  const fs::path fifo = dir.path() / "flights.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  Child child({"--flights", fifo.string(), "--airports", std::string(WEIR_DATA_DIR) + "/airports.csv",
               "--out", (dir.path() / "out").string(), "--metrics-port", "0", "--keep-serving"});

  // The server is up before the input is read: the example now waits on the FIFO.
  const auto announced = child.line_with("metrics at http://");
  REQUIRE_MESSAGE(announced, child.seen());
  const auto at = announced->find("http://");
  const auto end = announced->rfind("/metrics");
  REQUIRE(end != std::string::npos);
  const std::string url = announced->substr(at, end - at);
  CHECK(contains(url, "http://127.0.0.1:"));
  CHECK_FALSE(contains(url, ":0"));  // port 0 asked for, a real port given
  const auto early = get(url + "/metrics");
  CHECK(early.status == 200);
  CHECK(contains(early.body, "weir_build_info{"));
  CHECK(get(url + "/ready").status == 503);  // nothing runs yet

  // Feed the input; the run goes ahead and the example keeps serving after it.
  {
    std::ifstream in(std::string(WEIR_DATA_DIR) + "/flights-20k.json", std::ios::binary);
    REQUIRE(in.good());
    std::ofstream out(fifo, std::ios::binary);  // opens once the example opens the FIFO to read
    out << in.rdbuf();
  }
  REQUIRE_MESSAGE(child.line_with("until SIGINT or SIGTERM"), child.seen());
  const auto metrics = get(url + "/metrics");
  CHECK(metrics.status == 200);
  CHECK(sample(metrics.body, R"(weir_pipeline_runs_total{pipeline="flights_etl",status="completed"})") == 1);
  CHECK(sample(metrics.body, R"(weir_stage_items_in_total{pipeline="flights_etl",stage="parse"})") == 20000);
  CHECK(sample(metrics.body, R"(weir_pipeline_running{pipeline="flights_etl"})") == 0);
  CHECK(contains(get(url + "/health").body, R"("status":"ok")"));
  CHECK(get(url + "/ready").status == 503);  // the run has ended
  CHECK(get(url + "/live").status == 200);
  // The live page, and its state once the server's sampler (once a second) has seen the ended run.
  CHECK(contains(get(url + "/").body, "<title>Weir"));
  CHECK(contains(child.seen(), "live page at " + url + "/\n"));
  std::string state;
  for (const auto until = Clock::now() + std::chrono::seconds{10}; Clock::now() < until;) {
    state = get(url + "/ui/state").body;
    if (contains(state, R"("phase":"finished")")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  CHECK(contains(state, R"("name":"flights_etl")"));
  CHECK(contains(state, R"("phase":"finished")"));
  CHECK(contains(state, R"("name":"state_windows")"));

  // SIGTERM ends it, promptly and with exit status 0.
  const auto t0 = Clock::now();
  REQUIRE(::kill(child.pid(), SIGTERM) == 0);
  const auto code = child.wait_exit(std::chrono::seconds{10});
  REQUIRE_MESSAGE(code, "still running 10 s after SIGTERM");
  CHECK(*code == 0);
  CHECK(Clock::now() - t0 < std::chrono::seconds{5});
  CHECK(get(url + "/live").status == 0);  // the port is closed
}

TEST_CASE("the flights example refuses --keep-serving without --metrics-port") {
  const TempDir dir;
  Child child({"--out", (dir.path() / "out").string(), "--keep-serving"});
  CHECK(child.line_with("--keep-serving requires --metrics-port", std::chrono::seconds{30}));
  const auto code = child.wait_exit(std::chrono::seconds{30});
  REQUIRE(code);
  CHECK(*code != 0);
}

TEST_CASE(
    "the flights example answers scrapes and ends on SIGTERM while 200 hostile clients hold connections") {
  const TempDir dir;
  Child child({"--flights", std::string(WEIR_DATA_DIR) + "/flights-20k.json", "--airports",
               std::string(WEIR_DATA_DIR) + "/airports.csv", "--out", (dir.path() / "out").string(),
               "--metrics-port", "0", "--keep-serving"});
  const auto announced = child.line_with("metrics at http://");
  REQUIRE_MESSAGE(announced, child.seen());
  const auto at = announced->find("http://");
  const std::string url = announced->substr(at, announced->rfind("/metrics") - at);
  const int port = std::stoi(url.substr(url.rfind(':') + 1));
  REQUIRE_MESSAGE(child.line_with("until SIGINT or SIGTERM"), child.seen());
  // The server's own start line is on stderr with the example's, not on stdout.
  CHECK(contains(child.seen(), "telemetry server listening on " + url));

  weir_test::HostileClients hostile(port, 140, 56, 4);
  const auto t_open = Clock::now();
  while (hostile.open_now() < 200 && Clock::now() - t_open < std::chrono::seconds{5})
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  REQUIRE(hostile.open_now() == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  // Scrapes for 2 s, past the server's 1 s request timeout (hostile connections get dropped and
  // reopened meanwhile).
  std::vector<double> ms;
  int failed = 0;
  const char* paths[] = {"/metrics", "/health", "/live"};
  const auto until = Clock::now() + std::chrono::seconds{2};
  for (int i = 0; Clock::now() < until; ++i) {
    const auto t0 = Clock::now();
    const auto r = get(url + paths[i % 3]);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (r.status != 200) ++failed;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  std::sort(ms.begin(), ms.end());
  const double p90 = ms[ms.size() * 9 / 10];
  MESSAGE(ms.size() << " scrapes: p50 " << ms[ms.size() / 2] << " ms, p90 " << p90 << " ms, slowest "
                    << ms.back() << " ms");
  CHECK(failed == 0);
  CHECK(ms.size() >= 20);
  CHECK(p90 < 100);
  CHECK(ms.back() < 1000);

  const auto t0 = Clock::now();
  REQUIRE(::kill(child.pid(), SIGTERM) == 0);
  const auto code = child.wait_exit(std::chrono::seconds{10});
  REQUIRE_MESSAGE(code, "still running 10 s after SIGTERM");
  CHECK(*code == 0);
  const double exit_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  MESSAGE("exit " << exit_ms << " ms after SIGTERM");
  CHECK(exit_ms < 2500);
}

TEST_CASE("the flights example refuses an --otlp-endpoint that is not an http or https URL") {
  for (const char* url : {"garbage", "file:///etc/passwd", "gopher://127.0.0.1:70", "http://"}) {
    const std::string shown = url;
    CAPTURE(shown);
    const TempDir dir;
    Child child({"--out", (dir.path() / "out").string(), "--otlp-endpoint", url});
    const auto line = child.line_with("--otlp-endpoint", std::chrono::seconds{30});
    REQUIRE_MESSAGE(line, child.seen());
    CHECK(contains(*line, shown));
    const auto code = child.wait_exit(std::chrono::seconds{30});
    REQUIRE(code);
    CHECK(*code != 0);
    CHECK_FALSE(fs::exists(dir.path() / "out"));
  }
}
