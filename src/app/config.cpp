// Command-line parsing for ringtun-gateway and ringtun-agent, and the value checks the JSON loader shares
// (config_json.cpp). See config.hpp for the contract and config_internal.hpp for the message scheme.
#include "app/config.hpp"
#include "tunnel/handshake.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstdio>
#include <new>
#include <unordered_map>

#include "tls/tls.hpp"
#include "app/config_internal.hpp"

#ifndef RINGTUN_VERSION
#define RINGTUN_VERSION "unknown"
#endif

namespace ringtun::app {
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
    // TLS
    {SettingId::kInsecurePlaintext, Program::kBoth, "--insecure-plaintext", "insecure_plaintext", ValueKind::kSwitch,
     false, 0, 1, ""},
    {SettingId::kCert, Program::kBoth, "--cert", "cert", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kKey, Program::kBoth, "--key", "key", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kClientCa, Program::kGateway, "--client-ca", "client_ca", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kStateDir, Program::kGateway, "--state-dir", "state_dir", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kCa, Program::kAgent, "--ca", "ca", ValueKind::kText, false, 0, 0, ""},
    {SettingId::kGatewayFingerprint, Program::kAgent, "--gateway-fingerprint", "gateway_fingerprint",
     ValueKind::kText, false, 0, 0, ""},
    {SettingId::kServerName, Program::kAgent, "--server-name", "server_name", ValueKind::kText, false, 0, 0, ""},
};

bool serves(const SettingSpec& spec, Program program) noexcept {
  return (static_cast<unsigned>(spec.programs) & static_cast<unsigned>(program)) != 0;
}

bool is_name_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool valid_host_name(std::string_view name) noexcept {
  for (char c : name) {
    if (!is_name_char(c) && c != ':') return false;  // ':' for IPv6 literals
  }
  return true;
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

// A file or directory name: stored as given (the program opens it and says what is wrong with it).
Status check_path(std::string_view where, std::string_view text, std::string* out, std::string* error_text) {
  if (text.empty() || text.size() > 4096 || text.find('\0') != std::string_view::npos) {
    return report(error_text, Errc::kInvalidArgument, std::string(where) + ": " + in_quotes(text) +
                                                          " is not a usable path");
  }
  *out = std::string(text);
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
    case SettingId::kInsecurePlaintext:
      common->insecure_plaintext = value.integer != 0;
      return {};
    case SettingId::kCert:
      return check_path(where, value.text, &common->cert_file, error_text);
    case SettingId::kKey:
      return check_path(where, value.text, &common->key_file, error_text);
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
  if (secret.size() > tunnel::kMaxTokenLength) {  // the handshake carries at most this much
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": longer than " + std::to_string(tunnel::kMaxTokenLength) + " characters");
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
    case SettingId::kClientCa:
      return check_path(where, value.text, &config->client_ca_file, error_text);
    case SettingId::kStateDir:
      return check_path(where, value.text, &config->state_dir, error_text);
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
    case SettingId::kCa:
      return check_path(where, value.text, &config->ca_file, error_text);
    case SettingId::kGatewayFingerprint: {
      std::string why;
      auto canonical = tls::parse_fingerprint(std::string(value.text), &why);
      if (!canonical) return report(error_text, Errc::kInvalidArgument, std::string(where) + ": " + why);
      config->gateway_fingerprint = std::move(*canonical);
      return {};
    }
    case SettingId::kServerName:
      if (value.text.empty() || value.text.size() > 253 || !valid_host_name(value.text)) {
        return report(error_text, Errc::kInvalidArgument,
                      std::string(where) + ": " + in_quotes(value.text) + " is not a host name");
      }
      config->server_name = std::string(value.text);
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

// Certificate and plaintext settings that contradict each other.
Status check_tls_pairs(const CommonConfig& common, bool verifies, const char* verify_flags, std::string* error_text) {
  if (common.cert_file.empty() != common.key_file.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  common.cert_file.empty() ? "--key: given without --cert (a certificate needs its key and the key "
                                             "its certificate)"
                                           : "--cert: given without --key (a certificate needs its key and the key "
                                             "its certificate)");
  }
  if (common.insecure_plaintext && (!common.cert_file.empty() || verifies)) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string("--insecure-plaintext: cannot be combined with --cert/--key or ") + verify_flags +
                      " (TLS settings); drop one or the other");
  }
  return {};
}

// "203.0.113.7" of "203.0.113.7:7000", "::1" of "[::1]:7000": the name the agent expects in the certificate.
std::string host_part(std::string_view address) {
  if (!address.empty() && address.front() == '[') {
    const std::size_t close = address.find(']');
    return std::string(address.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  return std::string(address.substr(0, address.rfind(':')));
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
  RINGTUN_TRY(check_tls_pairs(config->common, !config->client_ca_file.empty(), "--client-ca", error_text));
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
  RINGTUN_TRY(check_tls_pairs(config->common, !config->ca_file.empty() || !config->gateway_fingerprint.empty(),
                              "--ca/--gateway-fingerprint/--server-name",
                              error_text));
  if (config->common.insecure_plaintext && !config->server_name.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--insecure-plaintext: cannot be combined with --server-name (a TLS setting)");
  }
  if (!config->common.insecure_plaintext && config->ca_file.empty() && config->gateway_fingerprint.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--gateway-fingerprint or --ca: missing: the agent must know how to verify the gateway (the "
                  "gateway prints its fingerprint at start-up: --gateway-fingerprint sha256:...), or run both sides "
                  "with --insecure-plaintext on a trusted link");
  }
  if (config->server_name.empty()) config->server_name = host_part(config->gateway_text);
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
    if (spec->kind == ValueKind::kSwitch) {
      if (has_inline) {
        note_error(Errc::kParse, std::string(spec->flag) + " takes no value");
        continue;
      }
      args.push_back(FlagArg{spec, "true"});
      continue;
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
    if (spec.kind == ValueKind::kSwitch) value.integer = 1;
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

}  // namespace ringtun::app
