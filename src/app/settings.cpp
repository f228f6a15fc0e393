// The settings table (see settings.hpp): each setting of both programs, defined once, and the Fields that store
// them. To add a setting: a member (with its default) in config.hpp, and one entry below.
#include "app/settings.hpp"

#include <algorithm>
#include <limits>
#include <type_traits>

#include "app/secret_file.hpp"
#include "ring/runtime.hpp"
#include "common/assert.hpp"
#include "tls/tls.hpp"

namespace ringtun::app::detail {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Fields: where a setting lives, from a pointer to its member. integer_field<&AgentConfig::reconnect_max_ms>() stores
// a checked integer there and shows it; text_field<&AgentConfig::ca_file, check_path>() runs the check, which writes
// the (possibly canonical) text.

template <typename MemberPointer>
struct MemberOf;
template <typename Owner, typename T>
struct MemberOf<T Owner::*> {
  using owner = Owner;
  using type = T;
};

// The member `kMember` in the config being filled. A member of the other program's config is a table mistake.
template <auto kMember>
auto& member(const Target& target) {
  using Owner = typename MemberOf<decltype(kMember)>::owner;
  Owner* owner = nullptr;
  if constexpr (std::is_same_v<Owner, CommonConfig>) {
    owner = target.common;
  } else if constexpr (std::is_same_v<Owner, GatewayConfig>) {
    owner = target.gateway;
  } else {
    static_assert(std::is_same_v<Owner, AgentConfig>, "settings live in CommonConfig, GatewayConfig or AgentConfig");
    owner = target.agent;
  }
  RINGTUN_CHECK(owner != nullptr, "settings table: an entry stores into the other program's config");
  return owner->*kMember;
}

template <auto kMember>
Status store_integer(const Target& target, const Value& value, std::string_view, std::string*) {
  using T = typename MemberOf<decltype(kMember)>::type;
  member<kMember>(target) = static_cast<T>(value.integer);  // checked against [min, max], and max fits T (below)
  return {};
}
template <auto kMember>
std::string show_integer(const Target& target) {
  return std::to_string(member<kMember>(target));
}
template <auto kMember>
constexpr Field integer_field() {
  return {Stores::kInteger, &store_integer<kMember>, &show_integer<kMember>,
          std::numeric_limits<typename MemberOf<decltype(kMember)>::type>::max()};
}

template <auto kMember>
Status store_switch(const Target& target, const Value& value, std::string_view, std::string*) {
  member<kMember>(target) = value.integer != 0;
  return {};
}
template <auto kMember>
constexpr Field switch_field() {
  return {Stores::kSwitch, &store_switch<kMember>};
}

// Checks `text` and writes what to keep (canonical where the setting has a canonical form) to *out.
using TextCheck = Status (*)(std::string_view where, std::string_view text, std::string* out, std::string* error_text);
template <auto kMember, TextCheck kCheck>
Status store_text(const Target& target, const Value& value, std::string_view where, std::string* error_text) {
  return kCheck(where, value.text, &member<kMember>(target), error_text);
}
// No show(): no text setting has a default worth printing as a value; default_note describes it.
template <auto kMember, TextCheck kCheck>
constexpr Field text_field() {
  return {Stores::kText, &store_text<kMember, kCheck>};
}

// A text setting with a store of its own (several members, or not a string).
constexpr Field custom_text(StoreFn store, ShowFn show = nullptr) {
  return {Stores::kText, store, show};
}

// ---------------------------------------------------------------------------------------------------------------
// Checks and stores of single settings
Status store_log_format(const Target& target, const Value& value, std::string_view where, std::string* error_text) {
  if (value.text != "text" && value.text != "json") {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + in_quotes(value.text) + " is not a log format (text or json)");
  }
  target.gateway->access_log_json = value.text == "json";
  return {};
}

Status accept_token(std::string_view where, std::string_view text, std::string* out, std::string* error_text) {
  RINGTUN_TRY(check_token(where, text, error_text));
  *out = std::string(text);
  return {};
}

Status accept_name(std::string_view where, std::string_view text, std::string* out, std::string* error_text) {
  RINGTUN_TRY(check_service_name(where, text, error_text));
  *out = std::string(text);
  return {};
}

