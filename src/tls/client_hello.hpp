// The SNI reader for the gateway's shared TLS port: finds the server_name in a client's TLS ClientHello so that the
// connection can be routed to the service of that name. The gateway does not terminate TLS (the edge does): after
// routing it forwards every byte, the ClientHello included, unchanged. So this reader only looks; it never consumes.
//
// Input: `prefix`, every byte the client has sent so far, contiguous. While the ClientHello is incomplete the reader
// walks TLS record headers as they arrive and remembers how far it got (complete records only), so feeding a byte at
// a time costs O(total), not O(total^2). Once the records hold the whole handshake message (a ClientHello may be
// fragmented over several records, down to one byte each) it copies the fragments into `scratch` and parses the
// message once. Bytes after the ClientHello (early data, anything) are ignored.
//
// Limits (RFC 8446 section 5.1): records of content type 22 (handshake), version 3.x, length 1..2^14. The records up
// to and including the one that completes the ClientHello must lie within the first kMaxHello bytes of the stream,
// so a gateway that buffers kMaxHello bytes always gets a decision: once `prefix.size() >= kMaxHello`, read() never
// answers kNeedMore. The handshake message is then at most kMaxHello bytes too, and fits in `scratch`.
//
// The name: the first host_name entry of the server_name extension (RFC 6066 section 3), as sent: not lower-cased and
// not checked against host-name rules (the route table folds and checks names; a name it refuses finds no route).
// So name() may hold any byte value and must be escaped before it is logged. An empty name, or one over 255 bytes
// (DNS names are at most 253 characters), is kError. Two server_name extensions are kError (a second one could mean
// something else to the edge than to us). No server_name extension, or one with no host_name entry, is kNoName.
//
// Ownership: a reader belongs to one connection and holds its own state (no pointers into `prefix` or `scratch`
// survive a call; the name is copied in, at most 255 bytes). `scratch` is the caller's, typically one buffer per core
// shared by all its connections. No allocation, no exceptions, no I/O.
// Thread rules: a reader is used by one thread at a time (its connection's core); unrecognized_name_alert() by any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ringtun::tls {

class ClientHelloReader {
 public:
  // The bound on the records that carry the ClientHello (headers included) and so on the message itself.
  static constexpr std::size_t kMaxHello = 16 * 1024;
  static constexpr std::size_t kMaxName = 255;

  enum class Outcome : std::uint8_t {
    kNeedMore,  // the ClientHello is not complete yet: call again when more bytes have come in
    kFound,     // name() holds the server name
    kNoName,    // a well-formed ClientHello without a host_name
    kError,     // not a TLS ClientHello, or a malformed one: error() says why
  };

  // `prefix`: every byte received from the client so far; it grows between calls and earlier bytes never change.
  // `scratch`: at least kMaxHello bytes (checked: a smaller one crashes), written only during this call.
  // Once the answer is not kNeedMore it is final: later calls return it again without reading anything.
  [[nodiscard]] Outcome read(std::span<const std::byte> prefix, std::span<std::byte> scratch) noexcept;

  Outcome outcome() const noexcept { return outcome_; }
  // kFound: the host_name as sent, 1..kMaxName bytes. Otherwise empty.
  std::string_view name() const noexcept { return {name_, name_length_}; }
  // kError: a static reason ("not a TLS handshake record", "ClientHello over 16 KiB", ...). Otherwise "".
  const char* error() const noexcept { return error_; }
  // kNeedMore: how many more bytes the record being read needs (its header first, then its body), for logs.
  std::size_t bytes_needed() const noexcept { return needed_; }

 private:
  Outcome fail(const char* reason) noexcept;
  Outcome parse(std::span<const std::byte> message) noexcept;

  Outcome outcome_ = Outcome::kNeedMore;
  const char* error_ = "";
  std::uint32_t record_at_ = 0;        // offset of the next record header not yet consumed
  std::uint32_t handshake_have_ = 0;   // handshake bytes in the records consumed so far
  std::uint32_t handshake_total_ = 0;  // 4 + the handshake length, once its header is in; 0 before
  std::uint32_t needed_ = 5;
  std::uint8_t head_[4] = {};  // the handshake header, which may itself arrive in fragments
  std::uint8_t name_length_ = 0;
  char name_[kMaxName] = {};
};

// The 7 bytes of a fatal unrecognized_name(112) alert record (RFC 6066 section 3; content type 21, version 3.3,
// length 2, level fatal), to send before closing a connection whose server name is unknown or absent. The edge has
// not negotiated anything yet, so the alert goes in plaintext.
std::span<const std::byte> unrecognized_name_alert() noexcept;

}  // namespace ringtun::tls
