// Must not compile: a key function returning a type std::hash does not know is not a
// weir::KeyFn<F, Flight>.
#include <string>
#include <vector>
#include <weir/weir.hpp>

struct Point {
  int x = 0;
  int y = 0;
};

struct Flight {
  Point origin;
};

int main() {
  weir::Pipeline p("compile_fail_key");
  std::vector<Flight> in;
  (void)p.source(in).key_by([](const Flight& f) { return f.origin; });
}
