#include "flights.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <system_error>
#include <unordered_set>
#include <utility>

#include <simdjson.h>

namespace flights {
namespace {

// ---------------------------------------------------------------------------
// Messages

/// `text` made safe for a one-line message: control bytes and bytes outside ASCII become \xNN, and
/// anything past `max_chars` bytes is cut and marked with "...".
std::string printable(std::string_view text, std::size_t max_chars = 48) {
  static constexpr std::string_view hex = "0123456789abcdef";
  std::string out;
  const bool cut = text.size() > max_chars;
  if (cut) {
    text = text.substr(0, max_chars);
  }
  out.reserve(text.size() + 3);
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out += hex[byte >> 4U];
      out += hex[byte & 0xfU];
    } else {
      out += c;
    }
  }
  if (cut) {
    out += "...";
  }
  return out;
}

std::string source_name(const std::filesystem::path& path) {
  return printable(path.string(), std::numeric_limits<std::size_t>::max());
}

[[noreturn]] void fail_input(std::string_view source, std::string_view what) {
  std::string message(source);
  message += ": ";
  message += what;
  throw InputError(message);
}

[[noreturn]] void fail_input_at(std::string_view source, std::size_t line, std::string_view what) {
  std::string message(source);
  message += ": line ";
  message += std::to_string(line);
  message += ": ";
  message += what;
  throw InputError(message);
}

[[noreturn]] void fail_record(std::string_view what, std::string_view detail) {
  std::string message(what);
  message += detail;
  throw RecordError(message);
}

// ---------------------------------------------------------------------------
// Files

struct FileCloser {
  void operator()(std::FILE* file) const noexcept { std::fclose(file); }
};

/// The whole of `path`, which must not be larger than `limit` bytes.
std::string read_whole_file(const std::filesystem::path& path, std::size_t limit) {
  const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    const int error = errno;
    fail_input(source_name(path), "cannot open: " + std::generic_category().message(error));
  }
  std::string content;
  std::array<char, 1 << 16> buffer{};
  while (true) {
    const std::size_t got = std::fread(buffer.data(), 1, buffer.size(), file.get());
    content.append(buffer.data(), got);
    if (content.size() > limit) {
      fail_input(source_name(path), "larger than " + std::to_string(limit) + " bytes");
    }
    if (got < buffer.size()) {
      break;
    }
  }
  if (std::ferror(file.get()) != 0) {
    const int error = errno;
    fail_input(source_name(path), "cannot read: " + std::generic_category().message(error));
  }
  return content;
}

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

std::size_t skip_bom(std::string_view text) {
  return text.starts_with(utf8_bom) ? utf8_bom.size() : 0;
}

constexpr bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim_space(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && is_json_space(text[begin])) {
    ++begin;
  }
  while (end > begin && is_json_space(text[end - 1])) {
    --end;
  }
  return text.substr(begin, end - begin);
}

// ---------------------------------------------------------------------------
// CSV (RFC 4180)

/// Reads one record at a time; fields are reused between calls.
class CsvReader {
 public:
  CsvReader(std::string_view text, std::string_view source) : text_(text), source_(source) {
    pos_ = skip_bom(text_);
  }

  /// Fills `fields` with the next record and `record_line` with the line it
  /// starts on; false at the end of input. Blank lines are skipped.
  bool next(std::vector<std::string>& fields, std::size_t& record_line) {
    skip_blank_lines();
    if (pos_ >= text_.size()) {
      return false;
    }
    record_line = line_;
    std::size_t count = 0;
    while (true) {
      if (count == fields.size()) {
        fields.emplace_back();
      }
      std::string& field = fields[count++];
      field.clear();
      // A ',' as the last byte of the input leaves pos_ at the end: the last field is empty.
      const bool more = pos_ < text_.size() && text_[pos_] == '"' ? read_quoted(field) : read_plain(field);
      if (!more) {
        break;
      }
    }
    fields.resize(count);
    return true;
  }

