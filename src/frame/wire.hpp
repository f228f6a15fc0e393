// The tunnel wire format: constants, the 16-byte frame header, error codes and setting ids (docs/protocol.md is
// the normative text; this header is its executable twin, so keep the two in step).
//
// Everything here is a plain value or a pure function: no state, no allocation. Byte order on the wire is big-endian
// (network order), chosen so packet captures read naturally; the cost is one bswap per field on x86.
// Thread rules: stateless; any thread.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/result.hpp"

namespace ringtun::frame {

using StreamId = std::uint32_t;

// ---- Connection preface: "RINGTUN" + one version byte, sent once by each side before anything else. ----
inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::size_t kPrefaceSize = 8;
inline constexpr std::array<std::byte, kPrefaceSize> kPreface = {
    std::byte{'R'}, std::byte{'I'}, std::byte{'N'}, std::byte{'G'},
    std::byte{'T'}, std::byte{'U'}, std::byte{'N'}, std::byte{kProtocolVersion}};

// ---- Sizes and limits (all byte counts). ----
inline constexpr std::size_t kHeaderSize = 16;
inline constexpr std::uint32_t kDefaultMaxFrameSize = 16 * 1024;    // one TLS record of payload
inline constexpr std::uint32_t kMinMaxFrameSize = 16 * 1024;        // SETTINGS may not go below this
inline constexpr std::uint32_t kMaxMaxFrameSize = 16 * 1024 * 1024; // nor above this
inline constexpr std::uint32_t kMaxWindow = 0x7fffffff;             // windows are 31-bit, as in HTTP/2
inline constexpr std::uint32_t kMinInitialWindow = 16 * 1024;       // anti "tiny window" dribble
inline constexpr std::uint32_t kDefaultStreamWindow = 512 * 1024;
inline constexpr std::uint32_t kDefaultConnectionWindow = 4 * 1024 * 1024;
inline constexpr std::uint32_t kMaxOpenPayload = 256;    // OPEN metadata is inline in the stream slot
inline constexpr std::uint32_t kMaxGoawayPayload = 256;  // optional debug text
inline constexpr std::uint32_t kMaxSettingsEntries = 32;
inline constexpr std::size_t kSettingsEntrySize = 8;     // u32 id, u32 value
inline constexpr StreamId kMaxStreamId = 0xffffffffU;

enum class FrameType : std::uint8_t {
  kData = 0,
  kOpen = 1,
  kWindowUpdate = 2,
  kRst = 3,
  kPing = 4,
  kGoaway = 5,
  kSettings = 6,
  kControl = 7,
};
inline constexpr std::uint8_t kFrameTypeCount = 8;

// Flag bits, per frame type. Undefined bits are sent as zero and ignored on receipt.
namespace flags {
inline constexpr std::uint8_t kFin = 0x01;  // DATA, OPEN: the sender will send no more data on this stream
inline constexpr std::uint8_t kAck = 0x01;  // PING: this is the answer
}  // namespace flags

// Wire error codes, carried by RST and GOAWAY. Values are frozen; new codes are appended. A receiver treats an
// unknown code like kInternalError but passes the raw value up.
enum class ErrorCode : std::uint32_t {
  kNoError = 0,
  kProtocolError = 1,
  kInternalError = 2,
  kFlowControlError = 3,
  kStreamClosed = 4,
  kFrameSizeError = 5,
  kRefusedStream = 6,
  kCancel = 7,
  kEnhanceYourCalm = 8,   // flood limits crossed
  kUnknownFrameType = 9,
  kVersionMismatch = 10,
  kSettingsError = 11,
  kConnectFailed = 12,    // application: the far end could not reach the stream's target
  kStreamLimit = 13,      // the peer's stream id space or a stream table is exhausted
  kConnectTimeout = 14,   // application: the far end's connect to the stream's target timed out
};

enum class SettingId : std::uint32_t {
  kMaxFrameSize = 1,             // largest payload the sender of SETTINGS accepts
  kInitialStreamWindow = 2,      // credit each new stream starts with, for data sent TO the SETTINGS sender
  kInitialConnectionWindow = 3,  // connection credit, likewise
  kMaxConcurrentStreams = 4,     // streams the peer may have open that the peer opened
  kFeatures = 5,                 // bit set of optional extensions; v1 defines none
};

struct FrameHeader {
  FrameType type = FrameType::kData;
  std::uint8_t flags = 0;
  std::uint16_t reserved = 0;  // sent as zero, ignored on receipt
  StreamId stream = 0;
  std::uint32_t length = 0;    // payload bytes following the header
  std::uint32_t arg = 0;       // WINDOW_UPDATE increment, RST/GOAWAY error code, PING value; else 0

  bool has(std::uint8_t flag) const noexcept { return (flags & flag) != 0; }
  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

// ---- Big-endian helpers. ----
inline std::uint32_t load_be32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  return v;
}
inline std::uint16_t load_be16(const std::byte* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  return v;
}
inline void store_be32(std::byte* p, std::uint32_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void store_be16(std::byte* p, std::uint16_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  std::memcpy(p, &v, 2);
}

// Header layout: [0] type, [1] flags, [2..3] reserved, [4..7] stream id, [8..11] length, [12..15] arg.
inline void encode_header(const FrameHeader& h, std::byte* out) noexcept {
  out[0] = static_cast<std::byte>(h.type);
  out[1] = static_cast<std::byte>(h.flags);
  store_be16(out + 2, h.reserved);
  store_be32(out + 4, h.stream);
  store_be32(out + 8, h.length);
  store_be32(out + 12, h.arg);
}

inline FrameHeader decode_header(const std::byte* in) noexcept {
  FrameHeader h;
  h.type = static_cast<FrameType>(in[0]);
  h.flags = static_cast<std::uint8_t>(in[1]);
  h.reserved = load_be16(in + 2);
  h.stream = load_be32(in + 4);
  h.length = load_be32(in + 8);
  h.arg = load_be32(in + 12);
  return h;
}

// Checks what can be checked from the header alone: known type, length within `max_payload` and the per-type
// rules (fixed lengths, stream 0 or not). Returns kNoError when the header is acceptable.
ErrorCode check_header(const FrameHeader& h, std::uint32_t max_payload) noexcept;

// The ringtun::Errc a wire error maps to, for Result values at the module boundary.
Errc errc_for(ErrorCode code) noexcept;

const char* error_code_name(ErrorCode code) noexcept;
const char* frame_type_name(FrameType type) noexcept;

// Stream-id parity: the gateway opens odd ids, the agent even ids; 0 names the connection.
enum class Role : std::uint8_t { kGateway, kAgent };
inline bool opened_by(Role role, StreamId id) noexcept {
  return id != 0 && ((id & 1U) == 1U) == (role == Role::kGateway);
}

}  // namespace ringtun::frame
