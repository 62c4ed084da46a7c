#pragma once
/// \file Error policies, dead letters and the error a failed run throws.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

namespace weir {

/// A record that a stage could not process, handed to a dead-letter sink with why it failed.
template <class T>
struct DeadLetter {
  T item;                  ///< the stage's input item, as it was before the failing call
  std::string stage;       ///< name of the stage that failed
  std::string error_type;  ///< demangled exception type, e.g. "std::invalid_argument"
  std::string message;     ///< what() of the exception
  int attempts = 1;        ///< calls made, retries included
};

/// One kind of error seen by a run: which stage, what type, how often and when.
struct ErrorSummary {
  std::string stage;
  std::string type;
  std::string message;     ///< the first message seen
  bool retryable = false;  ///< the stage's policy retried this error
  std::uint64_t count = 0;
  std::chrono::system_clock::time_point first_seen{};
  std::chrono::system_clock::time_point last_seen{};
};

namespace detail {
/// Type-erased receiver of dead letters for one stage; calls are serialised by the runtime.
class DeadLetterTarget {
 public:
  explicit DeadLetterTarget(const std::type_info& type) : type_(&type) {}
  virtual ~DeadLetterTarget() = default;
  DeadLetterTarget(const DeadLetterTarget&) = delete;
  DeadLetterTarget& operator=(const DeadLetterTarget&) = delete;
  [[nodiscard]] const std::type_info& item_type() const noexcept { return *type_; }
  /// `item` points at an object of item_type().
  virtual void deliver(const void* item, const std::string& stage, const std::string& error_type,
                       const std::string& message, int attempts) = 0;

 private:
  const std::type_info* type_;
};

template <class T, class F>
class DeadLetterFn final : public DeadLetterTarget {
 public:
  explicit DeadLetterFn(F fn) : DeadLetterTarget(typeid(T)), fn_(std::move(fn)) {}
  void deliver(const void* item, const std::string& stage, const std::string& error_type,
               const std::string& message, int attempts) override {
    fn_(DeadLetter<T>{*static_cast<const T*>(item), stage, error_type, message, attempts});
  }

 private:
  F fn_;
};

template <class F>
struct dead_letter_arg;
template <class C, class R, class A>
struct dead_letter_arg<R (C::*)(A) const> {
  using type = A;
};
template <class C, class R, class A>
struct dead_letter_arg<R (C::*)(A)> {
  using type = A;
};
template <class R, class A>
struct dead_letter_arg<R (*)(A)> {
  using type = A;
};
template <class T>
struct dead_letter_item;
template <class T>
struct dead_letter_item<DeadLetter<T>> {
  using type = T;
};
}  // namespace detail

/// What a stage does when its function throws. Build one with the functions in `weir::on_error`.
/// A value type; copies share the dead-letter sink.
struct ErrorPolicy {
  enum class Kind { fail, skip, retry, dead_letter };
  Kind kind = Kind::fail;
  int max_attempts = 1;                                   ///< retry: total calls, the first included
  std::chrono::nanoseconds backoff{0};                    ///< retry: wait before the second call
  double multiplier = 2.0;                                ///< retry: growth of the wait per attempt
  Kind exhausted = Kind::fail;                            ///< retry: what happens when attempts run out
  std::shared_ptr<detail::DeadLetterTarget> dead_letter;  ///< dead_letter (or exhausted == dead_letter)
};

/// An ErrorPolicy whose dead-letter sink takes `weir::DeadLetter<T>`, as `on_error::dead_letter`
/// makes it: a stage's `.on_error(...)` checks T against the stage's input type when the program
/// compiles (where the stage's handle knows that type; otherwise when the policy is set).
/// Converts to ErrorPolicy. A value type; copies share the dead-letter sink.
template <class T>
struct DeadLetterPolicy : ErrorPolicy {};

namespace detail {
/// Throws std::invalid_argument for an on_error::retry that cannot be.
inline void check_retry(int attempts, const ErrorPolicy& then) {
  if (attempts < 1) throw std::invalid_argument("weir::on_error::retry needs at least one attempt");
  if (then.kind == ErrorPolicy::Kind::retry)
    throw std::invalid_argument("weir::on_error::retry cannot end in retry");
}
/// on_error::retry for either kind of policy.
template <class P>
P retry_policy(int attempts, std::chrono::nanoseconds backoff, P then) {
  check_retry(attempts, then);
  P p = std::move(then);
  p.exhausted = p.kind;
  p.kind = ErrorPolicy::Kind::retry;
  p.max_attempts = attempts;
  p.backoff = backoff;
  return p;
}
}  // namespace detail

/// Error policies for `Stream::on_error`.
namespace on_error {

/// Fail the run (the default): the pipeline drains and `run()` throws PipelineError.
[[nodiscard]] inline ErrorPolicy fail() {
  return {};
}

/// Count the item as skipped and go on.
[[nodiscard]] inline ErrorPolicy skip() {
  ErrorPolicy p;
  p.kind = ErrorPolicy::Kind::skip;
  return p;
}

/// Send the failed item to `sink`, a callable taking `weir::DeadLetter<T>` where T is the stage's input type.
template <class T, class F>
[[nodiscard]] DeadLetterPolicy<T> dead_letter(F sink) {
  static_assert(std::invocable<F&, DeadLetter<T>&&>,
                "on_error::dead_letter: the sink must be callable as f(weir::DeadLetter<T>)");
  DeadLetterPolicy<T> p;
  p.kind = ErrorPolicy::Kind::dead_letter;
  p.dead_letter = std::make_shared<detail::DeadLetterFn<T, F>>(std::move(sink));
  return p;
}

/// As above, with T read from the parameter of a non-generic callable.
template <class F>
[[nodiscard]] auto dead_letter(F sink) {
  using Arg = std::remove_cvref_t<typename detail::dead_letter_arg<decltype(&F::operator())>::type>;
  return dead_letter<typename detail::dead_letter_item<Arg>::type>(std::move(sink));
}

/// Call again up to `attempts` times in all, waiting `backoff`, then `backoff * 2`, ...;
/// when every attempt failed, apply `then` (fail, skip or dead_letter).
[[nodiscard]] inline ErrorPolicy retry(int attempts, std::chrono::nanoseconds backoff,
                                       ErrorPolicy then = fail()) {
  return detail::retry_policy(attempts, backoff, std::move(then));
}

/// The same ending in a dead-letter sink: keeps the sink's item type for `.on_error` to check.
template <class T>
[[nodiscard]] DeadLetterPolicy<T> retry(int attempts, std::chrono::nanoseconds backoff,
                                        DeadLetterPolicy<T> then) {
  return detail::retry_policy(attempts, backoff, std::move(then));
}

}  // namespace on_error

struct RunReport;

/// Thrown by `Pipeline::run()` / `wait()` when a run fails; carries the error summaries and the report.
class PipelineError : public std::runtime_error {
 public:
  PipelineError(std::string what, std::vector<ErrorSummary> errors, std::shared_ptr<const RunReport> report)
      : std::runtime_error(std::move(what)), errors_(std::move(errors)), report_(std::move(report)) {}
  [[nodiscard]] const std::vector<ErrorSummary>& errors() const noexcept { return errors_; }
  /// The report of the failed run (never null).
  [[nodiscard]] const RunReport& report() const noexcept { return *report_; }

 private:
  std::vector<ErrorSummary> errors_;
  std::shared_ptr<const RunReport> report_;
};

}  // namespace weir
