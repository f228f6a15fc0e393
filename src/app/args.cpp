// Command-line parsing for ringtun-gateway and ringtun-agent: flags are looked up in the settings table
// (settings.cpp), the --config file is loaded first and every flag overrides it, then the checks across settings
// run on the merged result. See config.hpp for the contract and settings.hpp for the message scheme.
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <new>
#include <span>
#include <vector>

#include "app/config.hpp"
#include "app/secret_file.hpp"
#include "app/settings.hpp"
#include "common/assert.hpp"

namespace ringtun::app {

using detail::Kind;
using detail::Program;
using detail::report;
using detail::Setting;

namespace {

struct FlagArg {
  const Setting* setting;
  std::string_view value;
};

// What the command line itself contributes to list settings: the first --token / --expose replaces the file's
// list; --allow-ports and --allow-hosts refine the --token (or all tokens of the --token-file) just before it.
struct ListState {
  bool started = false;
  std::size_t group_begin = 0;  // the tokens of the last --token / --token-file: tokens[group_begin..]
  bool last_has_ports = false;
  bool last_has_hosts = false;
  std::vector<std::string_view> access_given;  // --allow-from, --conn-rate... given for the last --token
  std::vector<std::string> texts;  // --expose values as given, for duplicate messages
  detail::SeenSet secrets;
  detail::SeenSet public_sides;  // "tcp port 8080", "http host app.example.com"
  detail::SeenSet names;
};

// --allow-ports / --allow-hosts: the --token they refine, once each.
Status check_token_refinement(const GatewayConfig& config, const ListState& state, std::string_view flag,
                              bool given_already, std::string_view rule, std::string* error_text) {
  if (!state.started) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(flag) + ": comes before any --token (it applies to the --token just before it)");
  }
  if (given_already) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(flag) + ": given twice for token " + std::to_string(config.tokens.size()) + " (" +
                      std::string(rule) + ")");
  }
  return {};
}

// One token of --token or --token-file, with the default rules; `where` names it in messages.
Status add_token(GatewayConfig* config, ListState* state, std::string_view secret, const std::string& where,
                 std::string* error_text) {
  RINGTUN_TRY(detail::check_token(where, secret, error_text));
  std::size_t first = state->secrets.add(secret, config->tokens.size());
  if (first != detail::SeenSet::kNone) {
    return report(error_text, Errc::kInvalidArgument,
                  where + ": the same secret is given twice (tokens " + std::to_string(first + 1) + " and " +
                      std::to_string(config->tokens.size() + 1) + ")");
  }
  TokenRule rule;
  rule.secret = std::string(secret);
  config->tokens.push_back(std::move(rule));
  return {};
}

