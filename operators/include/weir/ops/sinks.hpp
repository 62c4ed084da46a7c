#pragma once
/// \file Sinks: callback, collect into a vector, JSON-lines file, bounded async sink.

#include <blockingconcurrentqueue.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "weir/detail/fusion.hpp"
#include "weir/detail/call_guard.hpp"

namespace weir::ops {

/// Calls `F` for every item, in batch order. Runs with parallelism 1 unless the stage says otherwise.
template <class F>
struct SinkOp {
  template <class X>
  using output = void;
  static constexpr bool may_grow = false;
  static constexpr bool counts_emitted = false;
  static constexpr bool is_filter = false;
  /// Calling the function does not change it, so the fused loop may run a copy of this operator.
  template <class X>
  static constexpr bool pure = detail::user_invocable<const F&, X&&>;
  F fn;

  template <bool Keep, class X, class Next>
  void push(X&& x, detail::OpCtx& c, Next&&) {
    if constexpr (Keep) {
      if (c.guard != nullptr) [[unlikely]] {
        call_guarded(x, c.guard, c.stage, c.tally, &c.user);
        return;
      }
    }
    try {
      if constexpr (Keep) {
        detail::invoke_user(fn, c.user, detail::pass_kept(fn, x));
      } else {
        detail::invoke_user(fn, c.user, std::forward<X>(x));
      }
    } catch (...) {
      c.stage->recover(
          x, [&] { detail::invoke_user(fn, c.user, detail::pass_kept(fn, x)); }, *c.tally);
    }
  }

  /// The call through the stage's timeout / circuit breaker (see detail::CallGuard). Kept out of line,
  /// and given values rather than the OpCtx, so that the fused loop compiles as it does without it.
  template <class X>
  [[gnu::noinline, gnu::cold]] void call_guarded(const X& x, detail::CallGuard* guard,
                                                 detail::Stage* stage, detail::BatchTally* tally,
                                                 StageContext* user) {
    auto call = [&] { detail::guarded_call(*guard, fn, x, *tally, *user); };
    try {
      call();
    } catch (...) {
      stage->recover(x, call, *tally);
    }
  }
};

/// Feeds every item of `in` to `fn` under the stage's error policy; adds the delivered count to `tally`.
template <class T, class Fn>
void deliver(Fn& fn, detail::BatchPtr in, detail::Stage& st, detail::BatchTally& tally) {
  detail::FusedKernel<T, SinkOp<std::reference_wrapper<Fn>>> k(
      std::tuple{SinkOp<std::reference_wrapper<Fn>>{std::ref(fn)}});
  detail::Stage* stages[1] = {&st};
  std::uint64_t counts[2] = {0, 0};
  k.run(in, stages, &tally, counts);
  tally.delivered += counts[1];
}

/// Appends every item to a vector the caller owns (which must outlive the run). Parallelism 1.
template <class T>
class CollectSink final : public detail::Kernel {
 public:
  explicit CollectSink(std::vector<T>& out) : out_(&out) {}
  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage&, detail::BatchTally& tally) override {
    auto& v = static_cast<Batch<T>&>(*in).items;
    if (in.use_count() > 1) {
      out_->insert(out_->end(), v.begin(), v.end());
    } else {
      out_->insert(out_->end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
    }
    tally.delivered += v.size();
    return nullptr;
  }

 private:
  std::vector<T>* out_;
};

/// Writes one JSON document per line. `Fmt` turns an item into an nlohmann::json or a std::string
/// holding one JSON document. Parallelism 1; the file is opened when the run starts and flushed at its end.
template <class T, class Fmt>
class JsonlFileSink final : public detail::Kernel {
 public:
  JsonlFileSink(std::filesystem::path path, Fmt fmt) : path_(std::move(path)), fmt_(std::move(fmt)) {}
  JsonlFileSink(const JsonlFileSink&) = delete;
  JsonlFileSink& operator=(const JsonlFileSink&) = delete;
  ~JsonlFileSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  void open(detail::Stage&) override {
    file_ = std::fopen(path_.c_str(), "wb");
    if (file_ == nullptr)
      throw std::runtime_error("cannot open " + path_.string() + ": " + std::strerror(errno));
    buffer_.resize(1 << 16);
    std::setvbuf(file_, buffer_.data(), _IOFBF, buffer_.size());
  }

  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally& tally) override {
    auto write = [this](const T& item) {
      line_.clear();
      if constexpr (std::is_convertible_v<std::invoke_result_t<Fmt&, const T&>, std::string_view>) {
        line_ = std::invoke(fmt_, item);
      } else {
        line_ = nlohmann::json(std::invoke(fmt_, item)).dump();
      }
      line_.push_back('\n');
      if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size())
        throw std::runtime_error("cannot write " + path_.string() + ": " + std::strerror(errno));
    };
    deliver<T>(write, std::move(in), st, tally);
    return nullptr;
  }

  void close(detail::Stage&) override {
    if (file_ == nullptr) return;
    const bool failed = std::fflush(file_) != 0;
    std::fclose(file_);
    file_ = nullptr;
    if (failed) throw std::runtime_error("cannot write " + path_.string() + ": " + std::strerror(errno));
  }

 private:
  std::filesystem::path path_;
  Fmt fmt_;
  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;
  std::string line_;
};

