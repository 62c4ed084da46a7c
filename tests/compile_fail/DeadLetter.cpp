// Must not compile: the map stage's input is a Flight, so its dead-letter sink must take
// weir::DeadLetter<Flight>, not weir::DeadLetter<std::string>.
#include <string>
#include <vector>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
};

int main() {
  weir::Pipeline p("compile_fail_dead_letter");
  std::vector<std::string> out;
  p.source(std::vector<Flight>{})
      .map([](const Flight& f) { return f.code; })
      .on_error(weir::on_error::dead_letter([](const weir::DeadLetter<std::string>&) {}))
      .sink(weir::collect_into(out));
}
