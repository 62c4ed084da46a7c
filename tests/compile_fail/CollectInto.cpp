// Must not compile: weir::collect_into a std::vector<std::string> cannot take a stream of Flight.
#include <string>
#include <vector>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
};

int main() {
  weir::Pipeline p("compile_fail_collect_into");
  std::vector<std::string> out;
  p.source(std::vector<Flight>{}).sink(weir::collect_into(out));
}
