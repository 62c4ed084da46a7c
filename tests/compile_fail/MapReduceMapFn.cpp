// Must not compile: a map function returning a single value, not key-value pairs, is not a
// weir::MapReduceMapFn<F, T>.
#include <vector>
#include <weir/weir.hpp>

int main() {
  weir::Pipeline p("compile_fail_map_reduce");
  std::vector<int> in;
  (void)p.source(in).map_reduce([](int x) { return x; }, [](int a, int b) { return a + b; });
}
