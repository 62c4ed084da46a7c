#include "etl.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <concepts>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <queue>
#include <ranges>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <weir/weir.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace flights {
namespace {

/// Event times must stay within these Unix seconds (1900-01-01 to 2200-01-01): windows work in
/// nanoseconds, which reach only the years 1678 to 2262.
constexpr std::int64_t earliest_time = -2208988800;
constexpr std::int64_t latest_time = 7258118400;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::int64_t to_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
}

/// "what: strerror(error)".
std::string with_cause(std::string what, int error) {
  what += ": ";
  what += std::generic_category().message(error);
  return what;
}

/// The reason for a failed lookup join: the airport when the table has no row for it, the
/// exception's message otherwise.
template <class T>
std::string join_reason(const weir::DeadLetter<T>& letter, const std::string& airport) {
  if (letter.error_type.find("JoinMissError") != std::string::npos) {
    return "airport not in the table: " + one_line(airport);
  }
  return letter.message;
}

void append_double(std::string& out, double value) {
  std::array<char, 32> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), result.ptr);
}

void append_unsigned(std::string& out, std::uint64_t value) {
  std::array<char, 24> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), result.ptr);
}

/// Writes lines to a file through two large buffers: while a thread of its own writes a full one to
/// the file, the caller fills the other, so formatting and the copy into the page cache overlap.
/// The lines go to a temporary file next to `path` (".NAME.tmp.PID.N", created new), which commit()
/// renames to `path`; a LineFile destroyed before then removes it, so a failed write leaves `path`
/// as it was. Every failure names the file and the cause. Used by one thread (besides its own).
class LineFile {
 public:
  explicit LineFile(std::filesystem::path path) : path_(std::move(path)) {
    static std::atomic<unsigned> counter{0};
    const std::string name = path_.filename().string();
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
      temp_ = path_.parent_path() / ("." + name + ".tmp." + std::to_string(::getpid()) + "." +
                                     std::to_string(counter.fetch_add(1)));
      fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) fail(errno);
    file_ = ::fdopen(fd, "wb");
    if (file_ == nullptr) {
      const int error = errno;
      ::close(fd);
      discard();
      fail(error);
    }
    std::setvbuf(file_, nullptr, _IONBF, 0);  // the buffers here are large already
    buffer_.reserve(capacity);
    full_.reserve(capacity);
    writer_ = std::thread([this] { write_loop(); });
  }
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  ~LineFile() {
    stop();
    if (file_ != nullptr) std::fclose(file_);
    discard();
  }
  std::string& buffer() { return buffer_; }
  /// Ends the line in the buffer; hands the buffer to the writer when it is full.
  void end_line() {
    buffer_ += '\n';
    if (buffer_.size() >= capacity) hand_over();
  }
  /// Writes `block`, whole lines, after the lines in the buffer, without copying it.
  void write_block(std::string&& block) {
    hand_over();
    buffer_.swap(block);
    hand_over();
  }
  /// Writes what is left and closes the temporary file.
  void close() {
    hand_over();
    stop();
    if (error_ != 0) fail(error_);
    const int status = std::fclose(file_);
    const int error = errno;
    file_ = nullptr;
    if (status != 0) fail(error);
  }
  /// Renames the closed temporary file to the file's name.
  void commit() {
    if (std::rename(temp_.c_str(), path_.c_str()) != 0) fail(errno);
    temp_.clear();
  }

 private:
  static constexpr std::size_t capacity = std::size_t{1} << 20;

  /// Waits for the writer to finish the previous buffer, then gives it this one.
  void hand_over() {
    std::unique_lock lock(mutex_);
    written_.wait(lock, [this] { return !pending_; });
    if (error_ != 0) fail(error_);
    std::swap(buffer_, full_);
    pending_ = !full_.empty();
    if (pending_) ready_.notify_one();
  }
  /// Waits for the writer to finish and ends its thread.
  void stop() {
    if (!writer_.joinable()) return;
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_one();
    writer_.join();
  }
  void write_loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      ready_.wait(lock, [this] { return pending_ || stopping_; });
      if (!pending_) return;
      lock.unlock();
      errno = 0;
      const bool ok = error_ == 0 && std::fwrite(full_.data(), 1, full_.size(), file_) == full_.size();
      const int error = ok ? 0 : (errno != 0 ? errno : EIO);
      full_.clear();
      lock.lock();
      if (error_ == 0) error_ = error;
      pending_ = false;
      written_.notify_one();
    }
  }
  [[noreturn]] void fail(int error) const {
    throw std::runtime_error(
        with_cause("cannot write " + one_line(path_.string(), std::string::npos), error));
  }
  /// Removes the temporary file unless it was committed.
  void discard() noexcept {
    if (temp_.empty()) return;
    ::unlink(temp_.c_str());
    temp_.clear();
  }

  std::filesystem::path path_;
  std::filesystem::path temp_;  ///< the temporary file until commit()
  std::FILE* file_ = nullptr;
  std::string buffer_;  ///< filled by the caller
  std::string full_;    ///< written by the writer while pending_
  std::mutex mutex_;
  std::condition_variable ready_;    ///< pending_ or stopping_ set
  std::condition_variable written_;  ///< pending_ cleared
  bool pending_ = false;
  bool stopping_ = false;
  int error_ = 0;  ///< errno of the first failed write
  std::thread writer_;
};

