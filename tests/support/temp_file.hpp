#pragma once
// A file in the temporary directory for the tests of file sources and sinks.

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace weir_test {

/// The parts joined (GCC 12 warns falsely about `"literal" + std::string` at -O3).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  ((out += parts), ...);
  return out;
}

/// A unique path in the temporary directory, removed when the object dies. Not thread-safe.
class TempPath {
 public:
  explicit TempPath(const std::string& name) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() / cat("weir_test_", std::to_string(::getpid()), "_",
                                                         std::to_string(counter.fetch_add(1)), "_", name);
  }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  ~TempPath() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  void write(const std::string& content) const {
    std::ofstream out(path_, std::ios::binary);
    out << content;
  }
  [[nodiscard]] std::string read() const {
    std::ifstream in(path_, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
  }
  [[nodiscard]] std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::ifstream in(path_, std::ios::binary);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace weir_test