 private:
  void skip_blank_lines() {
    while (pos_ < text_.size()) {
      if (text_[pos_] == '\n') {
        ++pos_;
        ++line_;
      } else if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') {
        pos_ += 2;
        ++line_;
      } else {
        return;
      }
    }
  }

  /// Consumes the delimiter after a field: true after ',', false at a line
  /// end or the end of input.
  bool end_field(std::string_view after_what) {
    if (pos_ >= text_.size()) {
      return false;
    }
    const char c = text_[pos_];
    if (c == ',') {
      ++pos_;
      return true;
    }
    if (c == '\n') {
      ++pos_;
      ++line_;
      return false;
    }
    if (c == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') {
      pos_ += 2;
      ++line_;
      return false;
    }
    if (c == '\r') {
      fail_input_at(source_, line_, "stray carriage return");
    }
    fail_input_at(source_, line_,
                  "unexpected character '" + printable(std::string_view(&text_[pos_], 1)) + "' " +
                      std::string(after_what));
  }

  bool read_plain(std::string& field) {
    const std::size_t begin = pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ',' || c == '\n' || c == '\r') {
        break;
      }
      if (c == '"') {
        fail_input_at(source_, line_, "quote inside an unquoted field");
      }
      ++pos_;
    }
    field.assign(text_.substr(begin, pos_ - begin));
    return end_field("after a field");
  }

  bool read_quoted(std::string& field) {
    const std::size_t open_line = line_;
    ++pos_;  // opening quote
    while (true) {
      const std::size_t quote = text_.find('"', pos_);
      if (quote == std::string_view::npos) {
        fail_input_at(source_, open_line, "unterminated quoted field");
      }
      const std::string_view chunk = text_.substr(pos_, quote - pos_);
      line_ += static_cast<std::size_t>(std::count(chunk.begin(), chunk.end(), '\n'));
      field.append(chunk);
      pos_ = quote + 1;
      if (pos_ < text_.size() && text_[pos_] == '"') {
        field += '"';
        ++pos_;
        continue;
      }
      break;
    }
    return end_field("after a closing quote");
  }

  std::string_view text_;
  std::string_view source_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

double parse_coordinate(const std::string& text, double limit, std::string_view source, std::size_t line,
                        std::string_view name) {
  double value = 0;
  const char* const end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    fail_input_at(source, line, "bad " + std::string(name) + " '" + printable(text) + "'");
  }
  if (!(value >= -limit && value <= limit)) {
    fail_input_at(source, line, std::string(name) + " out of range '" + printable(text) + "'");
  }
  return value;
}

// ---------------------------------------------------------------------------
// Flights

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int digits_value(std::string_view text, std::size_t offset, std::size_t count) {
  int value = 0;
  const char* const first = text.data() + offset;
  const char* const last = first + count;
  const auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc{} || ptr != last) {
    fail_record("malformed date: ", printable(text));
  }
  return value;
}

/// The simdjson parser of this thread, which refuses documents nested deeper than max_json_depth.
simdjson::dom::parser& json_parser() {
  thread_local simdjson::dom::parser parser = [] {
    simdjson::dom::parser p;
    if (p.allocate(simdjson::dom::MINIMAL_DOCUMENT_CAPACITY, max_json_depth) != simdjson::SUCCESS) {
      throw std::bad_alloc();
    }
    return p;
  }();
  return parser;
}

/// Throws RecordError("duplicate field: K") when `object` names a key K twice. Few keys are compared
/// pairwise, more are sorted.
void check_unique_keys(const simdjson::dom::object& object) {
  thread_local std::vector<std::string_view> keys;
  keys.clear();
  for (const auto field : object) {
    keys.push_back(field.key);
  }
  if (keys.size() <= 8) {
    for (std::size_t i = 1; i < keys.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (keys[i] == keys[j]) {
          fail_record("duplicate field: ", printable(keys[i]));
        }
      }
    }
    return;
  }
  std::sort(keys.begin(), keys.end());
  const auto twice = std::adjacent_find(keys.begin(), keys.end());
  if (twice != keys.end()) {
    fail_record("duplicate field: ", printable(*twice));
  }
}

simdjson::dom::element required_field(const simdjson::dom::object& object, std::string_view name) {
  simdjson::dom::element value;
  if (object.at_key(name).get(value) != simdjson::SUCCESS) {
    fail_record("missing field: ", name);
  }
  return value;
}

