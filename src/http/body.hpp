// Where a message body ends, found while its bytes pass through unchanged.
//
// The gateway forwards request and response bodies as they arrive (never buffered whole) and must know where each
// ends: the next request on a keep-alive connection starts right after, and a service that sends more than its
// response said must not be able to slip bytes into the answer to someone else's request. BodyFramer is fed the
// bytes that follow a head and says how many of them belong to the body and when the body is complete: a length
// count, or the chunked coding (chunk sizes in hex with optional extensions, CRLF after each chunk's data, the last
// chunk "0", then trailer fields and the final CRLF). Bytes are never changed, only counted.
//
// Strict chunked rules: sizes are 1..16 hex digits without overflow; a chunk line (size + extensions) is at most
// kMaxChunkLine bytes; data is followed by exactly CRLF; trailer fields total at most kMaxTrailerBytes; bare LF is
// an error. Errors name a static reason; a request body error is answered 400, a response body error ends the
// exchange (502 if nothing was sent yet, else the client connection is cut).
// Pure: no I/O, no allocation. Thread rules: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/message.hpp"

namespace ringtun::http {

class BodyFramer {
 public:
  static constexpr std::size_t kMaxChunkLine = 4096;
  static constexpr std::size_t kMaxTrailerBytes = 16 * 1024;

  struct Step {
    std::size_t used = 0;         // bytes at the front of the input that belong to the body (pass them on)
    bool done = false;            // the body ended with the last of those bytes
    const char* error = nullptr;  // malformed framing; `used` bytes before it were valid
  };

  BodyFramer() = default;
  // Starts a body. kNone and kLength 0 are done at once (done() is true before any feed).
  void start(BodyKind kind, std::uint64_t length = 0) noexcept;
  // Consumes the next bytes. After done() or an error, feed() uses nothing.
  Step feed(std::string_view bytes) noexcept;
  // For kUntilClose: the connection closed, which ends the body. Other kinds: an early close is truncation (false).
  bool end_of_input() noexcept;

  bool done() const noexcept { return done_; }
  BodyKind kind() const noexcept { return kind_; }
  std::uint64_t body_bytes() const noexcept { return seen_; }  // bytes consumed so far (framing included)

 private:
  // Where in the chunked coding the next byte falls (RFC 9112 section 7.1).
  enum class Chunk : std::uint8_t {
    kSize,       // chunk-size hex digits
    kSizeWs,     // BWS after the size: only more BWS, ";" or CR may follow
    kExtension,  // after ";": chunk-ext up to CR
    kSizeLf,     // the LF ending the chunk line
    kData,       // chunk-data (remaining_ bytes left)
    kDataCr,     // the CRLF after chunk-data
    kDataLf,
    kTrailerStart,  // start of a trailer line, or the CR of the final empty line
    kTrailerName,   // field-name up to ":"
    kTrailerValue,  // field-value up to CR
    kTrailerLf,     // the LF ending a trailer line
    kFinalLf,       // the LF ending the chunked body
    kFailed,
  };
  Step feed_chunked(std::string_view bytes) noexcept;
  Step fail(std::size_t used, const char* error) noexcept;

  BodyKind kind_ = BodyKind::kNone;
  bool done_ = true;
  std::uint64_t remaining_ = 0;  // kLength: bytes left; kChunked: data bytes left in this chunk
  std::uint64_t seen_ = 0;
  Chunk chunk_ = Chunk::kSize;
  std::uint32_t digits_ = 0;
  std::size_t line_bytes_ = 0;     // bytes of the current chunk line
  std::size_t trailer_bytes_ = 0;  // bytes of the trailer section so far
  const char* error_ = nullptr;    // set once framing failed; repeated by every later feed
};

}  // namespace ringtun::http
