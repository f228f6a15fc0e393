// libFuzzer target: the OPEN metadata decoder (tunnel/stream_meta): whatever decodes re-encodes to the same bytes.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tunnel/stream_meta.hpp"

using namespace ringtun::tunnel;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  auto meta = decode_stream_meta(input);
  if (!meta) return 0;
  std::array<std::byte, kMaxStreamMeta> out{};
  auto n = encode_stream_meta(*meta, out);
  if (!n || *n != size || std::memcmp(out.data(), data, size) != 0) __builtin_trap();
  return 0;
}