std::int32_t int32_field(const simdjson::dom::object& object, std::string_view name, std::int64_t minimum) {
  const simdjson::dom::element value = required_field(object, name);
  const simdjson::dom::element_type type = value.type();
  if (type == simdjson::dom::element_type::UINT64) {
    fail_record("out of range: ", name);
  }
  if (type != simdjson::dom::element_type::INT64) {
    fail_record("wrong type: ", name);
  }
  std::int64_t number = 0;
  if (value.get_int64().get(number) != simdjson::SUCCESS) {
    fail_record("wrong type: ", name);
  }
  if (number < minimum || number > std::numeric_limits<std::int32_t>::max()) {
    fail_record("out of range: ", name);
  }
  return static_cast<std::int32_t>(number);
}

std::string_view string_field(const simdjson::dom::object& object, std::string_view name) {
  std::string_view text;
  if (required_field(object, name).get_string().get(text) != simdjson::SUCCESS) {
    fail_record("wrong type: ", name);
  }
  return text;
}

std::string_view airport_field(const simdjson::dom::object& object, std::string_view name) {
  const std::string_view code = string_field(object, name);
  if (code.empty()) {
    fail_record("empty field: ", name);
  }
  return code;
}

void put_digits(char* out, std::int64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

constexpr std::size_t utc_size = 20;  // YYYY-MM-DDTHH:MM:SSZ

/// Writes `unix_seconds` as RFC 3339 UTC into `out[0..20)`.
void write_utc(char* out, std::int64_t unix_seconds) {
  constexpr std::int64_t earliest = -62167219200;  // 0000-01-01T00:00:00Z
  constexpr std::int64_t latest = 253402300799;    // 9999-12-31T23:59:59Z
  if (unix_seconds < earliest || unix_seconds > latest) {
    throw std::out_of_range("format_utc: " + std::to_string(unix_seconds) +
                            " is outside the years 0000 to 9999");
  }
  const std::int64_t days = floor_div(unix_seconds, 86400);
  const std::int64_t second_of_day = unix_seconds - days * 86400;
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{days}}};
  put_digits(out, static_cast<int>(date.year()), 4);
  out[4] = '-';
  put_digits(out + 5, static_cast<unsigned>(date.month()), 2);
  out[7] = '-';
  put_digits(out + 8, static_cast<unsigned>(date.day()), 2);
  out[10] = 'T';
  put_digits(out + 11, second_of_day / 3600, 2);
  out[13] = ':';
  put_digits(out + 14, second_of_day / 60 % 60, 2);
  out[16] = ':';
  put_digits(out + 17, second_of_day % 60, 2);
  out[19] = 'Z';
}

/// The length of the valid UTF-8 sequence that starts at `text[i]` (a byte of 0x80 or more), or 0
/// when none does: an overlong form, a surrogate, a code point past U+10FFFF or a cut sequence.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  unsigned char low = 0x80;  // the range of the second byte
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    low = lead == 0xe0 ? 0xa0 : 0x80;
    high = lead == 0xed ? 0x9f : 0xbf;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    low = lead == 0xf0 ? 0x90 : 0x80;
    high = lead == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (text.size() - i < length || byte(i + 1) < low || byte(i + 1) > high) {
    return 0;
  }
  for (std::size_t k = i + 2; k < i + length; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xbf) {
      return 0;
    }
  }
  return length;
}

/// Appends `text` as a JSON string, escaped the way nlohmann::json::dump does; a byte outside a valid
/// UTF-8 sequence becomes U+FFFD.
void append_json_string_impl(std::string& out, std::string_view text) {
  static constexpr std::string_view hex = "0123456789abcdef";
  out += '"';
  std::size_t plain_from = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x80 && byte != '"' && byte != '\\') {
      continue;
    }
    if (byte >= 0x80) {
      const std::size_t length = utf8_sequence(text, i);
      if (length != 0) {
        i += length - 1;
        continue;
      }
      out.append(text.substr(plain_from, i - plain_from));
      out += "\xEF\xBF\xBD";  // U+FFFD
      plain_from = i + 1;
      continue;
    }
    out.append(text.substr(plain_from, i - plain_from));
    plain_from = i + 1;
    switch (byte) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += hex[byte >> 4U];
        out += hex[byte & 0xfU];
        break;
    }
  }
  out.append(text.substr(plain_from));
  out += '"';
}

