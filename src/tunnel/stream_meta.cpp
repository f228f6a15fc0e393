#include "tunnel/stream_meta.hpp"

#include <netinet/in.h>

#include <cstring>

namespace ringtun::tunnel {

namespace {
constexpr std::uint8_t kFamilyNone = 0;
constexpr std::uint8_t kFamilyV4 = 4;
constexpr std::uint8_t kFamilyV6 = 6;
constexpr std::size_t kFixed = 8;

void put16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v & 0xFF);
}
std::uint16_t get16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}
}  // namespace

Result<std::size_t> encode_stream_meta(const StreamMeta& meta, std::span<std::byte, kMaxStreamMeta> out) noexcept {
  if (meta.service.empty() || meta.service.size() > route::kMaxServiceNameLength) {
    return fail(Errc::kInvalidArgument, "stream metadata: service name must be 1..64 bytes");
  }
  std::byte* p = out.data();
  p[0] = std::byte{kStreamMetaVersion};
  p[1] = static_cast<std::byte>(meta.kind);
  p[3] = static_cast<std::byte>(meta.service.size());
  put16(p + 4, meta.public_port);
  std::size_t at = kFixed;
  if (meta.client.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&meta.client.storage);
    p[2] = std::byte{kFamilyV4};
    put16(p + 6, ntohs(v4->sin_port));
    std::memcpy(p + at, &v4->sin_addr, 4);
    at += 4;
  } else if (meta.client.family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&meta.client.storage);
    p[2] = std::byte{kFamilyV6};
    put16(p + 6, ntohs(v6->sin6_port));
    std::memcpy(p + at, &v6->sin6_addr, 16);
    at += 16;
  } else {
    p[2] = std::byte{kFamilyNone};
    put16(p + 6, 0);
  }
  std::memcpy(p + at, meta.service.data(), meta.service.size());
  at += meta.service.size();
  p[at] = static_cast<std::byte>(meta.flags);
  return at + 1;
}

Result<StreamMeta> decode_stream_meta(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < kFixed) return fail(Errc::kParse, "stream metadata: shorter than its 8-byte header");
  const std::byte* p = bytes.data();
  const auto version = std::to_integer<std::uint8_t>(p[0]);
  if (version != 1 && version != kStreamMetaVersion) {
    return fail(Errc::kParse, "stream metadata: unknown version (a newer gateway?)");
  }
  const std::size_t flags_length = version >= 2 ? 1 : 0;
  StreamMeta meta;
  const auto kind = std::to_integer<std::uint8_t>(p[1]);
  if (kind > static_cast<std::uint8_t>(route::Kind::kTls)) return fail(Errc::kParse, "stream metadata: unknown kind");
  meta.kind = static_cast<route::Kind>(kind);
  const auto family = std::to_integer<std::uint8_t>(p[2]);
  const std::size_t name_length = std::to_integer<std::size_t>(p[3]);
  meta.public_port = get16(p + 4);
  const std::uint16_t client_port = get16(p + 6);
  std::size_t address_length = 0;
  if (family == kFamilyV4) {
    address_length = 4;
  } else if (family == kFamilyV6) {
    address_length = 16;
  } else if (family != kFamilyNone) {
    return fail(Errc::kParse, "stream metadata: unknown address family");
  } else if (client_port != 0) {  // one encoding per meaning: no address, no port
    return fail(Errc::kParse, "stream metadata: a client port without a client address");
  }
  if (name_length == 0 || name_length > route::kMaxServiceNameLength) {
    return fail(Errc::kParse, "stream metadata: service name length out of range");
  }
  if (bytes.size() != kFixed + address_length + name_length + flags_length) {
    return fail(Errc::kParse, "stream metadata: length does not match its header");
  }
  if (family == kFamilyV4) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&meta.client.storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(client_port);
    std::memcpy(&v4->sin_addr, p + kFixed, 4);
    meta.client.length = sizeof(sockaddr_in);
  } else if (family == kFamilyV6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&meta.client.storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(client_port);
    std::memcpy(&v6->sin6_addr, p + kFixed, 16);
    meta.client.length = sizeof(sockaddr_in6);
  }
  meta.service = {reinterpret_cast<const char*>(p + kFixed + address_length), name_length};
  if (flags_length != 0) {
    meta.flags = std::to_integer<std::uint8_t>(p[kFixed + address_length + name_length]);
    if ((meta.flags & ~kStreamFlagsKnown) != 0) return fail(Errc::kParse, "stream metadata: unknown flags");
  }
  return meta;
}

}  // namespace ringtun::tunnel
