// Must not compile: a sink taking a std::string cannot consume a Stream<int>: not a weir::SinkFn<F, int>.
#include <string>
#include <vector>
#include <weir/weir.hpp>

int main() {
  weir::Pipeline p("compile_fail_sink");
  p.source(std::vector<int>{1, 2, 3}).sink([](const std::string&) {});
}
