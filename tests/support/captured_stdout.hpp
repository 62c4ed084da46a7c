#pragma once
// Captures what the process writes to its standard output, for tests that check nothing goes there.

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace weir_test {

/// Sends the process's standard output to a temporary file while it lives; `text()` reads it.
class CapturedStdout {
 public:
  CapturedStdout() {
    std::fflush(stdout);
    saved_ = ::dup(STDOUT_FILENO);
    std::FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
    file_ = f;
    ::dup2(::fileno(f), STDOUT_FILENO);
  }
  ~CapturedStdout() {
    restore();
    if (file_ != nullptr) std::fclose(file_);
  }
  CapturedStdout(const CapturedStdout&) = delete;
  CapturedStdout& operator=(const CapturedStdout&) = delete;
  /// Restores standard output and returns what was written to it.
  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, file_)) > 0;) out.append(buf, n);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  int saved_ = -1;
  std::FILE* file_ = nullptr;
};

}  // namespace weir_test
