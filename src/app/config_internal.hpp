// Private to config*.cpp (and their unit tests): the settings table both the flag parser and the JSON loader
// read, the value checks they share, and the JSON loader's entry points. Not part of the app module's API.
//
// Every message is built as "<where>: <problem>", where <where> names the source ("--threads" or
// "config.json: services[1].public_port") and a problem about a value starts with the value, quoted.
// Thread rules: start-up only, like config.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "app/config.hpp"

namespace ringtun::app::detail {

inline constexpr std::size_t kMaxConfigFileBytes = 1u << 20;  // 1 MiB: a config is a few hundred bytes
// Our schema nests three levels (top, "tokens"/"services" array, entry); anything deeper is an error anyway, and
// the limit bounds both simdjson's and the error locator's work on hostile files. It counts open objects/arrays;
// simdjson's max_depth counts one more (the document itself), so its parser is allocated with kMaxJsonDepth + 1.
inline constexpr std::size_t kMaxJsonDepth = 32;
inline constexpr std::size_t kMaxNameLength = 64;            // service names and agent ids
inline constexpr std::uint32_t kMaxDurationMs = 86'400'000;  // one day: anything longer is a typo
inline constexpr std::uint32_t kMaxStreamsLimit = 1u << 20;
inline constexpr unsigned kMaxThreads = 1024;

enum class Program : std::uint8_t { kGateway = 1, kAgent = 2, kBoth = 3 };

// clang-format off
enum class SettingId : std::uint8_t {
  kConfig, kHelp, kVersion,
  kThreads, kLogLevel, kHeartbeatMs, kDeadPeerMs, kDrainTimeoutMs,
  kListen, kToken, kAllowPorts, kMaxStreams, kTokens,           // gateway (kToken is the agent's too)
  kGateway, kAgentId, kExpose, kServices, kReconnectMaxMs, kConnectTimeoutMs,  // agent
  kInsecurePlaintext, kCert, kKey, kClientCa, kStateDir, kCa, kGatewayFingerprint, kServerName,  // TLS
  kCount,
};
// clang-format on

enum class ValueKind : std::uint8_t {
  kNone,     // --help, --version: no value
  kInteger,  // decimal in [min, max]
  kText,     // a string checked by the setting
  kList,     // JSON only: the "tokens" / "services" arrays
  kSwitch,   // a flag without a value that turns something on; true/false in JSON
};

struct SettingSpec {
  SettingId id;
  Program programs;
  std::string_view flag;      // "--heartbeat-ms"; empty: JSON only
  std::string_view json_key;  // "heartbeat_ms"; empty: flag only
  ValueKind kind;
  bool repeatable;    // may be given several times on the command line
  std::uint64_t min;  // kInteger bounds, inclusive
  std::uint64_t max;
  std::string_view range_text;  // how messages describe [min, max], e.g. "1..1024 (or 0 for all CPUs)"
};

const SettingSpec* find_flag(Program program, std::string_view flag) noexcept;
const SettingSpec* find_json_key(Program program, std::string_view key) noexcept;

// A value already checked against its spec's kind (and, for integers, range).
struct SettingValue {
  std::uint64_t integer = 0;
  std::string_view text;
};

// Stores one scalar setting (kInteger or kText). kText values are parsed and checked here, so flags and JSON give
// the same message after their different <where>. Errors: kParse (malformed text), kInvalidArgument.
Status apply_setting(GatewayConfig* config, const SettingSpec& spec, const SettingValue& value, std::string_view where,
                     std::string* error_text);
Status apply_setting(AgentConfig* config, const SettingSpec& spec, const SettingValue& value, std::string_view where,
                     std::string* error_text);

// Shared value checks. Each writes "<where>: <problem>" to *error_text on failure.
Status check_port_range(std::string_view where, std::string_view text, TokenRule* rule, std::string* error_text);
Status check_service_name(std::string_view where, std::string_view name, std::string* error_text);
Status check_token(std::string_view where, std::string_view secret, std::string* error_text);
// A local service address: numeric host or localhost, and a port 1..65535.
Status check_local_address(std::string_view where, std::string_view text, ring::net::Address* out,
                           std::string* error_text);

// `text` with control characters, '"' and '\\' escaped, cut at 80 bytes: safe in a one-line message.
std::string printable(std::string_view text);
// printable(text) in double quotes.
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

// JSON loading (config_json.cpp). Fills the settings present in the file and leaves the others untouched.
Status load_gateway_file(std::string_view path, GatewayConfig* config, std::string* error_text);
Status load_agent_file(std::string_view path, AgentConfig* config, std::string* error_text);

}  // namespace ringtun::app::detail