Status accept_health(std::string_view where, std::string_view text, std::string* out, std::string* error_text) {
  std::string why;
  if (!parse_health_spec(text, &why)) {
    // parse_health_spec names the flag; JSON names its key: keep the reason, say where.
    const std::size_t colon = why.find(": ");
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + (colon == std::string::npos ? why : why.substr(colon + 2)));
  }
  *out = std::string(text);
  return {};
}

Status accept_fingerprint(std::string_view where, std::string_view text, std::string* out, std::string* error_text) {
  std::string why;
  auto canonical = tls::parse_fingerprint(std::string(text), &why);
  if (!canonical) return report(error_text, Errc::kInvalidArgument, std::string(where) + ": " + why);
  *out = std::move(*canonical);
  return {};
}

// A name for SNI and the certificate check: host name characters, or an IPv6 literal's.
Status accept_server_name(std::string_view where, std::string_view text, std::string* out, std::string* error_text) {
  bool valid = !text.empty() && text.size() <= 253;
  for (char c : text) {
    valid &= (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
             c == '-' || c == ':';
  }
  if (!valid) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + in_quotes(text) + " is not a host name");
  }
  *out = std::string(text);
  return {};
}

// --admin-token-file: the secret is read now, like the agent's --token-file.
Status store_admin_token_file(const Target& target, const Value& value, std::string_view where,
                              std::string* error_text) {
  auto secret = read_secret_file(value.text, where, error_text);
  if (!secret) return Unexpected{secret.error()};
  RINGTUN_TRY(check_token(where, *secret, error_text));
  target.common->admin_token = std::move(*secret);
  return {};
}

// The agent's --token-file / "token_file": the token is read now, so a bad file is reported with the other settings.
Status store_token_file(const Target& target, const Value& value, std::string_view where, std::string* error_text) {
  auto secret = read_secret_file(value.text, where, error_text);
  if (!secret) return Unexpected{secret.error()};
  RINGTUN_TRY(check_token(std::string(where) + ": " + printable(value.text), *secret, error_text));
  member<&AgentConfig::token>(target) = std::move(*secret);
  return {};
}

// log::Level in order, as --log-level takes them (log::parse_level is the parser; this names a level back).
constexpr std::string_view kLevelChoices = "trace|debug|info|warn|error|off";

Status store_log_level(const Target& target, const Value& value, std::string_view where, std::string* error_text) {
  std::string text(value.text);
  if (text.find('\0') != std::string::npos ||
      !log::parse_level(text.c_str(), &member<&CommonConfig::log_level>(target))) {
    return report(error_text, Errc::kParse,
                  std::string(where) + ": " + in_quotes(value.text) + " is not one of " + std::string(kLevelChoices));
  }
  return {};
}
// "0,1,3": the form --cpus takes.
std::string cpu_list_text(const std::vector<unsigned>& cpus) {
  std::string text;
  for (unsigned cpu : cpus) {
    if (!text.empty()) text += ',';
    text += std::to_string(cpu);
  }
  return text;
}
// --cpus: the list, and every CPU in it one this process may run on (a pin outside its affinity would fail later,
// on a loop thread, with a warning nobody reads).
Status store_cpus(const Target& target, const Value& value, std::string_view where, std::string* error_text) {
  std::string why;
  auto cpus = parse_cpu_list(value.text, &why);
  if (!cpus) return report(error_text, Errc::kInvalidArgument, std::string(where) + ": " + why);
  const std::vector<unsigned> allowed = ring::Runtime::allowed_cpus();
  for (unsigned cpu : *cpus) {
    if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end()) {
      return report(error_text, Errc::kInvalidArgument,
                    std::string(where) + ": CPU " + std::to_string(cpu) +
                        " is not one this process may run on (its affinity allows " + cpu_list_text(allowed) + ")");
    }
  }
  member<&CommonConfig::cpus>(target) = std::move(*cpus);
  return {};
}
std::string show_cpus(const Target& target) { return cpu_list_text(member<&CommonConfig::cpus>(target)); }

