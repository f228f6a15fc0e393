// The OPEN metadata codec: round trips, and every malformed input refused (split at every length).
#include <doctest/doctest.h>
#include <arpa/inet.h>

#include <array>
#include <span>

#include "frame/wire.hpp"
#include "tunnel/stream_meta.hpp"

using namespace ringtun;
using namespace ringtun::tunnel;

namespace {
struct Encoded {
  std::array<std::byte, kMaxStreamMeta + 1> bytes{};  // one spare byte for the trailing-garbage case
  std::size_t size = 0;
  std::span<const std::byte> span() const { return {bytes.data(), size}; }
};
Encoded encode(const StreamMeta& meta) {
  Encoded out;
  auto n = encode_stream_meta(meta, std::span<std::byte, kMaxStreamMeta>(out.bytes.data(), kMaxStreamMeta));
  REQUIRE(n);
  out.size = *n;
  return out;
}
}  // namespace

TEST_CASE("stream metadata round-trips with an IPv4, an IPv6 or no client address") {
  for (const char* client : {"203.0.113.9:51234", "[2001:db8::7]:443", ""}) {
    CAPTURE(client);
    StreamMeta meta;
    meta.kind = route::Kind::kTcp;
    meta.public_port = 8080;
    meta.service = "web-1.prod";
    if (*client != '\0') meta.client = *ring::net::parse_address(client);
    const Encoded bytes = encode(meta);
    CHECK(bytes.size <= frame::kMaxOpenPayload);
    auto back = decode_stream_meta(bytes.span());
    REQUIRE(back);
    CHECK(back->kind == route::Kind::kTcp);
    CHECK(back->public_port == 8080);
    CHECK(back->service == "web-1.prod");
    if (*client != '\0') {
      CHECK(back->client.to_string() == client);
    } else {
      CHECK(back->client.family() == AF_UNSPEC);
    }
  }
  StreamMeta longest;
  longest.service = std::string_view("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl");  // 64
  longest.client = *ring::net::parse_address("[::1]:1");
  CHECK(encode(longest).size == kMaxStreamMeta);
}

TEST_CASE("stream metadata: a service name of 0 or 65 bytes is not encoded") {
  std::array<std::byte, kMaxStreamMeta> buffer{};
  StreamMeta meta;
  CHECK_FALSE(encode_stream_meta(meta, buffer));
  const std::string long_name(65, 'x');
  meta.service = long_name;
  CHECK_FALSE(encode_stream_meta(meta, buffer));
}

TEST_CASE("stream metadata: every truncation, a wrong version, kind, family or length is refused") {
  StreamMeta meta;
  meta.public_port = 22;
  meta.service = "ssh";
  meta.client = *ring::net::parse_address("192.0.2.1:4000");
  const Encoded good = encode(meta);
  for (std::size_t n = 0; n < good.size; ++n) {
    CAPTURE(n);
    CHECK_FALSE(decode_stream_meta({good.bytes.data(), n}));
  }
  auto with = [&](std::size_t at, std::uint8_t value) {
    Encoded copy = good;
    copy.bytes[at] = std::byte{value};
    return copy;
  };
  CHECK_FALSE(decode_stream_meta(with(0, 3).span()));    // version
  CHECK_FALSE(decode_stream_meta(with(0, 1).span()));    // version 1 has no flags byte: the length does not match
  CHECK_FALSE(decode_stream_meta(with(good.size - 1, 4).span()));  // an unknown flag
  CHECK_FALSE(decode_stream_meta(with(1, 3).span()));    // kind
  CHECK_FALSE(decode_stream_meta(with(2, 5).span()));    // family
  CHECK_FALSE(decode_stream_meta(with(2, 6).span()));    // says IPv6: the length no longer matches
  CHECK_FALSE(decode_stream_meta(with(3, 0).span()));    // empty name
  CHECK_FALSE(decode_stream_meta(with(3, 200).span()));  // name longer than the rules allow
  StreamMeta none;
  none.service = "web";
  Encoded no_address = encode(none);
  no_address.bytes[6] = std::byte{0xc5};  // a client port with no client address: refused (not canonical)
  CHECK_FALSE(decode_stream_meta(no_address.span()));
  Encoded longer = good;
  longer.bytes[longer.size++] = std::byte{'x'};
  CHECK_FALSE(decode_stream_meta(longer.span()));  // trailing bytes
}

TEST_CASE("stream metadata: http flags round-trip; version 1 (no flags byte) is still read") {
  StreamMeta meta;
  meta.kind = route::Kind::kHttp;
  meta.service = "web";
  meta.flags = kStreamHeadRequest | kStreamUpgrade;
  const Encoded v2 = encode(meta);
  auto back = decode_stream_meta(v2.span());
  REQUIRE(back);
  CHECK(back->kind == route::Kind::kHttp);
  CHECK(back->flags == (kStreamHeadRequest | kStreamUpgrade));
  Encoded v1 = v2;
  v1.bytes[0] = std::byte{1};
  --v1.size;  // a version-1 gateway's metadata ends with the service name
  back = decode_stream_meta(v1.span());
  REQUIRE(back);
  CHECK(back->service == "web");
  CHECK(back->flags == 0);
}
