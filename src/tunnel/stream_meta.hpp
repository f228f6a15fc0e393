// The metadata an OPEN frame carries (the frame protocol treats it as opaque bytes): which service the stream is
// for and who the public client is. One codec for both programs, versioned by its first byte.
//
// Version 2 layout (all integers big-endian), at most frame::kMaxOpenPayload (256) bytes:
//   0      version (2; version 1 is the same without the flags byte, and still read)
//   1      kind of the public listener (0 tcp, 1 http, 2 tls)
//   2      client address family (0 none, 4 IPv4, 6 IPv6)
//   3      length of the service name (1..64)
//   4..5   public port the client connected to
//   6..7   client port (0 when there is no address)
//   8..    client address (0, 4 or 16 bytes), then the service name
//   last   flags: bit 0 the HTTP request is HEAD (its response has no body), bit 1 the request asks for an upgrade;
//          other bits must be 0
// A decoder that meets another version refuses the stream (the agent answers RST), so a newer gateway can only
// add a version that older agents refuse loudly, never one they misread.
// Encoding writes into a caller's buffer and never allocates (it runs for every public connection); a decoded
// service name is a view into the input. Thread rules: stateless; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/result.hpp"
#include "ring/net.hpp"
#include "route/route.hpp"

namespace ringtun::tunnel {

inline constexpr std::uint8_t kStreamMetaVersion = 2;
inline constexpr std::size_t kMaxStreamMeta = 8 + 16 + route::kMaxServiceNameLength + 1;  // 89
inline constexpr std::uint8_t kStreamHeadRequest = 1;
inline constexpr std::uint8_t kStreamUpgrade = 2;
inline constexpr std::uint8_t kStreamFlagsKnown = kStreamHeadRequest | kStreamUpgrade;

struct StreamMeta {
  route::Kind kind = route::Kind::kTcp;
  std::uint16_t public_port = 0;
  ring::net::Address client;    // family AF_UNSPEC: unknown
  std::string_view service;     // 1..64 bytes
  std::uint8_t flags = 0;       // kStreamHeadRequest, kStreamUpgrade (http streams)
};

// Writes `meta` into `out` and returns the bytes used; kInvalidArgument for an empty or over-long service name.
Result<std::size_t> encode_stream_meta(const StreamMeta& meta, std::span<std::byte, kMaxStreamMeta> out) noexcept;
// Reads metadata; `meta.service` points into `bytes`. kParse with a static context naming what is wrong.
Result<StreamMeta> decode_stream_meta(std::span<const std::byte> bytes) noexcept;

}  // namespace ringtun::tunnel
