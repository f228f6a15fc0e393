// printable(): someone else's text (a flag's value, a path, a CIDR entry, a host name an agent claims) made safe to
// quote in a one-line message or a log line.
//
// Every byte outside printable ASCII (control bytes, DEL, and bytes >= 0x80, so a terminal or the journal never gets
// an escape sequence or invalid UTF-8) comes out as \xNN; '"' and '\' get a backslash, so the text can sit inside
// double quotes unambiguously. The result is at most `max_chars` characters plus "..." when the text was cut; an
// escape is never cut in half. Not for the data path: it allocates.
// Thread rules: a pure function; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringtun {

inline constexpr std::size_t kPrintableMaxChars = 80;  // what a message quotes of a user's text by default
// A file path the operator gave (--config, --token-file): shown whole (PATH_MAX), or the message would not say
// which file, and a long checkout or state directory is ordinary.
inline constexpr std::size_t kPrintablePathChars = 4096;

std::string printable(std::string_view text, std::size_t max_chars = kPrintableMaxChars);
// printable() for a file path the operator gave: whole, up to kPrintablePathChars.
inline std::string printable_path(std::string_view path) {
  return printable(path, kPrintablePathChars);
}

}  // namespace ringtun
