// Must not compile: a map function taking two arguments is not a weir::MapFn<F, int>.
#include <vector>
#include <weir/weir.hpp>

int main() {
  weir::Pipeline p("compile_fail_map");
  std::vector<int> out;
  p.source(std::vector<int>{1, 2, 3}).map([](int, int) { return 1; }).sink(weir::collect_into(out));
}
