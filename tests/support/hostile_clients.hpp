#pragma once
// Hostile HTTP clients for the server tests: connections to 127.0.0.1 that send nothing, send their
// request headers a byte at a time and never finish them, or send a PUT announcing a huge body and
// never send it. A thread holds them for as long as the object lives, reopening each one the
// server closes, so the server sees the same number of them throughout.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

namespace weir_test {

/// What a hostile connection does.
enum class Hostility { idle, slow_headers, huge_put };

/// Holds `idle + slow + put` connections to 127.0.0.1:port on a thread of its own until destroyed
/// (the destructor closes them all). Slow connections send one more header byte every 100 ms.
class HostileClients {
 public:
  HostileClients(int port, int idle, int slow, int put) : port_(port) {
    for (int i = 0; i < idle; ++i) conns_.push_back({Hostility::idle, -1});
    for (int i = 0; i < slow; ++i) conns_.push_back({Hostility::slow_headers, -1});
    for (int i = 0; i < put; ++i) conns_.push_back({Hostility::huge_put, -1});
    for (auto& c : conns_) open(c);
    thread_ = std::thread([this] { hold(); });
  }
  ~HostileClients() {
    stop_.store(true);
    thread_.join();
    for (auto& c : conns_) {
      if (c.fd >= 0) ::close(c.fd);
    }
  }
  HostileClients(const HostileClients&) = delete;
  HostileClients& operator=(const HostileClients&) = delete;

  /// Connections opened so far, reopenings included.
  [[nodiscard]] int opened() const { return opened_.load(); }
  /// Connections the server closed so far.
  [[nodiscard]] int closed_by_server() const { return closed_.load(); }
  /// Connections open now.
  [[nodiscard]] int open_now() const { return open_now_.load(); }

 private:
  struct Conn {
    Hostility kind;
    int fd;
  };

  void open(Conn& c) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return;
    }
    if (c.kind == Hostility::slow_headers) send(fd, "GET /metrics HTTP/1.1\r\nX-Slow: ");
    if (c.kind == Hostility::huge_put) {
      send(fd,
           "PUT /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000000\r\n\r\nfirst bytes");
    }
    c.fd = fd;
    opened_.fetch_add(1);
    open_now_.fetch_add(1);
  }

  static void send(int fd, const std::string& bytes) {
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  void hold() {
    auto next_byte = std::chrono::steady_clock::now();
    std::vector<pollfd> fds;
    while (!stop_.load()) {
      fds.clear();
      for (const auto& c : conns_) fds.push_back({c.fd, POLLIN, 0});
      (void)::poll(fds.data(), fds.size(), 20);
      for (std::size_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        if (c.fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
          char buf[4096];
          if (::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT) > 0) continue;  // an answer: wait for the end
          ::close(c.fd);
          c.fd = -1;
          closed_.fetch_add(1);
          open_now_.fetch_sub(1);
        }
        if (c.fd < 0) open(c);
      }
      if (std::chrono::steady_clock::now() >= next_byte) {
        for (const auto& c : conns_) {
          if (c.kind == Hostility::slow_headers && c.fd >= 0) send(c.fd, "a");
        }
        next_byte += std::chrono::milliseconds{100};
      }
    }
  }

  int port_;
  std::vector<Conn> conns_;
  std::atomic<bool> stop_{false};
  std::atomic<int> opened_{0};
  std::atomic<int> closed_{0};
  std::atomic<int> open_now_{0};
  std::thread thread_;
};

}  // namespace weir_test
