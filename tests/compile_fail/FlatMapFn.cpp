// Must not compile: a flat_map function returning an int (not a range) is not a weir::FlatMapFn<F, int>.
#include <vector>
#include <weir/weir.hpp>

int main() {
  weir::Pipeline p("compile_fail_flat_map");
  std::vector<int> out;
  p.source(std::vector<int>{1, 2, 3}).flat_map([](int x) { return x * 2; }).sink(weir::collect_into(out));
}
