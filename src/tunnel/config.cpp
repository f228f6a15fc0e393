// Command-line parsing for ringtun-gateway and ringtun-agent, and the value checks the JSON loader shares
// (config_json.cpp). See config.hpp for the contract and config_internal.hpp for the message scheme.
#include "tunnel/config.hpp"
#include "tunnel/handshake.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstdio>
#include <new>
#include <unordered_map>

#include "tunnel/config_internal.hpp"

#ifndef RINGTUN_VERSION
#define RINGTUN_VERSION "unknown"
#endif

namespace ringtun::tunnel {
namespace detail {
namespace {

constexpr SettingSpec kSettings[] = {
    // id, programs, flag, json key, kind, repeatable, min, max, range text
    {SettingId::kConfig, Program::kBoth, "--config", "", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kHelp, Program::kBoth, "--help", "", ValueKind::kNone, true, 0, 0, ""},
    {SettingId::kVersion, Program::kBoth, "--version", "", ValueKind::kNone, true, 0, 0, ""},
    {SettingId::kThreads, Program::kBoth, "--threads", "threads", ValueKind::kInteger, false, 0, kMaxThreads,
     "1..1024 (or 0 for all CPUs)"},
    {SettingId::kLogLevel, Program::kBoth, "--log-level", "log_level", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kHeartbeatMs, Program::kBoth, "--heartbeat-ms", "heartbeat_ms", ValueKind::kInteger, false, 1,
     kMaxDurationMs, "1..86400000"},
    {SettingId::kDeadPeerMs, Program::kBoth, "--dead-peer-ms", "dead_peer_ms", ValueKind::kInteger, false, 1,
     kMaxDurationMs, "1..86400000"},
    {SettingId::kDrainTimeoutMs, Program::kBoth, "--drain-timeout-ms", "drain_timeout_ms", ValueKind::kInteger, false,
     0, kMaxDurationMs, "0..86400000"},
    // ringtun-gateway
    {SettingId::kListen, Program::kGateway, "--listen", "listen", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kToken, Program::kGateway, "--token", "", ValueKind::kText, true, 0, 0, ""},
    {SettingId::kAllowPorts, Program::kGateway, "--allow-ports", "", ValueKind::kText, true, 0, 0, ""},
    {SettingId::kMaxStreams, Program::kGateway, "--max-streams", "max_streams", ValueKind::kInteger, false, 1,
     kMaxStreamsLimit, "1..1048576"},
    {SettingId::kTokens, Program::kGateway, "", "tokens", ValueKind::kList, false, 0, 0, ""},
    // ringtun-agent
    {SettingId::kGateway, Program::kAgent, "--gateway", "gateway", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kToken, Program::kAgent, "--token", "token", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kAgentId, Program::kAgent, "--agent-id", "agent_id", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kExpose, Program::kAgent, "--expose", "", ValueKind::kText, true, 0, 0, ""},
    {SettingId::kServices, Program::kAgent, "", "services", ValueKind::kList, false, 0, 0, ""},
    {SettingId::kReconnectMaxMs, Program::kAgent, "--reconnect-max-ms", "reconnect_max_ms", ValueKind::kInteger, false,
     1, kMaxDurationMs, "1..86400000"},
    {SettingId::kConnectTimeoutMs, Program::kAgent, "--connect-timeout-ms", "connect_timeout_ms", ValueKind::kInteger,
     false, 1, kMaxDurationMs, "1..86400000"},
};

bool serves(const SettingSpec& spec, Program program) noexcept {
  return (static_cast<unsigned>(spec.programs) & static_cast<unsigned>(program)) != 0;
}

bool is_name_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

// Digits only (no sign, no spaces), as a flag value must be.
bool parse_decimal(std::string_view text, std::uint64_t* out) noexcept {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool parse_port(std::string_view text, std::uint16_t* out) noexcept {
  std::uint64_t value = 0;
  if (!parse_decimal(text, &value) || value < 1 || value > 65535) return false;
  *out = static_cast<std::uint16_t>(value);
  return true;
}

bool is_unspecified(const ring::net::Address& address) noexcept {
  if (address.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  if (address.family() == AF_INET6) {
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr);
  }
  return false;
}

enum class AddressUse { kListen, kConnect };

// Parses an address and words the failure as "<where>: "<text>" <problem>".
Status check_address(std::string_view where, std::string_view text, AddressUse use, const char* example,
                     ring::net::Address* out, std::string* error_text) {
  std::string prefix = std::string(where) + ": " + in_quotes(text);
  auto parsed = ring::net::parse_address(text);
  if (!parsed) {
    std::string_view why = parsed.error().context();
    if (why.substr(0, 9) == "address: ") why.remove_prefix(9);
    // A host that is not numeric but has letters is a name: say plainly that we do not resolve names.
    std::size_t colon = text.rfind(':');
    std::string_view host = colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
    bool has_letter = false;
    for (char c : host) has_letter |= (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (has_letter && host.find(':') == std::string_view::npos && host.front() != '[') {
      return report(error_text, Errc::kParse,
                    prefix + " is a host name; names are not resolved: use a numeric address (e.g. " + example +
                        ") or localhost");
    }
    return report(error_text, Errc::kParse,
                  prefix + " is not an address: " + std::string(why) + " (e.g. " + example + ")");
  }
  if (use == AddressUse::kConnect) {
    if (is_unspecified(*parsed)) {
      return report(error_text, Errc::kInvalidArgument, prefix + " has no host to connect to (e.g. " + example + ")");
    }
    if (parsed->port() == 0) {
      return report(error_text, Errc::kInvalidArgument, prefix + " needs a port 1..65535 (e.g. " + example + ")");
    }
  }
  *out = *parsed;
  return {};
}

Status check_integer_text(const SettingSpec& spec, std::string_view text, std::uint64_t* out, std::string* error_text) {
  bool is_number = parse_decimal(text, out);
  if (!is_number || *out < spec.min || *out > spec.max) {
    return report(
        error_text, is_number ? Errc::kInvalidArgument : Errc::kParse,
        std::string(spec.flag) + ": " + in_quotes(text) + " is not a number in " + std::string(spec.range_text));
  }
  return {};
}

Status apply_common(CommonConfig* common, const SettingSpec& spec, const SettingValue& value, std::string_view where,
                    std::string* error_text) {
  switch (spec.id) {
    case SettingId::kThreads:
      common->threads = static_cast<unsigned>(value.integer);
      return {};
    case SettingId::kHeartbeatMs:
      common->heartbeat_ms = static_cast<std::uint32_t>(value.integer);
      return {};
    case SettingId::kDeadPeerMs:
      common->dead_peer_ms = static_cast<std::uint32_t>(value.integer);
      return {};
    case SettingId::kDrainTimeoutMs:
      common->drain_timeout_ms = static_cast<std::uint32_t>(value.integer);
      return {};
    case SettingId::kLogLevel: {
      std::string text(value.text);
      if (text.find('\0') != std::string::npos || !log::parse_level(text.c_str(), &common->log_level)) {
        return report(
            error_text, Errc::kParse,
            std::string(where) + ": " + in_quotes(value.text) + " is not one of trace|debug|info|warn|error|off");
      }
      return {};
    }
    default:
      break;
  }
  RINGTUN_CHECK(false, "apply_setting: a setting without a scalar handler");
  return {};
}

const char* program_name(Program program) noexcept {
  return program == Program::kGateway ? "ringtun-gateway" : "ringtun-agent";
}

}  // namespace

const SettingSpec* find_flag(Program program, std::string_view flag) noexcept {
  for (const SettingSpec& spec : kSettings) {
    if (!spec.flag.empty() && spec.flag == flag && serves(spec, program)) return &spec;
  }
  return nullptr;
}

const SettingSpec* find_json_key(Program program, std::string_view key) noexcept {
  for (const SettingSpec& spec : kSettings) {
    if (!spec.json_key.empty() && spec.json_key == key && serves(spec, program)) return &spec;
  }
  return nullptr;
}

std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 80;
  std::string out;
  std::size_t shown = 0;
  for (char ch : text) {
    if (shown++ == kMaxShown) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string in_quotes(std::string_view text) {
  return "\"" + printable(text) + "\"";
}

Unexpected report(std::string* error_text, Errc code, std::string message) {
  if (error_text != nullptr) *error_text = std::move(message);
  return fail(code, "config");
}

Status check_port_range(std::string_view where, std::string_view text, TokenRule* rule, std::string* error_text) {
  std::size_t dash = text.find('-');
  std::uint16_t low = 0;
  std::uint16_t high = 0;
  bool ok = dash == std::string_view::npos
                ? parse_port(text, &low) && (high = low, true)
                : parse_port(text.substr(0, dash), &low) && parse_port(text.substr(dash + 1), &high);
  if (!ok) {
    return report(
        error_text, Errc::kParse,
        std::string(where) + ": " + in_quotes(text) + " is not a port range (expected LO-HI or PORT, ports 1..65535)");
  }
  if (low > high) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + in_quotes(text) + " is not a valid range: low port " +
                      std::to_string(low) + " is above high port " + std::to_string(high));
  }
  rule->port_low = low;
  rule->port_high = high;
  return {};
}

Status check_service_name(std::string_view where, std::string_view name, std::string* error_text) {
  if (!valid_name(name)) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + in_quotes(name) + " is not a valid name (1..64 of A-Z a-z 0-9 . _ -)");
  }
  return {};
}

// Secrets are never echoed: messages name the flag or key only.
Status check_token(std::string_view where, std::string_view secret, std::string* error_text) {
  if (secret.empty()) return report(error_text, Errc::kInvalidArgument, std::string(where) + ": empty");
  if (secret.size() > kMaxTokenLength) {  // the handshake carries at most this much
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": longer than " + std::to_string(kMaxTokenLength) + " characters");
  }
  for (char c : secret) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return report(error_text, Errc::kInvalidArgument,
                    std::string(where) + ": contains a control character (a stray newline?)");
    }
  }
  return {};
}

