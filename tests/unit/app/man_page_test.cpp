// The man pages (man_page.cpp): every flag of the program from the settings table, grouped as --help groups them,
// the fixed sections, and roff that cannot misfire (escaped minus signs and backslashes, no stray requests).
// That groff renders them without warnings is checked by tests/integration/test_dist.py.
#include <doctest/doctest.h>

#include <string>

#include "app/help_text.hpp"

namespace ringtun::app::detail {
namespace {

// A flag as the page writes it: "--token-file" -> "\-\-token\-file".
std::string escaped(std::string_view flag) {
  std::string out;
  for (char c : flag) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

TEST_CASE("man_page: every flag of the program, in its section, and the fixed sections") {
  for (Program program : {Program::kGateway, Program::kAgent}) {
    const std::string page = man_page(program);
    CAPTURE(std::string(program_name(program)));
    CHECK(page.find(".TH RINGTUN\\-") != std::string::npos);
    std::size_t last = 0;
    for (const char* section : {".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH ENVIRONMENT",
                                ".SH FILES", ".SH SIGNALS", ".SH EXIT STATUS", ".SH EXAMPLES", ".SH SEE ALSO"}) {
      std::size_t at = page.find(section);
      CAPTURE(section);
      REQUIRE(at != std::string::npos);
      CHECK(at > last);
      last = at;
    }
    CHECK(page.find("RINGTUN_TOKEN") != std::string::npos);
    for (const Setting& setting : settings()) {
      const std::string entry = "\\fB" + escaped(setting.flag) + "\\fR";
      CAPTURE(setting.flag);
      const bool listed =
          page.find(".TP\n" + entry) != std::string::npos || page.find("\\fR, " + entry) != std::string::npos;
      // --token and --cert are entries of both programs, with their own help: only a flag the program lacks is absent.
      CHECK(listed == (find_flag(program, setting.flag) != nullptr));
      if (serves(setting, program)) {  // with this entry's own help (up to the first character roff escapes)
        const std::string_view help_start = setting.help.substr(0, setting.help.find_first_of("-\n\\"));
        CHECK(page.find(help_start) != std::string::npos);
      }
    }
    // Every line starting with '.' or '\'' is a request we wrote: escaped text never starts a line with them.
    std::size_t begin = 0;
    while (begin < page.size()) {
      std::size_t end = page.find('\n', begin);
      std::string_view line(page.data() + begin, end - begin);
      if (!line.empty() && (line[0] == '.' || line[0] == '\'')) {
        CAPTURE(line);
        const bool known = line.substr(0, 3) == ".\\\"" || line.substr(0, 4) == ".TH " || line.substr(0, 4) == ".SH " ||
                           line.substr(0, 4) == ".SS " || line == ".TP" || line == ".PP" || line == ".br" ||
                           line == ".nf" || line == ".fi" || line.substr(0, 3) == ".B " || line.substr(0, 4) == ".BR ";
        CHECK(known);
      }
      begin = end + 1;
    }
    CHECK(page.find('\x1f') == std::string::npos);  // kNoBreak became "\ "
  }
}

}  // namespace
}  // namespace ringtun::app::detail