Status apply_list_flag(GatewayConfig* config, ListState* state, const FlagArg& arg, std::string* error_text) {
  const Kind kind = arg.setting->kind;
  if (kind == Kind::kTokenList || kind == Kind::kTokenFile) {
    if (!state->started) config->tokens.clear();
    state->started = true;
    state->group_begin = config->tokens.size();
    state->last_has_ports = false;
    state->last_has_hosts = false;
    state->access_given.clear();
    if (kind == Kind::kTokenList) return add_token(config, state, arg.value, "--token", error_text);
    auto content = read_secret_file(arg.value, "--token-file", error_text, kMaxTokenListFileBytes);
    if (!content) return Unexpected{content.error()};
    const std::string where = "--token-file: " + printable(arg.value);
    const std::vector<SecretLine> lines = secret_lines(*content);
    if (lines.empty()) {
      return report(error_text, Errc::kInvalidArgument,
                    where + ": no token in it (one per line; lines starting with # are comments)");
    }
    for (const SecretLine& line : lines) {
      RINGTUN_TRY(add_token(config, state, line.secret, where + ": line " + std::to_string(line.line), error_text));
    }
    return {};
  }
  if (kind == Kind::kTokenAccess) {
    const std::string_view flag = arg.setting->flag;
    const bool given = std::find(state->access_given.begin(), state->access_given.end(), flag) !=
                       state->access_given.end();
    RINGTUN_TRY(check_token_refinement(*config, *state, flag, given, "one value per --token", error_text));
    const std::string key = detail::access_key_of_flag(flag);
    for (std::size_t i = state->group_begin; i < config->tokens.size(); ++i) {
      RINGTUN_TRY(detail::apply_access_rule(key, flag, arg.value, &config->tokens[i].access, error_text));
    }
    state->access_given.push_back(flag);
    return {};
  }
  // --allow-hosts / --allow-ports: checked on the group's first token, then copied to the rest of the group.
  if (kind == Kind::kTokenHosts) {
    RINGTUN_TRY(check_token_refinement(*config, *state, "--allow-hosts", state->last_has_hosts,
                                       "one list per --token: PATTERN,PATTERN...", error_text));
    TokenRule& lead = config->tokens[state->group_begin];
    RINGTUN_TRY(detail::check_host_patterns("--allow-hosts", arg.value, &lead, error_text));
    for (std::size_t i = state->group_begin + 1; i < config->tokens.size(); ++i) config->tokens[i].hosts = lead.hosts;
    state->last_has_hosts = true;
    return {};
  }
  RINGTUN_TRY(check_token_refinement(*config, *state, "--allow-ports", state->last_has_ports, "one range per --token",
                                     error_text));
  TokenRule& lead = config->tokens[state->group_begin];
  RINGTUN_TRY(detail::check_port_range("--allow-ports", arg.value, &lead, error_text));
  for (std::size_t i = state->group_begin + 1; i < config->tokens.size(); ++i) {
    config->tokens[i].port_low = lead.port_low;
    config->tokens[i].port_high = lead.port_high;
  }
  state->last_has_ports = true;
  return {};
}

