#include "weir/telemetry/trace.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <stdexcept>
#include <utility>

#include "trace_ids.hpp"
#include "weir/telemetry/sdk/sampler.hpp"
#include "weir/telemetry/sdk/span_processor.hpp"

namespace weir::telemetry {

const AttributeValue* SpanData::attribute(std::string_view key) const noexcept {
  for (const auto& a : attributes) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------------
// Span

Span::Span(Span&& other) noexcept
    : tracer_(other.tracer_),
      data_(std::move(other.data_)),
      attribute_count_(other.attribute_count_),
      context_(std::move(other.context_)) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    tracer_ = other.tracer_;
    data_ = std::move(other.data_);
    attribute_count_ = other.attribute_count_;
    context_ = std::move(other.context_);
  }
  return *this;
}

void Span::set_value(std::string_view key, AttributeValue value) {
  auto& attributes = data_->attributes;
  const auto live = attributes.begin() + attribute_count_;
  for (auto it = attributes.begin(); it != live; ++it) {
    if (it->key == key) {
      it->value = std::move(value);
      return;
    }
  }
  if (attribute_count_ < attributes.size()) {
    // Reused storage: assigning keeps the key's buffer.
    auto& a = attributes[attribute_count_];
    a.key.assign(key);
    a.value = std::move(value);
  } else {
    attributes.push_back(Attribute{std::string(key), std::move(value)});
  }
  ++attribute_count_;
}

void Span::add_event(std::string_view name, std::vector<Attribute> attributes) {
  if (!data_) return;
  if (data_->events.size() >= tracer_->max_events_per_span()) {
    ++data_->dropped_events;
    return;
  }
  data_->events.push_back(SpanEvent{std::string(name), tracer_->now_unix_nano(), std::move(attributes)});
}

void Span::set_status(StatusCode code, std::string_view message) {
  if (!data_) return;
  data_->status = code;
  data_->status_message = code == StatusCode::error ? std::string(message) : std::string();
}

void Span::record_error(std::string_view type, std::string_view message) {
  if (!data_) return;
  add_event("exception",
            {{"exception.type", std::string(type)}, {"exception.message", std::string(message)}});
  set_status(StatusCode::error, message);
}

void Span::end() noexcept {
  if (!data_) return;
  auto& attributes = data_->attributes;
  if (attributes.size() > attribute_count_)
    attributes.erase(attributes.begin() + attribute_count_, attributes.end());
  data_->end_unix_nano = tracer_->now_unix_nano();
  tracer_->processor().on_end(std::move(data_));
  data_.reset();
}

// ---------------------------------------------------------------------------------------------------
// Tracer

Tracer::Tracer(std::shared_ptr<SpanProcessor> processor, TracerOptions options)
    : processor_(std::move(processor)), options_(std::move(options)) {
  if (!processor_) throw std::invalid_argument("Tracer: the processor cannot be null");
  sampler_ = options_.sampler ? options_.sampler : parent_based_sampler(always_on_sampler());
  if (!options_.clock) options_.clock = system_clock();
  clock_ = options_.clock.get();
}

Tracer::~Tracer() = default;

SpanStats Tracer::stats() const noexcept {
  return processor_->stats();
}

bool Tracer::force_flush(std::chrono::milliseconds timeout) {
  return processor_->force_flush(timeout);
}

bool Tracer::shutdown(std::chrono::milliseconds timeout) {
  return processor_->shutdown(timeout);
}

std::int64_t Tracer::now_unix_nano() const noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->system_now().time_since_epoch())
      .count();
}

Span Tracer::start_span(std::string_view name, const TraceContext& parent, SpanKind kind) const {
  Span s;
  TraceContext& self = s.context_;
  const bool has_parent = detail::has_ids(parent);
  if (has_parent) {
    self.trace_id = parent.trace_id;
    self.span_id = SpanId::random();
    self.flags = parent.flags;
    self.trace_state = parent.trace_state;
  } else {
    self.trace_id = TraceId::random();
    self.span_id = SpanId::random();
    self.flags = 0;
  }
  const bool sampled = sampler_->should_sample(parent, self.trace_id);
  begin(s, name, has_parent ? parent.span_id : SpanId{}, sampled, kind, 0);
  return s;
}

