#include "tunnel/proxy_header.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>

namespace ringtun::tunnel {

namespace {

constexpr std::uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::uint8_t kV2Proxy = 0x21;  // version 2, command PROXY
constexpr std::uint8_t kV2Local = 0x20;  // version 2, command LOCAL (no address follows)
constexpr std::uint8_t kV2Tcp4 = 0x11;   // AF_INET, STREAM
constexpr std::uint8_t kV2Tcp6 = 0x21;   // AF_INET6, STREAM

// The client's address as the header writes it: 4 bytes (IPv4, mapped ones included) or 16, and its port.
struct Source {
  int family = AF_UNSPEC;
  std::uint8_t bytes[16] = {};
  std::uint16_t port = 0;  // host order
};

Source source_of(const ring::net::Address& client) noexcept {
  Source s;
  if (client.family() == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(client.storage);
    s.family = AF_INET;
    std::memcpy(s.bytes, &in.sin_addr, 4);
    s.port = ntohs(in.sin_port);
  } else if (client.family() == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(client.storage);
    s.port = ntohs(in6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      s.family = AF_INET;
      std::memcpy(s.bytes, reinterpret_cast<const std::uint8_t*>(&in6.sin6_addr) + 12, 4);
    } else {
      s.family = AF_INET6;
      std::memcpy(s.bytes, &in6.sin6_addr, 16);
    }
  }
  return s;
}

std::size_t write_v1(const Source& s, std::uint16_t public_port, std::span<std::byte, kMaxProxyHeader> out) noexcept {
  char* text = reinterpret_cast<char*>(out.data());
  int n;
  if (s.family == AF_UNSPEC) {
    n = std::snprintf(text, out.size(), "PROXY UNKNOWN\r\n");
  } else {
    char address[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(s.family, s.bytes, address, sizeof address);
    n = std::snprintf(text, out.size(), "PROXY %s %s %s %u %u\r\n", s.family == AF_INET ? "TCP4" : "TCP6", address,
                      s.family == AF_INET ? "0.0.0.0" : "::", s.port, public_port);
  }
  return n > 0 && static_cast<std::size_t>(n) < out.size() ? static_cast<std::size_t>(n) : 0;
}

std::size_t write_v2(const Source& s, std::uint16_t public_port, std::span<std::byte, kMaxProxyHeader> out) noexcept {
  auto* p = reinterpret_cast<std::uint8_t*>(out.data());
  std::memcpy(p, kV2Signature, sizeof kV2Signature);
  std::size_t n = sizeof kV2Signature;
  const std::size_t address_bytes = s.family == AF_INET ? 4 : 16;
  const std::uint16_t block = s.family == AF_UNSPEC ? 0 : static_cast<std::uint16_t>(2 * address_bytes + 4);
  p[n++] = s.family == AF_UNSPEC ? kV2Local : kV2Proxy;
  p[n++] = s.family == AF_UNSPEC ? 0x00 : (s.family == AF_INET ? kV2Tcp4 : kV2Tcp6);
  p[n++] = static_cast<std::uint8_t>(block >> 8);
  p[n++] = static_cast<std::uint8_t>(block & 0xFF);
  if (s.family == AF_UNSPEC) return n;
  std::memcpy(p + n, s.bytes, address_bytes);  // source
  n += address_bytes;
  std::memset(p + n, 0, address_bytes);  // destination: the unspecified address (see the header)
  n += address_bytes;
  p[n++] = static_cast<std::uint8_t>(s.port >> 8);
  p[n++] = static_cast<std::uint8_t>(s.port & 0xFF);
  p[n++] = static_cast<std::uint8_t>(public_port >> 8);
  p[n++] = static_cast<std::uint8_t>(public_port & 0xFF);
  return n;
}

}  // namespace

bool parse_proxy_protocol(std::string_view text, ProxyProtocol* out) noexcept {
  if (text == "v1") *out = ProxyProtocol::kV1;
  else if (text == "v2") *out = ProxyProtocol::kV2;
  else return false;
  return true;
}

const char* proxy_protocol_name(ProxyProtocol version) noexcept {
  switch (version) {
    case ProxyProtocol::kV1: return "v1";
    case ProxyProtocol::kV2: return "v2";
    case ProxyProtocol::kNone: break;
  }
  return "none";
}

std::size_t write_proxy_header(ProxyProtocol version, const ring::net::Address& client, std::uint16_t public_port,
                               std::span<std::byte, kMaxProxyHeader> out) noexcept {
  const Source source = source_of(client);
  switch (version) {
    case ProxyProtocol::kV1: return write_v1(source, public_port, out);
    case ProxyProtocol::kV2: return write_v2(source, public_port, out);
    case ProxyProtocol::kNone: break;
  }
  return 0;
}

}  // namespace ringtun::tunnel