Status apply_list_flag(AgentConfig* config, ListState* state, const FlagArg& arg, std::string* error_text) {
  if (!state->started) config->services.clear();
  state->started = true;
  auto service = parse_expose(arg.value, error_text);
  if (!service) return Unexpected{service.error()};
  std::size_t index = config->services.size();
  const std::string side = detail::public_side(*service);
  std::size_t first = state->public_sides.add(side, index);
  if (first != detail::SeenSet::kNone) {
    // "public port 8080" for tcp, as before; "http host app.example.com" for the others.
    return report(
        error_text, Errc::kInvalidArgument,
        "--expose " + detail::in_quotes(arg.value) + ": " +
            (service->kind == route::Kind::kTcp ? "public port " + std::to_string(service->public_port) : side) +
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

// Secrets given nowhere else: the environment (systemd's Environment=/EnvironmentFile=, a container's env).
constexpr const char* kTokenVariable = "RINGTUN_TOKEN";

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

// The admin endpoint serves what connected agents are and lets a POST disconnect them: off loopback it needs a token.
Status check_admin(const CommonConfig& common, std::string* error_text) {
  if (common.admin_listen_text.empty()) {
    if (!common.admin_token.empty()) {
      return report(error_text, Errc::kInvalidArgument, "--admin-token: given without --admin-listen");
    }
    return {};
  }
  if (!common.admin_listen.is_loopback() && common.admin_token.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--admin-listen: " + detail::in_quotes(common.admin_listen_text) +
                      " is not a loopback address: set --admin-token (or listen on 127.0.0.1)");
  }
  return {};
}

// The gateway's own listeners need an address each: the tunnel port, and the shared HTTP and TLS ports when given.
Status check_listeners(const GatewayConfig& config, std::string* error_text) {
  struct Listener {
    const char* flag;
    const ring::net::Address* address;
    const std::string* text;
  };
  const Listener listeners[] = {{"--listen", &config.listen, &config.listen_text},
                                {"--http-listen", &config.http_listen, &config.http_listen_text},
                                {"--tls-listen", &config.tls_listen, &config.tls_listen_text},
                                {"--admin-listen", &config.common.admin_listen, &config.common.admin_listen_text}};
  for (std::size_t i = 0; i < std::size(listeners); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const Listener& a = listeners[j];
      const Listener& b = listeners[i];
      if (a.text->empty() || b.text->empty() || !detail::addresses_overlap(*a.address, *b.address)) continue;
      return report(error_text, Errc::kInvalidArgument,
                    std::string(b.flag) + ": " + detail::in_quotes(*b.text) + " is the same address and port as " +
                        a.flag + " " + detail::in_quotes(*a.text) + " (each listener needs a port of its own)");
    }
  }
  return {};
}

Status finish(GatewayConfig* config, std::string* error_text) {
  if (config->listen_text.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--listen: missing (the tunnel port for agents, e.g. --listen 0.0.0.0:7000)");
  }
  if (config->tokens.empty()) {
    if (const char* env = std::getenv(kTokenVariable); env != nullptr) {
      RINGTUN_TRY(detail::check_token(kTokenVariable, env, error_text));
      TokenRule rule;
      rule.secret = env;
      config->tokens.push_back(std::move(rule));
    }
  }
  if (config->tokens.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--token: missing (at least one key agents present: --token-file FILE, \"tokens\" in --config, "
                  "the environment variable RINGTUN_TOKEN, or --token s3cret)");
  }
  RINGTUN_TRY(check_tls_pairs(config->common, !config->client_ca_file.empty(), "--client-ca", error_text));
  RINGTUN_TRY(check_listeners(*config, error_text));
  RINGTUN_TRY(check_admin(config->common, error_text));
  return check_timing(config->common, error_text);
}

Status finish(AgentConfig* config, std::string* error_text) {
  if (config->gateway_text.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--gateway: missing (the gateway's tunnel address, e.g. --gateway 203.0.113.7:7000)");
  }
  if (config->token.empty()) {
    if (const char* env = std::getenv(kTokenVariable); env != nullptr) {
      RINGTUN_TRY(detail::check_token(kTokenVariable, env, error_text));
      config->token = env;
    }
  }
  if (config->token.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--token: missing (the key the gateway expects: --token-file FILE, \"token_file\" or \"token\" in "
                  "--config, the environment variable RINGTUN_TOKEN, or --token s3cret)");
  }
  if (config->services.empty()) {
    return report(error_text, Errc::kInvalidArgument,
                  "--expose: missing (at least one service, e.g. --expose tcp:8080=127.0.0.1:80 or --expose "
                  "http:app.example.com=127.0.0.1:3000, or \"services\" in --config)");
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
  RINGTUN_TRY(check_admin(config->common, error_text));
  RINGTUN_TRY(check_tls_pairs(config->common, !config->ca_file.empty() || !config->gateway_fingerprint.empty(),
                              "--ca/--gateway-fingerprint/--server-name", error_text));
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
  if (config->server_name.empty()) config->server_name = config->gateway_host;
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
    if (name.size() > 2 && name.substr(0, 2) == "--") {
      std::size_t eq = name.find('=');
      if (eq != std::string_view::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_inline = true;
      }
    } else if (arg.size() > 1 && arg.front() == '-' && arg != "--") {
      if (detail::find_flag(program, arg) == nullptr) {  // a short form: -h, -V
        note_error(Errc::kParse, "unknown flag " + printable(arg) + " (see --help)");
        continue;
      }
    } else {
      note_error(Errc::kParse, "unexpected argument " + detail::in_quotes(arg) + " (flags start with --; see --help)");
      continue;
    }
    const Setting* setting = detail::find_flag(program, name);
    if (setting == nullptr) {
      std::string shown = printable(name);
      if (detail::find_flag(other, name) != nullptr) {
        note_error(Errc::kParse,
                   "unknown flag " + shown + " (it is a " + detail::program_name(other) + " flag; see --help)");
      } else {
        note_error(Errc::kParse, "unknown flag " + shown + " (see --help)");
      }
      continue;
    }
    if (setting->placeholder.empty()) {  // --help, --version, a switch
      if (has_inline) {
        note_error(Errc::kParse, std::string(setting->flag) + " takes no value");
        continue;
      }
      if (setting->kind == Kind::kHelp || setting->kind == Kind::kVersion) {
        Parsed<Config> parsed;
        parsed.outcome = setting->kind == Kind::kHelp ? ParseOutcome::kHelp : ParseOutcome::kVersion;
        return parsed;
      }
      args.push_back(FlagArg{setting, "true"});
      continue;
    }
    if (!has_inline) {
      // A following flag is not a value: "--token --listen x" forgot the token. Use --token=--x for odd values.
      if (i + 1 >= argc || argv[i + 1] == nullptr || std::string_view(argv[i + 1]).substr(0, 2) == "--") {
        note_error(Errc::kParse, std::string(setting->flag) + ": missing value (see --help)");
        continue;
      }
      inline_value = argv[++i];
    }
    args.push_back(FlagArg{setting, inline_value});
  }
  if (first_code != Errc::kOk) return report(error_text, first_code, std::move(first_error));

  // Pass 2: the file first, then every flag over it, whatever their order on the line.
  Parsed<Config> parsed;
  const std::span<const Setting> table = detail::settings();
  std::vector<bool> seen(table.size());
  for (const FlagArg& arg : args) {
    auto index = static_cast<std::size_t>(arg.setting - table.data());
    if (seen[index] && !detail::repeatable(arg.setting->kind)) {
      return report(error_text, Errc::kInvalidArgument, std::string(arg.setting->flag) + ": given more than once");
    }
    seen[index] = true;
  }
  for (const FlagArg& arg : args) {
    const Setting& setting = *arg.setting;
    if (setting.excludes.empty()) continue;
    const Setting* other_setting = detail::find_flag(program, setting.excludes);
    if (other_setting != nullptr && seen[static_cast<std::size_t>(other_setting - table.data())]) {
      return report(error_text, Errc::kInvalidArgument,
                    std::string(setting.flag) + ": cannot be combined with " + std::string(setting.excludes) +
                        " (give the value one way)");
    }
  }
  for (const FlagArg& arg : args) {
    if (arg.setting->kind == Kind::kTokenList || (program == Program::kAgent && arg.setting->flag == "--token")) {
      parsed.warnings.emplace_back(
          "--token: the secret is visible to every local user in ps and /proc/PID/cmdline; prefer --token-file FILE "
          "or the environment variable RINGTUN_TOKEN");
      break;
    }
  }
  for (const FlagArg& arg : args) {
    if (arg.setting->kind == Kind::kConfigFile) RINGTUN_TRY(load_file(arg.value, &parsed.config, error_text));
  }
  ListState lists;
  const detail::Target target = detail::target_of(&parsed.config);
  for (const FlagArg& arg : args) {
    const Setting& setting = *arg.setting;
    detail::Value value;
    value.text = arg.value;
    switch (setting.kind) {
      case Kind::kConfigFile:
        continue;
      case Kind::kTokenList:
      case Kind::kTokenFile:
      case Kind::kTokenPorts:
      case Kind::kTokenHosts:
      case Kind::kTokenAccess:
      case Kind::kServiceList:
        RINGTUN_TRY(apply_list_flag(&parsed.config, &lists, arg, error_text));
        continue;
      case Kind::kInteger:
        RINGTUN_TRY(detail::check_integer_text(setting, arg.value, &value.integer, error_text));
        break;
      case Kind::kSwitch:
        value.integer = 1;
        break;
      case Kind::kText:
        break;
      case Kind::kHelp:
      case Kind::kVersion:
        RINGTUN_CHECK(false, "--help / --version end pass 1");
    }
    RINGTUN_TRY(setting.field.store(target, value, setting.flag, error_text));
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

Result<std::vector<unsigned>> parse_cpu_list(std::string_view text, std::string* error_text) {
  constexpr unsigned kMaxCpu = 1023;  // CPU_SETSIZE - 1
  const std::string where = detail::in_quotes(text);
  std::vector<unsigned> cpus;
  auto number = [&](std::string_view digits, unsigned* out) {
    if (digits.empty() || digits.size() > 4) return false;
    unsigned value = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    *out = value;
    return value <= kMaxCpu;
  };
  std::string_view rest = text;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const std::size_t dash = item.find('-');
    unsigned low = 0;
    unsigned high = 0;
    const bool ok = dash == std::string_view::npos
                        ? number(item, &low) && (high = low, true)
                        : number(item.substr(0, dash), &low) && number(item.substr(dash + 1), &high);
    if (!ok) {
      return report(error_text, Errc::kInvalidArgument,
                    where + ": expected CPU numbers 0..1023 and ranges, like 0-3,6 (" + detail::in_quotes(item) +
                        " is not one)");
    }
    if (high < low) {
      return report(error_text, Errc::kInvalidArgument,
                    where + ": the range " + detail::in_quotes(item) + " runs backwards");
    }
    for (unsigned cpu = low; cpu <= high; ++cpu) {
      if (std::find(cpus.begin(), cpus.end(), cpu) != cpus.end()) {
        return report(error_text, Errc::kInvalidArgument, where + ": CPU " + std::to_string(cpu) + " is listed twice");
      }
      cpus.push_back(cpu);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return cpus;
}

Result<HealthSpec> parse_health_spec(std::string_view text, std::string* error_text) {
  HealthSpec spec;
  if (text.empty()) return spec;
  if (text == "tcp") {
    spec.kind = HealthSpec::Kind::kTcp;
    return spec;
  }
  const std::string where = "--health " + detail::in_quotes(text);
  constexpr std::string_view kHttp = "http:";
  if (text.substr(0, kHttp.size()) != kHttp) {
    return report(error_text, Errc::kInvalidArgument, where + ": expected tcp or http:/PATH");
  }
  const std::string_view path = text.substr(kHttp.size());
  if (path.empty() || path.front() != '/' || path.size() > kMaxHealthPath) {
    return report(error_text, Errc::kInvalidArgument,
                  where + ": the PATH of http:/PATH starts with '/' and has at most " + std::to_string(kMaxHealthPath) +
                      " characters");
  }
  if (path.substr(0, 2) == "//") {
    return report(error_text, Errc::kInvalidArgument,
                  where + ": the PATH is a path on the local service (http:/healthz), not a URL");
  }
  // The path goes into a request line as it is.
  for (char c : path) {
    if (c <= 0x20 || c >= 0x7f) {
      return report(error_text, Errc::kInvalidArgument,
                    where + ": the PATH may hold no spaces, control or non-ASCII characters (percent-encode them)");
    }
  }
  spec.kind = HealthSpec::Kind::kHttp;
  spec.path = std::string(path);
  return spec;
}

Result<TokenRule> parse_port_range(std::string_view text, std::string* error_text) {
  TokenRule rule;
  RINGTUN_TRY(detail::check_port_range("--allow-ports", text, &rule, error_text));
  return rule;
}

Result<ServiceConfig> parse_expose(std::string_view text, std::string* error_text) {
  const std::string where = "--expose " + detail::in_quotes(text);
  std::size_t colon = text.find(':');
  std::size_t eq = text.find('=');
  ServiceConfig service;
  const bool known_kind =
      colon != std::string_view::npos && detail::parse_service_kind(text.substr(0, colon), &service.kind);
  auto malformed = [&] {
    // The form of the kind given, or all three when there is none.
    std::string forms;
    if (!known_kind || service.kind == route::Kind::kTcp) forms = "tcp:[NAME@]PUBLIC_PORT=LOCAL_HOST:LOCAL_PORT";
    if (!known_kind) forms += ", ";
    if (!known_kind || service.kind == route::Kind::kHttp) forms += "http:[NAME@]HOST=LOCAL_HOST:LOCAL_PORT";
    if (!known_kind) forms += " or ";
    if (!known_kind || service.kind == route::Kind::kTls) forms += "tls:[NAME@]HOST=LOCAL_HOST:LOCAL_PORT";
    if (!known_kind || service.kind != route::Kind::kTcp) forms += " (HOST: a host name or *.suffix)";
    return report(error_text, Errc::kParse, where + ": expected " + forms);
  };
  if (colon == std::string_view::npos || eq == std::string_view::npos || eq < colon) return malformed();
  std::string_view type = text.substr(0, colon);
  if (!known_kind) {
    if (!type.empty() && detail::valid_name(type)) {
      return report(error_text, Errc::kInvalidArgument,
                    where + ": service type " + detail::in_quotes(type) + " is not supported (tcp, http or tls)");
    }
    return malformed();
  }
  std::string_view public_part = text.substr(colon + 1, eq - colon - 1);
  std::string_view local_part = text.substr(eq + 1);
  // Options after the local address: ",proxy-protocol=v1|v2".
  if (const std::size_t comma = local_part.find(','); comma != std::string_view::npos) {
    std::string_view options = local_part.substr(comma + 1);
    local_part = local_part.substr(0, comma);
    while (true) {
      const std::size_t next = options.find(',');
      const std::string_view option = options.substr(0, next);
      constexpr std::string_view kProxy = "proxy-protocol=";
      if (option.substr(0, kProxy.size()) == kProxy) {
        if (!tunnel::parse_proxy_protocol(option.substr(kProxy.size()), &service.proxy_protocol)) {
          return report(error_text, Errc::kInvalidArgument,
                        where + ": " + detail::in_quotes(option) + ": the PROXY protocol version is v1 or v2");
        }
      } else {
        return report(error_text, Errc::kInvalidArgument,
                      where + ": unknown option " + detail::in_quotes(option) + " (known: proxy-protocol=v1|v2)");
      }
      if (next == std::string_view::npos) break;
      options = options.substr(next + 1);
    }
  }
  std::size_t at = public_part.find('@');
  std::string_view public_text = public_part;
  if (at != std::string_view::npos) {
    service.name = std::string(public_part.substr(0, at));
    public_text = public_part.substr(at + 1);
  }
  if (public_text.empty() || local_part.empty() || local_part.find(':') == std::string_view::npos) {
    return malformed();
  }
  if (service.kind == route::Kind::kTcp) {
    if (!detail::parse_port(public_text, &service.public_port)) {
      return report(error_text, Errc::kInvalidArgument,
                    where + ": public port " + detail::in_quotes(public_text) + " is not a number in 1..65535");
    }
  } else {
    RINGTUN_TRY(detail::check_host_pattern(where + ": host", public_text, &service.host, error_text));
  }
  if (at != std::string_view::npos) {
    RINGTUN_TRY(detail::check_service_name(where + ": service name", service.name, error_text));
  } else {
    RINGTUN_TRY(detail::default_service_name(where, &service, "a name: NAME@", error_text));
  }
  RINGTUN_TRY(detail::check_local_address(where + ": local address", local_part, &service.local, error_text));
  service.local_text = std::string(local_part);
  return service;
}

Result<std::vector<std::string>> parse_allow_hosts(std::string_view text, std::string* error_text) {
  TokenRule rule;
  RINGTUN_TRY(detail::check_host_patterns("--allow-hosts", text, &rule, error_text));
  return std::move(rule.hosts);
}

}  // namespace ringtun::app
