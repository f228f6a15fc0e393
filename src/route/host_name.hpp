// Internal to src/route, not part of its interface: the host-name rules and the route-key hash, which the registry
// side (Claims, its key index) and the data path (Table lookups) must agree on byte for byte. Nothing here
// allocates, locks or throws.
// Thread rules: pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/mix64.hpp"
#include "route/route.hpp"

namespace ringtun::route::detail {

// Checks `name` and writes it lower-cased to out[0, name.size()). `name` has no trailing dot (callers strip one
// first); with `allow_wildcard` it may be "*." followed by a name. Returns nullptr when the name is valid, else a
// static string naming the rule it breaks (the Error context of normalize_host). `out` holds kMaxHostLength bytes:
// a longer name is refused before anything is written. On failure `out` holds a partial copy.
const char* fold_host(std::string_view name, bool allow_wildcard, char* out) noexcept;

// The key hash: 64-bit FNV-1a over the kind, the port (little end first), then the host's bytes from the last to the
// first, finished by mix64. The host goes backwards so that a lookup walking a name right to left gets, at each dot,
// the state for the suffix after it; "*." + suffix is then two more bytes ('.' then '*', as they come backwards).
// All wildcard candidates of a name fall out of the one pass that hashes the name itself.
inline constexpr std::uint64_t kFnvOffset = 14695981039346656037ULL;
inline constexpr std::uint64_t kFnvPrime = 1099511628211ULL;

constexpr std::uint64_t fnv_step(std::uint64_t state, unsigned char byte) noexcept {
  return (state ^ byte) * kFnvPrime;
}

// The state before the host's bytes.
constexpr std::uint64_t key_seed(Kind kind, std::uint16_t port) noexcept {
  std::uint64_t h = fnv_step(kFnvOffset, static_cast<unsigned char>(kind));
  h = fnv_step(h, static_cast<unsigned char>(port & 0xff));
  return fnv_step(h, static_cast<unsigned char>(port >> 8));
}

// FNV's low bits depend only on the inputs' low bits (a multiply carries upwards only), and the index takes its slot
// from the low bits: the finaliser spreads every input bit over all of them.
inline std::uint64_t key_finish(std::uint64_t state) noexcept {
  return mix64(state);
}

inline std::uint64_t key_hash(Kind kind, std::uint16_t port, std::string_view host) noexcept {
  std::uint64_t h = key_seed(kind, port);
  for (std::size_t i = host.size(); i-- > 0;) h = fnv_step(h, static_cast<unsigned char>(host[i]));
  return key_finish(h);
}

// A wildcard key's host: "*." and at least one more byte (the rest is checked by fold_host when it is claimed).
constexpr bool is_wildcard(std::string_view host) noexcept {
  return host.size() > 2 && host[0] == '*' && host[1] == '.';
}

}  // namespace ringtun::route::detail
