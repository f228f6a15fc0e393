// append_decimal: an unsigned integer as decimal text at the end of a string, for the text the admin side writes
// (metrics, JSON, access log lines, response heads). No allocation beyond the string's own growth.
// Thread rules: none (plain values).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>

namespace ringtun {

inline void append_decimal(std::string& out, std::uint64_t value) {
  char buf[24];  // 20 digits at most
  out.append(buf, std::to_chars(buf, buf + sizeof buf, value).ptr);
}

}  // namespace ringtun
