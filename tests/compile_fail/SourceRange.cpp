// Must not compile: an int is not a range, so it is not a weir::SourceRange.
#include <weir/weir.hpp>

int main() {
  weir::Pipeline p("compile_fail_source");
  p.source(42);
}
