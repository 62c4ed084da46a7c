// Must not compile: a sink taking a std::string cannot consume a stream of Flight: not a
// weir::SinkFn<F, Flight>.
#include <string>
#include <vector>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
};

int main() {
  weir::Pipeline p("compile_fail_sink");
  p.source(std::vector<Flight>{}).sink([](const std::string&) {});
}
