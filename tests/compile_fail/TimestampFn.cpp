// Must not compile: an event-time function returning a plain number is not a
// weir::TimestampFn<F, Flight>.
#include <chrono>
#include <string>
#include <vector>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
  long departure_s = 0;
};

int main() {
  using namespace std::chrono_literals;
  weir::Pipeline p("compile_fail_timestamp");
  std::vector<Flight> in;
  (void)p.source(in)
      .key_by([](const Flight& f) { return f.code; })
      .window(weir::tumbling{1s})
      .event_time([](const Flight& f) { return f.departure_s; });
}