void append_integer_impl(std::string& out, std::int64_t value) {
  std::array<char, 24> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), result.ptr);
}

/// The JSON integer at `text[pos]` (`-?(0|[1-9][0-9]{0,8})`, so it fits in 32 bits), followed by
/// `end`; advances `pos` past `end`. False for anything else, which includes every integer of ten
/// digits or more (a tenth digit is not `end`), fractions and exponents.
bool canonical_int(std::string_view text, std::size_t& pos, char end, std::int32_t& out) {
  std::size_t i = pos;
  const bool negative = i < text.size() && text[i] == '-';
  i += negative ? 1 : 0;
  const std::size_t first = i;
  std::int32_t value = 0;
  while (i < text.size() && is_digit(text[i]) && i - first < 9) {
    value = value * 10 + (text[i] - '0');
    ++i;
  }
  const std::size_t digits = i - first;
  if (digits == 0 || (digits > 1 && text[first] == '0') || i >= text.size() || text[i] != end) {
    return false;
  }
  out = negative ? -value : value;
  pos = i + 1;
  return true;
}

/// The text of a JSON string at `text[pos]` (after its opening quote) made of printable ASCII
/// without escapes, up to its closing quote, followed by `end`; advances `pos` past `end`.
bool canonical_string(std::string_view text, std::size_t& pos, char end, std::string_view& out) {
  const std::size_t first = pos;
  std::size_t i = pos;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == '"') {
      break;
    }
    if (byte < 0x20 || byte >= 0x7f || byte == '\\') {
      return false;
    }
    ++i;
  }
  if (i + 1 >= text.size() || text[i + 1] != end) {
    return false;
  }
  out = text.substr(first, i - first);
  pos = i + 2;
  return true;
}

/// `text[pos..)` starts with `literal`; advances `pos` past it. The length is a constant, so the
/// comparison compiles to a few loads instead of a call.
template <std::size_t N>
bool canonical_literal(std::string_view text, std::size_t& pos, const char (&literal)[N]) {
  constexpr std::size_t size = N - 1;
  if (text.size() - pos < size || std::memcmp(text.data() + pos, literal, size) != 0) {
    return false;
  }
  pos += size;
  return true;
}

}  // namespace

std::string one_line(std::string_view text, std::size_t max_chars) {
  return printable(text, max_chars);
}

bool valid_utf8(std::string_view text) noexcept {
  return simdjson::validate_utf8(text.data(), text.size());
}

namespace {

/// nlohmann::json SAX events of one document: refuses (ends the parse) a level deeper than
/// max_json_depth and a key named twice in one object.
class SafeJsonCheck {
 public:
  using json = nlohmann::json;
  bool null() { return true; }
  bool boolean(bool /*value*/) { return true; }
  bool number_integer(json::number_integer_t /*value*/) { return true; }
  bool number_unsigned(json::number_unsigned_t /*value*/) { return true; }
  bool number_float(json::number_float_t /*value*/, const json::string_t& /*text*/) { return true; }
  bool string(json::string_t& /*value*/) { return true; }
  bool binary(json::binary_t& /*value*/) { return true; }
  bool start_object(std::size_t /*elements*/) { return open(); }
  bool key(json::string_t& name) { return levels_.back().insert(name).second; }
  bool end_object() { return close(); }
  bool start_array(std::size_t /*elements*/) { return open(); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*error*/) {
    return false;
  }

 private:
  bool open() {
    if (levels_.size() >= max_json_depth) {
      return false;
    }
    levels_.emplace_back();
    return true;
  }
  bool close() {
    levels_.pop_back();
    return true;
  }

  std::vector<std::unordered_set<std::string>> levels_;  ///< the keys of each open object (none for arrays)
};

}  // namespace

