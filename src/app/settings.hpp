// The settings table: every setting of ringtun-gateway and ringtun-agent, defined once (settings.cpp). An entry
// names the flag, the JSON key, the programs that have it, the kind of value and its range, its --help line (value
// placeholder, section, default note), and the Field that checks a value and stores it in its config member. The
// flag parser (args.cpp), the JSON loader (config_json.cpp), --help (usage.cpp) and the unit tests all read this one
// table; nothing else lists settings. Defaults are the member initializers in config.hpp: --help reads them back
// through the entry's Field from a default-constructed config, so help and behaviour cannot disagree.
//
// Lists are kinds of their own (kTokenList, kTokenPorts, kTokenHosts, kServiceList): args.cpp and config_json.cpp parse
// them, but their flags, keys and help lines are table entries like any other.
//
// Every message is built as "<where>: <problem>", where <where> names the source ("--threads" or
// "config.json: services[1].public_port") and a problem about a value starts with the value, quoted.
// Private to src/app and its unit tests. Thread rules: start-up only, like config.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "app/config.hpp"
#include "common/printable.hpp"

namespace ringtun::app::detail {

inline constexpr std::size_t kMaxConfigFileBytes = 1u << 20;  // 1 MiB: a config is a few hundred bytes
// Our schema nests four levels (top, "tokens"/"services" array, entry, "allow_hosts"); anything deeper is an error, and
// the limit bounds both simdjson's and the error locator's work on hostile files. It counts open objects/arrays;
// simdjson's max_depth counts one more (the document itself), so its parser is allocated with kMaxJsonDepth + 1.
inline constexpr std::size_t kMaxJsonDepth = 32;
inline constexpr std::size_t kMaxNameLength = 64;       // service names and agent ids
inline constexpr std::size_t kMaxHostNameLength = 253;  // RFC 1123 host names (DNS: 255 octets on the wire)
inline constexpr std::size_t kMaxHostLabelLength = 63;
inline constexpr std::uint32_t kMaxDurationMs = 86'400'000;  // one day: anything longer is a typo
inline constexpr std::uint32_t kMaxStreamsLimit = 1u << 20;
inline constexpr unsigned kMaxThreads = 1024;
inline constexpr std::uint32_t kMaxUpstreamIdle = 1024;  // idle connections per local HTTP service and core

enum class Program : std::uint8_t { kGateway = 1, kAgent = 2, kBoth = 3 };

// The groups of --help, in the order it lists them. Each program titles them its own way (usage.cpp).
enum class Section : std::uint8_t { kTunnel, kShared, kTls, kOps, kCommon };  // kShared: HTTP by Host, TLS by SNI
inline constexpr std::size_t kSectionCount = 5;

enum class Kind : std::uint8_t {
  kInteger,      // decimal digits in [min, max]; a JSON integer
  kText,         // a string, checked by the entry's Field
  kSwitch,       // a flag without a value turns it on; true/false in JSON
  kConfigFile,   // --config FILE: read before every flag, which all override it. Flag only (no file names a file)
  kHelp,         // print the help and exit 0. Flag only
  kVersion,      // print the version and exit 0. Flag only
  kTokenList,    // gateway --token, repeatable; JSON "tokens": [{"token", "allow_ports", "allow_hosts"}]
  kTokenPorts,   // gateway --allow-ports: refines the --token just before it. In JSON: tokens[].allow_ports
  kTokenHosts,   // gateway --allow-hosts: likewise. In JSON: tokens[].allow_hosts, an array of patterns
  kServiceList,  // agent --expose, repeatable; JSON "services": [{"name", "kind", "public_port" | "host", "local"}]
  kTokenAccess,  // gateway --allow-from, --deny-from, --conn-rate, --max-conns, --max-conns-per-client: refine the
                 // --token just before it, like --allow-ports. In JSON: tokens[].allow_from, ...
  kTokenFile,    // gateway --token-file, repeatable: one token per line of the file, each as if given by --token;
                 // --allow-ports / --allow-hosts after it refine all of them. Flag only (JSON has "tokens")
};

// May be given several times on one command line.
constexpr bool repeatable(Kind kind) noexcept {
  return kind == Kind::kHelp || kind == Kind::kVersion || kind == Kind::kTokenList || kind == Kind::kTokenPorts ||
         kind == Kind::kTokenHosts || kind == Kind::kTokenAccess || kind == Kind::kServiceList ||
         kind == Kind::kTokenFile;
}

// A value from a flag or the file, already checked against its entry's kind (and, for integers, range).
struct Value {
  std::uint64_t integer = 0;  // kInteger; kSwitch: 0 or 1
  std::string_view text;      // kText
};

// The config one parse fills: its CommonConfig and the program's own struct (the other program's is null).
struct Target {
  CommonConfig* common = nullptr;
  GatewayConfig* gateway = nullptr;
  AgentConfig* agent = nullptr;
};
inline Target target_of(GatewayConfig* config) noexcept {
  return {&config->common, config, nullptr};
}
inline Target target_of(AgentConfig* config) noexcept {
  return {&config->common, nullptr, config};
}

// Where an entry's value lives. store() checks a value (a kText value is parsed here, so a flag and the file give
// the same message after their different <where>) and writes the member(s); errors: kParse (malformed text),
// kInvalidArgument. show() reads the member back as text, for --help's default; null: the default is described
// by the entry's default_note instead. Made by the helpers in settings.cpp (integer_field<&AgentConfig::...>(), ...).
using StoreFn = Status (*)(const Target& target, const Value& value, std::string_view where, std::string* error_text);
using ShowFn = std::string (*)(const Target& target);
// What store() takes, said once more as data: the compiler checks it against the entry's kind (a function pointer
// compared with null is not a constant expression in every build; GCC's -fsanitize=undefined keeps the comparison).
enum class Stores : std::uint8_t { kNothing, kInteger, kSwitch, kText };
struct Field {
  Stores stores = Stores::kNothing;  // kNothing: store is null
  StoreFn store = nullptr;
  ShowFn show = nullptr;
  std::uint64_t largest = 0;  // Stores::kInteger: the largest value the member can hold (the table's max must fit)
};

struct Setting {
  std::string_view flag;         // "--heartbeat-ms"
  std::string_view json_key;     // "heartbeat_ms"; empty: flag only (only the flag-only kinds above)
  Program programs;              // which programs have it
  Section section;               // where --help lists it, in table order
  std::string_view placeholder;  // the value in --help: "N", "FILE", "ADDR:PORT"; empty: the flag takes none
  std::string_view help;         // what it does; '\n' starts a new line in --help, which wraps the rest
  Kind kind;
  std::uint64_t min = 0;  // kInteger: inclusive range
  std::uint64_t max = 0;
  std::string_view range_text;    // kInteger: how messages word [min, max] when "min..max" does not say it all
  std::string_view default_note;  // --help: after the default ("0: all CPUs"), or the default itself when the
                                  // member's initial value does not say it ("the host name")
  Field field;                    // where the value is stored; null store: a list kind (args.cpp, config_json.cpp)
  std::string_view short_flag;    // "-h"
  std::string_view excludes;      // another flag of the same program that cannot be given with this one in the
                                  // same place (command line, or file): "--token" for the agent's --token-file
};

// The whole table, in --help order within each section.
std::span<const Setting> settings() noexcept;
inline bool serves(const Setting& setting, Program program) noexcept {
  return (static_cast<unsigned>(setting.programs) & static_cast<unsigned>(program)) != 0;
}
// By "--flag" or its short form ("-h"), or by JSON key; null if the program has no such setting.
const Setting* find_flag(Program program, std::string_view flag) noexcept;
const Setting* find_json_key(Program program, std::string_view key) noexcept;
const char* program_name(Program program) noexcept;
// How messages word an integer setting's range: range_text, else "min..max".
std::string range_of(const Setting& setting);
// The flag column of --help: "--heartbeat-ms N", "-h, --help" (usage.cpp).
std::string flag_column(const Setting& setting);

// ---------------------------------------------------------------------------------------------------------------
// Value checks (checks.cpp), shared by the table's fields, the list parsers and the JSON loader. Each writes
// "<where>: <problem>" to *error_text on failure.

// Digits only (no sign, no spaces), as a flag value must be.
bool parse_decimal(std::string_view text, std::uint64_t* out) noexcept;
// A port 1..65535, digits only.
bool parse_port(std::string_view text, std::uint16_t* out) noexcept;
// 1..64 of A-Z a-z 0-9 . _ -: service names and agent ids.
bool valid_name(std::string_view name) noexcept;
// A flag's integer value against its entry's range. The message names the flag.
Status check_integer_text(const Setting& setting, std::string_view text, std::uint64_t* out, std::string* error_text);
Status check_port_range(std::string_view where, std::string_view text, TokenRule* rule, std::string* error_text);
// One host pattern (--allow-hosts, tokens[].allow_hosts[i]) or service host (http:/tls: services): a host name or
// "*.suffix", stored normalized (route::normalize_host). The message names the value and the rule it breaks.
Status check_host_pattern(std::string_view where, std::string_view text, std::string* out, std::string* error_text);
// --allow-hosts: "PATTERN[,PATTERN...]", each as above; written to rule->hosts without repeats.
Status check_host_patterns(std::string_view where, std::string_view text, TokenRule* rule, std::string* error_text);
// A token's access policy, by JSON key ("allow_from", "deny_from": CIDR lists; "conn_rate", "max_conns",
// "max_conns_per_client": integers). `text` as on the command line (a list "CIDR[,CIDR...]", an integer in
// decimal). Sets that member of *rules; an unknown key is a bug (checked).
Status apply_access_rule(std::string_view key, std::string_view where, std::string_view text,
                         route::AccessRules* rules, std::string* error_text);
// The JSON key of an access flag: "--allow-from" -> "allow_from".
std::string access_key_of_flag(std::string_view flag);
// Adds `pattern` (normalized) to rule->hosts unless it is there already.
void add_host_pattern(TokenRule* rule, std::string pattern);
// "tcp", "http", "tls" as --expose and "kind" spell them.
bool parse_service_kind(std::string_view text, route::Kind* out) noexcept;
// A service's default name: "tcp-8080", "http-app.example.com", "tls-wildcard.example.com" (for "*.example.com").
// Too long for a name: the message says so and asks for one (`how`: "NAME@" or "a \"name\"").
Status default_service_name(std::string_view where, ServiceConfig* service, std::string_view how,
                            std::string* error_text);
// What a service takes on the gateway, one per agent: "tcp port 8080", "http host app.example.com". Its messages
// say it this way; the duplicate checks compare it.
std::string public_side(const ServiceConfig& service);
// Two listening addresses that cannot both be bound: the same port (not 0) on the same host, or on hosts one of
// which is the unspecified address that covers the other.
bool addresses_overlap(const ring::net::Address& a, const ring::net::Address& b) noexcept;
Status check_service_name(std::string_view where, std::string_view name, std::string* error_text);
Status check_token(std::string_view where, std::string_view secret, std::string* error_text);
// A file or directory name: stored as given (the program opens it and says what is wrong with it).
Status check_path(std::string_view where, std::string_view text, std::string* out, std::string* error_text);
// A listening address: numeric host or localhost (or none: all interfaces); port 0 lets the kernel pick.
Status check_listen_address(std::string_view where, std::string_view text, ring::net::Address* out,
                            std::string* error_text);
// A local service address: numeric host or localhost, and a port 1..65535.
Status check_local_address(std::string_view where, std::string_view text, ring::net::Address* out,
                           std::string* error_text);
// The gateway the agent dials, "HOST:PORT": HOST is an RFC 1123 host name (localhost included), an IPv4 address or
// an [IPv6] address, not an unspecified one; PORT is 1..65535. *host gets IPv6 without its brackets.
Status check_gateway_address(std::string_view where, std::string_view text, std::string* host, std::uint16_t* port,
                             std::string* error_text);

// printable(text) (common/printable.hpp: escaped, at most 80 characters) in double quotes.
std::string in_quotes(std::string_view text);

// Remembers which entry first used each key (a public port, a service name, a token secret).
class SeenSet {
 public:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  // Records `index` for `key` and returns kNone, or returns the index that used `key` first.
  std::size_t add(std::string_view key, std::size_t index);

 private:
  std::unordered_map<std::string, std::size_t> first_;
};
// Stores `message` in *error_text (when given) and returns the error to propagate.
Unexpected report(std::string* error_text, Errc code, std::string message);

// JSON loading (config_json.cpp). Fills the settings present in the file and leaves the others untouched; the
// cross-setting checks (required settings, timing) run afterwards on the merged result, in args.cpp.
Status load_gateway_file(std::string_view path, GatewayConfig* config, std::string* error_text);
Status load_agent_file(std::string_view path, AgentConfig* config, std::string* error_text);

}  // namespace ringtun::app::detail
