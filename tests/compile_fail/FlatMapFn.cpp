// Must not compile: a flat_map function returning an int (not a range) is not a
// weir::FlatMapFn<F, Flight>.
#include <string>
#include <vector>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
};

int main() {
  weir::Pipeline p("compile_fail_flat_map");
  std::vector<int> out;
  p.source(std::vector<Flight>{}).flat_map([](const Flight&) { return 2; }).sink(weir::collect_into(out));
}
