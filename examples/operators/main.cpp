// A user's operator in a pipeline: the first page each user visited, with the keyed distinct of
// distinct.hpp, at four partitions.
#include <cstdio>
#include <string>
#include <vector>
#include <weir/operator.hpp>
#include <weir/weir.hpp>

#include "distinct.hpp"

namespace {
struct Visit {
  int user = 0;
  std::string page;
};
}  // namespace

int main() {
  std::vector<Visit> visits;
  for (int i = 0; i < 20'000; ++i) visits.push_back({(i * 7919) % 1000, "/page/" + std::to_string(i % 37)});
  const auto user = [](const Visit& v) { return v.user; };

  std::vector<Visit> first;
  weir::Pipeline p("first-visits");
  p.source(visits)
      .key_by(user)
      .process(examples::distinct_by<Visit>(user))
      .name("first_visit")
      .parallelism(4)
      .sink(weir::collect_into(first));
  const weir::RunReport report = p.run();

  const auto& stage = report.stage("first_visit");
  std::printf("%zu visits, %zu users seen; %llu repeat visits dropped\n", visits.size(), first.size(),
              static_cast<unsigned long long>(stage.filtered));
  return first.size() == 1000 && stage.filtered == visits.size() - 1000 ? 0 : 1;
}