Status check_local_address(std::string_view where, std::string_view text, ring::net::Address* out,
                           std::string* error_text) {
  return check_address(where, text, AddressUse::kConnect, "127.0.0.1:80", out, error_text);
}

Status apply_setting(GatewayConfig* config, const SettingSpec& spec, const SettingValue& value, std::string_view where,
                     std::string* error_text) {
  switch (spec.id) {
    case SettingId::kListen:
      RINGTUN_TRY(check_address(where, value.text, AddressUse::kListen, "0.0.0.0:7000", &config->listen, error_text));
      config->listen_text = std::string(value.text);
      return {};
    case SettingId::kMaxStreams:
      config->max_streams_per_connection = static_cast<std::uint32_t>(value.integer);
      return {};
    default:
      return apply_common(&config->common, spec, value, where, error_text);
  }
}

Status apply_setting(AgentConfig* config, const SettingSpec& spec, const SettingValue& value, std::string_view where,
                     std::string* error_text) {
  switch (spec.id) {
    case SettingId::kGateway:
      RINGTUN_TRY(
          check_address(where, value.text, AddressUse::kConnect, "203.0.113.7:7000", &config->gateway, error_text));
      config->gateway_text = std::string(value.text);
      return {};
    case SettingId::kToken:
      RINGTUN_TRY(check_token(where, value.text, error_text));
      config->token = std::string(value.text);
      return {};
    case SettingId::kAgentId:
      RINGTUN_TRY(check_service_name(where, value.text, error_text));
      config->agent_id = std::string(value.text);
      return {};
    case SettingId::kReconnectMaxMs:
      config->reconnect_max_ms = static_cast<std::uint32_t>(value.integer);
      return {};
    case SettingId::kConnectTimeoutMs:
      config->connect_timeout_ms = static_cast<std::uint32_t>(value.integer);
      return {};
    default:
      return apply_common(&config->common, spec, value, where, error_text);
  }
}