bool is_safe_json(std::string_view text) {
  SafeJsonCheck check;
  return nlohmann::json::sax_parse(text, &check);
}

void append_json_string(std::string& out, std::string_view text) {
  append_json_string_impl(out, text);
}

void append_integer(std::string& out, std::int64_t value) {
  append_integer_impl(out, value);
}

void append_utc(std::string& out, std::int64_t unix_seconds) {
  std::array<char, utc_size> date{};
  write_utc(date.data(), unix_seconds);
  out.append(date.data(), date.size());
}

// ---------------------------------------------------------------------------
// AirportTable

AirportTable AirportTable::load(const std::filesystem::path& path) {
  const std::string text = read_whole_file(path, max_airports_bytes);
  return from_csv(text, source_name(path));
}

AirportTable AirportTable::from_csv(std::string_view text, std::string_view source) {
  static constexpr std::size_t column_count = 7;
  static constexpr std::array<std::string_view, column_count> column_names = {
      "iata", "name", "city", "state", "country", "latitude", "longitude"};
  CsvReader reader(text, source);
  std::vector<std::string> fields;
  std::size_t line = 0;
  if (!reader.next(fields, line)) {
    fail_input(source, "empty input; expected the header \"" + std::string(expected_header) + "\"");
  }
  std::string header;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    header += i == 0 ? "" : ",";
    header += fields[i];
  }
  if (header != expected_header) {
    fail_input_at(
        source, line,
        "wrong header \"" + printable(header, 96) + "\"; expected \"" + std::string(expected_header) + "\"");
  }

  AirportTable table;
  while (reader.next(fields, line)) {
    if (fields.size() != column_count) {
      fail_input_at(
          source, line,
          "expected " + std::to_string(column_count) + " fields, found " + std::to_string(fields.size()));
    }
    for (std::size_t i = 0; i < column_count; ++i) {
      if (!valid_utf8(fields[i])) {
        fail_input_at(source, line, "invalid UTF-8 in the " + std::string(column_names[i]) + " field");
      }
    }
    if (fields[0].empty()) {
      fail_input_at(source, line, "empty iata code");
    }
    Airport airport{std::move(fields[0]),
                    std::move(fields[1]),
                    std::move(fields[2]),
                    std::move(fields[3]),
                    std::move(fields[4]),
                    parse_coordinate(fields[5], 90, source, line, "latitude"),
                    parse_coordinate(fields[6], 180, source, line, "longitude")};
    std::string key = airport.iata;
    const auto [it, inserted] = table.airports_.try_emplace(std::move(key), std::move(airport));
    if (!inserted) {
      fail_input_at(source, line, "duplicate iata code '" + printable(it->first) + "'");
    }
  }
  return table;
}

std::vector<Airport> AirportTable::rows() const {
  std::vector<Airport> out;
  out.reserve(airports_.size());
  for (const auto& [code, airport] : airports_) {
    out.push_back(airport);
  }
  return out;
}

