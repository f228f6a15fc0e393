// The PROXY protocol header (HAProxy's "PROXY protocol" spec, versions 1 and 2) that an agent writes to a local
// service before the first byte of a stream, so that the service sees the public client's address and port (which
// the gateway put in the stream's metadata) instead of the agent's.
//
//   v1: one text line, "PROXY TCP4 SRC DST SPORT DPORT\r\n" (TCP6 for IPv6; "PROXY UNKNOWN\r\n" without an address).
//   v2: the 12-byte signature, version 2 with the PROXY command, AF_INET/AF_INET6 + STREAM, the address block; the
//       LOCAL command with no address when the client's address is unknown.
// The destination is the public port the client connected to, on the unspecified address of the client's family
// (0.0.0.0 or ::): the agent does not know the gateway's public address, and the spec wants both of one family.
// An IPv4 client seen as IPv4-mapped IPv6 (a dual-stack listener) is written as TCP4.
// Thread rules: stateless; any thread. Allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ring/net.hpp"

namespace ringtun::tunnel {

enum class ProxyProtocol : std::uint8_t { kNone = 0, kV1 = 1, kV2 = 2 };

// "v1" / "v2" -> the version; false for anything else ("none" is not a value: the option is left out).
bool parse_proxy_protocol(std::string_view text, ProxyProtocol* out) noexcept;
const char* proxy_protocol_name(ProxyProtocol version) noexcept;  // "none", "v1", "v2"

// v1's longest line is 107 bytes; v2 with IPv6 is 52.
inline constexpr std::size_t kMaxProxyHeader = 108;

// Writes the header for a client at `client` (AF_UNSPEC: unknown) that connected to `public_port`; returns its
// length (0 only for kNone).
std::size_t write_proxy_header(ProxyProtocol version, const ring::net::Address& client, std::uint16_t public_port,
                               std::span<std::byte, kMaxProxyHeader> out) noexcept;

}  // namespace ringtun::tunnel
