// Must not compile: a keyed stream's process takes a factory of operators, not an operator; this is
// not a weir::OperatorFactoryFor<F, Flight>.
#include <memory>
#include <string>
#include <vector>
#include <weir/operator.hpp>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
};

class Keep final : public weir::Operator<Flight, Flight> {
 public:
  void process(std::vector<Flight>& items, std::vector<Flight>& out, weir::OperatorContext&) override {
    out = std::move(items);
  }
};

int main() {
  weir::Pipeline p("compile_fail_operator_factory");
  std::vector<Flight> out;
  p.source(std::vector<Flight>{})
      .key_by([](const Flight& f) { return f.code; })
      .process(std::make_unique<Keep>())
      .sink(weir::collect_into(out));
}