const Airport* AirportTable::find(std::string_view iata) const {
  const auto it = airports_.find(iata);
  return it == airports_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------------------
// Records

RecordSplitter::RecordSplitter(std::string source, std::size_t max_record)
    : source_(std::move(source)), max_record_(max_record) {}

void RecordSplitter::feed(std::string_view bytes, const Emit& emit) {
  // Before the first record: an optional BOM, blanks, then '[' or '{'.
  std::size_t pos = 0;
  for (; mode_ == Mode::detect && pos < bytes.size(); ++pos) {
    const char c = bytes[pos];
    if (bom_seen_ < utf8_bom.size()) {
      if (c == utf8_bom[bom_seen_]) {
        ++bom_seen_;
        continue;
      }
      if (bom_seen_ > 0) {  // part of a BOM, then something else
        fail_input_at(source_, line_,
                      "expected a JSON array ('[') or JSON lines ('{'), found '" +
                          printable(utf8_bom.substr(0, 1)) + "'");
      }
      bom_seen_ = utf8_bom.size();  // none: the input has begun
    }
    if (is_json_space(c)) {
      line_ += c == '\n' ? 1 : 0;
    } else if (c == '[') {
      mode_ = Mode::array;
      open_line_ = line_;
    } else if (c == '{') {
      mode_ = Mode::lines;
      break;  // the '{' begins the first line's record
    } else {
      fail_input_at(source_, line_,
                    "expected a JSON array ('[') or JSON lines ('{'), found '" +
                        printable(std::string_view(&c, 1)) + "'");
    }
  }
  bytes.remove_prefix(pos);
  if (bytes.empty()) {
    return;
  }
  if (mode_ == Mode::lines) {
    feed_lines(bytes, emit);
  } else if (mode_ != Mode::detect) {
    feed_array(bytes, emit);
  }
}

void RecordSplitter::feed_lines(std::string_view bytes, const Emit& emit) {
  while (!bytes.empty()) {
    const std::size_t end = bytes.find('\n');
    std::string_view part = bytes.substr(0, end);
    if (!started_) {
      std::size_t blanks = 0;
      while (blanks < part.size() && is_json_space(part[blanks])) {
        ++blanks;
      }
      part.remove_prefix(blanks);
      started_ = !part.empty();
    }
    append(part);
    if (end == std::string_view::npos) {
      return;
    }
    ++line_;
    if (started_) {
      emit_record(emit);
    }
    bytes.remove_prefix(end + 1);
  }
}

void RecordSplitter::feed_array(std::string_view bytes, const Emit& emit) {
  std::size_t from = 0;  // where the current record's bytes begin in `bytes`
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (mode_ == Mode::after_array) {
      if (!is_json_space(c)) {
        fail_input_at(source_, line_, "unexpected data after the closing ']'");
      }
      line_ += c == '\n' ? 1 : 0;
      continue;
    }
    line_ += c == '\n' ? 1 : 0;
    if (!started_) {
      if (is_json_space(c)) {
        from = i + 1;
        continue;
      }
      started_ = true;
      from = i;
    }
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (depth_ > 0) {
        --depth_;
      } else if (c == ']') {
        // The closing ']'; "[ ]" has no element.
        const bool no_element = index_ == 0 && record_.empty() && i == from;
        append(bytes.substr(from, i - from));
        if (no_element) {
          started_ = false;
        } else {
          emit_record(emit);
        }
        mode_ = Mode::after_array;
      }
    } else if (c == ',' && depth_ == 0) {
      append(bytes.substr(from, i - from));
      emit_record(emit);
      from = i + 1;
    }
  }
  if (mode_ == Mode::array && started_) {
    append(bytes.substr(from));
  }
}

void RecordSplitter::append(std::string_view part) {
  if (too_large_ || part.empty()) {
    return;
  }
  if (record_.size() + part.size() <= max_record_) {
    record_.append(part);
    return;
  }
  // Too large: only its first bytes are kept, for its dead letter.
  too_large_ = true;
  if (record_.size() < too_large_prefix) {
    record_.append(part.substr(0, too_large_prefix - record_.size()));
  }
  record_.resize(std::min(record_.size(), too_large_prefix));
  record_.shrink_to_fit();
}

void RecordSplitter::emit_record(const Emit& emit) {
  const std::string_view text = too_large_ ? std::string_view(record_) : trim_space(record_);
  // No spare capacity: every record is kept, and simdjson copies the few it parses into its own
  // padded buffer.
  RawRecord record{index_++, std::string(text), too_large_};
  record_.clear();
  started_ = false;
  too_large_ = false;
  emit(std::move(record));
}

void RecordSplitter::finish(const Emit& emit) {
  switch (mode_) {
    case Mode::detect:
      if (bom_seen_ > 0 && bom_seen_ < utf8_bom.size()) {
        fail_input_at(source_, line_,
                      "expected a JSON array ('[') or JSON lines ('{'), found '" +
                          printable(utf8_bom.substr(0, 1)) + "'");
      }
      fail_input(source_, "empty input; expected a JSON array or JSON lines");
    case Mode::array:
      fail_input_at(source_, open_line_, "unterminated JSON array");
    case Mode::lines:
      if (started_) {
        emit_record(emit);
      }
      return;
    case Mode::after_array:
      return;
  }
}

