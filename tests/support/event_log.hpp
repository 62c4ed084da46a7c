#pragma once
// An interceptor that records operator events, for the tests of the resilience operators.

#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>
#include <weir/weir.hpp>

namespace weir_test {

/// Records every operator event with the stage it came from. Thread-safe. String views inside events
/// are only valid during the hook, so they are blanked before an event is stored.
class EventLog : public weir::Interceptor {
 public:
  void on_event(const weir::StageInfo& stage, const weir::Event& e) override {
    weir::Event copy = e;
    std::visit(
        [](auto& ev) {
          if constexpr (requires { ev.error_type; }) ev.error_type = {};
          if constexpr (requires { ev.message; }) ev.message = {};
          if constexpr (requires { ev.action; }) ev.action = {};
          if constexpr (requires { ev.name; }) ev.name = {};
          if constexpr (requires { ev.detail; }) ev.detail = {};
        },
        copy);
    const std::lock_guard lock(mutex_);
    events_.emplace_back(stage.name, std::move(copy));
  }
  /// The events of type E, in the order they arrived.
  template <class E>
  std::vector<E> of() const {
    const std::lock_guard lock(mutex_);
    std::vector<E> out;
    for (const auto& [stage, e] : events_) {
      if (const auto* x = std::get_if<E>(&e)) out.push_back(*x);
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, weir::Event>> events_;
};

}  // namespace weir_test
