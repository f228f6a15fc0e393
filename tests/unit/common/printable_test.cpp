// printable(): the one way a message quotes someone else's text (flags, paths, CIDR entries, claimed host names).
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "common/printable.hpp"

using ringtun::printable;

TEST_CASE("printable keeps printable ASCII and escapes the rest") {
  CHECK(printable("") == "");
  CHECK(printable("10.0.0.0/8 app.example.com ~!") == "10.0.0.0/8 app.example.com ~!");
  CHECK(printable("a\"b\\c") == "a\\\"b\\\\c");
  CHECK(printable(std::string_view("a\0b", 3)) == "a\\x00b");
  CHECK(printable("line\nbreak\r\t\x1b[31m") == "line\\x0abreak\\x0d\\x09\\x1b[31m");
  // DEL and every byte above it (UTF-8 or not): the result is ASCII a terminal cannot misread.
  CHECK(printable("\x7f\x80\xff") == "\\x7f\\x80\\xff");
  CHECK(printable("caf\xc3\xa9") == "caf\\xc3\\xa9");
}

TEST_CASE("printable is bounded in characters, and never cuts an escape") {
  CHECK(printable(std::string(80, 'x')) == std::string(80, 'x'));
  CHECK(printable(std::string(81, 'x')) == std::string(80, 'x') + "...");
  CHECK(printable(std::string(1 << 20, '\n')).size() == 80 + 3);
  // 78 characters leave room for "\x" but not for "\x0a": the escape is left out whole.
  CHECK(printable(std::string(78, 'x') + "\n") == std::string(78, 'x') + "...");
  CHECK(printable(std::string(76, 'x') + "\n") == std::string(76, 'x') + "\\x0a");
  CHECK(printable(std::string(79, 'x') + "\"") == std::string(79, 'x') + "...");
  CHECK(printable("abcdef", 3) == "abc...");
  CHECK(printable("abc", 3) == "abc");
  CHECK(printable("anything", 0) == "...");
  for (unsigned c = 0; c < 256; ++c) {
    const std::string out = printable(std::string(200, static_cast<char>(c)));
    CHECK(out.size() <= 83);
    for (const char ch : out) CHECK((ch >= 0x20 && ch <= 0x7e));
  }
}
