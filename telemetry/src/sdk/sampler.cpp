#include "weir/telemetry/sdk/sampler.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "../trace_ids.hpp"

namespace weir::telemetry {

namespace {

class AlwaysOn final : public Sampler {
 public:
  bool should_sample(const TraceContext&, const TraceId&) const noexcept override { return true; }
  std::string description() const override { return "AlwaysOnSampler"; }
};

class AlwaysOff final : public Sampler {
 public:
  bool should_sample(const TraceContext&, const TraceId&) const noexcept override { return false; }
  std::string description() const override { return "AlwaysOffSampler"; }
};

class Ratio final : public Sampler {
 public:
  explicit Ratio(double ratio) : ratio_(ratio) {
    if (!(ratio >= 0.0 && ratio <= 1.0))
      throw std::invalid_argument("ratio_sampler: the ratio must be in [0, 1]");
    // Sampled when the trace id's last 8 bytes, as a number, are below ratio * 2^64.
    if (ratio >= 1.0) {
      all_ = true;
    } else {
      threshold_ = static_cast<std::uint64_t>(std::ldexp(ratio, 64));
    }
  }
  bool should_sample(const TraceContext&, const TraceId& id) const noexcept override {
    if (all_) return true;
    std::uint64_t v = 0;
    for (std::size_t i = 8; i < 16; ++i) v = (v << 8) | id.bytes[i];
    return v < threshold_;
  }
  std::string description() const override { return "TraceIdRatioBased{" + std::to_string(ratio_) + "}"; }

 private:
  double ratio_;
  bool all_ = false;
  std::uint64_t threshold_ = 0;
};

class ParentBased final : public Sampler {
 public:
  explicit ParentBased(std::shared_ptr<const Sampler> root) : root_(std::move(root)) {
    if (!root_) throw std::invalid_argument("parent_based_sampler: the root sampler cannot be null");
  }
  bool should_sample(const TraceContext& parent, const TraceId& id) const noexcept override {
    if (detail::has_ids(parent)) return parent.sampled();
    return root_->should_sample(parent, id);
  }
  std::string description() const override { return "ParentBased{root=" + root_->description() + "}"; }

 private:
  std::shared_ptr<const Sampler> root_;
};

}  // namespace

std::shared_ptr<const Sampler> always_on_sampler() {
  static const auto s = std::make_shared<const AlwaysOn>();
  return s;
}
std::shared_ptr<const Sampler> always_off_sampler() {
  static const auto s = std::make_shared<const AlwaysOff>();
  return s;
}
std::shared_ptr<const Sampler> ratio_sampler(double ratio) {
  return std::make_shared<const Ratio>(ratio);
}
std::shared_ptr<const Sampler> parent_based_sampler(std::shared_ptr<const Sampler> root) {
  return std::make_shared<const ParentBased>(std::move(root));
}

}  // namespace weir::telemetry
