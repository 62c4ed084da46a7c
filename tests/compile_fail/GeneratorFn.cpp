// Must not compile: a generator returning int instead of std::optional<int> is not a weir::GeneratorFn<F>.
#include <vector>
#include <weir/weir.hpp>

int main() {
  weir::Pipeline p("compile_fail_generator");
  std::vector<int> out;
  int n = 0;
  p.source(weir::from_generator{[&n] { return n++; }}).sink(weir::collect_into(out));
}
