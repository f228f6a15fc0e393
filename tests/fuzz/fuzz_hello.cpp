// libFuzzer target: the gateway's parser of control messages (CONTROL JSON from peers that have not authenticated
// yet: hellos, then claims, health reports and releases) and the agent's parser of the gateway's answers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tunnel/handshake.hpp"

using namespace ringtun::tunnel;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string error;
  auto message = parse_control({reinterpret_cast<const std::byte*>(data), size}, &error);
  if (!message) return 0;
  // What parses must re-encode and parse to the same thing.
  if (message->type == ControlMessage::Type::kHello) {
    auto again = parse_control(as_bytes(encode_hello(message->hello)), &error);
    if (!again || again->hello.agent_id != message->hello.agent_id || again->hello.token != message->hello.token ||
        again->hello.instance != message->hello.instance || again->hello.conn_index != message->hello.conn_index) {
      __builtin_trap();
    }
  } else if (message->type == ControlMessage::Type::kClaim) {
    std::vector<ServiceDecl> back;
    for (const std::string& m : encode_claims(message->claim)) {
      if (m.size() > kMaxControlJson) __builtin_trap();
      auto again = parse_control(as_bytes(m), &error);
      if (!again || again->type != ControlMessage::Type::kClaim) __builtin_trap();
      back.insert(back.end(), again->claim.begin(), again->claim.end());
    }
    if (back != message->claim) __builtin_trap();
  } else if (message->type == ControlMessage::Type::kRelease) {
    std::vector<std::string> back;
    for (const std::string& m : encode_release(message->release)) {
      if (m.size() > kMaxControlJson) __builtin_trap();
      auto again = parse_control(as_bytes(m), &error);
      if (!again || again->type != ControlMessage::Type::kRelease) __builtin_trap();
      back.insert(back.end(), again->release.begin(), again->release.end());
    }
    if (back != message->release) __builtin_trap();
  } else if (message->type == ControlMessage::Type::kClaimed) {
    std::size_t count = 0;
    for (const std::string& m : encode_claimed(message->claimed)) {
      auto again = parse_control(as_bytes(m), &error);
      if (!again || again->type != ControlMessage::Type::kClaimed) __builtin_trap();
      count += again->claimed.size();
    }
    if (count != message->claimed.size()) __builtin_trap();
  } else if (message->type == ControlMessage::Type::kHealth) {
    std::vector<ServiceHealth> back;
    for (const std::string& m : encode_health(message->health)) {
      if (m.size() > kMaxControlJson) __builtin_trap();
      auto again = parse_control(as_bytes(m), &error);
      if (!again || again->type != ControlMessage::Type::kHealth) __builtin_trap();
      back.insert(back.end(), again->health.begin(), again->health.end());
    }
    if (back != message->health) __builtin_trap();
  }
  return 0;
}
