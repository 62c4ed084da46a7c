// bench_span: the cost of a span on the recording thread (variant weir: start, three attributes,
// end and enqueue; extra field ns_per_span) and the JSON-lines exporter's throughput (variant
// file_export: items_per_second = spans per second).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/bench.hpp"
#include "span/span.hpp"

namespace {

constexpr std::string_view scenario = "span";

struct Variant {
  std::string name;
  SpanResult (*run)(std::uint64_t n);
  std::uint64_t n;
};

}  // namespace

int main(int argc, char** argv) {
  const auto options = weir::bench::parse_args(argc, argv, scenario);
#if defined(WEIR_BENCH_HAS_WEIR) && WEIR_BENCH_HAS_WEIR
  const std::vector<Variant> variants = {
      {"weir", run_weir_spans, options.quick ? span_quick_spans : span_default_spans},
      {"file_export", run_weir_file_export,
       options.quick ? span_export_quick_spans : span_export_default_spans},
  };
#else
  const std::vector<Variant> variants;
  weir::bench::log(scenario, "built without span/weir.cpp: nothing to run");
#endif
  weir::bench::log(
      scenario, std::string(options.quick ? "quick" : "full") + ", repeat=" + std::to_string(options.repeat));
  for (int round = 0; round < options.repeat; ++round) {
    for (const Variant& variant : variants) {
      weir::bench::log(scenario, "running " + variant.name + " N=" + std::to_string(variant.n));
      const SpanResult result = variant.run(variant.n);
      if (result.exported + result.dropped != result.spans || result.spans != variant.n) {
        weir::bench::log(scenario, "error: variant " + variant.name + " handled " +
                                       std::to_string(result.spans) + " spans, exported " +
                                       std::to_string(result.exported) + ", dropped " +
                                       std::to_string(result.dropped));
        return EXIT_FAILURE;
      }
      weir::bench::JsonLine line{scenario, variant.name};
      line.add_throughput(result.spans, result.seconds);
      if (variant.name == "weir") {
        line.add("ns_per_span",
                 result.spans > 0 ? result.seconds * 1e9 / static_cast<double>(result.spans) : 0.0);
      }
      line.add("exported", result.exported);
      line.add("dropped", result.dropped);
      line.add("peak_rss_bytes", weir::bench::peak_rss_bytes());
      line.print();
    }
  }
  return EXIT_SUCCESS;
}