std::string show_log_level(const Target& target) {
  std::string_view names = kLevelChoices;
  for (int i = 0; i < static_cast<int>(member<&CommonConfig::log_level>(target)); ++i) {
    names.remove_prefix(names.find('|') + 1);
  }
  return std::string(names.substr(0, names.find('|')));
}

// A listening address and its text as given (for messages; an empty text means the listener is off).
template <auto kAddress, auto kText>
Status store_listen(const Target& target, const Value& value, std::string_view where, std::string* error_text) {
  RINGTUN_TRY(check_listen_address(where, value.text, &member<kAddress>(target), error_text));
  member<kText>(target) = std::string(value.text);
  return {};
}

Status store_gateway(const Target& target, const Value& value, std::string_view where, std::string* error_text) {
  RINGTUN_TRY(check_gateway_address(where, value.text, &member<&AgentConfig::gateway_host>(target),
                                    &member<&AgentConfig::gateway_port>(target), error_text));
  member<&AgentConfig::gateway_text>(target) = std::string(value.text);
  return {};
}

// --allow-ports has no member of its own (args.cpp refines the last TokenRule); its default is TokenRule's.
std::string show_default_ports(const Target&) {
  const TokenRule rule;
  return std::to_string(rule.port_low) + "-" + std::to_string(rule.port_high);
}

// ---------------------------------------------------------------------------------------------------------------
// The table

constexpr Program kGateway = Program::kGateway;
constexpr Program kAgent = Program::kAgent;
constexpr Program kBoth = Program::kBoth;