/// Appends an integer in decimal.
template <std::integral I>
void append_number(std::string& out, I value) {
  std::array<char, 24> text{};
  const auto result = std::to_chars(text.data(), text.data() + text.size(), value);
  out.append(text.data(), result.ptr);
}

/// Appends rounded_mean(sum, count) as std::to_chars writes that double (its shortest form). Below
/// 10,000 in magnitude that is the whole cents without trailing zeros, fixed rather than scientific,
/// which integer arithmetic writes faster; anything larger goes to std::to_chars.
void append_mean(std::string& out, std::int64_t sum, std::uint64_t count) {
  const double mean = rounded_mean(sum, count);
  if (!(std::fabs(mean) < 10000.0)) {
    append_double(out, mean);
    return;
  }
  std::int64_t cents = std::llround(mean * 100.0);
  if (cents < 0) {
    out += '-';
    cents = -cents;
  }
  append_number(out, cents / 100);
  const auto fraction = static_cast<int>(cents % 100);
  if (fraction != 0) {
    out += '.';
    out += static_cast<char>('0' + fraction / 10);
    if (fraction % 10 != 0) out += static_cast<char>('0' + fraction % 10);
  }
}

/// Formats the lines of state_windows.jsonl. Each state's JSON string is escaped once, and the text
/// before the state, which depends on the window only, is kept while the lines have the same window.
/// Not synchronised.
class WindowLines {
 public:
  explicit WindowLines(const EtlInput& input) {
    states_.reserve(input.states.size());
    for (const auto& state : input.states) {
      std::string text;
      append_json_string(text, state);
      states_.push_back(std::move(text));
    }
  }

  void append(std::string& out, const StateWindow& w) {
    if (prefix_.empty() || w.start != start_ || w.end != end_) {
      prefix_.clear();
      prefix_ += R"({"window_start":")";
      append_utc(prefix_, w.start);
      prefix_ += R"(","window_end":")";
      append_utc(prefix_, w.end);
      prefix_ += R"(","state":)";
      start_ = w.start;
      end_ = w.end;
    }
    out += prefix_;
    out += states_[w.state];
    out += R"(,"flights":)";
    append_number(out, w.stats.flights);
    out += R"(,"delayed":)";
    append_number(out, w.stats.delayed);
    out += R"(,"avg_delay":)";
    append_mean(out, w.stats.delay_sum, w.stats.flights);
    out += R"(,"max_delay":)";
    append_number(out, w.stats.max_delay);
    out += R"(,"total_distance":)";
    append_number(out, w.stats.total_distance);
    out += '}';
  }

 private:
  std::vector<std::string> states_;
  std::string prefix_;
  std::int64_t start_ = 0;
  std::int64_t end_ = 0;
};

