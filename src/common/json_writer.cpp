// JsonWriter and append_json_string: see json_writer.hpp.
#include "common/json_writer.hpp"

#include <charconv>
#include <cmath>

#include "common/assert.hpp"
#include "common/decimal.hpp"

namespace ringtun {

namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// Length of the well-formed UTF-8 sequence at text[i] (lead byte >= 0x80), or 0 when ill-formed; `consumed` is then
// the maximal ill-formed subpart (Unicode 15, section 3.9, U+FFFD substitution of maximal subparts), at least 1.
std::size_t utf8_sequence(std::string_view text, std::size_t i, std::size_t* consumed) noexcept {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;  // range of the second byte; later bytes are always 80..BF
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;  // no overlong forms
    if (lead == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    *consumed = 1;  // 80..C1 and F5..FF never start a sequence
    return 0;
  }
  std::size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= text.size()) break;
    const unsigned char c = byte(i + k);
    const unsigned char min = k == 1 ? lo : 0x80;
    const unsigned char max = k == 1 ? hi : 0xBF;
    if (c < min || c > max) break;
  }
  if (k > need) return need + 1;
  *consumed = k;
  return 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text, bool escape_del) {
  out.push_back('"');
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      std::size_t consumed = 0;
      const std::size_t length = utf8_sequence(text, i, &consumed);
      if (length > 0) {
        out.append(text.substr(i, length));
        i += length;
      } else {
        out.append(kReplacement);
        i += consumed;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || (c == 0x7f && escape_del)) {
          const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(escaped, sizeof escaped);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  // A value outside any container is the whole document; inside one it must be an array element.
  RINGTUN_ASSERT(object_.empty() || !object_.back(), "JsonWriter: a value where a key is due");
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

void JsonWriter::open(char bracket, bool object) {
  before_value();
  out_.push_back(bracket);
  first_.push_back(true);
  object_.push_back(object);
}

void JsonWriter::close(char bracket, bool object) {
  RINGTUN_ASSERT(!object_.empty() && object_.back() == object, "JsonWriter: mismatched end");
  RINGTUN_ASSERT(!after_key_, "JsonWriter: a key without its value");
  out_.push_back(bracket);
  first_.pop_back();
  object_.pop_back();
}

JsonWriter& JsonWriter::begin_object() {
  open('{', true);
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  close('}', true);
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  open('[', false);
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  close(']', false);
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  RINGTUN_ASSERT(!object_.empty() && object_.back() && !after_key_, "JsonWriter: a key outside an object");
  if (!first_.back()) out_.push_back(',');
  first_.back() = false;
  append_json_string(out_, name);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view value) {
  before_value();
  append_json_string(out_, value);
  return *this;
}

JsonWriter& JsonWriter::number(std::uint64_t value) {
  before_value();
  append_decimal(out_, value);
  return *this;
}

JsonWriter& JsonWriter::number_signed(std::int64_t value) {
  before_value();
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, result.ptr);
  return *this;
}

JsonWriter& JsonWriter::number_double(double value) {
  before_value();
  if (!std::isfinite(value)) {
    out_ += "null";  // JSON has no NaN or infinity
    return *this;
  }
  // The shortest text that reads back as the same double; its forms ("1e+21", "-0", "0.1") are all valid JSON. A
  // large integral value would come out as a long digit string that readers take for an integer and reject past 64
  // bits, so from 1e15 on the scientific form is used.
  char buf[40];
  const auto format = std::fabs(value) >= 1e15 ? std::chars_format::scientific : std::chars_format{};
  const auto result = format == std::chars_format{} ? std::to_chars(buf, buf + sizeof buf, value)
                                                    : std::to_chars(buf, buf + sizeof buf, value, format);
  out_.append(buf, result.ptr);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  before_value();
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

}  // namespace ringtun
