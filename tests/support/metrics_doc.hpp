#pragma once
// The family table of docs/metrics.md, read by the tests that check exposition, dashboards and alert
// rules against it.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace weir_test {

/// One row of the family table.
struct DocFamily {
  std::string type;    ///< "counter", "gauge" or "histogram"
  bool today = false;  ///< status "today" (else "pending: ...")
};

/// The family table of `docs_dir`/metrics.md: name -> type and whether it is exposed today.
inline std::map<std::string, DocFamily> documented_families(const std::filesystem::path& docs_dir) {
  std::ifstream in(docs_dir / "metrics.md");
  REQUIRE(in.good());
  std::map<std::string, DocFamily> out;
  // Rows: | `name` | type | labels | meaning | fed by | status |
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `weir_", 0) != 0 && line.rfind("| `process_", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) {
      const auto b = cell.find_first_not_of(' ');
      const auto e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    REQUIRE(cells.size() == 6);
    const std::string name = cells[0].substr(1, cells[0].size() - 2);  // strip the backquotes
    out[name] = DocFamily{cells[1], cells[5] == "today"};
    CHECK((cells[5] == "today" || cells[5].rfind("pending: ", 0) == 0));
  }
  return out;
}

}  // namespace weir_test