void append_route(std::string& out, const EtlInput& input, const Route& r) {
  out += R"({"origin_state":)";
  append_json_string(out, input.states[r.states.origin_state]);
  out += R"(,"destination_state":)";
  append_json_string(out, input.states[r.states.destination_state]);
  out += R"(,"flights":)";
  append_unsigned(out, r.stats.flights);
  out += R"(,"avg_delay":)";
  append_double(out, rounded_mean(r.stats.delay_sum, r.stats.flights));
  out += '}';
}

/// The windows sorted by start, then state (the order of state_windows.jsonl). Tumbling windows start
/// at multiples of `size`, so when they span few sizes for their number (always, at a day a window) a
/// counting sort by start puts them in order with two passes, and only the states of each window are
/// sorted; otherwise std::sort.
std::vector<StateWindow> sorted_windows(const std::deque<StateWindow>& windows, std::int64_t size) {
  const auto by_state = [](const StateWindow& a, const StateWindow& b) { return a.state < b.state; };
  if (windows.empty()) return {};
  const auto [low, high] = std::minmax_element(
      windows.begin(), windows.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
  const std::int64_t first = low->start;
  const auto span = static_cast<std::uint64_t>((high->start - first) / size) + 1;
  if (span > 2 * windows.size() + 1024) {
    std::vector<StateWindow> sorted(windows.begin(), windows.end());
    std::sort(sorted.begin(), sorted.end(), [](const StateWindow& a, const StateWindow& b) {
      return a.start != b.start ? a.start < b.start : a.state < b.state;
    });
    return sorted;
  }
  const auto slot = [first, size](const StateWindow& w) {
    return static_cast<std::size_t>((w.start - first) / size);
  };
  std::vector<std::size_t> next(span + 1, 0);  // then: where the next window of each start goes
  for (const auto& w : windows) ++next[slot(w) + 1];
  for (std::size_t i = 1; i <= span; ++i) next[i] += next[i - 1];
  std::vector<StateWindow> sorted(windows.size());
  for (const auto& w : windows) sorted[next[slot(w)]++] = w;
  // next[i] is now the end of the windows of start i, next[i - 1] their beginning.
  std::size_t begin = 0;
  for (std::size_t i = 0; i < span; ++i) {
    const auto from = sorted.begin() + static_cast<std::ptrdiff_t>(begin);
    const auto to = sorted.begin() + static_cast<std::ptrdiff_t>(next[i]);
    std::sort(from, to, by_state);
    begin = next[i];
  }
  return sorted;
}

}  // namespace

// ---------------------------------------------------------------------------
// Dead letters

namespace {

/// A sorted run of dead letters in the temporary file: entries written one after another as the
/// index (8 bytes), the reason's length (4 bytes) and the reason.
struct SpoolRun {
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::int64_t last = 0;  ///< the largest index in the run
};

/// An unnamed temporary file (created in the temporary directory and unlinked at once), read and
/// written at offsets. Not synchronised.
class SpoolFile {
 public:
  SpoolFile() {
    std::string name = (std::filesystem::temp_directory_path() / "weir_dead_letters.XXXXXX").string();
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) fail("create", errno);
    ::unlink(name.c_str());
  }
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;
  ~SpoolFile() { ::close(fd_); }

  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  /// Appends `bytes`.
  void append(std::string_view bytes) {
    while (!bytes.empty()) {
      const ::ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<::off_t>(size_));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("write", n < 0 ? errno : EIO);
      size_ += static_cast<std::uint64_t>(n);
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  /// Reads up to `count` bytes at `offset` into `out`; returns how many.
  std::size_t read(std::uint64_t offset, char* out, std::size_t count) const {
    while (true) {
      const ::ssize_t n = ::pread(fd_, out, count, static_cast<::off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("read", errno);
      return static_cast<std::size_t>(n);
    }
  }

 private:
  [[noreturn]] static void fail(const char* what, int error) {
    throw std::runtime_error(
        with_cause(std::string("dead letters: cannot ") + what + " a temporary file in " +
                       one_line(std::filesystem::temp_directory_path().string(), std::string::npos),
                   error));
  }

  int fd_ = -1;
  std::uint64_t size_ = 0;
};

/// Reads the entries of one run in order through a buffer of 64 KiB.
class RunReader {
 public:
  RunReader(const SpoolFile& file, const SpoolRun& run)
      : file_(&file), next_(run.offset), end_(run.offset + run.bytes) {}

  /// The next entry into `out`; false at the end of the run.
  bool next(DeadLetterEntry& out) {
    char head[12];
    if (!take(head, sizeof head)) return false;
    std::uint32_t length = 0;
    std::memcpy(&out.index, head, 8);
    std::memcpy(&length, head + 8, 4);
    out.reason.resize(length);
    if (!take(out.reason.data(), length)) throw std::runtime_error("dead letters: a temporary file was cut");
    return true;
  }

 private:
  bool take(char* out, std::size_t count) {
    while (count > 0) {
      if (pos_ == buffer_.size()) {
        if (next_ >= end_) return false;
        buffer_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(std::size_t{1} << 16, end_ - next_)));
        const std::size_t got = file_->read(next_, buffer_.data(), buffer_.size());
        if (got == 0) throw std::runtime_error("dead letters: a temporary file was cut");
        buffer_.resize(got);
        next_ += got;
        pos_ = 0;
      }
      const std::size_t n = std::min(count, buffer_.size() - pos_);
      std::memcpy(out, buffer_.data() + pos_, n);
      pos_ += n;
      out += n;
      count -= n;
    }
    return true;
  }