std::vector<RawRecord> split_records(std::string_view text, std::string_view source) {
  std::vector<RawRecord> records;
  RecordSplitter splitter{std::string(source)};
  const RecordSplitter::Emit keep = [&records](RawRecord&& record) { records.push_back(std::move(record)); };
  splitter.feed(text, keep);
  splitter.finish(keep);
  return records;
}

void read_records(const std::filesystem::path& path, const RecordSplitter::Emit& emit) {
  const std::string source = source_name(path);
  const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    const int error = errno;
    fail_input(source, "cannot open: " + std::generic_category().message(error));
  }
  RecordSplitter splitter(source);
  std::vector<char> block(std::size_t{1} << 16);
  while (true) {
    const std::size_t got = std::fread(block.data(), 1, block.size(), file.get());
    if (got < block.size() && std::ferror(file.get()) != 0) {
      const int error = errno;
      fail_input(source, "cannot read: " + std::generic_category().message(error));
    }
    splitter.feed(std::string_view(block.data(), got), emit);
    if (got < block.size()) {
      break;
    }
  }
  splitter.finish(emit);
}

std::vector<RawRecord> read_records(const std::filesystem::path& path) {
  std::vector<RawRecord> records;
  read_records(path, [&records](RawRecord&& record) { records.push_back(std::move(record)); });
  return records;
}

// ---------------------------------------------------------------------------
// Flights

std::int64_t parse_date(std::string_view text) {
  // Exactly "YYYY/MM/DD HH:MM".
  static constexpr std::string_view shape = "dddd/dd/dd dd:dd";
  if (text.size() != shape.size()) {
    fail_record("malformed date: ", printable(text));
  }
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 'd' ? !is_digit(text[i]) : text[i] != shape[i]) {
      fail_record("malformed date: ", printable(text));
    }
  }
  const int year = digits_value(text, 0, 4);
  const int month = digits_value(text, 5, 2);
  const int day = digits_value(text, 8, 2);
  const int hour = digits_value(text, 11, 2);
  const int minute = digits_value(text, 14, 2);

  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok() || hour > 23 || minute > 59) {
    fail_record("impossible date: ", printable(text));
  }
  const std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  return days * 86400 + std::int64_t{hour} * 3600 + std::int64_t{minute} * 60;
}

bool parse_flight_canonical(const RawRecord& record, Flight& out) {
  // {"date":"…","delay":I,"distance":I,"origin":"…","destination":"…"}: the shape of every record in
  // the shipped file. Every text accepted here is valid JSON whose fields pass the checks of
  // parse_flight_json, except perhaps the date, which parse_date checks (first, as there).
  if (record.too_large) {
    return false;
  }
  const std::string_view text = record.json;
  std::size_t pos = 0;
  std::string_view date;
  std::string_view origin;
  std::string_view destination;
  std::int32_t delay = 0;
  std::int32_t distance = 0;
  if (!canonical_literal(text, pos, R"({"date":")") || !canonical_string(text, pos, ',', date) ||
      !canonical_literal(text, pos, R"("delay":)") || !canonical_int(text, pos, ',', delay) ||
      !canonical_literal(text, pos, R"("distance":)") || !canonical_int(text, pos, ',', distance) ||
      distance < 0 || !canonical_literal(text, pos, R"("origin":")") ||
      !canonical_string(text, pos, ',', origin) || origin.empty() ||
      !canonical_literal(text, pos, R"("destination":")") || !canonical_string(text, pos, '}', destination) ||
      destination.empty() || pos != text.size()) {
    return false;
  }
  out.index = record.index;
  out.time = parse_date(date);
  out.delay = delay;
  out.distance = distance;
  out.origin.assign(origin);
  out.destination.assign(destination);
  return true;
}

Flight parse_flight(const RawRecord& record) {
  Flight flight{record.index, 0, 0, 0, {}, {}};
  if (parse_flight_canonical(record, flight)) {
    return flight;
  }
  return parse_flight_json(record);
}

