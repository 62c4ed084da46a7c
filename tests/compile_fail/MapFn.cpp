// Must not compile: a map function taking two arguments is not a weir::MapFn<F, Flight>.
#include <string>
#include <vector>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
};

int main() {
  weir::Pipeline p("compile_fail_map");
  std::vector<int> out;
  p.source(std::vector<Flight>{}).map([](const Flight&, int) { return 1; }).sink(weir::collect_into(out));
}
