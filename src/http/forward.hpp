// What the gateway writes: request heads toward a service, response heads toward the client, and its own error
// answers.
//
// Toward the service (RFC 9110 section 7.6): hop-by-hop fields are dropped (Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade, and every field the Connection header names; Transfer-Encoding stays,
// since the body passes through exactly as it came); X-Forwarded-For gets the client address appended to what the
// client sent (one combined field); X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host are set, replacing any the client
// sent; "Connection: keep-alive" (or "Connection: upgrade" plus the Upgrade field for an upgrade request) is added.
// The request line is passed as sent.
// Toward the client: the response head with hop-by-hop fields dropped, and "Connection: close" when the gateway
// will close after this response ("Connection: upgrade" and Upgrade kept for 101).
// Writers return the bytes written, or 0 when `out` is too small (the caller's buffer is sized kMaxForwardedHead).
// Pure: no I/O, no allocation. Thread rules: none.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "http/message.hpp"

namespace ringtun::http {

// A head may grow by what the gateway adds (four fields with an address and a host each, Connection).
inline constexpr std::size_t kMaxForwardedHead = kMaxHeadBytes + 1024;

struct Forwarding {
  std::string_view client_ip;       // "192.0.2.1" or "2001:db8::1" (no brackets, no port)
  std::string_view proto = "http";  // X-Forwarded-Proto
};

std::size_t write_upstream_request(const RequestHead& head, const Forwarding& forwarding, std::span<char> out) noexcept;
std::size_t write_client_response(const ResponseHead& head, bool close_after, std::span<char> out) noexcept;

// A complete small answer from the gateway itself: status line, Content-Type: text/plain, Content-Length,
// "Connection: close" when `close_after`, then a one-line body "<status> <reason phrase>: <detail>\n". `detail` is
// sanitised (printable ASCII, at most 200 bytes). `retry_after_s` > 0 adds "Retry-After: N" (429, 503). 0 when `out`
// is too small (1 KiB always suffices).
std::size_t write_error_response(int status, std::string_view detail, bool close_after, std::span<char> out,
                                 std::uint32_t retry_after_s = 0) noexcept;
// "Not Found", "Bad Gateway"... ("Unknown" for a status without one).
std::string_view reason_phrase(int status) noexcept;

}  // namespace ringtun::http
