// The manual pages of both programs (see help_text.hpp), in roff with the man(7) macros. The options come from the
// settings table through the same description() as --help; what is not a setting (environment, files, signals, exit
// status) is written here, once per program.
#include <string>

#include "app/config.hpp"
#include "app/help_text.hpp"

#ifndef RINGTUN_VERSION
#define RINGTUN_VERSION "unknown"
#endif

namespace ringtun::app::detail {
namespace {

// Text for roff: backslashes and minus signs escaped (\- is the minus that man pages use in flags), a line that
// would start with a control character ('.' or '\'') guarded with \&, kNoBreak as an unbreakable space, and each
// '\n' a line break (.br) unless `keep_lines` (inside .nf, where lines stay as they are).
std::string roff(std::string_view text, bool keep_lines = false) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    line_start = false;
    switch (c) {
      case '\\':
        out += "\\e";
        break;
      case '-':
        out += "\\-";
        break;
      case kNoBreak:
        out += "\\ ";
        break;
      case '\n':
        out += keep_lines ? "\n" : "\n.br\n";
        line_start = true;
        break;
      default:
        out += c;
    }
  }
  return out;
}

// "Tunnel:" -> "Tunnel"; the --help notes are indented by two spaces, which a man page does not need.
std::string_view title_of(std::string_view title) {
  if (!title.empty() && title.back() == ':') title.remove_suffix(1);
  return title;
}
std::string paragraph(std::string_view note) {
  std::string joined;
  for (std::size_t i = 0; i < note.size(); ++i) {
    if (note[i] == '\n') {
      joined += ' ';
      while (i + 1 < note.size() && note[i + 1] == ' ') ++i;
    } else if (joined.empty() && note[i] == ' ') {
      continue;
    } else {
      joined += note[i];
    }
  }
  while (!joined.empty() && joined.back() == ' ') joined.pop_back();
  return roff(joined);
}

// .TP entries: a bold name and its text.
void item(std::string* out, std::string_view name, std::string_view text) {
  *out += ".TP\n.B " + roff(name) + "\n" + roff(text) + "\n";
}

struct Extras {
  std::string_view summary;  // NAME line, after "\-"
  std::string_view environment[2][2];
  std::string_view files[3][2];
  std::string_view signals[2][2];
  std::string_view exit_status[3][2];
  std::string_view see_also;
};

constexpr Extras kGatewayExtras = {
    .summary = "public side of a ringtun reverse tunnel",
    .environment = {{"RINGTUN_TOKEN",
                     "a key agents may present, used when no token is given by --token, --token-file or the "
                     "\"tokens\" of --config (it then allows every port and no host names)"},
                    {"STATE_DIRECTORY", "set by systemd's StateDirectory=: where --state-dir defaults to"}},
    .files = {{"/etc/ringtun/gateway.json", "the configuration the systemd unit ringtun-gateway.service starts with"},
              {"/etc/ringtun/token",
               "the tokens, one per line, passed by the unit as a credential (LoadCredential=) to --token-file"},
              {"/var/lib/ringtun", "the self-signed certificate and key made when no --cert is given"}},
    .signals = {{"SIGTERM, SIGINT",
                 "stop accepting, let open streams finish for up to --drain-timeout-ms, then exit 0"},
                {"SIGHUP",
                 "read --cert, --key and --client-ca again (on an error the previous certificate stays), reopen "
                 "--access-log, and read the configuration again (--config, then the same flags): tokens, their "
                 "ports, hosts and access policies change at once; a removed token's agents are released "
                 "(token_revoked); other settings take effect after a restart; a configuration with an error "
                 "changes nothing"}},
    .exit_status = {{"0", "stopped by a signal, after draining"},
                    {"1", "could not start (io_uring unavailable, a listener that failed for another reason)"},
                    {"2", "bad flags or configuration, unreadable certificate files, or --listen's address in use"}},
    .see_also = ".BR ringtun\\-agent (1),\n.BR systemd.exec (5),\n.BR systemd\\-creds (1)\n",
};