// clang-format off
constexpr Setting kSettings[] = {
    // ---- Tunnel
    {.flag = "--listen", .json_key = "listen", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "ADDR:PORT", .help = "address agents connect to (required), e.g. 0.0.0.0:7000 or [::]:7000",
     .kind = Kind::kText, .field = custom_text(&store_listen<&GatewayConfig::listen, &GatewayConfig::listen_text>)},
    {.flag = "--token", .json_key = "tokens", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "SECRET",
     .help = "a key an agent may present; repeat for several keys (at least one token in all: --token, --token-file,\n"
             "\"tokens\" in --config, or else the environment variable RINGTUN_TOKEN). Visible in ps: prefer --token-file",
     .kind = Kind::kTokenList},
    {.flag = "--token-file", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "FILE",
     .help = "keys agents may present, one per line (blank lines and lines starting with # skipped), each as if given\n"
             "by --token; --allow-ports/--allow-hosts after it apply to every key of the file. Repeatable",
     .kind = Kind::kTokenFile},
    {.flag = "--allow-ports", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "LO-HI", .help = "public ports the --token just before may claim: LO-HI or PORT",
     .kind = Kind::kTokenPorts, .field = {Stores::kNothing, nullptr, &show_default_ports}},
    {.flag = "--allow-hosts", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "PATTERN[,PATTERN...]",
     .help = "host names the --token just before may claim for http: and tls: services:\n"
             "app.example.com (that name), *.example.com (every name below example.com, at any depth)",
     .kind = Kind::kTokenHosts, .default_note = "none, no host names"},
    {.flag = "--allow-from", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "CIDR[,CIDR...]",
     .help = "client addresses that may connect to the public ports and hosts of the --token just before: IPv4 or\n"
             "IPv6, ADDR or ADDR/BITS (10.0.0.0/8,2001:db8::/32); others are refused at accept",
     .kind = Kind::kTokenAccess, .default_note = "every address"},
    {.flag = "--deny-from", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "CIDR[,CIDR...]",
     .help = "client addresses refused by the --token just before, even those --allow-from lets in",
     .kind = Kind::kTokenAccess, .default_note = "none"},
    {.flag = "--conn-rate", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "N",
     .help = "new connections per second from one client address to the routes of the --token just before\n"
             "(a burst of N, then N a second; each core keeps its share). HTTP clients get 429",
     .kind = Kind::kTokenAccess, .default_note = "no limit"},
    {.flag = "--max-conns", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "N", .help = "concurrent public connections per service of the --token just before",
     .kind = Kind::kTokenAccess, .default_note = "no limit"},
    {.flag = "--max-conns-per-client", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "N",
     .help = "concurrent public connections from one client address to the routes of the --token just before",
     .kind = Kind::kTokenAccess, .default_note = "no limit"},
    {.flag = "--max-streams", .json_key = "max_streams", .programs = kGateway, .section = Section::kTunnel,
     .placeholder = "N", .help = "concurrent streams per agent connection",
     .kind = Kind::kInteger, .min = 1, .max = kMaxStreamsLimit,
     .field = integer_field<&GatewayConfig::max_streams_per_connection>()},
    {.flag = "--gateway", .json_key = "gateway", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "HOST:PORT",
     .help = "the gateway's tunnel address (required): a DNS name, an IPv4 or [IPv6] address, or localhost",
     .kind = Kind::kText, .field = custom_text(&store_gateway)},
    {.flag = "--token", .json_key = "token", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "SECRET",
     .help = "the key the gateway expects (required: this, --token-file, or the environment variable RINGTUN_TOKEN).\n"
             "Visible in ps: prefer --token-file",
     .kind = Kind::kText, .field = text_field<&AgentConfig::token, accept_token>()},
    {.flag = "--token-file", .json_key = "token_file", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "FILE", .help = "read the key from FILE (trailing newline and spaces dropped; at most 4 KiB)",
     .kind = Kind::kText, .field = custom_text(&store_token_file), .excludes = "--token"},
    {.flag = "--expose", .json_key = "services", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "KIND:[NAME@]PUBLIC=HOST:PORT",
     .help = "serve something public on the gateway from local HOST:PORT (numeric or localhost):\n"
             "tcp:[NAME@]PORT=HOST:PORT: the gateway's public port PORT;\n"
             "http:[NAME@]DOMAIN=HOST:PORT: HTTP requests for DOMAIN on the gateway's --http-listen;\n"
             "tls:[NAME@]DOMAIN=HOST:PORT: TLS connections for DOMAIN (SNI) on its --tls-listen, passed through.\n"
             "DOMAIN: a host name, or *.example.com for every name below example.com.\n"
             "Repeat for more services (at least one).\nNAME: 1..64 of A-Z a-z 0-9 . _ - "
             "(default tcp-PORT, http-DOMAIN or tls-DOMAIN, with wildcard. for *.)",
     .kind = Kind::kServiceList},
    {.flag = "--agent-id", .json_key = "agent_id", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "ID", .help = "how the gateway names this agent",
     .kind = Kind::kText, .default_note = "the host name", .field = text_field<&AgentConfig::agent_id, accept_name>()},
    {.flag = "--reconnect-max-ms", .json_key = "reconnect_max_ms", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "N", .help = "cap of the reconnect back-off",
     .kind = Kind::kInteger, .min = 1, .max = kMaxDurationMs,
     .field = integer_field<&AgentConfig::reconnect_max_ms>()},
    {.flag = "--connect-timeout-ms", .json_key = "connect_timeout_ms", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "N", .help = "give up a connection attempt after this long",
     .kind = Kind::kInteger, .min = 1, .max = kMaxDurationMs,
     .field = integer_field<&AgentConfig::connect_timeout_ms>()},
    {.flag = "--group", .json_key = "group", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "KEY",
     .help = "serve each service together with the other agents of this token in group KEY (load balancing: new "
             "connections go to the member with the fewest)",
     .kind = Kind::kText, .default_note = "none",
     .field = text_field<&AgentConfig::group, accept_name>()},
    {.flag = "--health", .json_key = "health", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "CHECK",
     .help = "check each local service: tcp (connects) or http:/PATH (GET answered 2xx); a service down gets no new "
             "traffic while another member of its group is up",
     .kind = Kind::kText, .default_note = "none", .field = text_field<&AgentConfig::health, accept_health>()},
    {.flag = "--health-interval-ms", .json_key = "health_interval_ms", .programs = kAgent,
     .section = Section::kTunnel, .placeholder = "N", .help = "time between two checks of a service",
     .kind = Kind::kInteger, .min = 100, .max = kMaxDurationMs,
     .field = integer_field<&AgentConfig::health_interval_ms>()},
    {.flag = "--health-timeout-ms", .json_key = "health_timeout_ms", .programs = kAgent,
     .section = Section::kTunnel, .placeholder = "N", .help = "a check not answered within this fails",
     .kind = Kind::kInteger, .min = 10, .max = kMaxDurationMs,
     .field = integer_field<&AgentConfig::health_timeout_ms>()},
    {.flag = "--health-fails", .json_key = "health_fails", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "N", .help = "failed checks in a row before a service is down (one success brings it back)",
     .kind = Kind::kInteger, .min = 1, .max = 100, .field = integer_field<&AgentConfig::health_fails>()},
    {.flag = "--retry-refused-ms", .json_key = "retry_refused_ms", .programs = kAgent, .section = Section::kTunnel,
     .placeholder = "N",
     .help = "ask the gateway again this often for services it refused for now (port or host taken, port unavailable)",
     .kind = Kind::kInteger, .min = 100, .max = kMaxDurationMs,
     .field = integer_field<&AgentConfig::retry_refused_ms>()},

    // ---- Shared public ports
    {.flag = "--http-listen", .json_key = "http_listen", .programs = kGateway, .section = Section::kShared,
     .placeholder = "ADDR:PORT",
     .help = "serve agents' http: services here, routed by the Host header, e.g. 0.0.0.0:80",
     .kind = Kind::kText, .default_note = "off",
     .field = custom_text(&store_listen<&GatewayConfig::http_listen, &GatewayConfig::http_listen_text>)},
    {.flag = "--tls-listen", .json_key = "tls_listen", .programs = kGateway, .section = Section::kShared,
     .placeholder = "ADDR:PORT",
     .help = "serve agents' tls: services here, routed by the ClientHello's SNI and passed through "
             "undecrypted, e.g. 0.0.0.0:443",
     .kind = Kind::kText, .default_note = "off",
     .field = custom_text(&store_listen<&GatewayConfig::tls_listen, &GatewayConfig::tls_listen_text>)},
    {.flag = "--http-head-timeout-ms", .json_key = "http_head_timeout_ms", .programs = kGateway,
     .section = Section::kShared, .placeholder = "N",
     .help = "a client's request head not complete in this time is answered 408",
     .kind = Kind::kInteger, .min = 1, .max = kMaxDurationMs,
     .field = integer_field<&GatewayConfig::http_head_timeout_ms>()},
    {.flag = "--http-idle-timeout-ms", .json_key = "http_idle_timeout_ms", .programs = kGateway,
     .section = Section::kShared, .placeholder = "N",
     .help = "a keep-alive client connection idle this long between requests is closed",
     .kind = Kind::kInteger, .min = 1, .max = kMaxDurationMs,
     .field = integer_field<&GatewayConfig::http_idle_timeout_ms>()},
    {.flag = "--tls-hello-timeout-ms", .json_key = "tls_hello_timeout_ms", .programs = kGateway,
     .section = Section::kShared, .placeholder = "N",
     .help = "a TLS client whose ClientHello is not complete in this time is closed",
     .kind = Kind::kInteger, .min = 1, .max = kMaxDurationMs,
     .field = integer_field<&GatewayConfig::tls_hello_timeout_ms>()},
    {.flag = "--upstream-max-idle", .json_key = "upstream_max_idle", .programs = kAgent, .section = Section::kShared,
     .placeholder = "N",
     .help = "idle connections kept open to each local http: service, per service and per core (0: none kept)",
     .kind = Kind::kInteger, .min = 0, .max = kMaxUpstreamIdle,
     .field = integer_field<&AgentConfig::upstream_max_idle>()},
    {.flag = "--upstream-idle-ms", .json_key = "upstream_idle_ms", .programs = kAgent, .section = Section::kShared,
     .placeholder = "N", .help = "how long such an idle connection is kept before it is closed",
     .kind = Kind::kInteger, .min = 1, .max = kMaxDurationMs,
     .field = integer_field<&AgentConfig::upstream_idle_ms>()},

    // ---- TLS
    {.flag = "--gateway-fingerprint", .json_key = "gateway_fingerprint", .programs = kAgent, .section = Section::kTls,
     .placeholder = "FP", .help = "pin the gateway's certificate: sha256:<64 hex> as the gateway logs it",
     .kind = Kind::kText, .field = text_field<&AgentConfig::gateway_fingerprint, accept_fingerprint>()},
    {.flag = "--ca", .json_key = "ca", .programs = kAgent, .section = Section::kTls,
     .placeholder = "FILE|system",
     .help = "verify the gateway's certificate chain, dates and name against these CAs\n"
             "(system: the OS trust store, for a publicly signed gateway certificate)",
     .kind = Kind::kText, .field = text_field<&AgentConfig::ca_file, check_path>()},
    {.flag = "--server-name", .json_key = "server_name", .programs = kAgent, .section = Section::kTls,
     .placeholder = "NAME", .help = "name sent (SNI) and checked with --ca",
     .kind = Kind::kText, .default_note = "the host of --gateway",
     .field = text_field<&AgentConfig::server_name, accept_server_name>()},
    // One member, two meanings: the gateway's own certificate, or the agent's client certificate.
    {.flag = "--cert", .json_key = "cert", .programs = kGateway, .section = Section::kTls,
     .placeholder = "FILE", .help = "PEM certificate (chain) agents verify; with --key",
     .kind = Kind::kText, .field = text_field<&CommonConfig::cert_file, check_path>()},
    {.flag = "--cert", .json_key = "cert", .programs = kAgent, .section = Section::kTls,
     .placeholder = "FILE", .help = "client certificate (PEM) for gateways that require one; with --key",
     .kind = Kind::kText, .field = text_field<&CommonConfig::cert_file, check_path>()},
    {.flag = "--key", .json_key = "key", .programs = kBoth, .section = Section::kTls,
     .placeholder = "FILE", .help = "PEM private key of --cert",
     .kind = Kind::kText, .field = text_field<&CommonConfig::key_file, check_path>()},
    {.flag = "--state-dir", .json_key = "state_dir", .programs = kGateway, .section = Section::kTls,
     .placeholder = "DIR",
     .help = "without --cert: where a self-signed pair is generated on the first run and kept;\n"
             "its fingerprint is logged for agents' --gateway-fingerprint",
     .kind = Kind::kText, .default_note = "$STATE_DIRECTORY, /var/lib/ringtun as root, else ~/.local/state/ringtun",
     .field = text_field<&GatewayConfig::state_dir, check_path>()},
    {.flag = "--client-ca", .json_key = "client_ca", .programs = kGateway, .section = Section::kTls,
     .placeholder = "FILE", .help = "require agents to present a client certificate signed by these CAs (mTLS)",
     .kind = Kind::kText, .field = text_field<&GatewayConfig::client_ca_file, check_path>()},

    // ---- Operations
    {.flag = "--admin-listen", .json_key = "admin_listen", .programs = kBoth, .section = Section::kOps,
     .placeholder = "ADDR:PORT",
     .help = "serve /metrics (Prometheus), /healthz, /ready, the admin API and the dashboard (GET /) here;\n"
             "an address off loopback needs --admin-token",
     .kind = Kind::kText, .default_note = "off",
     .field = custom_text(&store_listen<&CommonConfig::admin_listen, &CommonConfig::admin_listen_text>)},
    {.flag = "--admin-token", .json_key = "admin_token", .programs = kBoth, .section = Section::kOps,
     .placeholder = "SECRET",
     .help = "Bearer token the admin endpoint asks for (all but /, /healthz, /ready); needed for POST",
     .kind = Kind::kText, .field = text_field<&CommonConfig::admin_token, accept_token>(),
     .excludes = "--admin-token-file"},
    {.flag = "--admin-token-file", .json_key = "admin_token_file", .programs = kBoth, .section = Section::kOps,
     .placeholder = "FILE", .help = "read --admin-token from this file (not visible in ps)",
     .kind = Kind::kText, .field = custom_text(&store_admin_token_file), .excludes = "--admin-token"},
    {.flag = "--access-log", .json_key = "access_log", .programs = kGateway, .section = Section::kOps,
     .placeholder = "FILE|-",
     .help = "one line per public connection and per HTTP request when it ends (- = stdout)",
     .kind = Kind::kText, .default_note = "off", .field = text_field<&GatewayConfig::access_log, check_path>()},
    {.flag = "--log-format", .json_key = "log_format", .programs = kGateway, .section = Section::kOps,
     .placeholder = "text|json", .help = "format of --access-log lines",
     .kind = Kind::kText, .default_note = "text", .field = custom_text(&store_log_format)},

    // ---- Common
    {.flag = "--config", .programs = kBoth, .section = Section::kCommon,
     .placeholder = "FILE", .help = "JSON file with these settings (keys: flag names, - as _); flags override it",
     .kind = Kind::kConfigFile},
    {.flag = "--threads", .json_key = "threads", .programs = kBoth, .section = Section::kCommon,
     .placeholder = "N", .help = "worker threads, one per core",
     .kind = Kind::kInteger, .min = 0, .max = kMaxThreads, .range_text = "1..1024 (or 0 for all CPUs)",
     .default_note = "all CPUs this process may use",
     .field = integer_field<&CommonConfig::threads>()},
    {.flag = "--cpus", .json_key = "cpus", .programs = kBoth, .section = Section::kCommon,
     .placeholder = "LIST",
     .help = "pin the loops to these CPUs (0-3,6), loop i to the i-th; --threads defaults to their count",
     .kind = Kind::kText, .default_note = "gateway: every CPU it may use, in order; agent: not pinned",
     .field = custom_text(&store_cpus, &show_cpus)},
    {.flag = "--busy-poll-us", .json_key = "busy_poll_us", .programs = kBoth, .section = Section::kCommon,
     .placeholder = "N", .help = "before sleeping, poll this long for work: lower latency for a busy CPU (0: off)",
     .kind = Kind::kInteger, .min = 0, .max = 100'000,
     .field = integer_field<&CommonConfig::busy_poll_us>()},
    {.flag = "--log-level", .json_key = "log_level", .programs = kBoth, .section = Section::kCommon,
     .placeholder = "LEVEL", .help = kLevelChoices,
     .kind = Kind::kText, .field = custom_text(&store_log_level, &show_log_level)},
    {.flag = "--heartbeat-ms", .json_key = "heartbeat_ms", .programs = kBoth, .section = Section::kCommon,
     .placeholder = "N", .help = "PING interval on an idle tunnel connection",
     .kind = Kind::kInteger, .min = 1, .max = kMaxDurationMs,
     .field = integer_field<&CommonConfig::heartbeat_ms>()},
    {.flag = "--dead-peer-ms", .json_key = "dead_peer_ms", .programs = kBoth, .section = Section::kCommon,
     .placeholder = "N", .help = "no bytes for this long: the peer is gone; above --heartbeat-ms",
     .kind = Kind::kInteger, .min = 1, .max = kMaxDurationMs,
     .field = integer_field<&CommonConfig::dead_peer_ms>()},
    {.flag = "--drain-timeout-ms", .json_key = "drain_timeout_ms", .programs = kBoth, .section = Section::kCommon,
     .placeholder = "N", .help = "on SIGTERM, how long open streams may finish",
     .kind = Kind::kInteger, .min = 0, .max = kMaxDurationMs,
     .field = integer_field<&CommonConfig::drain_timeout_ms>()},
    {.flag = "--insecure-plaintext", .json_key = "insecure_plaintext", .programs = kBoth, .section = Section::kCommon,
     .help = "no TLS: for benchmarks and trusted links only; both sides must agree (logged as a warning)",
     .kind = Kind::kSwitch, .field = switch_field<&CommonConfig::insecure_plaintext>()},
    {.flag = "--help", .programs = kBoth, .section = Section::kCommon,
     .help = "print this help and exit", .kind = Kind::kHelp, .short_flag = "-h"},
    {.flag = "--version", .programs = kBoth, .section = Section::kCommon,
     .help = "print the version and exit", .kind = Kind::kVersion, .short_flag = "-V"},
};
// clang-format on

