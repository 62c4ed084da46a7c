// The builder: Pipeline and the stage handles' settings.
#include "weir/pipeline.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "stage_settings.hpp"
#include "weir/detail/execution.hpp"
#include "weir/detail/plan.hpp"

namespace weir {

// -----------------------------------------------------------------------------------------------------
// Builder

namespace {
void check_name(const std::string& n) {
  if (n.empty()) throw std::invalid_argument("a stage name cannot be empty");
}
}  // namespace

Pipeline::Pipeline(std::string name, PipelineOptions options)
    : name_(std::move(name)),
      options_(std::move(options)),
      live_(std::make_shared<LiveView>(LiveView::Token{}, name_)) {
  if (name_.empty()) throw std::invalid_argument("a pipeline needs a name");
  if (options_.threads < 0) throw std::invalid_argument("threads cannot be negative");
}

Pipeline::~Pipeline() {
  if (run_) run_->stop();
  live_->unbind();  // views that outlive the pipeline keep its last snapshot
}

void Pipeline::check_building() const {
  if (run_) throw std::logic_error("pipeline '" + name_ + "' has already run; build a new one");
}

detail::LogicalNode& Pipeline::node(int id) {
  return *nodes_.at(static_cast<std::size_t>(id));
}

int Pipeline::add_node(std::string kind, std::vector<int> inputs, const std::type_info* in_type,
                       std::unique_ptr<detail::Kernel> kernel, bool single_threaded, bool is_sink,
                       std::vector<int> ports) {
  check_building();
  auto n = std::make_unique<detail::LogicalNode>();
  n->id = static_cast<int>(nodes_.size());
  n->name = kind + "#" + std::to_string(n->id);
  n->kind = std::move(kind);
  n->inputs = std::move(inputs);
  n->in_type = in_type;
  n->kernel = std::move(kernel);
  n->single_threaded = single_threaded;
  n->is_sink = is_sink;
  ports.resize(n->inputs.size(), 0);
  for (std::size_t k = 0; k < n->inputs.size(); ++k) {
    auto& up = node(n->inputs[k]);
    const std::size_t outs = up.source ? 1U : up.kernel->outputs();
    if (ports[k] < 0 || static_cast<std::size_t>(ports[k]) >= outs)
      throw std::logic_error("stage '" + up.name + "' has no output " + std::to_string(ports[k]));
    up.outputs.push_back(n->id);
    up.output_ports.push_back(ports[k]);
  }
  n->input_ports = std::move(ports);
  nodes_.push_back(std::move(n));
  return nodes_.back()->id;
}

int Pipeline::add_source_node(std::string kind, std::shared_ptr<detail::SourceBase> src) {
  check_building();
  if (!src) throw std::invalid_argument("a source cannot be null");
  auto n = std::make_unique<detail::LogicalNode>();
  n->id = static_cast<int>(nodes_.size());
  n->name = kind + "#" + std::to_string(n->id);
  n->kind = "source";
  n->source = std::move(src);
  n->single_threaded = true;
  nodes_.push_back(std::move(n));
  return nodes_.back()->id;
}

void Pipeline::intercept(std::shared_ptr<Interceptor> interceptor, int priority) {
  check_building();
  if (!interceptor) throw std::invalid_argument("an interceptor cannot be null");
  hooks_.push_back({priority, hook_order_++, std::move(interceptor)});
}

RunReport Pipeline::run(const TraceContext& parent) {
  start(parent);
  return wait();
}

void Pipeline::start(const TraceContext& parent) {
  check_building();
  run_ = std::make_unique<detail::Run>(name_, options_, nodes_, hooks_, parent);
  live_->bind(run_->execution());
  run_->start();
}

RunReport Pipeline::wait() {
  if (!run_) throw std::logic_error("pipeline '" + name_ + "' was not started");
  return run_->wait();
}

void Pipeline::cancel() noexcept {
  if (run_) run_->cancel();
}

std::string Pipeline::explain() const {
  return detail::explain_plan(name_, nodes_);
}

// ---------------------------------------------------------------------------------------------------
// Stage handles

namespace detail {

const std::string& StageRef::stage_name() const {
  return pipeline_->node(id_).name;
}

void StageRef::set_name(std::string name) {
  check_name(name);
  pipeline_->check_building();
  for (const auto& n : pipeline_->nodes_) {
    if (n->id != id_ && n->name == name) {
      throw std::invalid_argument("stage name '" + name + "' is already used in pipeline '" +
                                  pipeline_->name() + "'");
    }
  }
  pipeline_->node(id_).name = std::move(name);
}

void StageRef::set_parallelism(int n) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  if (n < 1) throw std::invalid_argument("parallelism of '" + node.name + "' must be at least 1");
  if (node.single_threaded && n != 1) {
    throw std::invalid_argument("stage '" + node.name + "' (" + node.kind + ") runs on one thread only");
  }
  node.parallelism = n;
}

void StageRef::set_ordered() {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  if (node.source) {
    throw std::invalid_argument("source '" + node.name +
                                "' cannot be ordered: a source's items keep their order already");
  }
  if (node.is_sink) {
    throw std::invalid_argument("sink '" + node.name +
                                "' cannot be ordered: it has no output; a sink at parallelism 1 receives "
                                "its input in order");
  }
  if (!node.kernel->stateless()) {
    throw std::invalid_argument("stage '" + node.name + "' (" + node.kind +
                                ") cannot be ordered: only stateless stages take .ordered(); a keyed or "
                                "stateful stage runs serially per partition and keeps order already");
  }
  node.ordered = true;
}

void StageRef::set_policy(ErrorPolicy policy) {
  pipeline_->check_building();
  auto& node = pipeline_->node(id_);
  if (node.source)
    throw std::invalid_argument("source '" + node.name +
                                "' has no error policy: a failing source fails the run");
  const bool wants_dlq =
      policy.kind == ErrorPolicy::Kind::dead_letter || policy.exhausted == ErrorPolicy::Kind::dead_letter;
  if (wants_dlq && (policy.dead_letter == nullptr || policy.dead_letter->item_type() != *node.in_type)) {
    throw std::invalid_argument("the dead-letter sink of stage '" + node.name +
                                "' must take weir::DeadLetter<T> with T the stage's input type");
  }
  if (policy.kind == ErrorPolicy::Kind::retry) {
    if (resilience_of(node).retry) throw_retry_set_twice(node.name);
  }
  node.policy = std::move(policy);
}

void StageRef::add_interceptor(std::shared_ptr<Interceptor> i, int priority) {
  pipeline_->check_building();
  if (!i) throw std::invalid_argument("an interceptor cannot be null");
  pipeline_->node(id_).interceptors.push_back({priority, pipeline_->hook_order_++, std::move(i)});
}

}  // namespace detail
}  // namespace weir