Span Tracer::start_span_with_context(std::string_view name, const TraceContext& self, SpanId parent,
                                     bool sampled, SpanKind kind, std::int64_t start_unix_nano) const {
  Span s;
  s.context_ = self;
  begin(s, name, parent, sampled, kind, start_unix_nano);
  return s;
}

void Tracer::begin(Span& s, std::string_view name, SpanId parent, bool sampled, SpanKind kind,
                   std::int64_t start_unix_nano) const {
  s.tracer_ = this;
  const TraceContext& self = s.context_;
  s.context_.flags = static_cast<std::uint8_t>(sampled ? (self.flags | 0x01U) : (self.flags & ~0x01U));
  if (!sampled) return;
  // Possibly the storage of an exported span: every field is overwritten, and its attributes are
  // reused in place (see Span::set_value) so that their keys keep their buffers.
  auto d = processor_->make_span_data();
  if (!d) d = std::make_unique<SpanData>();
  d->trace_id = self.trace_id;
  d->span_id = self.span_id;
  d->parent_span_id = parent;
  d->flags = self.flags;
  d->trace_state.assign(self.trace_state);
  d->name.assign(name);
  d->kind = kind;
  d->end_unix_nano = 0;
  // Reused storage keeps its capacity, so growing is paid once per slot: start small.
  if (d->attributes.capacity() == 0) d->attributes.reserve(4);
  d->events.clear();
  d->dropped_events = 0;
  d->status = StatusCode::unset;
  d->status_message.clear();
  d->start_unix_nano = start_unix_nano != 0 ? start_unix_nano : now_unix_nano();
  s.data_ = std::move(d);
  s.attribute_count_ = 0;
}

// ---------------------------------------------------------------------------------------------------
// Propagation

namespace {
std::atomic<std::uint64_t> extracted_count{0};
std::atomic<std::uint64_t> rejected_count{0};

/// The header called `name`, matched exactly first, then ignoring case (HTTP header names).
const std::string* find_header(const Headers& h, std::string_view name) {
  if (auto it = h.find(std::string(name)); it != h.end()) return &it->second;
  for (const auto& [k, v] : h) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        }))
      return &v;
  }
  return nullptr;
}
}  // namespace

TraceContext extract(const Headers& headers) noexcept {
  try {
    const std::string* tp = find_header(headers, "traceparent");
    if (tp == nullptr) return {};
    const std::string* ts = find_header(headers, "tracestate");
    auto ctx = parse_traceparent(*tp, ts != nullptr ? std::string_view(*ts) : std::string_view{});
    if (!ctx) {
      rejected_count.fetch_add(1, std::memory_order_relaxed);
      return {};
    }
    extracted_count.fetch_add(1, std::memory_order_relaxed);
    return *ctx;
  } catch (...) {  // allocation failure: treat as no context
    return {};
  }
}

void inject(const TraceContext& ctx, Headers& headers) {
  if (!ctx.valid()) return;
  headers["traceparent"] = format_traceparent(ctx);
  if (ctx.trace_state.empty()) {
    headers.erase("tracestate");
  } else {
    headers["tracestate"] = ctx.trace_state;
  }
}

PropagationStats propagation_stats() noexcept {
  return PropagationStats{extracted_count.load(std::memory_order_relaxed),
                          rejected_count.load(std::memory_order_relaxed)};
}

Span continue_trace(const Tracer& tracer, std::string_view name, Headers& headers, SpanKind kind) {
  Span span = tracer.start_span(name, extract(headers), kind);
  inject(span.context(), headers);
  return span;
}

}  // namespace weir::telemetry