Flight parse_flight_json(const RawRecord& record) {
  if (record.too_large) {
    throw RecordError("too large: more than " + std::to_string(max_record_bytes) + " bytes");
  }
  simdjson::dom::element root;
  // parse() works in place when the string has SIMDJSON_PADDING spare
  // capacity and copies into the parser's reused buffer otherwise.
  const simdjson::error_code error = json_parser().parse(record.json).get(root);
  if (error == simdjson::DEPTH_ERROR) {
    throw RecordError("nesting too deep");
  }
  if (error != simdjson::SUCCESS) {
    throw RecordError("malformed json");
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    throw RecordError("not an object");
  }
  check_unique_keys(object);

  Flight flight{record.index, 0, 0, 0, {}, {}};
  flight.time = parse_date(string_field(object, "date"));
  flight.delay = int32_field(object, "delay", std::numeric_limits<std::int32_t>::min());
  flight.distance = int32_field(object, "distance", 0);
  flight.origin = airport_field(object, "origin");
  flight.destination = airport_field(object, "destination");
  return flight;
}

EnrichedFlight enrich(Flight&& flight, const AirportTable& airports) {
  const Airport* const origin = airports.find(flight.origin);
  if (origin == nullptr) {
    fail_record("unknown airport: ", printable(flight.origin));
  }
  const Airport* const destination = airports.find(flight.destination);
  if (destination == nullptr) {
    fail_record("unknown airport: ", printable(flight.destination));
  }
  return EnrichedFlight{std::move(flight), origin->state, destination->state};
}

nlohmann::json to_json(const EnrichedFlight& flight) {
  nlohmann::json out;
  to_json(out, flight);
  return out;
}

void to_json(nlohmann::json& out, const EnrichedFlight& flight) {
  const Flight& f = flight.flight;
  out = nlohmann::json{
      {"index", f.index},
      {"date", format_utc(f.time)},
      {"delay", f.delay},
      {"distance", f.distance},
      {"origin", f.origin},
      {"destination", f.destination},
      {"origin_state", flight.origin_state},
      {"destination_state", flight.destination_state},
  };
}

std::string format_utc(std::int64_t unix_seconds) {
  std::string out(utc_size, ' ');
  write_utc(out.data(), unix_seconds);
  return out;
}

void append_json(std::string& out, const EnrichedFlight& flight) {
  // Keys in the sorted order that nlohmann::json uses.
  const Flight& f = flight.flight;
  std::array<char, utc_size> date{};
  write_utc(date.data(), f.time);
  out += R"({"date":")";
  out.append(date.data(), date.size());
  out += R"(","delay":)";
  append_integer_impl(out, f.delay);
  out += R"(,"destination":)";
  append_json_string_impl(out, f.destination);
  out += R"(,"destination_state":)";
  append_json_string_impl(out, flight.destination_state);
  out += R"(,"distance":)";
  append_integer_impl(out, f.distance);
  out += R"(,"index":)";
  append_integer_impl(out, f.index);
  out += R"(,"origin":)";
  append_json_string_impl(out, f.origin);
  out += R"(,"origin_state":)";
  append_json_string_impl(out, flight.origin_state);
  out += '}';
}

std::int64_t parse_duration(std::string_view text) {
  const auto invalid = [&](std::string_view why) {
    return std::invalid_argument(
        "invalid duration '" + printable(text) + "': " + std::string(why) +
        " (expected a positive whole number and a unit s, m, h, d or w, e.g. 30s, 15m, 1h, 1d)");
  };
  std::int64_t value = 0;
  const char* const end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    throw invalid("number too large");
  }
  if (ec != std::errc{}) {
    throw invalid("no number");
  }
  if (value <= 0) {
    throw invalid("must be greater than zero");
  }
  const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
  std::int64_t scale = 0;
  if (unit == "s") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit == "d") {
    scale = 86400;
  } else if (unit == "w") {
    scale = std::int64_t{7} * 86400;
  } else if (unit.empty()) {
    throw invalid("missing unit");
  } else {
    throw invalid("unknown unit '" + printable(unit) + "'");
  }
  if (value > std::numeric_limits<std::int64_t>::max() / scale) {
    throw invalid("number too large");
  }
  return value * scale;
}

}  // namespace flights