  const SpoolFile* file_;
  std::uint64_t next_;
  std::uint64_t end_;
  std::string buffer_;
  std::size_t pos_ = 0;
};

void append_entry(std::string& out, std::int64_t index, std::string_view reason) {
  const auto length = static_cast<std::uint32_t>(reason.size());
  char head[12];
  std::memcpy(head, &index, 8);
  std::memcpy(head + 8, &length, 4);
  out.append(head, sizeof head);
  out.append(reason);
}

/// Calls `f` with the entries of `runs` and of `sorted` (in index order), merged by index.
void merge_runs(const SpoolFile& file, const std::vector<SpoolRun>& runs,
                const std::vector<DeadLetterEntry>& sorted,
                const std::function<void(const DeadLetterEntry&)>& f) {
  std::vector<RunReader> readers;
  std::vector<DeadLetterEntry> heads(runs.size());
  readers.reserve(runs.size());
  // The sources that still have an entry, as (index, source) in a min-heap; source runs.size() is `sorted`.
  using Head = std::pair<std::int64_t, std::size_t>;
  std::priority_queue<Head, std::vector<Head>, std::greater<>> order;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    readers.emplace_back(file, runs[i]);
    if (readers[i].next(heads[i])) order.emplace(heads[i].index, i);
  }
  std::size_t in_memory = 0;
  if (!sorted.empty()) order.emplace(sorted[0].index, runs.size());
  while (!order.empty()) {
    const std::size_t source = order.top().second;
    order.pop();
    if (source == runs.size()) {
      f(sorted[in_memory]);
      if (++in_memory < sorted.size()) order.emplace(sorted[in_memory].index, source);
    } else {
      f(heads[source]);
      if (readers[source].next(heads[source])) order.emplace(heads[source].index, source);
    }
  }
}

/// Runs beyond this many are merged into one (each open run holds a 64 KiB buffer while merging).
constexpr std::size_t max_runs = 32;

}  // namespace

struct DeadLetters::State {
  std::mutex mutex;
  std::size_t buffer_bytes = 0;
  std::size_t used = 0;  ///< bytes the buffer's entries take, about
  std::vector<DeadLetterEntry> buffer;
  std::uint64_t count = 0;
  std::unique_ptr<SpoolFile> file;
  std::vector<SpoolRun> runs;

  static std::size_t cost(std::string_view reason) { return sizeof(DeadLetterEntry) + reason.size(); }

  void sort_buffer() {
    const auto by_index = [](const DeadLetterEntry& a, const DeadLetterEntry& b) {
      return a.index < b.index;
    };
    if (!std::is_sorted(buffer.begin(), buffer.end(), by_index))
      std::stable_sort(buffer.begin(), buffer.end(), by_index);
  }

