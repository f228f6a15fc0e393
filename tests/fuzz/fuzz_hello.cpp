// libFuzzer target: the gateway's parser of hellos (CONTROL JSON from peers that have not authenticated yet).
#include <cstddef>
#include <cstdint>
#include <string>

#include "tunnel/handshake.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string error;
  auto message = ringtun::tunnel::parse_control({reinterpret_cast<const std::byte*>(data), size}, &error);
  if (message && message->type == ringtun::tunnel::ControlMessage::Type::kHello) {
    // What parses must re-encode and parse to the same thing.
    auto again = ringtun::tunnel::parse_control(ringtun::tunnel::as_bytes(ringtun::tunnel::encode_hello(message->hello)), &error);
    if (!again || again->hello.services.size() != message->hello.services.size()) __builtin_trap();
  }
  return 0;
}
