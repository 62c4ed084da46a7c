// Tests of the shipped Grafana dashboard (docs/dashboards/weir.json) and Prometheus alert rules
// (docs/alerts/weir.rules.yml): every PromQL expression in them names only families that
// docs/metrics.md lists, and the dashboard's expressions pass promtool. The rules' own unit tests
// run as the ctest tests alert_rules_check and alert_rules_test (promtool check / test rules).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "metrics_doc.hpp"

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':';
}
bool ident_char(char c) {
  return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) != 0;
}

/// The metric names a PromQL expression selects: identifiers outside strings, label matchers and
/// ranges that are not functions, aggregations, keywords, label lists (by, without, on, ignoring,
/// group_left, group_right) or Grafana variables.
std::set<std::string> promql_metrics(std::string_view expr) {
  // Blank out string literals, {label matchers} and [ranges].
  std::string s;
  char quote = 0;
  int nest = 0;
  for (std::size_t i = 0; i < expr.size(); ++i) {
    const char c = expr[i];
    if (quote != 0) {
      if (c == '\\') ++i;
      if (c == quote) quote = 0;
      s += ' ';
    } else if (c == '"' || c == '\'' || c == '`') {
      quote = c;
      s += ' ';
    } else if (c == '{' || c == '[') {
      ++nest;
      s += ' ';
    } else if (c == '}' || c == ']') {
      --nest;
      s += ' ';
    } else {
      s += nest > 0 ? ' ' : c;
    }
  }
  static const std::set<std::string> label_lists{"by",       "without",    "on",
                                                 "ignoring", "group_left", "group_right"};
  static const std::set<std::string> keywords{"bool",  "and", "or",  "unless", "offset",
                                              "atan2", "inf", "nan", "Inf",    "NaN"};
  std::set<std::string> out;
  std::size_t i = 0;
  auto skip_spaces = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) ++i;
  };
  while (i < s.size()) {
    const char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c)) != 0 ||
        (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) != 0)) {
      // A number or a duration: 0.99, 1e-9, 5m, 0x1f.
      while (i < s.size() && (ident_char(s[i]) || s[i] == '.')) {
        const bool exp =
            (s[i] == 'e' || s[i] == 'E') && i + 1 < s.size() && (s[i + 1] == '-' || s[i + 1] == '+');
        i += exp ? 2 : 1;
      }
      continue;
    }
    if (c == '$') {  // a Grafana variable
      ++i;
      while (i < s.size() && ident_char(s[i])) ++i;
      continue;
    }
    if (!ident_start(c)) {
      ++i;
      continue;
    }
    const std::size_t b = i;
    while (i < s.size() && ident_char(s[i])) ++i;
    const std::string word = s.substr(b, i - b);
    skip_spaces();
    if (label_lists.count(word) != 0) {
      if (i < s.size() && s[i] == '(') {
        while (i < s.size() && s[i] != ')') ++i;
      }
      continue;
    }
    if (keywords.count(word) != 0) continue;
    if (i < s.size() && s[i] == '(') continue;  // a function or an aggregation
    const std::string_view next = std::string_view(s).substr(i, 8);
    if (next.starts_with("by") || next.starts_with("without")) {
      const std::size_t after = i + (next.starts_with("by") ? 2 : 7);
      if (after >= s.size() || !ident_char(s[after])) continue;  // an aggregation: `sum by (...) (...)`
    }
    out.insert(word);
  }
  return out;
}

/// Whether `name` is a documented family or a series of a documented histogram.
bool documented_series(const std::map<std::string, weir_test::DocFamily>& docs, const std::string& name) {
  if (docs.count(name) != 0) return true;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string_view sfx(suffix);
    if (name.size() > sfx.size() && name.ends_with(sfx)) {
      const auto base = docs.find(name.substr(0, name.size() - sfx.size()));
      if (base != docs.end() && base->second.type == "histogram") return true;
    }
  }
  return false;
}

/// Every "expr" of a dashboard (panel targets, nested panels) and every variable query.
void collect_exprs(const nlohmann::json& j, std::vector<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      if ((key == "expr" || key == "definition") && value.is_string())
        out.push_back(value.get<std::string>());
      collect_exprs(value, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_exprs(v, out);
  }
}

nlohmann::json dashboard() {
  return nlohmann::json::parse(read_text(fs::path(WEIR_DOCS_DIR) / "dashboards" / "weir.json"));
}