  /// Writes the buffer as a sorted run and empties it.
  void spill() {
    sort_buffer();
    if (!file) file = std::make_unique<SpoolFile>();
    std::string bytes;
    bytes.reserve(used + buffer.size() * 12);
    for (const auto& e : buffer) append_entry(bytes, e.index, e.reason);
    // Appended to the last run when it ends the file and the buffer follows it.
    const bool extend = !runs.empty() && runs.back().offset + runs.back().bytes == file->size() &&
                        runs.back().last <= buffer.front().index;
    if (!extend) runs.push_back(SpoolRun{file->size(), 0, 0});
    file->append(bytes);
    runs.back().bytes += bytes.size();
    runs.back().last = buffer.back().index;
    buffer.clear();
    used = 0;
    if (runs.size() > max_runs) compact();
  }

  /// Merges every run into one, in a new file.
  void compact() {
    auto merged = std::make_unique<SpoolFile>();
    SpoolRun run{0, 0, 0};
    std::string bytes;
    merge_runs(*file, runs, {}, [&](const DeadLetterEntry& e) {
      append_entry(bytes, e.index, e.reason);
      run.last = e.index;
      if (bytes.size() >= (std::size_t{1} << 20)) {
        merged->append(bytes);
        bytes.clear();
      }
    });
    merged->append(bytes);
    run.bytes = merged->size();
    file = std::move(merged);
    runs.assign(1, run);
  }
};

DeadLetters::DeadLetters(std::size_t buffer_bytes) : state_(std::make_unique<State>()) {
  state_->buffer_bytes = buffer_bytes;
}
DeadLetters::DeadLetters(DeadLetters&&) noexcept = default;
DeadLetters& DeadLetters::operator=(DeadLetters&&) noexcept = default;
DeadLetters::~DeadLetters() = default;

void DeadLetters::add(std::int64_t index, std::string_view reason) {
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  s.buffer.push_back(DeadLetterEntry{index, std::string(reason)});
  s.used += State::cost(reason);
  ++s.count;
  if (s.used >= s.buffer_bytes) s.spill();
}

std::uint64_t DeadLetters::size() const noexcept {
  return state_ ? state_->count : 0;
}

std::size_t DeadLetters::runs() const noexcept {
  return state_ ? state_->runs.size() : 0;
}

void DeadLetters::for_each(const std::function<void(const DeadLetterEntry&)>& f) const {
  if (!state_) return;
  State& s = *state_;
  s.sort_buffer();
  if (s.runs.empty()) {
    for (const auto& e : s.buffer) f(e);
    return;
  }
  merge_runs(*s.file, s.runs, s.buffer, f);
}

// ---------------------------------------------------------------------------
// Input

namespace {

/// Fills the airport and state ids of `input` from its table.
void intern_airports(EtlInput& input) {
  std::vector<Airport> rows = input.airports.rows();
  std::sort(rows.begin(), rows.end(), [](const Airport& a, const Airport& b) { return a.iata < b.iata; });
  for (const auto& a : rows) input.states.push_back(a.state);
  std::sort(input.states.begin(), input.states.end());
  input.states.erase(std::unique(input.states.begin(), input.states.end()), input.states.end());
  input.airport_codes.reserve(rows.size());
  input.airport_states.reserve(rows.size());
  for (auto& a : rows) {
    const auto state = std::lower_bound(input.states.begin(), input.states.end(), a.state);
    input.airport_states.push_back(static_cast<std::uint32_t>(state - input.states.begin()));
    input.airport_codes.push_back(std::move(a.iata));
  }
}

/// The ids of airport codes: those of the table, and new ones for codes the table has not.
class AirportIds {
 public:
  explicit AirportIds(EtlInput& input) : input_(input) {
    for (std::size_t i = 0; i < input.airport_codes.size(); ++i)
      ids_.emplace(input.airport_codes[i], static_cast<std::uint32_t>(i));
  }
  std::uint32_t operator()(const std::string& code) {
    const auto [it, inserted] =
        ids_.try_emplace(code, static_cast<std::uint32_t>(input_.airport_codes.size()));
    if (inserted) input_.airport_codes.push_back(code);
    return it->second;
  }

