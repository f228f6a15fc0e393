// The tunnel handshake: CONTROL frames carrying JSON, exchanged once per tunnel connection.
//
//   agent   -> gateway  {"type":"hello","version":1,"agent_id":"edge-1","token":"...","conn_index":0,
//                        "conn_count":1,"services":[{"name":"web","port":8080}]}
//   gateway -> agent    {"type":"welcome","gateway_cores":4,"conn_index":0}
//                    or {"type":"refused","code":"bad_token","message":"..."}
//
// The gateway parses hellos from peers that have not authenticated yet, so the parser bounds everything (size,
// string lengths, service count) and reports what was wrong; it never throws or aborts. docs/protocol.md
// ("Handshake") is the normative description.
// Thread rules: stateless functions; any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace ringtun::tunnel {

inline constexpr std::uint32_t kHandshakeVersion = 1;
inline constexpr std::size_t kMaxControlJson = 16 * 1024;
inline constexpr std::size_t kMaxAgentIdLength = 128;
inline constexpr std::size_t kMaxTokenLength = 1024;
inline constexpr std::size_t kMaxServices = 256;
inline constexpr std::size_t kMaxServiceNameLength = 64;
inline constexpr std::uint32_t kMaxConnections = 1024;

struct HelloService {
  std::string name;
  std::uint16_t port = 0;
};

struct Hello {
  std::uint32_t version = kHandshakeVersion;
  std::string agent_id;
  std::string token;
  std::uint32_t conn_index = 0;
  std::uint32_t conn_count = 1;
  std::vector<HelloService> services;
};

struct Welcome {
  std::uint32_t gateway_cores = 1;
  std::uint32_t conn_index = 0;
};

enum class RefusalCode : std::uint8_t {
  kBadRequest,      // malformed hello
  kVersion,         // a handshake version we do not speak
  kBadToken,        // unknown token
  kPortNotAllowed,  // the token may not claim that port
  kPortTaken,       // another agent holds the port
  kPortUnavailable, // the gateway could not listen on it
  kIndexOutOfRange, // conn_index >= the gateway's cores
  kNotRegistered,   // conn_index > 0 before connection 0 registered the agent
  kShuttingDown,
};
const char* refusal_code_name(RefusalCode code) noexcept;
// Refusals after which retrying cannot help: the agent exits instead of reconnecting.
bool refusal_is_fatal(RefusalCode code) noexcept;

struct Refusal {
  RefusalCode code = RefusalCode::kBadRequest;
  std::string message;
};

struct ControlMessage {
  enum class Type : std::uint8_t { kHello, kWelcome, kRefused };
  Type type = Type::kHello;
  Hello hello;
  Welcome welcome;
  Refusal refusal;
};

std::string encode_hello(const Hello& hello);
std::string encode_welcome(const Welcome& welcome);
std::string encode_refusal(const Refusal& refusal);

// Parses one CONTROL payload. On failure, *error says what was wrong (one line, no secrets echoed).
Result<ControlMessage> parse_control(std::span<const std::byte> json, std::string* error);

inline std::span<const std::byte> as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

}  // namespace ringtun::tunnel
