// The --help texts of both programs, generated from the settings table: one line per entry the program has, in
// table order within each section, with its range and default. What is not a setting (the introduction, section
// titles and notes, the examples) is per program, below.
#include <string>

#include "app/config.hpp"
#include "app/help_text.hpp"
#include "app/settings.hpp"

#ifndef RINGTUN_VERSION
#define RINGTUN_VERSION "unknown"
#endif

namespace ringtun::app {

using detail::Kind;
using detail::kNoBreak;
using detail::Program;
using detail::ProgramText;
using detail::Setting;

namespace {

constexpr std::string_view kFlagsNote =
    "Flags take \"--flag value\" or \"--flag=value\". Durations are in milliseconds. Problems are reported on one\n"
    "line; the exit status is then 2.\n";

constexpr ProgramText kGatewayText = {
    .program = Program::kGateway,
    .intro =
        "the public side of a ringtun reverse tunnel. Agents connect to\n"
        "--listen, present a token, and the gateway opens the public ports their services ask for, or routes\n"
        "its shared HTTP and TLS ports to them by host name.\n",
    .usage =
        "Usage: ringtun-gateway --listen ADDR:PORT --token SECRET [--allow-ports LO-HI] [--allow-hosts PATTERN,...]\n"
        "                       [--http-listen ADDR:PORT] [--tls-listen ADDR:PORT] [options]\n"
        "       ringtun-gateway --config FILE [options]\n",
    .titles = {"Tunnel:", "Shared public ports (off unless given; each needs a port of its own):",
               "TLS (on by default):", "Operations (off unless given):", "Common:"},
    .notes = {"", "  A token claims host names only when its --allow-hosts says which.\n",
              "  SIGHUP reads --cert/--key/--client-ca again (renewal): new tunnel connections get them,\n"
              "  open ones are not touched; on an error the previous certificate stays.\n",
              "  SIGHUP also reopens --access-log (logrotate), and reads --config and the flags again: tokens,\n"
              "  their ports, hosts and access policies change at once (a removed token's agents are released,\n"
              "  token_revoked); other settings after a restart. A config with an error changes nothing.\n",
              kFlagsNote},
    .example =
        "Example:\n"
        "  ringtun-gateway --listen 0.0.0.0:7000 --token s3cret --allow-ports 10000-20000 \\\n"
        "                  --allow-hosts '*.apps.example.com' --token other --http-listen 0.0.0.0:80\n"
        "  (logs: TLS certificate ... fingerprint sha256:...; give that to the agents)\n\n"
        "The same as a --config file (the first --token on the command line replaces \"tokens\"):\n"
        "  {\"listen\": \"0.0.0.0:7000\", \"http_listen\": \"0.0.0.0:80\",\n"
        "   \"tokens\": [{\"token\": \"s3cret\", \"allow_ports\": \"10000-20000\", \"allow_hosts\": "
        "[\"*.apps.example.com\"]},\n"
        "              {\"token\": \"other\"}],\n"
        "   \"max_streams\": 1024, \"threads\": 0, \"log_level\": \"info\", \"heartbeat_ms\": 5000}\n",
};

constexpr ProgramText kAgentText = {
    .program = Program::kAgent,
    .intro =
        "the private side of a ringtun reverse tunnel. It connects out to a\n"
        "gateway and serves the gateway's public ports and host names from local services.\n",
    .usage =
        "Usage: ringtun-agent --gateway HOST:PORT --token SECRET --expose KIND:PUBLIC=LOCAL_HOST:LOCAL_PORT\n"
        "                     [--expose ...] [options]\n"
        "       ringtun-agent --config FILE [options]\n",
    .titles = {"Tunnel:", "HTTP services:", "TLS (on by default; one of --gateway-fingerprint / --ca is required):",
               "Operations (off unless given):", "Common:"},
    .notes = {"  SIGHUP reads --config and the flags again and updates the services on the live tunnel\n"
              "  (added ones claimed, removed ones released); on an error nothing changes.\n",
              "", "", "", kFlagsNote},
    .example =
        "Example:\n"
        "  ringtun-agent --gateway 203.0.113.7:7000 --token s3cret --gateway-fingerprint sha256:... \\\n"
        "                --expose tcp:web@8080=127.0.0.1:80 --expose http:app.example.com=127.0.0.1:3000\n\n"
        "The same as a --config file (the first --expose on the command line replaces \"services\"):\n"
        "  {\"gateway\": \"203.0.113.7:7000\", \"token\": \"s3cret\", \"agent_id\": \"edge-1\",\n"
        "   \"services\": [{\"name\": \"web\", \"kind\": \"tcp\", \"public_port\": 8080, \"local\": "
        "\"127.0.0.1:80\"},\n"
        "                {\"kind\": \"http\", \"host\": \"app.example.com\", \"local\": \"127.0.0.1:3000\"}]}\n",
};

// One help entry: descriptions start at one column and wrap at kWidth; a flag too wide for its column, and each
// '\n' in the description, continue on a new line at that column.
void add_line(std::string* out, std::string_view flag, std::string_view help) {
  constexpr std::size_t kColumn = 28;
  constexpr std::size_t kWidth = 110;
  const std::string indent(kColumn, ' ');
  std::string entry;
  std::string line = "  " + std::string(flag);
  if (line.size() < kColumn) {
    line.resize(kColumn, ' ');
  } else {
    entry += line + "\n";
    line = indent;
  }
  bool line_empty = true;  // nothing after the indent yet
  while (!help.empty()) {
    std::size_t end = help.find_first_of(" \n");
    std::string_view word = help.substr(0, end);
    if (!line_empty && line.size() + 1 + word.size() > kWidth) {
      entry += line + "\n";
      line = indent;
      line_empty = true;
    }
    if (!word.empty()) {
      if (!line_empty) line += ' ';
      line += word;
      line_empty = false;
    }
    if (end == std::string_view::npos) break;
    if (help[end] == '\n') {
      entry += line + "\n";
      line = indent;
      line_empty = true;
    }
    help.remove_prefix(end + 1);
  }
  entry += line + "\n";
  for (char& c : entry) {
    if (c == kNoBreak) c = ' ';
  }
  *out += entry;
}

}  // namespace

std::string detail::description(const Setting& setting, const detail::Target& defaults) {
  std::string text(setting.help);
  if (setting.kind == Kind::kInteger) text += ", " + std::to_string(setting.min) + ".." + std::to_string(setting.max);
  std::string value = setting.field.show != nullptr ? setting.field.show(defaults) : std::string();
  if (!value.empty()) {
    text += " (default" + std::string(1, kNoBreak) + value;
    if (!setting.default_note.empty()) text += ": " + std::string(setting.default_note);
    text += ")";
  } else if (!setting.default_note.empty()) {
    text += " (default: " + std::string(setting.default_note) + ")";
  }
  return text;
}

const ProgramText& detail::program_text(Program program) noexcept {
  return program == Program::kGateway ? kGatewayText : kAgentText;
}

namespace {

template <typename Config>
std::string make_usage(const char* name, const ProgramText& program) {
  Config defaults;
  const detail::Target target = detail::target_of(&defaults);
  std::string out =
      std::string(name) + " " RINGTUN_VERSION ": " + std::string(program.intro) + "\n" + std::string(program.usage);
  for (std::size_t section = 0; section < detail::kSectionCount; ++section) {
    out += "\n" + std::string(program.titles[section]) + "\n";
    for (const Setting& setting : detail::settings()) {
      if (static_cast<std::size_t>(setting.section) != section || !detail::serves(setting, program.program)) continue;
      add_line(&out, flag_column(setting), detail::description(setting, target));
    }
    out += program.notes[section];
  }
  out += "\n" + std::string(program.example);
  return out;
}

}  // namespace

std::string_view gateway_usage() {
  static const std::string text = make_usage<GatewayConfig>("ringtun-gateway", kGatewayText);
  return text;
}

std::string_view agent_usage() {
  static const std::string text = make_usage<AgentConfig>("ringtun-agent", kAgentText);
  return text;
}

std::string detail::flag_column(const Setting& setting) {
  std::string text;
  if (!setting.short_flag.empty()) text = std::string(setting.short_flag) + ", ";
  text += setting.flag;
  if (!setting.placeholder.empty()) text += " " + std::string(setting.placeholder);
  return text;
}

}  // namespace ringtun::app
