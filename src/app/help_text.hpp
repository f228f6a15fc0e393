// What --help (usage.cpp) and the man pages (man_page.cpp) both print besides the settings table: each program's
// introduction, usage lines, section titles and notes, and example; and one setting's description with its range
// and default. The man pages are made at build time by ringtun-man (man_main.cpp) from the same table as --help, so
// the two cannot disagree.
// Private to src/app, its unit tests and ringtun-man. Thread rules: none (constant data, pure functions).
#pragma once

#include <string>
#include <string_view>

#include "app/settings.hpp"

namespace ringtun::app::detail {

struct ProgramText {
  Program program;
  std::string_view intro;  // after "<name> <version>: "
  std::string_view usage;
  std::string_view titles[kSectionCount];
  std::string_view notes[kSectionCount];  // after the section's lines
  std::string_view example;
};
const ProgramText& program_text(Program program) noexcept;

// Joins words that wrapping must keep on one line ("(default 5000)"); printed as a space.
inline constexpr char kNoBreak = '\x1f';

// The help line, its range and its default: "PING interval ..., 1..86400000 (default 5000)". '\n' in the help
// starts a new line; kNoBreak joins words.
std::string description(const Setting& setting, const Target& defaults);

// The manual page of `program` (kGateway or kAgent) in roff (man(7) macros): NAME, SYNOPSIS, DESCRIPTION, OPTIONS
// grouped as --help groups them, ENVIRONMENT, FILES, SIGNALS, EXIT STATUS, EXAMPLES, SEE ALSO.
std::string man_page(Program program);

}  // namespace ringtun::app::detail
