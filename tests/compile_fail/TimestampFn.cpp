// Must not compile: an event-time function returning a plain number is not a weir::TimestampFn<F, T>.
#include <chrono>
#include <vector>
#include <weir/weir.hpp>

int main() {
  using namespace std::chrono_literals;
  weir::Pipeline p("compile_fail_timestamp");
  std::vector<int> in;
  (void)p.source(in).key_by([](int x) { return x % 2; }).window(weir::tumbling{1s}).event_time([](int x) {
    return x;
  });
}
