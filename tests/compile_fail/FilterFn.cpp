// Must not compile: a predicate returning a struct that is not testable as bool is not a
// weir::FilterFn<F, Flight>.
#include <string>
#include <vector>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
};

struct Verdict {
  int score = 0;
};

int main() {
  weir::Pipeline p("compile_fail_filter");
  std::vector<Flight> out;
  p.source(std::vector<Flight>{})
      .filter([](const Flight&) { return Verdict{}; })
      .sink(weir::collect_into(out));
}
