// printable(): see printable.hpp.
#include "common/printable.hpp"

namespace ringtun {

std::string printable(std::string_view text, std::size_t max_chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() < max_chars ? text.size() : max_chars);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    char piece[4];
    std::size_t length = 0;
    if (c == '"' || c == '\\') {
      piece[length++] = '\\';
      piece[length++] = ch;
    } else if (c < 0x20 || c >= 0x7f) {
      piece[length++] = '\\';
      piece[length++] = 'x';
      piece[length++] = kHex[c >> 4];
      piece[length++] = kHex[c & 0xf];
    } else {
      piece[length++] = ch;
    }
    if (out.size() + length > max_chars) {
      out += "...";
      break;
    }
    out.append(piece, length);
  }
  return out;
}

}  // namespace ringtun
