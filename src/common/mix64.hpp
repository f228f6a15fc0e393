// splitmix64's finaliser: a cheap, well-mixed 64-bit hash of a counter or seed. Used for deterministic payloads
// that differ per connection and per offset (a relay that mixed up or replayed data is caught) and for seeds.
// Thread rules: a pure function; any thread.
#pragma once

#include <cstdint>

namespace ringtun {

inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace ringtun