// ---------------------------------------------------------------------------------------------------------------
// What the compiler checks about the table

// Not constexpr: the compiler reaches it only while evaluating check_table() on a broken entry, and then stops the
// build at the rule that failed, with the entry's index in the trace.
void broken_rule(const char* rule) noexcept {
  (void)rule;
}

constexpr bool shares_program(const Setting& a, const Setting& b) {
  return (static_cast<unsigned>(a.programs) & static_cast<unsigned>(b.programs)) != 0;
}

constexpr bool flag_only(Kind kind) {
  return kind == Kind::kConfigFile || kind == Kind::kHelp || kind == Kind::kVersion || kind == Kind::kTokenPorts ||
         kind == Kind::kTokenHosts || kind == Kind::kTokenAccess || kind == Kind::kTokenFile;
}

constexpr bool check_entry(const Setting& s) {
  if (s.flag.size() < 3 || s.flag.substr(0, 2) != "--") broken_rule("a flag starts with --");
  if (s.help.empty()) broken_rule("every setting has a help line");
  if (flag_only(s.kind) != s.json_key.empty()) broken_rule("flag-only kinds have no JSON key; every other has one");
  bool takes_value = s.kind != Kind::kSwitch && s.kind != Kind::kHelp && s.kind != Kind::kVersion;
  if (takes_value == s.placeholder.empty()) broken_rule("a setting that takes a value names it in --help");
  if (s.kind == Kind::kInteger) {
    if (s.min > s.max) broken_rule("min is above max");
    if (s.max > s.field.largest) broken_rule("max does not fit the member");
  } else if (s.min != 0 || s.max != 0 || !s.range_text.empty()) {
    broken_rule("only integer settings have a range");
  }
  const Stores expected = s.kind == Kind::kInteger  ? Stores::kInteger
                          : s.kind == Kind::kSwitch ? Stores::kSwitch
                          : s.kind == Kind::kText   ? Stores::kText
                                                    : Stores::kNothing;
  if (s.field.stores != expected) broken_rule("a scalar stores through its field's kind (integer_field<>, ...)");
  if (expected != Stores::kNothing) {
    std::string_view name = s.flag.substr(2);
    bool same = name.size() == s.json_key.size();
    for (std::size_t i = 0; same && i < name.size(); ++i) same = s.json_key[i] == (name[i] == '-' ? '_' : name[i]);
    if (!same) broken_rule("a scalar's JSON key is its flag's name with _ for -");
  }
  return true;
}

