// Must not compile: an operator of strings given to process on a stream of Flight is not a
// weir::OperatorFor<Op, Flight>.
#include <memory>
#include <string>
#include <vector>
#include <weir/operator.hpp>
#include <weir/weir.hpp>

struct Flight {
  std::string code;
};

class Upper final : public weir::Operator<std::string, std::string> {
 public:
  void process(std::vector<std::string>& items, std::vector<std::string>& out,
               weir::OperatorContext&) override {
    out = std::move(items);
  }
};

int main() {
  weir::Pipeline p("compile_fail_operator");
  std::vector<std::string> out;
  p.source(std::vector<Flight>{}).process(std::make_unique<Upper>()).sink(weir::collect_into(out));
}