 private:
  EtlInput& input_;
  std::unordered_map<std::string, std::uint32_t> ids_;
};

}  // namespace

FlightRecord EtlInput::replayed(std::uint64_t index) const {
  const std::uint64_t n = records.size();
  const std::uint64_t copy = index / n;
  const std::size_t i = static_cast<std::size_t>(index - copy * n);
  if (!reasons[i].empty()) throw RecordError(reasons[i]);
  FlightRecord flight = flights[i];
  flight.index = static_cast<std::int64_t>(index);
  flight.time += static_cast<std::int64_t>(copy) * shift_seconds;
  if (flight.time < earliest_time || flight.time >= latest_time) {
    throw RecordError("out of range: date " + format_utc(flight.time) + " is not within 1900 to 2199");
  }
  return flight;
}

EtlInput load_input(const EtlOptions& options) {
  if (options.repeat < 1) throw std::invalid_argument("repeat must be at least 1");
  EtlInput input;
  input.airports = AirportTable::load(options.airports_path);
  input.records = read_records(options.flights_path);
  input.repeat = options.repeat;
  intern_airports(input);

  // Every record of the file parsed once; the whole days from the earliest to the latest date of those
  // that parse.
  AirportIds airport_id(input);
  std::int64_t first = std::numeric_limits<std::int64_t>::max();
  std::int64_t last = std::numeric_limits<std::int64_t>::min();
  input.flights.reserve(input.records.size());
  input.reasons.reserve(input.records.size());
  for (const auto& record : input.records) {
    try {
      const Flight flight = options.fast_path ? parse_flight(record) : parse_flight_json(record);
      input.flights.push_back(FlightRecord{flight.index, flight.time, flight.delay, flight.distance,
                                           airport_id(flight.origin), airport_id(flight.destination)});
      input.reasons.emplace_back();
      first = std::min(first, flight.time);
      last = std::max(last, flight.time);
    } catch (const RecordError& e) {
      input.flights.emplace_back();
      input.reasons.emplace_back(e.what());
    }
  }
  if (options.repeat == 1 || first > last) return input;  // nothing parses: every copy is dead letters only
  input.shift_seconds = (floor_div(last, 86400) - floor_div(first, 86400) + 1) * 86400;
  if (last >= latest_time ||
      (latest_time - last) / input.shift_seconds < static_cast<std::int64_t>(options.repeat - 1)) {
    throw InputError("--repeat " + std::to_string(options.repeat) + ": the copies, " +
                     std::to_string(input.shift_seconds / 86400) +
                     " days apart, would pass the year 2200, the limit of event time here");
  }
  return input;
}

// ---------------------------------------------------------------------------
// The pipeline

