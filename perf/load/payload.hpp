// Payloads and their verification for ringtun-bench.
//
// - Stream bytes are a pure function of (stream, offset): any chunk of any stream can be generated on its own, so a
//   client never keeps what it sent, and a byte that arrives shifted, duplicated or from another stream differs.
// - StreamHasher folds bytes into an order-sensitive 64-bit hash that does not depend on how the bytes were split
//   into chunks. Each step is a bijection of the state for a fixed input word, so two inputs that differ in exactly
//   one word (hence any single corrupted byte) always give different hashes; the length is folded in at the end.
// - The sink protocol: a client opens with a 16-byte request {magic "RTB1", flags, length}, sends `length` bytes,
//   and the sink answers with a 24-byte reply {magic "RTB2", 0, bytes received, hash or 0}. No half-close is
//   needed, so it works through relays that do not forward a FIN before closing.
// Ownership: callers own every buffer. Thread rules: pure functions and plain values; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/mix64.hpp"

namespace ringtun::bench {

using ringtun::mix64;

// Writes bytes [offset, offset + size) of stream `stream` to `out`.
void fill_stream(std::uint8_t* out, std::size_t size, std::uint64_t stream, std::uint64_t offset) noexcept;

class StreamHasher {
 public:
  void update(const std::uint8_t* data, std::size_t size) noexcept;
  // The hash of everything updated so far (does not change the state).
  std::uint64_t digest() const noexcept;
  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  void fold(std::uint64_t word) noexcept;

  std::uint64_t state_ = 0x243F6A8885A308D3ULL;
  std::uint64_t bytes_ = 0;
  std::uint64_t pending_ = 0;  // the bytes of an unfinished word, little-endian
  unsigned pending_bytes_ = 0;
};

// The hash of bytes [0, length) of `stream`, as a sink that received them intact computes it.
std::uint64_t expected_stream_hash(std::uint64_t stream, std::uint64_t length) noexcept;

inline constexpr std::uint32_t kSinkRequestMagic = 0x31425452;  // "RTB1" little-endian
inline constexpr std::uint32_t kSinkReplyMagic = 0x32425452;    // "RTB2"
inline constexpr std::uint32_t kSinkFlagVerify = 1;
inline constexpr std::size_t kSinkRequestSize = 16;
inline constexpr std::size_t kSinkReplySize = 24;

struct SinkRequest {
  std::uint32_t flags = 0;
  std::uint64_t length = 0;
};

struct SinkReply {
  std::uint64_t received = 0;
  std::uint64_t hash = 0;
};

void encode_request(const SinkRequest& request, std::uint8_t out[kSinkRequestSize]) noexcept;
std::optional<SinkRequest> decode_request(const std::uint8_t in[kSinkRequestSize]) noexcept;
void encode_reply(const SinkReply& reply, std::uint8_t out[kSinkReplySize]) noexcept;
std::optional<SinkReply> decode_reply(const std::uint8_t in[kSinkReplySize]) noexcept;

}  // namespace ringtun::bench
