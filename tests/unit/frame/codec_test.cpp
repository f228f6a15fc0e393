// Codec tests: header layout, header validation, FrameBatch, and the incremental decoder fed at every split.
#include <doctest/doctest.h>

#include <numeric>

#include "sim.hpp"

using namespace frame_test;  // NOLINT

namespace {

// One frame of every type, with payloads where the type allows them.
std::vector<WholeFrame> sample_frames() {
  std::vector<WholeFrame> v;
  Bytes data(3000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + 1);
  Bytes settings(16);
  store_be32(settings.data(), 1);
  store_be32(settings.data() + 4, 32768);
  store_be32(settings.data() + 8, 4);
  store_be32(settings.data() + 12, 10);
  v.push_back({FrameHeader{FrameType::kSettings, 0, 0, 0, 16, 0}, settings});
  v.push_back({FrameHeader{FrameType::kControl, 0, 0, 0, 0, 0}, to_bytes(R"({"hello":"agent","token":"x"})")});
  v.push_back({FrameHeader{FrameType::kOpen, 0, 0, 1, 0, 0}, to_bytes("tcp://10.0.0.1:80")});
  v.push_back({FrameHeader{FrameType::kData, 0, 0, 1, 0, 0}, data});
  v.push_back({FrameHeader{FrameType::kData, flags::kFin, 0, 1, 0, 0}, {}});
  v.push_back({FrameHeader{FrameType::kWindowUpdate, 0, 0, 0, 0, 65536}, {}});
  v.push_back({FrameHeader{FrameType::kWindowUpdate, 0, 0, 3, 0, 1}, {}});
  v.push_back({FrameHeader{FrameType::kRst, 0, 0, 3, 0, static_cast<std::uint32_t>(ErrorCode::kCancel)}, {}});
  v.push_back({FrameHeader{FrameType::kPing, 0, 0, 0, 0, 0xdeadbeef}, {}});
  v.push_back({FrameHeader{FrameType::kPing, flags::kAck, 0, 0, 0, 0xdeadbeef}, {}});
  v.push_back({FrameHeader{FrameType::kOpen, flags::kFin, 0, 5, 0, 0}, {}});
  v.push_back({FrameHeader{FrameType::kData, 0, 0, 5, 0, 0}, Bytes(16384, std::byte{0x5a})});
  v.push_back({FrameHeader{FrameType::kGoaway, 0, 0, 7, 0, 0}, to_bytes("bye")});
  for (auto& f : v) f.header.length = static_cast<std::uint32_t>(f.payload.size());
  return v;
}

Bytes encode_all(const std::vector<WholeFrame>& frames) {
  Bytes out;
  FrameBatch batch;
  for (const auto& f : frames) {
    batch.clear();
    batch.add_frame(f.header, f.payload);
    Bytes b = flatten(batch);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

}  // namespace

TEST_CASE("header layout is big-endian as documented") {
  FrameHeader h{FrameType::kRst, 0x81, 0x0203, 0x04050607, 0x08090a0b, 0x0c0d0e0f};
  std::byte buf[kHeaderSize];
  encode_header(h, buf);
  const std::uint8_t expect[kHeaderSize] = {3, 0x81, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  CHECK(std::memcmp(buf, expect, kHeaderSize) == 0);
  CHECK(decode_header(buf) == h);
  CHECK(h.has(0x80));
  CHECK_FALSE(h.has(0x02));
}

TEST_CASE("every frame type round-trips through encoder and decoder") {
  auto frames = sample_frames();
  Bytes wire = encode_all(frames);
  auto decoded = decode_all(wire, {wire.size()});
  REQUIRE(decoded.size() == frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    CAPTURE(i);
    CHECK(decoded[i] == frames[i]);
    CHECK(check_header(frames[i].header, 16384) == ErrorCode::kNoError);
  }
  for (std::uint8_t t = 0; t < kFrameTypeCount; ++t) {
    CHECK(std::string(frame_type_name(static_cast<FrameType>(t))) != "UNKNOWN");
  }
  CHECK(std::string(error_code_name(ErrorCode::kEnhanceYourCalm)) == "ENHANCE_YOUR_CALM");
}

TEST_CASE("decoder yields identical frames for a split at every byte position") {
  auto frames = sample_frames();
  Bytes wire = encode_all(frames);
  for (std::size_t cut = 1; cut < wire.size(); ++cut) {
    Decoder d(16384);
    std::vector<WholeFrame> out;
    Bytes first(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(cut));
    Bytes second(wire.begin() + static_cast<std::ptrdiff_t>(cut), wire.end());
    for (Bytes* chunk : {&first, &second}) {
      std::span<const std::byte> in(*chunk);
      DecodedFrame f;
      for (;;) {
        auto r = d.next(in, f);
        REQUIRE(r.has_value());
        if (!*r) break;
        if (f.first) out.push_back({f.header, {}});
        out.back().payload.insert(out.back().payload.end(), f.payload.begin(), f.payload.end());
      }
      CHECK(in.empty());
    }
    CHECK_FALSE(d.mid_frame());
    REQUIRE(out == frames);
  }
}

TEST_CASE("decoder yields identical frames for random chunk sizes, including 1-byte chunks") {
  auto frames = sample_frames();
  Bytes wire = encode_all(frames);
  CHECK(decode_all(wire, {1}) == frames);
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> sizes(64);
    std::size_t limit = round % 2 == 0 ? 40 : 9000;
    for (auto& s : sizes) s = 1 + rng() % limit;
    REQUIRE(decode_all(wire, sizes) == frames);
  }
}

TEST_CASE("DATA payload is handed out as views into the caller's chunk, never copied") {
  Bytes payload(1000, std::byte{1});
  FrameBatch batch;
  batch.add_frame(FrameHeader{FrameType::kData, 0, 0, 1, 1000, 0}, payload);
  Bytes wire = flatten(batch);
  Decoder d(16384);
  // Split mid-payload: two fragments, each pointing into its own chunk.
  std::span<const std::byte> a(wire.data(), 500);
  std::span<const std::byte> b(wire.data() + 500, wire.size() - 500);
  DecodedFrame f;
  auto r = d.next(a, f);
  REQUIRE((r.has_value() && *r));
  CHECK(f.first);
  CHECK_FALSE(f.last);
  CHECK(f.payload.data() == wire.data() + kHeaderSize);
  CHECK(f.payload.size() == 500 - kHeaderSize);
  r = d.next(a, f);
  REQUIRE((r.has_value() && !*r));
  CHECK(d.mid_frame());
  r = d.next(b, f);
  REQUIRE((r.has_value() && *r));
  CHECK_FALSE(f.first);
  CHECK(f.last);
  CHECK(f.payload.data() == wire.data() + 500);
}

TEST_CASE("decoder rejects malformed headers with the specific code") {
  struct Case {
    FrameHeader h;
    ErrorCode code;
  };
  const Case cases[] = {
      {FrameHeader{static_cast<FrameType>(8), 0, 0, 0, 0, 0}, ErrorCode::kUnknownFrameType},
      {FrameHeader{static_cast<FrameType>(0xff), 0, 0, 1, 0, 0}, ErrorCode::kUnknownFrameType},
      {FrameHeader{FrameType::kData, 0, 0, 1, 16385, 0}, ErrorCode::kFrameSizeError},
      {FrameHeader{FrameType::kData, 0, 0, 1, 0xffffffff, 0}, ErrorCode::kFrameSizeError},
      {FrameHeader{FrameType::kData, 0, 0, 0, 1, 0}, ErrorCode::kProtocolError},
      {FrameHeader{FrameType::kOpen, 0, 0, 1, kMaxOpenPayload + 1, 0}, ErrorCode::kFrameSizeError},
      {FrameHeader{FrameType::kWindowUpdate, 0, 0, 0, 0, 0}, ErrorCode::kProtocolError},
      {FrameHeader{FrameType::kWindowUpdate, 0, 0, 0, 4, 1}, ErrorCode::kFrameSizeError},
      {FrameHeader{FrameType::kRst, 0, 0, 0, 0, 1}, ErrorCode::kProtocolError},
      {FrameHeader{FrameType::kPing, 0, 0, 1, 0, 1}, ErrorCode::kProtocolError},
      {FrameHeader{FrameType::kSettings, 0, 0, 0, 7, 0}, ErrorCode::kFrameSizeError},
      {FrameHeader{FrameType::kSettings, 0, 0, 0, 8 * 33, 0}, ErrorCode::kFrameSizeError},
      {FrameHeader{FrameType::kControl, 0, 0, 3, 0, 0}, ErrorCode::kProtocolError},
      {FrameHeader{FrameType::kGoaway, 0, 0, 0, kMaxGoawayPayload + 1, 0}, ErrorCode::kFrameSizeError},
  };
  for (const auto& c : cases) {
    CAPTURE(static_cast<int>(c.h.type));
    std::byte buf[kHeaderSize];
    encode_header(c.h, buf);
    Decoder d(16384);
    std::span<const std::byte> in(buf);
    DecodedFrame f;
    auto r = d.next(in, f);
    REQUIRE_FALSE(r.has_value());
    CHECK(d.error_code() == c.code);
    // Sticky: the decoder never resumes mid-garbage.
    std::span<const std::byte> more(buf);
    CHECK_FALSE(d.next(more, f).has_value());
  }
}

TEST_CASE("FrameBatch merges adjacent slices, copies small payloads, and supports partial sends") {
  FrameBatch batch;
  Bytes buf(100, std::byte{9});
  batch.add_frame(FrameHeader{FrameType::kWindowUpdate, 0, 0, 0, 0, 5}, {});
  batch.add_frame(FrameHeader{FrameType::kWindowUpdate, 0, 0, 1, 0, 5}, {});
  CHECK(batch.iov_count() == 1);  // two headers, contiguous in the arena
  std::byte* slot = batch.reserve_header();
  batch.add_payload(std::span<const std::byte>(buf).first(40));
  batch.add_payload(std::span<const std::byte>(buf).subspan(40, 60));  // contiguous with the previous slice
  FrameBatch::finish_header(slot, FrameHeader{FrameType::kData, 0, 0, 1, 100, 0});
  CHECK(batch.iov_count() == 2);  // the DATA header joins the two before it
  CHECK(batch.frames() == 3);
  REQUIRE(batch.add_frame_copy(FrameHeader{FrameType::kOpen, 0, 0, 3, 3, 0}, to_bytes("abc")));
  Bytes whole = flatten(batch);
  CHECK(whole.size() == 4 * kHeaderSize + 103);
  auto frames = decode_all(whole, {whole.size()});
  REQUIRE(frames.size() == 4);
  CHECK(frames[2].payload == buf);
  CHECK(to_string(frames[3].payload) == "abc");

  // Partial sends: advancing by odd amounts leaves exactly the unsent tail.
  std::size_t sent = 0;
  for (std::size_t step : {1, 15, 17, 50, 33}) {
    batch.advance(step);
    sent += step;
    Bytes rest = flatten(batch);
    REQUIRE(rest.size() == whole.size() - sent);
    CHECK(std::equal(rest.begin(), rest.end(), whole.begin() + static_cast<std::ptrdiff_t>(sent)));
  }
  batch.advance(batch.bytes());
  CHECK(batch.empty());
  CHECK(batch.iov_count() == 0);

  // The copy arena is bounded.
  batch.clear();
  Bytes big(kMaxOpenPayload, std::byte{1});
  std::size_t fitted = 0;
  while (batch.add_frame_copy(FrameHeader{FrameType::kOpen, 0, 0, 1, kMaxOpenPayload, 0}, big)) ++fitted;
  CHECK(fitted == FrameBatch::kCopyArenaSize / kMaxOpenPayload);
}
