// The PROXY protocol header the agent writes before a stream's bytes: v1 text and v2 binary, as HAProxy's spec lays
// them out, for IPv4, IPv6, IPv4-mapped IPv6 and an unknown client.
#include "tunnel/proxy_header.hpp"

#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

namespace ringtun::tunnel {
namespace {

ring::net::Address address(const char* host, std::uint16_t port) {
  auto a = ring::net::numeric_address(host, port);
  REQUIRE(a.has_value());
  return *a;
}

std::string text_of(ProxyProtocol version, const ring::net::Address& client, std::uint16_t public_port) {
  std::array<std::byte, kMaxProxyHeader> out;
  const std::size_t n = write_proxy_header(version, client, public_port, out);
  return std::string(reinterpret_cast<const char*>(out.data()), n);
}

std::vector<std::uint8_t> bytes_of(ProxyProtocol version, const ring::net::Address& client,
                                   std::uint16_t public_port) {
  std::array<std::byte, kMaxProxyHeader> out;
  const std::size_t n = write_proxy_header(version, client, public_port, out);
  const auto* p = reinterpret_cast<const std::uint8_t*>(out.data());
  return std::vector<std::uint8_t>(p, p + n);
}

const std::vector<std::uint8_t> kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

TEST_CASE("PROXY v1: TCP4, TCP6, mapped IPv4 and UNKNOWN") {
  CHECK(text_of(ProxyProtocol::kV1, address("127.0.0.2", 40001), 8080) == "PROXY TCP4 127.0.0.2 0.0.0.0 40001 8080\r\n");
  CHECK(text_of(ProxyProtocol::kV1, address("2001:db8::7", 65535), 443) == "PROXY TCP6 2001:db8::7 :: 65535 443\r\n");
  CHECK(text_of(ProxyProtocol::kV1, address("::ffff:192.0.2.9", 1), 2) == "PROXY TCP4 192.0.2.9 0.0.0.0 1 2\r\n");
  CHECK(text_of(ProxyProtocol::kV1, ring::net::Address{}, 80) == "PROXY UNKNOWN\r\n");
  // The longest line fits: two full IPv6 addresses and five-digit ports.
  const std::string longest =
      text_of(ProxyProtocol::kV1, address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535), 65535);
  CHECK(longest.size() <= 107);
  CHECK(longest.substr(longest.size() - 2) == "\r\n");
}

TEST_CASE("PROXY v2: signature, command, family, length and addresses") {
  const auto v4 = bytes_of(ProxyProtocol::kV2, address("127.0.0.2", 0x1234), 0x1F90);
  REQUIRE(v4.size() == 16 + 12);
  CHECK(std::vector<std::uint8_t>(v4.begin(), v4.begin() + 12) == kSignature);
  CHECK(v4[12] == 0x21);  // version 2, PROXY
  CHECK(v4[13] == 0x11);  // AF_INET, STREAM
  CHECK(v4[14] == 0);
  CHECK(v4[15] == 12);
  CHECK(std::vector<std::uint8_t>(v4.begin() + 16, v4.end()) ==
        std::vector<std::uint8_t>{127, 0, 0, 2, 0, 0, 0, 0, 0x12, 0x34, 0x1F, 0x90});

  const auto v6 = bytes_of(ProxyProtocol::kV2, address("2001:db8::7", 443), 8443);
  REQUIRE(v6.size() == 16 + 36);
  CHECK(v6[13] == 0x21);  // AF_INET6, STREAM
  CHECK(v6[15] == 36);
  CHECK(v6[16] == 0x20);
  CHECK(v6[17] == 0x01);
  CHECK(v6[31] == 0x07);
  CHECK(v6[48] == 0x01);  // source port 443
  CHECK(v6[49] == 0xBB);

  const auto mapped = bytes_of(ProxyProtocol::kV2, address("::ffff:10.1.2.3", 7), 8);
  REQUIRE(mapped.size() == 28);
  CHECK(mapped[13] == 0x11);
  CHECK(mapped[16] == 10);
  CHECK(mapped[19] == 3);

  const auto unknown = bytes_of(ProxyProtocol::kV2, ring::net::Address{}, 80);
  REQUIRE(unknown.size() == 16);
  CHECK(unknown[12] == 0x20);  // LOCAL
  CHECK(unknown[13] == 0x00);
  CHECK(unknown[15] == 0);
}

TEST_CASE("PROXY protocol versions by name; none writes nothing") {
  ProxyProtocol v = ProxyProtocol::kNone;
  CHECK(parse_proxy_protocol("v1", &v));
  CHECK(v == ProxyProtocol::kV1);
  CHECK(parse_proxy_protocol("v2", &v));
  CHECK(v == ProxyProtocol::kV2);
  CHECK_FALSE(parse_proxy_protocol("V2", &v));
  CHECK_FALSE(parse_proxy_protocol("", &v));
  CHECK_FALSE(parse_proxy_protocol("none", &v));
  CHECK(std::string(proxy_protocol_name(ProxyProtocol::kV2)) == "v2");
  CHECK(text_of(ProxyProtocol::kNone, address("127.0.0.2", 1), 2).empty());
}

}  // namespace
}  // namespace ringtun::tunnel