/// One alerting rule of a rules file: its name, its expression and the rest of its text.
struct Rule {
  std::string alert;
  std::string expr;
  std::string text;
};

std::size_t indent_of(const std::string& line) {
  return line.find_first_not_of(' ');
}

/// The alerting rules of a Prometheus rules file written as docs/alerts/weir.rules.yml is: `- alert:`
/// entries whose `expr:` is on one line or a block scalar (`|` or `>`).
std::vector<Rule> read_rules(const fs::path& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::vector<Rule> rules;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const auto at = indent_of(line);
    if (at == std::string::npos) continue;
    const std::string_view body = std::string_view(line).substr(at);
    if (body.starts_with("- alert:")) {
      rules.push_back({std::string(body.substr(8)), "", ""});
      const auto b = rules.back().alert.find_first_not_of(' ');
      rules.back().alert = rules.back().alert.substr(b);
      continue;
    }
    if (rules.empty()) continue;
    rules.back().text += line + "\n";
    if (!body.starts_with("expr:")) continue;
    std::string rest(body.substr(5));
    rest = rest.substr(std::min(rest.size(), rest.find_first_not_of(' ')));
    if (rest == "|" || rest == ">" || rest == "|-" || rest == ">-") {
      while (i + 1 < lines.size() &&
             (indent_of(lines[i + 1]) == std::string::npos || indent_of(lines[i + 1]) > at)) {
        rules.back().expr += lines[++i] + "\n";
      }
    } else {
      rules.back().expr = rest;
    }
  }
  return rules;
}

/// Runs `command` (a shell command line); returns its exit status and output.
std::pair<int, std::string> run(const std::string& command) {
  const auto out = fs::temp_directory_path() / ("weir_monitoring_" + std::to_string(::getpid()) + ".txt");
  const int status = std::system((command + " > " + out.string() + " 2>&1").c_str());
  std::string text = read_text(out);
  fs::remove(out);
  return {WEXITSTATUS(status), text};
}

bool have_promtool() {
  return std::system("command -v promtool >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("the PromQL name reader finds metric names and skips functions, labels and keywords") {
  CHECK(
      promql_metrics(
          R"(sum by (stage, error_type) (rate(weir_stage_errors_total{pipeline=~"$pipeline"}[$__rate_interval])))") ==
      std::set<std::string>{"weir_stage_errors_total"});
  CHECK(
      promql_metrics(
          "histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on (pipeline) group_left b > 1e-9") ==
      std::set<std::string>{"a_bucket", "b"});
  CHECK(promql_metrics("max(x offset 15m) and on(pipeline) y == bool 2 unless z") ==
        std::set<std::string>{"x", "y", "z"});
  CHECK(promql_metrics(R"(label_values(weir_stage_items_in_total{pipeline=~"$pipeline"}, stage))") ==
        std::set<std::string>{"weir_stage_items_in_total", "stage"});  // label_values names a label too
  CHECK(promql_metrics(R"(count(up{job="a}b"}) by (job))") == std::set<std::string>{"up"});
  CHECK(promql_metrics("sum by (pipeline) (increase(runs_total[15m])) > 0 and max without(le) (bye)") ==
        std::set<std::string>{"runs_total", "bye"});
}

TEST_CASE("every dashboard expression uses only families that docs/metrics.md lists") {
  const auto docs = weir_test::documented_families(WEIR_DOCS_DIR);
  std::vector<std::string> exprs;
  collect_exprs(dashboard(), exprs);
  REQUIRE(exprs.size() >= 20);
  std::set<std::string> used;
  for (const auto& expr : exprs) {
    CAPTURE(expr);
    auto names = promql_metrics(expr);
    if (expr.rfind("label_values(", 0) == 0) {
      // label_values(metric, label): the second argument is a label.
      names.erase(expr.substr(expr.rfind(',') + 1, expr.rfind(')') - expr.rfind(',') - 1).substr(1));
    }
    CHECK_FALSE(names.empty());
    for (const auto& name : names) {
      CAPTURE(name);
      CHECK(documented_series(docs, name));
      used.insert(name);
    }
  }
  // What the dashboard is for: throughput, errors, latency, backpressure, windows and circuits.
  for (const char* family :
       {"weir_stage_items_in_total", "weir_stage_items_out_total", "weir_stage_errors_total",
        "weir_stage_batch_duration_seconds_bucket", "weir_stage_backpressure_seconds_total",
        "weir_window_emitted_total", "weir_window_late_items_total", "weir_watermark_lag_seconds",
        "weir_circuit_state", "weir_circuit_rejected_total"}) {
    CAPTURE(family);
    CHECK(used.count(family) == 1);
  }
}

