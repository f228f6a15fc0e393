// The JSON syntax-error locator: a strict, iterative RFC 8259 scanner. See json_error.hpp.
#include "common/json_error.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace ringtun {
namespace {

bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the valid UTF-8 sequence at text[pos] (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), 0 if bad.
std::size_t utf8_length(std::string_view text, std::size_t pos) noexcept {
  auto byte = [&](std::size_t i) { return i < text.size() ? static_cast<unsigned char>(text[i]) : 0u; };
  auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xbf) {
    unsigned b = byte(i);
    return b >= lo && b <= hi;
  };
  unsigned b0 = byte(pos);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(pos + 1) ? 2 : 0;
  if (b0 == 0xe0) return cont(pos + 1, 0xa0) && cont(pos + 2) ? 3 : 0;
  if (b0 == 0xed) return cont(pos + 1, 0x80, 0x9f) && cont(pos + 2) ? 3 : 0;
  if (b0 >= 0xe1 && b0 <= 0xef) return cont(pos + 1) && cont(pos + 2) ? 3 : 0;
  if (b0 == 0xf0) return cont(pos + 1, 0x90) && cont(pos + 2) && cont(pos + 3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(pos + 1) && cont(pos + 2) && cont(pos + 3) ? 4 : 0;
  if (b0 == 0xf4) return cont(pos + 1, 0x80, 0x8f) && cont(pos + 2) && cont(pos + 3) ? 4 : 0;
  return 0;
}

class SyntaxScanner {
 public:
  SyntaxScanner(std::string_view text, std::size_t max_depth) : text_(text), max_depth_(max_depth) {}

  JsonErrorLocation run() {
    enum class Expect {
      kValue,
      kFirstKeyOrEnd,
      kKey,
      kColon,
      kFirstValueOrEnd,
      kValueAfterComma,
      kCommaOrEnd,
      kNothing
    };
    Expect expect = Expect::kValue;
    std::string stack;  // '{' / '[' per open container
    auto after_value = [&] { expect = stack.empty() ? Expect::kNothing : Expect::kCommaOrEnd; };
    for (;;) {
      while (pos_ < text_.size() && is_ws(text_[pos_])) ++pos_;
      if (pos_ == text_.size()) {
        if (expect == Expect::kNothing) return result_;
        if (stack.empty()) {
          fail(pos_, "the document is empty");
        } else if (expect == Expect::kCommaOrEnd || expect == Expect::kFirstKeyOrEnd ||
                   expect == Expect::kFirstValueOrEnd) {
          fail(pos_,
               std::string("unexpected end of the document: missing '") + (stack.back() == '{' ? '}' : ']') + "'");
        } else {
          fail(pos_, "unexpected end of the document");
        }
        return result_;
      }
      char c = text_[pos_];
      if (c == '/' && expect != Expect::kNothing) return fail(pos_, "comments are not allowed in JSON");
      switch (expect) {
        case Expect::kNothing:
          return fail(pos_, "unexpected content after the end of the document");
        case Expect::kColon:
          if (c != ':') return fail(pos_, "expected ':' after the key");
          ++pos_;
          expect = Expect::kValue;
          break;
        case Expect::kFirstKeyOrEnd:
        case Expect::kKey:
          if (c == '}') {
            if (expect == Expect::kKey) return fail(pos_, "trailing comma before '}'");
            stack.pop_back();
            ++pos_;
            after_value();
            break;
          }
          if (c != '"') {
            return fail(
                pos_, c == '\'' ? "strings need double quotes, not single quotes" : "expected a key in double quotes");
          }
          if (!scan_string()) return result_;
          expect = Expect::kColon;
          break;
        case Expect::kCommaOrEnd:
          if (c == ',') {
            ++pos_;
            expect = stack.back() == '{' ? Expect::kKey : Expect::kValueAfterComma;
          } else if (c == (stack.back() == '{' ? '}' : ']')) {
            stack.pop_back();
            ++pos_;
            after_value();
          } else {
            return fail(pos_, stack.back() == '{' ? "expected ',' or '}' after a member (missing comma?)"
                                                  : "expected ',' or ']' after an element (missing comma?)");
          }
          break;
        case Expect::kFirstValueOrEnd:
        case Expect::kValueAfterComma:
          if (c == ']') {
            if (expect == Expect::kValueAfterComma) return fail(pos_, "trailing comma before ']'");
            stack.pop_back();
            ++pos_;
            after_value();
            break;
          }
          [[fallthrough]];
        case Expect::kValue:
          if (c == '{' || c == '[') {
            if (stack.size() >= max_depth_) {
              return fail(pos_, "nested deeper than " + std::to_string(max_depth_) + " levels");
            }
            stack.push_back(c);
            ++pos_;
            expect = c == '{' ? Expect::kFirstKeyOrEnd : Expect::kFirstValueOrEnd;
            break;
          }
          if (c == '"') {
            if (!scan_string()) return result_;
          } else if (c == '-' || is_digit(c)) {
            if (!scan_number()) return result_;
          } else if (std::isalpha(static_cast<unsigned char>(c)) != 0) {
            if (!scan_literal()) return result_;
          } else if (c == '\'') {
            return fail(pos_, "strings need double quotes, not single quotes");
          } else {
            return fail(pos_,
                        "expected a value (a string in double quotes, a number, true, false, null, an object "
                        "or an array)");
          }
          after_value();
          break;
      }
    }
  }