// The fuzz targets (tests/fuzz) build this file with clang 14, which cannot compile libstdc++ 12's
// std::views::iota; they use the input and output code only and define WEIR_FLIGHTS_NO_PIPELINE.
#ifndef WEIR_FLIGHTS_NO_PIPELINE
EtlResult run_etl(const EtlInput& input, const EtlOptions& options) {
  if (options.window_seconds <= 0 || options.window_seconds > std::int64_t{3650} * 86400)
    throw std::invalid_argument("the window must be between 1 second and 3650 days");
  const int par = options.parallelism;

  weir::Pipeline p("flights_etl");

  DeadLetters dead;
  std::deque<StateWindow> windows;  // no reallocation while 1.67 million results come in
  std::vector<Route> routes;
  std::uint64_t late = 0;

  // The join's rows: the airport's id and its state's id.
  struct AirportState {
    std::uint32_t airport;
    std::uint32_t state;
  };
  std::vector<AirportState> airports;
  airports.reserve(input.airport_states.size());
  for (std::size_t i = 0; i < input.airport_states.size(); ++i)
    airports.push_back(AirportState{static_cast<std::uint32_t>(i), input.airport_states[i]});
  const auto airport = [](const AirportState& a) { return a.airport; };
  const auto code = [&input](std::uint32_t id) -> const std::string& { return input.airport_codes[id]; };

  const auto enriched =
      p.source(std::views::iota(std::uint64_t{0}, input.total()))
          .name("records")
          .map([&input](std::uint64_t i) { return input.replayed(i); })
          .name("parse")
          .on_error(weir::on_error::dead_letter([&dead](weir::DeadLetter<std::uint64_t> d) {
            dead.add(static_cast<std::int64_t>(d.item), d.message);
          }))
          .join_by_key(
              weir::table{airports}, [](const FlightRecord& f) { return f.origin; }, airport,
              [](const FlightRecord& f, const AirportState& a) {
                return EnrichedRecord{f, a.state, 0};
              },
              weir::JoinOptions{weir::JoinMiss::error})
          .name("origin_state")
          .on_error(weir::on_error::dead_letter([&dead, code](weir::DeadLetter<FlightRecord> d) {
            dead.add(d.item.index, join_reason(d, code(d.item.origin)));
          }))
          .join_by_key(
              weir::table{std::move(airports)}, [](const EnrichedRecord& f) { return f.flight.destination; },
              airport,
              [](const EnrichedRecord& f, const AirportState& a) {
                EnrichedRecord out = f;
                out.destination_state = a.state;
                return out;
              },
              weir::JoinOptions{weir::JoinMiss::error})
          .name("destination_state")
          .on_error(weir::on_error::dead_letter([&dead, code](weir::DeadLetter<EnrichedRecord> d) {
            dead.add(d.item.flight.index, join_reason(d, code(d.item.flight.destination)));
          }));

  // Output 1: per event-time window and origin state.
  const auto window_size = std::chrono::seconds{options.window_seconds};
  auto by_state = enriched.key_by([](const EnrichedRecord& f) { return f.origin_state; })
                      .window(weir::tumbling{window_size})
                      .event_time(
                          [](const EnrichedRecord& f) {
                            return std::chrono::system_clock::time_point{std::chrono::seconds{f.flight.time}};
                          },
                          max_out_of_orderness)
                      .aggregate(StateStats{}, [](StateStats& s, const EnrichedRecord& f) {
                        const FlightRecord& flight = f.flight;
                        ++s.flights;
                        s.delayed += flight.delay >= delayed_minutes ? 1 : 0;
                        s.delay_sum += flight.delay;
                        s.max_delay = std::max(s.max_delay, flight.delay);
                        s.total_distance += flight.distance;
                      });
  by_state.name("state_windows").parallelism(par);
  by_state
      .sink([&windows](const weir::WindowResult<std::uint32_t, StateStats>& r) {
        windows.push_back(StateWindow{to_seconds(r.start), to_seconds(r.end), r.key, r.value});
      })
      .name("collect_windows");
  // A flight whose window had closed: counted in routes, dead-lettered for the windows.
  by_state.late()
      .sink([&dead, &late, size = options.window_seconds](const EnrichedRecord& f) {
        const std::int64_t start = floor_div(f.flight.time, size) * size;
        std::string reason = "late: window ";
        append_utc(reason, start);
        reason += " to ";
        append_utc(reason, start + size);
        reason += " had closed";
        dead.add(f.flight.index, reason);
        ++late;
      })
      .name("late_flights");

  // Output 2: per route over the whole input.
  enriched
      .map_reduce(
          [](const EnrichedRecord& f) {
            return std::pair{StatePair{f.origin_state, f.destination_state},
                             RouteStats{1, std::int64_t{f.flight.delay}}};
          },
          [](RouteStats a, const RouteStats& b) {
            a.flights += b.flights;
            a.delay_sum += b.delay_sum;
            return a;
          })
      .name("routes")
      .parallelism(par)
      .sink([&routes](std::pair<StatePair, RouteStats>&& r) {
        routes.push_back(Route{r.first, r.second});
      })
      .name("collect_routes");

  EtlResult result;
  if (options.configure) options.configure(p);
  result.report = p.run();
  // Ids sort as the states they stand for.
  result.windows = sorted_windows(windows, options.window_seconds);
  std::deque<StateWindow>().swap(windows);  // its memory back before the files are written
  std::sort(routes.begin(), routes.end(), [](const Route& a, const Route& b) {
    return std::tie(b.stats.flights, a.states.origin_state, a.states.destination_state) <
           std::tie(a.stats.flights, b.states.origin_state, b.states.destination_state);
  });
  result.routes = std::move(routes);
  result.dead_letters = std::move(dead);
  result.late = late;
  return result;
}