constexpr Extras kAgentExtras = {
    .summary = "private side of a ringtun reverse tunnel",
    .environment = {{"RINGTUN_TOKEN",
                     "the key the gateway expects, used when neither --token nor --token-file (nor \"token\" or "
                     "\"token_file\" in --config) gives it"},
                    {"CREDENTIALS_DIRECTORY",
                     "set by systemd's LoadCredential=; the unit passes --token-file ${CREDENTIALS_DIRECTORY}/token"}},
    .files = {{"/etc/ringtun/NAME.json", "the configuration of the systemd unit ringtun-agent@NAME.service"},
              {"/etc/ringtun/NAME.token", "its token, passed as a credential (LoadCredential=) to --token-file"},
              {"", ""}},
    .signals = {{"SIGTERM, SIGINT", "let open streams finish for up to --drain-timeout-ms, then exit 0"},
                {"SIGHUP", "read --config and the flags again and update the services on the live tunnel: added ones "
                           "are claimed, removed ones released (their open streams finish); on an error nothing "
                           "changes"}},
    .exit_status = {{"0", "stopped by a signal, after draining"},
                    {"2", "bad flags or configuration"},
                    {"3", "refused by the gateway for good (bad token or a token the gateway revoked, --agent-id "
                          "held by another running instance)"}},
    .see_also = ".BR ringtun\\-gateway (1),\n.BR systemd.exec (5),\n.BR systemd\\-creds (1)\n",
};

template <typename Config>
std::string make_page(Program program) {
  const ProgramText& text = program_text(program);
  const Extras& extras = program == Program::kGateway ? kGatewayExtras : kAgentExtras;
  const std::string name = program_name(program);
  std::string upper = name;
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  Config defaults;
  const Target target = target_of(&defaults);

  std::string out = ".\\\" Generated by ringtun-man from the settings table (src/app/settings.cpp); do not edit.\n";
  out += ".TH " + roff(upper) + " 1 \"\" \"ringtun " RINGTUN_VERSION "\" \"User Commands\"\n";
  out += ".SH NAME\n" + roff(name) + " \\- " + roff(extras.summary) + "\n";
  out += ".SH SYNOPSIS\n.nf\n";
  std::string_view usage = text.usage;
  if (usage.substr(0, 7) == "Usage: ") usage.remove_prefix(7);
  // The continuation lines of --help's usage are indented to follow "Usage: ".
  std::string synopsis;
  for (std::size_t i = 0; i < usage.size(); ++i) {
    synopsis += usage[i];
    if (usage[i] == '\n' && usage.substr(i + 1, 7) == "       ") i += 7;
  }
  out += roff(synopsis, true) + ".fi\n";
  out += ".SH DESCRIPTION\n.B " + roff(name) + "\nis " + paragraph(text.intro) + "\n.PP\n" +
         paragraph(text.notes[kSectionCount - 1]) + "\n";
  out += ".SH OPTIONS\n";
  for (std::size_t section = 0; section < kSectionCount; ++section) {
    out += ".SS \"" + roff(title_of(text.titles[section])) + "\"\n";
    for (const Setting& setting : settings()) {
      if (static_cast<std::size_t>(setting.section) != section || !serves(setting, program)) continue;
      out += ".TP\n";
      if (!setting.short_flag.empty()) out += "\\fB" + roff(setting.short_flag) + "\\fR, ";
      out += "\\fB" + roff(setting.flag) + "\\fR";
      if (!setting.placeholder.empty()) out += " \\fI" + roff(setting.placeholder) + "\\fR";
      out += "\n" + roff(description(setting, target)) + "\n";
    }
    if (section + 1 < kSectionCount && !text.notes[section].empty()) {
      out += ".PP\n" + paragraph(text.notes[section]) + "\n";
    }
  }
  auto items = [&](const char* title, const auto& list) {
    out += std::string(".SH ") + title + "\n";
    for (const auto& entry : list) {
      if (!entry[0].empty()) item(&out, entry[0], entry[1]);
    }
  };
  items("ENVIRONMENT", extras.environment);
  items("FILES", extras.files);
  items("SIGNALS", extras.signals);
  items("EXIT STATUS", extras.exit_status);
  std::string_view example = text.example;
  if (example.substr(0, 9) == "Example:\n") example.remove_prefix(9);
  out += ".SH EXAMPLES\n.nf\n" + roff(example, true) + ".fi\n";
  out += ".SH SEE ALSO\n" + std::string(extras.see_also);
  return out;
}

}  // namespace

std::string man_page(Program program) {
  return program == Program::kGateway ? make_page<GatewayConfig>(program) : make_page<AgentConfig>(program);
}

}  // namespace ringtun::app::detail
