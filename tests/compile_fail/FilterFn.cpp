// Must not compile: a predicate returning a struct that is not testable as bool is not a weir::FilterFn<F,
// int>.
#include <vector>
#include <weir/weir.hpp>

struct Verdict {
  int score = 0;
};

int main() {
  weir::Pipeline p("compile_fail_filter");
  std::vector<int> out;
  p.source(std::vector<int>{1, 2, 3}).filter([](int x) { return Verdict{x}; }).sink(weir::collect_into(out));
}
