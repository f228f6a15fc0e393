// Settings of ringtun-gateway and ringtun-agent, from command-line flags and/or a JSON file (--config FILE).
//
// Both programs accept the same settings either way: a flag and the JSON key of the same name (dashes become
// underscores). Flags given on the command line override the file. Every problem is reported as one line that
// names it (for JSON: what, and where: the key path and, for syntax errors, line and column) and the caller exits
// with status 2. Parsing is start-up work: it may allocate; it never throws out of these functions.
//
// Each setting is defined once, in the settings table (settings.hpp, settings.cpp): its flag, JSON key, range, help
// line and the member below it is stored in. The members' initializers are the defaults; --help reads them from
// here. Adding a setting is one table entry plus its member here.
// Thread rules: call from main before the runtime starts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "common/result.hpp"
#include "ring/net.hpp"
#include "route/access_policy.hpp"
#include "route/route.hpp"
#include "tunnel/proxy_header.hpp"

namespace ringtun::app {

// A token an agent may present, the public ports it may claim with it (inclusive range), and the host names (for
// http: and tls: services) it may claim: exact names or "*.suffix" patterns, normalized (route::normalize_host).
// No patterns: no host names at all (an operator says which names a token may take).
struct TokenRule {
  std::string secret;
  std::uint16_t port_low = 1;
  std::uint16_t port_high = 65535;
  std::vector<std::string> hosts;
  route::AccessRules access;  // who may connect to this token's public routes (--allow-from, --conn-rate...)
};

// Settings both programs share.
struct CommonConfig {
  unsigned threads = 0;  // 0 = the CPUs this process may use (or the --cpus given)
  // --cpus: pin loop i to cpus[i % size] (each within this process's affinity). Empty: the gateway pins to the CPUs
  // it may use, in order; the agent does not pin (it shares its box with the services it serves).
  std::vector<unsigned> cpus;
  std::uint32_t busy_poll_us = 0;  // --busy-poll-us: 0 = a loop with nothing to do sleeps at once
  log::Level log_level = log::Level::kInfo;
  std::uint32_t heartbeat_ms = 5'000;       // PING interval on an idle tunnel connection
  std::uint32_t dead_peer_ms = 15'000;      // no bytes at all for this long: the peer is gone
  std::uint32_t drain_timeout_ms = 10'000;  // SIGTERM: how long streams may finish before exit
  // TLS. Plaintext only when asked for, on both sides.
  bool insecure_plaintext = false;
  std::string cert_file;  // PEM: the gateway's certificate, or the agent's client certificate (mTLS)
  std::string key_file;
  // Operations: the admin endpoint (/metrics, /healthz, /ready, the API, the dashboard). Off while the text is empty.
  ring::net::Address admin_listen;
  std::string admin_listen_text;
  std::string admin_token;  // Bearer token for the admin endpoint; required when it is not on loopback
};

struct GatewayConfig {
  CommonConfig common;
  ring::net::Address listen;      // tunnel port for agents (required)
  std::string listen_text;        // as given, for messages
  std::vector<TokenRule> tokens;  // at least one
  std::uint32_t max_streams_per_connection = 1024;
  std::string client_ca_file;  // set: agents must present a client certificate signed by these CAs
  std::string state_dir;       // where a self-signed pair is kept when no --cert is given (empty: the default)
  // Shared public ports. Off while the text is empty.
  ring::net::Address http_listen;   // HTTP, routed by Host
  std::string http_listen_text;
  ring::net::Address tls_listen;    // TLS, routed by SNI and passed through
  std::string tls_listen_text;
  std::uint32_t http_head_timeout_ms = 10'000;   // a request head not complete in this time: 408
  std::uint32_t http_idle_timeout_ms = 60'000;   // a keep-alive client connection idle this long is closed
  std::uint32_t tls_hello_timeout_ms = 10'000;   // a ClientHello not complete in this time: closed
  // One line per public connection and per HTTP request when it ends. Off while empty; "-" is stdout.
  std::string access_log;
  bool access_log_json = false;  // --log-format json
};

struct ServiceConfig {
  std::string name;  // defaults to "tcp-<public_port>", "http-<host>", "tls-<host>" ("*." written "wildcard.")
  route::Kind kind = route::Kind::kTcp;
  std::uint16_t public_port = 0;  // tcp
  std::string host;               // http / tls: normalized name or "*.suffix"
  std::string local_text;    // "HOST:PORT" as given
  ring::net::Address local;  // numeric address of the local service
  // A PROXY protocol header with the public client's address before each connection's first byte (",proxy-protocol=
  // v1|v2" after --expose's local address; "proxy_protocol" in JSON).
  tunnel::ProxyProtocol proxy_protocol = tunnel::ProxyProtocol::kNone;
  // The service's own client address lists (JSON only: services[].allow_from / deny_from, at most
  // tunnel::kMaxServiceCidrs each): the gateway applies them after the token's, so they narrow, never widen.
  std::vector<route::Cidr> allow_from;
  std::vector<route::Cidr> deny_from;
};

// What the agent's --health asks for: "tcp" (a connect) or "http:/PATH" (a GET answered 2xx).
struct HealthSpec {
  enum class Kind : std::uint8_t { kNone, kTcp, kHttp };
  Kind kind = Kind::kNone;
  std::string path;  // kHttp: starts with '/', visible ASCII, at most kMaxHealthPath characters
};
inline constexpr std::size_t kMaxHealthPath = 256;

struct AgentConfig {
  CommonConfig common;
  std::string gateway_host;  // required: a DNS name, localhost, or an IPv4 / IPv6 address (no brackets)
  std::uint16_t gateway_port = 0;
  std::string gateway_text;                 // "HOST:PORT" as given, for messages
  std::string token;                        // required: --token, --token-file / "token_file", or $RINGTUN_TOKEN
  std::string agent_id;                     // defaults to the host name
  std::vector<ServiceConfig> services;      // at least one
  std::uint32_t reconnect_max_ms = 30'000;  // cap of the exponential back-off
  std::uint32_t connect_timeout_ms = 5'000;
  std::uint32_t retry_refused_ms = 30'000;  // ask again for services the gateway refused for now
  // http services: idle connections kept to each local service (per service, per core) and for how long.
  std::uint32_t upstream_max_idle = 32;
  std::uint32_t upstream_idle_ms = 30'000;
  std::string ca_file;              // verify the gateway against these CAs (and its name)
  std::string gateway_fingerprint;  // or pin its certificate: "sha256:<64 hex>", canonical
  std::string server_name;          // SNI and the name checked with ca_file (default: --gateway's host)
  // Load balancing: every service is claimed in this group (empty: none), and checked by --health (empty: never).
  std::string group;
  std::string health;               // as given; parse_health_spec() reads it
  std::uint32_t health_interval_ms = 2'000;
  std::uint32_t health_timeout_ms = 1'000;
  std::uint32_t health_fails = 3;
};

// What a parse produced: a config to run with, or a request to print help/version and exit 0.
enum class ParseOutcome { kRun, kHelp, kVersion };

template <typename Config>
struct Parsed {
  ParseOutcome outcome = ParseOutcome::kRun;
  Config config;
  std::vector<std::string> warnings;  // to log once the log level is set (a secret given with --token)
};

// argv as main() received it. On error: Errc::kParse / kInvalidArgument with a message in `error_text`.
Result<Parsed<GatewayConfig>> parse_gateway_args(int argc, const char* const* argv, std::string* error_text);
Result<Parsed<AgentConfig>> parse_agent_args(int argc, const char* const* argv, std::string* error_text);

// The help texts printed by --help.
std::string_view gateway_usage();
std::string_view agent_usage();

// Parses "tcp:[NAME@]PUBLIC_PORT=LOCAL_HOST:LOCAL_PORT", "http:[NAME@]HOST=LOCAL_HOST:LOCAL_PORT" or
// "tls:[NAME@]HOST=LOCAL_HOST:LOCAL_PORT" (the --expose flag), each optionally followed by ",proxy-protocol=v1|v2".
// HOST is a host name or "*.suffix", stored normalized.
Result<ServiceConfig> parse_expose(std::string_view text, std::string* error_text);
// Parses a CPU list ("0-3,6"): each CPU once, below CPU_SETSIZE, in the order given, ranges ascending. Whether the
// process may run on them is the caller's check (the --cpus setting checks it).
Result<std::vector<unsigned>> parse_cpu_list(std::string_view text, std::string* error_text = nullptr);

// Parses the --health value: "tcp" or "http:/PATH" (empty: HealthSpec::Kind::kNone).
Result<HealthSpec> parse_health_spec(std::string_view text, std::string* error_text);
// Parses "LO-HI" or a single port (the --allow-ports flag).
Result<TokenRule> parse_port_range(std::string_view text, std::string* error_text);
// Parses "PATTERN[,PATTERN...]" (the --allow-hosts flag): normalized, without repeats, in the order given.
Result<std::vector<std::string>> parse_allow_hosts(std::string_view text, std::string* error_text);

}  // namespace ringtun::app