TEST_CASE("the dashboard has a pipeline variable and a batch-duration heatmap") {
  const auto d = dashboard();
  CHECK(d["schemaVersion"] == 39);
  CHECK(d["uid"] == "weir-pipelines");
  bool pipeline_var = false;
  for (const auto& v : d["templating"]["list"]) {
    if (v["name"] == "pipeline") {
      pipeline_var = true;
      CHECK(v["type"] == "query");
      CHECK(v["definition"] == "label_values(weir_stage_items_in_total, pipeline)");
    }
  }
  CHECK(pipeline_var);
  bool heatmap = false;
  std::set<int> ids;
  for (const auto& p : d["panels"]) {
    CHECK(ids.insert(p["id"].get<int>()).second);  // unique panel ids
    if (p["type"] != "heatmap") continue;
    heatmap = true;
    CHECK(p["targets"][0]["format"] == "heatmap");
    CHECK(p["targets"][0]["expr"].get<std::string>().find("weir_stage_batch_duration_seconds_bucket") !=
          std::string::npos);
  }
  CHECK(heatmap);
  // Every panel's query filters on the pipeline variable.
  for (const auto& p : d["panels"]) {
    if (!p.contains("targets")) continue;
    for (const auto& t : p["targets"]) {
      CAPTURE(t["expr"]);
      CHECK(t["expr"].get<std::string>().find("pipeline=~\"$pipeline\"") != std::string::npos);
    }
  }
}

TEST_CASE("the dashboard's expressions are valid PromQL for promtool") {
  if (!have_promtool()) {
    MESSAGE("promtool is not installed (Debian package prometheus): PromQL check skipped");
    return;
  }
  std::vector<std::string> exprs;
  const auto d = dashboard();  // kept alive for the loop: a temporary's member would dangle
  for (const auto& p : d["panels"]) {
    if (!p.contains("targets")) continue;
    for (const auto& t : p["targets"]) exprs.push_back(t["expr"].get<std::string>());
  }
  // As recording rules, with Grafana's variables replaced by what Grafana sends.
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
      s.replace(at, from.size(), to);
    return s;
  };
  const auto file =
      fs::temp_directory_path() / ("weir_dashboard_rules_" + std::to_string(::getpid()) + ".yml");
  {
    std::ofstream out(file);
    out << "groups:\n  - name: dashboard\n    rules:\n";
    for (std::size_t i = 0; i < exprs.size(); ++i) {
      std::string e = exprs[i];
      e = replace(e, "$__rate_interval", "1m");
      e = replace(e, "$__range", "1h");
      e = replace(e, "$pipeline", ".+");
      e = replace(e, "$stage", ".+");
      out << "      - record: dashboard:expr" << i << "\n        expr: " << nlohmann::json(e).dump() << "\n";
    }
  }
  const auto [status, output] = run("promtool check rules " + file.string());
  fs::remove(file);
  CAPTURE(output);
  CHECK(status == 0);
}

TEST_CASE("every alert rule uses only documented families and says where and how bad") {
  const auto docs = weir_test::documented_families(WEIR_DOCS_DIR);
  const auto rules = read_rules(fs::path(WEIR_DOCS_DIR) / "alerts" / "weir.rules.yml");
  std::set<std::string> names;
  for (const auto& r : rules) names.insert(r.alert);
  CHECK(names == std::set<std::string>{"WeirStageErrorRate", "WeirStageBackpressure", "WeirCircuitOpen",
                                       "WeirWatermarkLag", "WeirPipelineFailed"});
  for (const auto& r : rules) {
    CAPTURE(r.alert);
    CAPTURE(r.expr);
    const auto used = promql_metrics(r.expr);
    CHECK_FALSE(used.empty());
    for (const auto& name : used) {
      CAPTURE(name);
      CHECK(documented_series(docs, name));
    }
    CHECK(r.text.find("for: ") != std::string::npos);
    CHECK((r.text.find("severity: warning") != std::string::npos ||
           r.text.find("severity: critical") != std::string::npos));
    CHECK(r.text.find("summary: ") != std::string::npos);
    CHECK(r.text.find("description: ") != std::string::npos);
    CHECK(r.text.find("$labels.pipeline") != std::string::npos);
    if (r.alert != "WeirPipelineFailed") CHECK(r.text.find("$labels.stage") != std::string::npos);
  }
}
