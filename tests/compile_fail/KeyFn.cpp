// Must not compile: a key function returning a type std::hash does not know is not a weir::KeyFn<F, T>.
#include <vector>
#include <weir/weir.hpp>

struct Point {
  int x = 0;
  int y = 0;
};

int main() {
  weir::Pipeline p("compile_fail_key");
  std::vector<Point> in;
  (void)p.source(in).key_by([](const Point& pt) { return pt; });
}