 private:
  JsonErrorLocation& fail(std::size_t at, std::string reason) {
    result_.found = true;
    result_.offset = at;
    result_.reason = std::move(reason);
    for (std::size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++result_.line;
        result_.column = 1;
      } else if ((static_cast<unsigned char>(text_[i]) & 0xc0) != 0x80) {
        ++result_.column;  // count characters, not UTF-8 continuation bytes
      }
    }
    return result_;
  }

  bool scan_string() {
    const std::size_t start = pos_++;
    while (pos_ < text_.size()) {
      auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c == '\\') {
        if (!scan_escape()) return false;
      } else if (c == '\n' || c == '\r') {
        fail(start, "unterminated string (a line break inside a string must be written \\n)");
        return false;
      } else if (c < 0x20) {
        char buf[80];
        std::snprintf(buf, sizeof buf, "control character 0x%02x inside a string (write it as an escape)", c);
        fail(pos_, buf);
        return false;
      } else if (c >= 0x80) {
        std::size_t n = utf8_length(text_, pos_);
        if (n == 0) {
          fail(pos_, "invalid UTF-8");
          return false;
        }
        pos_ += n;
      } else {
        ++pos_;
      }
    }
    fail(start, "unterminated string");
    return false;
  }

  // At a backslash inside a string.
  bool scan_escape() {
    const std::size_t at = pos_;
    if (pos_ + 1 >= text_.size()) {
      fail(at, "unterminated string");
      return false;
    }
    char e = text_[pos_ + 1];
    if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
      pos_ += 2;
      return true;
    }
    if (e != 'u') {
      fail(at, "invalid escape (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
      return false;
    }
    int unit = read_hex4(pos_ + 2);
    if (unit < 0) {
      fail(at, "\\u needs four hex digits");
      return false;
    }
    pos_ += 6;
    if (unit >= 0xdc00 && unit <= 0xdfff) {
      fail(at, "unpaired UTF-16 surrogate escape");
      return false;
    }
    if (unit >= 0xd800 && unit <= 0xdbff) {
      int low = pos_ + 1 < text_.size() && text_[pos_] == '\\' && text_[pos_ + 1] == 'u' ? read_hex4(pos_ + 2) : -1;
      if (low < 0xdc00 || low > 0xdfff) {
        fail(at, "unpaired UTF-16 surrogate escape");
        return false;
      }
      pos_ += 6;
    }
    return true;
  }

  int read_hex4(std::size_t at) const noexcept {
    if (at + 4 > text_.size()) return -1;
    int value = 0;
    for (std::size_t i = at; i < at + 4; ++i) {
      int h = hex_value(text_[i]);
      if (h < 0) return -1;
      value = value * 16 + h;
    }
    return value;
  }

  // RFC 8259 number grammar; then the range simdjson accepts (64-bit integers, finite doubles).
  bool scan_number() {
    const std::size_t start = pos_;
    auto digits = [&] {
      std::size_t from = pos_;
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
      return pos_ > from;
    };
    bool negative = text_[pos_] == '-';
    if (negative) ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
      if (pos_ < text_.size() && is_digit(text_[pos_])) return fail_number(start, "numbers cannot have leading zeros");
    } else if (!digits()) {
      return fail_number(start, "expected a digit after '-'");
    }
    bool integer = true;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integer = false;
      ++pos_;
      if (!digits()) return fail_number(start, "expected a digit after '.'");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integer = false;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (!digits()) return fail_number(start, "expected a digit in the exponent");
    }
    std::string_view number = text_.substr(start, pos_ - start);
    bool in_range = true;
    if (integer && negative) {
      std::int64_t v = 0;
      in_range = std::from_chars(number.data(), number.data() + number.size(), v).ec == std::errc();
    } else if (integer) {
      std::uint64_t v = 0;
      in_range = std::from_chars(number.data(), number.data() + number.size(), v).ec == std::errc();
    } else {
      std::string copy(number);
      double v = std::strtod(copy.c_str(), nullptr);
      in_range = v <= 1.7976931348623157e308 && v >= -1.7976931348623157e308;
    }
    if (!in_range) return fail_number(start, "number out of range");
    return true;
  }

  bool fail_number(std::size_t at, const char* why) {
    fail(at, std::string("invalid number: ") + why);
    return false;
  }

  bool scan_literal() {
    constexpr std::string_view kWords[] = {"true", "false", "null"};
    for (std::string_view word : kWords) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return true;
      }
    }
    // Say what the word probably meant: True/NULL, or an unquoted string.
    std::size_t end = pos_;
    while (end < text_.size() && std::isalpha(static_cast<unsigned char>(text_[end])) != 0) ++end;
    std::string lower(text_.substr(pos_, end - pos_));
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    bool literal_like = false;
    for (std::string_view word : kWords) literal_like |= !lower.empty() && word.substr(0, lower.size()) == lower;
    fail(pos_, literal_like ? "expected a value (true, false and null are lower case and spelled out)"
                            : "expected a value (strings need double quotes)");
    return false;
  }

  std::string_view text_;
  std::size_t max_depth_;
  std::size_t pos_ = 0;
  JsonErrorLocation result_;
};

}  // namespace

JsonErrorLocation locate_json_error(std::string_view text, std::size_t max_depth) {
  return SyntaxScanner(text, max_depth).run();
}

}  // namespace ringtun