std::uint64_t run_parse_only(const EtlInput& input, const EtlOptions&) {
  weir::Pipeline p("flights_parse");
  p.source(std::views::iota(std::uint64_t{0}, input.total()))
      .name("records")
      .map([&input](std::uint64_t i) { return input.replayed(i); })
      .name("parse")
      .on_error(weir::on_error::skip())
      .sink([](const FlightRecord&) {})
      .name("discard");
  const auto report = p.run();
  return report.stage("parse").items_out;
}
#endif  // WEIR_FLIGHTS_NO_PIPELINE

// ---------------------------------------------------------------------------
// Output

double rounded_mean(std::int64_t sum, std::uint64_t count) {
  if (count == 0) return 0.0;
  const double rounded = std::round(static_cast<double>(sum) / static_cast<double>(count) * 100.0) / 100.0;
  return rounded == 0.0 ? 0.0 : rounded;  // no "-0"
}

std::string window_line(const EtlInput& input, const StateWindow& window) {
  std::string out;
  WindowLines(input).append(out, window);
  return out;
}

std::string route_line(const EtlInput& input, const Route& route) {
  std::string out;
  append_route(out, input, route);
  return out;
}

std::string dead_letter_line(const EtlInput& input, const DeadLetterEntry& entry) {
  const RawRecord& raw = input.raw(entry.index);
  // Parsed only when that is safe: a tree too deep to write, or one that would lose a repeated key's
  // value, is written as the text it was.
  nlohmann::json record = raw.json;
  if (!raw.too_large && is_safe_json(raw.json)) {
    auto parsed = nlohmann::json::parse(raw.json, nullptr, false);
    if (!parsed.is_discarded()) record = std::move(parsed);
  }
  const nlohmann::json line{{"index", entry.index}, {"reason", entry.reason}, {"record", std::move(record)}};
  // Invalid UTF-8 (in a text that is not JSON) becomes U+FFFD.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write_outputs(const EtlInput& input, const EtlResult& result, const std::filesystem::path& out_dir) {
  // The window lines (1.67 million at --repeat 500) are formatted in chunks on two threads of their
  // own while this one hands the chunks, in order, to the file's writer.
  LineFile windows(out_dir / "state_windows.jsonl");
  const std::size_t count = result.windows.size();
  constexpr std::size_t chunk = 8192;  // lines: about 1.4 MB
  const auto format = [&input, &result, count](std::size_t from) {
    WindowLines lines(input);
    std::string text;
    const std::size_t to = std::min(count, from + chunk);
    text.reserve((to - from) * 192);
    for (std::size_t i = from; i < to; ++i) {
      lines.append(text, result.windows[i]);
      text += '\n';
    }
    return text;
  };
  std::deque<std::future<std::string>> formatting;
  for (std::size_t from = 0; from < count; from += chunk) {
    formatting.push_back(std::async(std::launch::async, format, from));
    if (formatting.size() == 2) {
      windows.write_block(formatting.front().get());
      formatting.pop_front();
    }
  }
  for (; !formatting.empty(); formatting.pop_front()) windows.write_block(formatting.front().get());
  windows.close();
  LineFile routes(out_dir / "routes.jsonl");
  for (const auto& r : result.routes) {
    append_route(routes.buffer(), input, r);
    routes.end_line();
  }
  routes.close();
  LineFile dead(out_dir / "dead_letters.jsonl");
  result.dead_letters.for_each([&dead, &input](const DeadLetterEntry& d) {
    dead.buffer() += dead_letter_line(input, d);
    dead.end_line();
  });
  dead.close();
  // All three complete: they replace the previous run's.
  windows.commit();
  routes.commit();
  dead.commit();
}

}  // namespace flights