/// Calls `F` on a thread of its own, fed through a bounded lock-free queue of batches, so a slow
/// sink does not hold a oneTBB worker. When the queue is full the stage waits (counted as blocked).
template <class T, class F>
class AsyncSink final : public detail::Kernel {
 public:
  AsyncSink(F fn, std::size_t capacity_batches)
      : fn_(std::move(fn)), free_(static_cast<ssize_t>(capacity_batches < 1 ? 1 : capacity_batches)) {}
  AsyncSink(const AsyncSink&) = delete;
  AsyncSink& operator=(const AsyncSink&) = delete;
  ~AsyncSink() override { stop(); }

  void open(detail::Stage& st) override {
    stage_ = &st;
    worker_ = std::thread([this] { consume(); });
  }

  detail::BatchPtr apply(detail::BatchPtr in, detail::Stage& st, detail::BatchTally&) override {
    if (!free_.tryWait()) {
      const auto t0 = st.clock->steady_now();
      free_.wait();
      const auto waited = std::chrono::duration_cast<std::chrono::nanoseconds>(st.clock->steady_now() - t0);
      st.add_blocked(waited);
      if (st.listens()) st.emit(events::Backpressure{waited});
    }
    queue_.enqueue(token_, std::move(in));
    return nullptr;
  }

  void close(detail::Stage&) override { stop(); }
  [[nodiscard]] bool stateless() const noexcept override { return false; }

 private:
  void stop() {
    if (!worker_.joinable()) return;
    queue_.enqueue(token_, nullptr);
    worker_.join();
  }

  void consume() {
    auto& st = *stage_;
    for (;;) {
      detail::BatchPtr b;
      queue_.wait_dequeue(b);
      if (!b) return;
      free_.signal();
      detail::BatchTally tally{};
      const std::int64_t t0 = st.hooks() ? st.now_ns() : 0;
      deliver<T>(fn_, std::move(b), st, tally);
      const std::int64_t t1 = st.hooks() ? st.now_ns() : 0;
      st.add_delivered(tally.delivered, tally, t1 - t0);
      st.flush_user(st.slot_index());  // what the sink's function recorded, from this thread
    }
  }

  F fn_;
  moodycamel::BlockingConcurrentQueue<detail::BatchPtr> queue_;
  // One producer token: the stage runs serially but on any oneTBB thread, and the queue keeps
  // order only per producer.
  moodycamel::ProducerToken token_{queue_};
  moodycamel::LightweightSemaphore free_;
  std::thread worker_;
  detail::Stage* stage_ = nullptr;
};

}  // namespace weir::ops