std::size_t SeenSet::add(std::string_view key, std::size_t index) {
  auto [it, inserted] = first_.try_emplace(std::string(key), index);
  return inserted ? kNone : it->second;
}

}  // namespace detail

using detail::Program;
using detail::report;
using detail::SettingId;
using detail::SettingSpec;
using detail::ValueKind;

namespace {

struct FlagArg {
  const SettingSpec* spec;
  std::string_view value;
};

// What the command line itself contributes to list settings: the first --token / --expose replaces the file's
// list; --allow-ports refines the --token just before it.
struct ListState {
  bool started = false;
  bool last_has_ports = false;
  std::vector<std::string> texts;  // --expose values as given, for duplicate messages
  detail::SeenSet secrets;
  detail::SeenSet ports;
  detail::SeenSet names;
};

Status apply_list_flag(GatewayConfig* config, ListState* state, const FlagArg& arg, std::string* error_text) {
  if (arg.spec->id == SettingId::kToken) {
    if (!state->started) config->tokens.clear();
    state->started = true;
    RINGTUN_TRY(detail::check_token("--token", arg.value, error_text));
    std::size_t first = state->secrets.add(arg.value, config->tokens.size());
    if (first != detail::SeenSet::kNone) {
      return report(error_text, Errc::kInvalidArgument,
                    "--token: the same secret is given twice (tokens " + std::to_string(first + 1) + " and " +
                        std::to_string(config->tokens.size() + 1) + ")");
    }
    TokenRule rule;
    rule.secret = std::string(arg.value);
    config->tokens.push_back(std::move(rule));
    state->last_has_ports = false;
    return {};
  }
  // --allow-ports
  if (!state->started) {
    return report(error_text, Errc::kInvalidArgument,
                  "--allow-ports: comes before any --token (it applies to the --token just before it)");
  }
  if (state->last_has_ports) {
    return report(
        error_text, Errc::kInvalidArgument,
        "--allow-ports: given twice for token " + std::to_string(config->tokens.size()) + " (one range per --token)");
  }
  RINGTUN_TRY(detail::check_port_range("--allow-ports", arg.value, &config->tokens.back(), error_text));
  state->last_has_ports = true;
  return {};
}

Status apply_list_flag(AgentConfig* config, ListState* state, const FlagArg& arg, std::string* error_text) {
  if (!state->started) config->services.clear();
  state->started = true;
  auto service = parse_expose(arg.value, error_text);
  if (!service) return Unexpected{service.error()};
  std::size_t index = config->services.size();
  std::size_t first = state->ports.add(std::to_string(service->public_port), index);
  if (first != detail::SeenSet::kNone) {
    return report(error_text, Errc::kInvalidArgument,
                  "--expose " + detail::in_quotes(arg.value) + ": public port " + std::to_string(service->public_port) +
                      " is already exposed by --expose " + detail::in_quotes(state->texts[first]));
  }
  first = state->names.add(service->name, index);
  if (first != detail::SeenSet::kNone) {
    return report(error_text, Errc::kInvalidArgument,
                  "--expose " + detail::in_quotes(arg.value) + ": service name " + detail::in_quotes(service->name) +
                      " is already used by --expose " + detail::in_quotes(state->texts[first]));
  }
  state->texts.emplace_back(arg.value);
  config->services.push_back(std::move(*service));
  return {};
}

Status load_file(std::string_view path, GatewayConfig* config, std::string* error_text) {
  return detail::load_gateway_file(path, config, error_text);
}
Status load_file(std::string_view path, AgentConfig* config, std::string* error_text) {
  return detail::load_agent_file(path, config, error_text);
}

Status check_timing(const CommonConfig& common, std::string* error_text) {
  if (common.dead_peer_ms <= common.heartbeat_ms) {
    return report(error_text, Errc::kInvalidArgument,
                  "--dead-peer-ms: " + std::to_string(common.dead_peer_ms) + " must be greater than --heartbeat-ms (" +
                      std::to_string(common.heartbeat_ms) + "), or an idle but live peer is declared dead");
  }
  return {};
}

Status finish(GatewayConfig* config, std::string* error_text) {
  if (config->listen_text.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--listen: missing (the tunnel port for agents, e.g. --listen 0.0.0.0:7000)");
  }
  if (config->tokens.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--token: missing (at least one key agents present, e.g. --token s3cret, or \"tokens\" in "
                  "--config)");
  }
  return check_timing(config->common, error_text);
}

Status finish(AgentConfig* config, std::string* error_text) {
  if (config->gateway_text.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--gateway: missing (the gateway's tunnel address, e.g. --gateway 203.0.113.7:7000)");
  }
  if (config->token.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--token: missing (the key the gateway expects, e.g. --token s3cret)");
  }
  if (config->services.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--expose: missing (at least one service, e.g. --expose tcp:8080=127.0.0.1:80, or \"services\" "
                  "in --config)");
  }
  if (config->agent_id.empty()) {
    char host[HOST_NAME_MAX + 1] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || !detail::valid_name(host)) {
      return report(error_text, Errc::kInvalidArgument,
                    "--agent-id: missing, and the host name " + detail::in_quotes(host) +
                        " is not a valid id (1..64 of A-Z a-z 0-9 . _ -); give --agent-id ID");
    }
    config->agent_id = host;
  }
  return check_timing(config->common, error_text);
}

template <typename Config>
Result<Parsed<Config>> parse_args(Program program, int argc, const char* const* argv, std::string* error_text) {
  Program other = program == Program::kGateway ? Program::kAgent : Program::kGateway;
  std::vector<FlagArg> args;
  std::string first_error;
  Errc first_code = Errc::kOk;
  auto note_error = [&](Errc code, std::string message) {
    if (first_code == Errc::kOk) {
      first_code = code;
      first_error = std::move(message);
    }
  };

  // Pass 1: split argv into flags and values. --help / --version win over any mistake elsewhere on the line.
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i] != nullptr ? argv[i] : "";
    std::string_view name = arg;
    std::string_view inline_value;
    bool has_inline = false;
    if (arg == "-h") name = "--help";
    if (arg == "-V") name = "--version";
    if (name.size() > 2 && name.substr(0, 2) == "--") {
      std::size_t eq = name.find('=');
      if (eq != std::string_view::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_inline = true;
      }
    } else if (arg.size() > 1 && arg.front() == '-' && arg != "--") {
      note_error(Errc::kParse, "unknown flag " + detail::printable(arg) + " (see --help)");
      continue;
    } else {
      note_error(Errc::kParse, "unexpected argument " + detail::in_quotes(arg) + " (flags start with --; see --help)");
      continue;
    }
    const SettingSpec* spec = detail::find_flag(program, name);
    if (spec == nullptr) {
      std::string shown = detail::printable(name);
      if (detail::find_flag(other, name) != nullptr) {
        note_error(Errc::kParse,
                   "unknown flag " + shown + " (it is a " + detail::program_name(other) + " flag; see --help)");
      } else {
        note_error(Errc::kParse, "unknown flag " + shown + " (see --help)");
      }
      continue;
    }
    if (spec->kind == ValueKind::kNone) {
      if (has_inline) {
        note_error(Errc::kParse, std::string(spec->flag) + " takes no value");
        continue;
      }
      Parsed<Config> parsed;
      parsed.outcome = spec->id == SettingId::kHelp ? ParseOutcome::kHelp : ParseOutcome::kVersion;
      return parsed;
    }
    if (!has_inline) {
      // A following flag is not a value: "--token --listen x" forgot the token. Use --token=--x for odd values.
      if (i + 1 >= argc || argv[i + 1] == nullptr || std::string_view(argv[i + 1]).substr(0, 2) == "--") {
        note_error(Errc::kParse, std::string(spec->flag) + ": missing value (see --help)");
        continue;
      }
      inline_value = argv[++i];
    }
    args.push_back(FlagArg{spec, inline_value});
  }
  if (first_code != Errc::kOk) return report(error_text, first_code, std::move(first_error));

  // Pass 2: the file first, then every flag over it, whatever their order on the line.
  Parsed<Config> parsed;
  bool seen[static_cast<std::size_t>(SettingId::kCount)] = {};
  for (const FlagArg& arg : args) {
    auto id = static_cast<std::size_t>(arg.spec->id);
    if (seen[id] && !arg.spec->repeatable) {
      return report(error_text, Errc::kInvalidArgument, std::string(arg.spec->flag) + ": given more than once");
    }
    seen[id] = true;
  }
  for (const FlagArg& arg : args) {
    if (arg.spec->id == SettingId::kConfig) RINGTUN_TRY(load_file(arg.value, &parsed.config, error_text));
  }
  ListState lists;
  for (const FlagArg& arg : args) {
    const SettingSpec& spec = *arg.spec;
    if (spec.id == SettingId::kConfig) continue;
    if (spec.repeatable) {
      RINGTUN_TRY(apply_list_flag(&parsed.config, &lists, arg, error_text));
      continue;
    }
    detail::SettingValue value;
    value.text = arg.value;
    if (spec.kind == ValueKind::kInteger) {
      RINGTUN_TRY(detail::check_integer_text(spec, arg.value, &value.integer, error_text));
    }
    RINGTUN_TRY(detail::apply_setting(&parsed.config, spec, value, spec.flag, error_text));
  }
  RINGTUN_TRY(finish(&parsed.config, error_text));
  return parsed;
}

