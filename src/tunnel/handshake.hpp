// The tunnel's control messages: CONTROL frames carrying JSON, the handshake once per tunnel connection and the
// service claims that follow it.
//
//   agent   -> gateway  {"type":"hello","version":2,"agent_id":"edge-1","token":"...","instance":"<32 hex>",
//                        "conn_index":0,"conn_count":1}
//   gateway -> agent    {"type":"welcome","gateway_cores":4,"conn_index":0}
//                    or {"type":"refused","code":"bad_token","message":"..."}
//   gateway -> agent    {"type":"refused","code":"token_revoked","message":"..."}  (any time: a reload removed
//                                                                                 the agent's token)
//   agent   -> gateway  {"type":"claim","services":[{"name":"web","kind":"tcp","port":8080}, ...]}
//   gateway -> agent    {"type":"claimed","services":[{"name":"web","ok":true},
//                                                     {"name":"db","ok":false,"code":"port_taken","message":"..."}]}
//   agent   -> gateway  {"type":"health","services":[{"name":"web","up":false}]}   (its health checks changed)
//   agent   -> gateway  {"type":"release","services":["web", ...]}   (a reload removed them; no answer)
//
// The hello is identity only; services are claimed by "claim" messages (each within one CONTROL frame, so an agent
// with many services sends several), which the agent sends right behind its hello without waiting for the welcome,
// and again later for services refused for now. Each claim gets one "claimed" answer, a status per service in the
// same order (split over several messages if it does not fit one; the agent matches statuses by service name):
// services are accepted or refused one by one; only a connection is refused as a whole (bad token, an
// id held by another running instance, a malformed hello...). The gateway parses these messages from peers that
// have not authenticated yet, so the parser bounds everything (size, string lengths, counts) and reports what was
// wrong; it never throws or aborts. docs/protocol.md ("Handshake") is the normative description.
// Thread rules: stateless functions; any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "route/route.hpp"

namespace ringtun::tunnel {

inline constexpr std::uint32_t kHandshakeVersion = 2;
inline constexpr std::size_t kMaxControlJson = 16 * 1024;  // one CONTROL frame at the default MAX_FRAME_SIZE
inline constexpr std::size_t kMaxAgentIdLength = 128;
inline constexpr std::size_t kMaxTokenLength = 1024;
inline constexpr std::size_t kInstanceLength = 32;  // 16 random bytes, lower-case hex
inline constexpr std::size_t kMaxServices = 1024;  // per agent; a claim message holds what fits in kMaxControlJson
inline constexpr std::size_t kMaxServiceNameLength = route::kMaxServiceNameLength;
inline constexpr std::size_t kMaxRefusalMessage = 1024;
inline constexpr std::size_t kMaxStatusMessage = 256;  // a per-service refusal's text
inline constexpr std::uint32_t kMaxConnections = 1024;

// A service as the agent declares it: tcp services name a public port (host empty); http and tls services a host
// name or "*.suffix" (port 0).
// At most this many networks in each of a service's lists on the wire (the agent's config says so first).
inline constexpr std::size_t kMaxServiceCidrs = 64;

struct ServiceDecl {
  std::string name;
  route::Kind kind = route::Kind::kTcp;
  std::uint16_t port = 0;
  std::string host;
  // The service's own client address lists ("allow_from" / "deny_from" in the claim: "CIDR,CIDR..."); they narrow
  // the token's policy on the gateway. Empty: none.
  std::vector<route::Cidr> allow_from;
  std::vector<route::Cidr> deny_from;
  // The load-balancing group ("group": 1..64 of [A-Za-z0-9._-]): agents of one token that claim the same key and
  // service name with the same group serve it together. Empty: none (the key is this agent's alone).
  std::string group;

  friend bool operator==(const ServiceDecl&, const ServiceDecl&) = default;
};

// What the agent's health check says of one of its services.
struct ServiceHealth {
  std::string name;
  bool up = true;

  friend bool operator==(const ServiceHealth&, const ServiceHealth&) = default;
};

struct Hello {
  std::uint32_t version = kHandshakeVersion;
  std::string agent_id;
  std::string token;
  std::string instance;  // one per running agent process: tells a reconnect of the same instance from another one
  std::uint32_t conn_index = 0;
  std::uint32_t conn_count = 1;
};

enum class RefusalCode : std::uint8_t {
  kBadRequest,      // malformed hello or message
  kVersion,         // a handshake version we do not speak
  kBadToken,        // unknown token
  kIdInUse,         // another running instance of this agent id is connected
  kIndexOutOfRange, // conn_index >= the gateway's cores
  kShuttingDown,
  kBusy,            // the gateway cannot take this connection now; retry
  // Per service (in a welcome or claimed status):
  kPortNotAllowed,  // the token may not claim that port
  kPortReserved,    // one of the gateway's own listeners
  kPortTaken,       // another agent holds the port
  kPortUnavailable, // the gateway cannot listen on it (another program holds it)
  kKindUnsupported, // this gateway does not serve that kind of service
  kTooManyServices, // beyond kMaxServices for one agent
  kHostNotAllowed,  // the token may not claim that host name (its --allow-hosts patterns do not cover it)
  kHostTaken,       // another agent holds the host name
  kGroupMismatch,   // the key's group serves it under another service name
  // After the welcome: the agent's token was removed by a configuration reload; its connections are closed. Final.
  kTokenRevoked,
};
const char* refusal_code_name(RefusalCode code) noexcept;
// Connection refusals after which retrying cannot help: the agent exits (code 3) instead of reconnecting.
bool refusal_is_fatal(RefusalCode code) noexcept;
// Service refusals that asking again later may cure (the port or host may be released); the others are final.
bool service_refusal_is_retryable(RefusalCode code) noexcept;

struct Refusal {
  RefusalCode code = RefusalCode::kBadRequest;
  std::string message;
};

// What the gateway decided for one declared service.
struct ServiceStatus {
  std::string name;
  bool ok = false;
  RefusalCode code = RefusalCode::kBadRequest;  // when !ok
  std::string message;                          // when !ok
};

struct Welcome {
  std::uint32_t gateway_cores = 1;
  std::uint32_t conn_index = 0;
};

struct ControlMessage {
  enum class Type : std::uint8_t { kHello, kWelcome, kRefused, kClaim, kClaimed, kHealth, kRelease };
  Type type = Type::kHello;
  Hello hello;
  Welcome welcome;
  Refusal refusal;
  std::vector<ServiceDecl> claim;        // kClaim
  std::vector<ServiceStatus> claimed;    // kClaimed
  std::vector<ServiceHealth> health;     // kHealth
  std::vector<std::string> release;      // kRelease: service names
};

std::string encode_hello(const Hello& hello);
std::string encode_welcome(const Welcome& welcome);
std::string encode_refusal(const Refusal& refusal);
// Claims and their answers are split into as many messages as needed to keep each within kMaxControlJson, in order.
std::vector<std::string> encode_claims(std::span<const ServiceDecl> services);
std::vector<std::string> encode_claimed(std::span<const ServiceStatus> statuses);
std::vector<std::string> encode_health(std::span<const ServiceHealth> health);
std::vector<std::string> encode_release(std::span<const std::string> names);

// Parses one CONTROL payload. On failure, *error says what was wrong (one line, no secrets echoed).
Result<ControlMessage> parse_control(std::span<const std::byte> json, std::string* error);

// A fresh random instance nonce (kInstanceLength hex characters, from getrandom).
std::string make_instance_nonce();

inline std::span<const std::byte> as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

}  // namespace ringtun::tunnel
