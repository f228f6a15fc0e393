// Echo payloads: deterministic bytes that differ per connection and per request, so a client can check every echo
// byte-exact (a server that mixed up two connections' data or replayed an old chunk would be caught), plus a small
// checksum for the demo's human-readable lines.
// Ownership: callers own the memory. Thread rules: pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/mix64.hpp"

namespace ringtun::echo {

using ringtun::mix64;

// Fills `size` bytes for request `sequence` of connection `stream`.
inline void fill_payload(std::uint8_t* out, std::size_t size, std::uint64_t stream, std::uint64_t sequence) noexcept {
  std::uint64_t state = mix64(stream * 0x100000001B3ULL ^ sequence);
  for (std::size_t i = 0; i < size; ++i) {
    if ((i & 7) == 0) state = mix64(state);
    out[i] = static_cast<std::uint8_t>(state >> ((i & 7) * 8));
  }
}

// FNV-1a, 32 bits: printed by the demo so a user sees that what came back is what went out.
inline std::uint32_t checksum32(const std::uint8_t* data, std::size_t size) noexcept {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < size; ++i) {
    h ^= data[i];
    h *= 16777619u;
  }
  return h;
}

}  // namespace ringtun::echo