// Parsing allocates; an allocation failure becomes an error rather than an exception out of the API.
template <typename Config>
Result<Parsed<Config>> parse_args_noexcept(Program program, int argc, const char* const* argv,
                                           std::string* error_text) {
  try {
    return parse_args<Config>(program, argc, argv, error_text);
  } catch (const std::bad_alloc&) {
    return report(error_text, Errc::kExhausted, "out of memory while reading the configuration");
  }
}

}  // namespace

Result<Parsed<GatewayConfig>> parse_gateway_args(int argc, const char* const* argv, std::string* error_text) {
  return parse_args_noexcept<GatewayConfig>(Program::kGateway, argc, argv, error_text);
}

Result<Parsed<AgentConfig>> parse_agent_args(int argc, const char* const* argv, std::string* error_text) {
  return parse_args_noexcept<AgentConfig>(Program::kAgent, argc, argv, error_text);
}

Result<TokenRule> parse_port_range(std::string_view text, std::string* error_text) {
  TokenRule rule;
  RINGTUN_TRY(detail::check_port_range("--allow-ports", text, &rule, error_text));
  return rule;
}

Result<ServiceConfig> parse_expose(std::string_view text, std::string* error_text) {
  const std::string where = "--expose " + detail::in_quotes(text);
  auto malformed = [&] {
    return report(error_text, Errc::kParse, where + ": expected tcp:[NAME@]PUBLIC_PORT=LOCAL_HOST:LOCAL_PORT");
  };
  std::size_t colon = text.find(':');
  std::size_t eq = text.find('=');
  if (colon == std::string_view::npos || eq == std::string_view::npos || eq < colon) return malformed();
  std::string_view type = text.substr(0, colon);
  if (type != "tcp") {
    if (!type.empty() && detail::valid_name(type)) {
      return report(error_text, Errc::kInvalidArgument,
                    where + ": service type " + detail::in_quotes(type) + " is not supported (only tcp)");
    }
    return malformed();
  }
  std::string_view public_part = text.substr(colon + 1, eq - colon - 1);
  std::string_view local_part = text.substr(eq + 1);
  ServiceConfig service;
  std::size_t at = public_part.find('@');
  std::string_view port_text = public_part;
  if (at != std::string_view::npos) {
    service.name = std::string(public_part.substr(0, at));
    port_text = public_part.substr(at + 1);
  }
  if (port_text.empty() || local_part.empty() || local_part.find(':') == std::string_view::npos) {
    return malformed();
  }
  if (!detail::parse_port(port_text, &service.public_port)) {
    return report(error_text, Errc::kInvalidArgument,
                  where + ": public port " + detail::in_quotes(port_text) + " is not a number in 1..65535");
  }
  if (at != std::string_view::npos) {
    RINGTUN_TRY(detail::check_service_name(where + ": service name", service.name, error_text));
  } else {
    service.name = "tcp-" + std::to_string(service.public_port);
  }
  RINGTUN_TRY(detail::check_local_address(where + ": local address", local_part, &service.local, error_text));
  service.local_text = std::string(local_part);
  return service;
}