constexpr bool check_table() {
  const std::size_t n = std::size(kSettings);
  for (std::size_t i = 0; i < n; ++i) {
    const Setting& a = kSettings[i];
    check_entry(a);
    if (i + 1 < n && kSettings[i + 1].section < a.section) broken_rule("entries are grouped by section, in order");
    for (std::size_t j = i + 1; j < n; ++j) {
      const Setting& b = kSettings[j];
      if (!shares_program(a, b)) continue;
      if (a.flag == b.flag) broken_rule("a flag appears twice for one program");
      if (!a.json_key.empty() && a.json_key == b.json_key) broken_rule("a JSON key appears twice for one program");
      if (!a.short_flag.empty() && a.short_flag == b.short_flag) broken_rule("a short flag appears twice");
    }
  }
  return true;
}
static_assert(check_table());

}  // namespace

std::span<const Setting> settings() noexcept {
  return kSettings;
}

const Setting* find_flag(Program program, std::string_view flag) noexcept {
  if (flag.empty()) return nullptr;
  for (const Setting& setting : kSettings) {
    if ((setting.flag == flag || setting.short_flag == flag) && serves(setting, program)) return &setting;
  }
  return nullptr;
}

const Setting* find_json_key(Program program, std::string_view key) noexcept {
  for (const Setting& setting : kSettings) {
    if (!setting.json_key.empty() && setting.json_key == key && serves(setting, program)) return &setting;
  }
  return nullptr;
}

const char* program_name(Program program) noexcept {
  return program == Program::kGateway ? "ringtun-gateway" : "ringtun-agent";
}

std::string range_of(const Setting& setting) {
  if (!setting.range_text.empty()) return std::string(setting.range_text);
  return std::to_string(setting.min) + ".." + std::to_string(setting.max);
}

}  // namespace ringtun::app::detail
