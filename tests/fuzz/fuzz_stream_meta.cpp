// libFuzzer target: the OPEN metadata decoder (tunnel/stream_meta): whatever decodes re-encodes to the same bytes
// (version 2); a version-1 input re-encodes as the same metadata in version 2 (version byte 2, a zero flags byte at
// the end).
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
  std::array<std::byte, kMaxStreamMeta + 1> expected{};
  std::size_t expected_size = size;
  std::memcpy(expected.data(), data, size);
  if (data[0] == 1) {
    if (meta->flags != 0) __builtin_trap();
    expected[0] = std::byte{kStreamMetaVersion};
    expected[expected_size++] = std::byte{0};
  }
  std::array<std::byte, kMaxStreamMeta> out{};
  auto n = encode_stream_meta(*meta, out);
  if (!n || *n != expected_size || std::memcmp(out.data(), expected.data(), expected_size) != 0) __builtin_trap();
  return 0;
}