namespace {

// One help entry per flag: descriptions line up in one column; a flag too wide for its column, and each '\n' in
// the description, continue on a new line at that column.
void add_line(std::string* out, std::string_view flag, std::string_view help) {
  constexpr std::size_t kColumn = 28;
  const std::string indent(kColumn, ' ');
  std::string line = "  " + std::string(flag);
  if (line.size() < kColumn) {
    line.resize(kColumn, ' ');
  } else {
    line += "\n" + indent;
  }
  for (char c : help) {
    line += c;
    if (c == '\n') line += indent;
  }
  *out += line + "\n";
}

void add_common_lines(std::string* out) {
  const CommonConfig defaults;
  *out += "Common:\n";
  add_line(out, "--config FILE", "JSON file with these settings (keys: flag names, - as _); flags override it");
  add_line(out, "--threads N",
           "worker threads, one per core, 1..1024 (default " + std::to_string(defaults.threads) +
               ": all CPUs this process may use)");
  add_line(out, "--log-level LEVEL", "trace|debug|info|warn|error|off (default info)");
  add_line(out, "--heartbeat-ms N",
           "PING interval on an idle tunnel connection (default " + std::to_string(defaults.heartbeat_ms) + ")");
  add_line(out, "--dead-peer-ms N",
           "no bytes for this long: the peer is gone; above --heartbeat-ms (default " +
               std::to_string(defaults.dead_peer_ms) + ")");
  add_line(out, "--drain-timeout-ms N",
           "on SIGTERM, how long open streams may finish (default " + std::to_string(defaults.drain_timeout_ms) + ")");
  add_line(out, "-h, --help", "print this help and exit");
  add_line(out, "-V, --version", "print the version and exit");
  *out +=
      "Flags take \"--flag value\" or \"--flag=value\". Durations are in milliseconds, 1..86400000\n"
      "(--drain-timeout-ms may be 0). Problems are reported on one line; the exit status is then 2.\n";
}

std::string make_gateway_usage() {
  const GatewayConfig defaults;
  std::string out = "ringtun-gateway " RINGTUN_VERSION
                    ": the public side of a ringtun reverse tunnel. Agents connect to\n"
                    "--listen, present a token, and the gateway opens the public ports their services ask for.\n\n"
                    "Usage: ringtun-gateway --listen ADDR:PORT --token SECRET [--allow-ports LO-HI] [options]\n"
                    "       ringtun-gateway --config FILE [options]\n\n"
                    "Tunnel:\n";
  add_line(&out, "--listen ADDR:PORT", "address agents connect to (required), e.g. 0.0.0.0:7000 or [::]:7000");
  add_line(&out, "--token SECRET", "a key an agent may present; repeat for several keys (at least one)");
  add_line(&out, "--allow-ports LO-HI",
           "public ports the --token just before may claim: LO-HI or PORT (default 1-65535)");
  add_line(&out, "--max-streams N",
           "concurrent streams per agent connection, 1..1048576 (default " +
               std::to_string(defaults.max_streams_per_connection) + ")");
  add_common_lines(&out);
  out +=
      "\nExample:\n"
      "  ringtun-gateway --listen 0.0.0.0:7000 --token s3cret --allow-ports 10000-20000 --token other\n\n"
      "The same as a --config file (the first --token on the command line replaces \"tokens\"):\n"
      "  {\"listen\": \"0.0.0.0:7000\",\n"
      "   \"tokens\": [{\"token\": \"s3cret\", \"allow_ports\": \"10000-20000\"}, {\"token\": \"other\"}],\n"
      "   \"max_streams\": 1024, \"threads\": 0, \"log_level\": \"info\", \"heartbeat_ms\": 5000}\n";
  return out;
}

std::string make_agent_usage() {
  const AgentConfig defaults;
  std::string out =
      "ringtun-agent " RINGTUN_VERSION
      ": the private side of a ringtun reverse tunnel. It connects out to a\n"
      "gateway and serves the gateway's public ports from local services.\n\n"
      "Usage: ringtun-agent --gateway HOST:PORT --token SECRET --expose tcp:PUBLIC_PORT=LOCAL_HOST:LOCAL_PORT\n"
      "                     [--expose ...] [options]\n"
      "       ringtun-agent --config FILE [options]\n\n"
      "Tunnel:\n";
  add_line(&out, "--gateway HOST:PORT", "the gateway's tunnel address (required); numeric or localhost, not a name");
  add_line(&out, "--token SECRET", "the key the gateway expects (required)");
  add_line(&out, "--expose tcp:[NAME@]PORT=HOST:PORT",
           "serve public PORT on the gateway from local HOST:PORT (numeric or localhost);\n"
           "repeat for more services (at least one). NAME: 1..64 of A-Z a-z 0-9 . _ -\n"
           "(default tcp-PORT)");
  add_line(&out, "--agent-id ID", "how the gateway names this agent (default: the host name)");
  add_line(&out, "--reconnect-max-ms N",
           "cap of the reconnect back-off (default " + std::to_string(defaults.reconnect_max_ms) + ")");
  add_line(
      &out, "--connect-timeout-ms N",
      "give up a connection attempt after this long (default " + std::to_string(defaults.connect_timeout_ms) + ")");
  add_common_lines(&out);
  out +=
      "\nExample:\n"
      "  ringtun-agent --gateway 203.0.113.7:7000 --token s3cret --expose tcp:web@8080=127.0.0.1:80\n\n"
      "The same as a --config file (the first --expose on the command line replaces \"services\"):\n"
      "  {\"gateway\": \"203.0.113.7:7000\", \"token\": \"s3cret\", \"agent_id\": \"edge-1\",\n"
      "   \"services\": [{\"name\": \"web\", \"type\": \"tcp\", \"public_port\": 8080, \"local\": "
      "\"127.0.0.1:80\"}]}\n";
  return out;
}

}  // namespace

std::string_view gateway_usage() {
  static const std::string text = make_gateway_usage();
  return text;
}

std::string_view agent_usage() {
  static const std::string text = make_agent_usage();
  return text;
}

}  // namespace ringtun::tunnel
