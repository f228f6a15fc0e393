// The bench's verification: stream bytes are a function of (stream, offset), the stream hash does not depend on
// chunking, and any corrupted, missing, extra or reordered byte changes it; the sink messages round-trip.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "load/payload.hpp"

using namespace ringtun::bench;

namespace {
std::vector<std::uint8_t> stream_bytes(std::uint64_t stream, std::size_t size, std::uint64_t offset = 0) {
  std::vector<std::uint8_t> out(size);
  fill_stream(out.data(), size, stream, offset);
  return out;
}
std::uint64_t hash_of(const std::vector<std::uint8_t>& bytes) {
  StreamHasher h;
  h.update(bytes.data(), bytes.size());
  return h.digest();
}
}  // namespace

TEST_CASE("any chunk of a stream can be generated on its own, at any offset") {
  const auto whole = stream_bytes(3, 1000);
  for (std::size_t offset = 0; offset < 40; ++offset) {
    for (std::size_t size : {1u, 7u, 8u, 9u, 63u}) {
      const auto part = stream_bytes(3, size, offset);
      REQUIRE(std::memcmp(part.data(), whole.data() + offset, size) == 0);
    }
  }
  CHECK(stream_bytes(3, 64) != stream_bytes(4, 64));  // streams differ
}

TEST_CASE("the hash does not depend on how the bytes were split") {
  const auto data = stream_bytes(9, 300);
  const std::uint64_t whole = hash_of(data);
  for (std::size_t a = 0; a <= data.size(); ++a) {
    for (std::size_t b = a; b <= data.size(); b += 13) {
      StreamHasher h;
      h.update(data.data(), a);
      h.update(data.data() + a, b - a);
      h.update(data.data() + b, data.size() - b);
      REQUIRE(h.digest() == whole);
    }
  }
  CHECK(expected_stream_hash(9, 300) == whole);
  CHECK(expected_stream_hash(9, 100'000) == hash_of(stream_bytes(9, 100'000)));
}

TEST_CASE("a corrupted byte is detected, at every position and for every bit") {
  auto data = stream_bytes(1, 200);
  const std::uint64_t good = hash_of(data);
  for (std::size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] ^= static_cast<std::uint8_t>(1u << bit);
      REQUIRE(hash_of(data) != good);
      data[i] ^= static_cast<std::uint8_t>(1u << bit);
    }
  }
  CHECK(hash_of(data) == good);
}

TEST_CASE("missing, extra and swapped bytes are detected") {
  const auto data = stream_bytes(2, 64);
  const std::uint64_t good = hash_of(data);
  auto shorter = data;
  shorter.pop_back();
  CHECK(hash_of(shorter) != good);
  auto longer = data;
  longer.push_back(0);
  CHECK(hash_of(longer) != good);
  auto swapped = data;
  std::swap(swapped[10], swapped[30]);
  REQUIRE(swapped != data);
  CHECK(hash_of(swapped) != good);
  // A chunk from another stream (a relay that mixed up two connections) is caught too.
  auto mixed = data;
  const auto other = stream_bytes(5, 16, 16);
  std::memcpy(mixed.data() + 16, other.data(), 16);
  CHECK(hash_of(mixed) != good);
}

TEST_CASE("sink request and reply round-trip; a wrong magic is refused") {
  std::uint8_t req[kSinkRequestSize];
  encode_request(SinkRequest{kSinkFlagVerify, 100'000'000}, req);
  const auto r = decode_request(req);
  REQUIRE(r.has_value());
  CHECK(r->flags == kSinkFlagVerify);
  CHECK(r->length == 100'000'000);
  req[0] ^= 1;
  CHECK_FALSE(decode_request(req).has_value());

  std::uint8_t rep[kSinkReplySize];
  encode_reply(SinkReply{12345, 0xDEADBEEFCAFEF00DULL}, rep);
  const auto p = decode_reply(rep);
  REQUIRE(p.has_value());
  CHECK(p->received == 12345);
  CHECK(p->hash == 0xDEADBEEFCAFEF00DULL);
  CHECK_FALSE(decode_request(rep).has_value());  // a reply is not a request
}
