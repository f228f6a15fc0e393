// Test harness for src/frame: a recording SessionHandler, helpers that flatten batches into bytes, and a simulated
// pair of endpoints (gateway + agent) joined by an in-memory "socket" that can split the byte stream into chunks of
// any size. Deterministic: time is a counter the test advances, randomness is a seeded std::mt19937_64.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "frame/decoder.hpp"
#include "frame/encoder.hpp"
#include "frame/session.hpp"
#include "frame/wire.hpp"

namespace frame_test {

using namespace ringtun::frame;  // NOLINT(google-build-using-namespace): test code
using Bytes = std::vector<std::byte>;

inline Bytes to_bytes(std::string_view s) {
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}
inline std::string to_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// 64-bit FNV-1a, incremental.
struct Fnv64 {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  void add(std::span<const std::byte> b) {
    for (std::byte c : b) {
      h ^= static_cast<std::uint8_t>(c);
      h *= 0x100000001b3ULL;
    }
  }
};

// Concatenates a batch's iovecs.
inline Bytes flatten(const FrameBatch& batch) {
  Bytes out;
  out.reserve(batch.bytes());
  for (std::size_t i = 0; i < batch.iov_count(); ++i) {
    const auto* p = static_cast<const std::byte*>(batch.iov()[i].iov_base);
    out.insert(out.end(), p, p + batch.iov()[i].iov_len);
  }
  return out;
}

// A complete frame reassembled from decoder events.
struct WholeFrame {
  FrameHeader header;
  Bytes payload;
  friend bool operator==(const WholeFrame&, const WholeFrame&) = default;
};

// Decodes `bytes` (no preface) fed in chunks of the given sizes (cycled); stops at the first error.
inline std::vector<WholeFrame> decode_all(std::span<const std::byte> bytes, const std::vector<std::size_t>& chunks,
                                          ErrorCode* error = nullptr, std::uint32_t max_payload = 16384) {
  Decoder d(max_payload);
  std::vector<WholeFrame> out;
  std::size_t pos = 0;
  std::size_t ci = 0;
  while (pos < bytes.size()) {
    std::size_t n = std::min(chunks[ci++ % chunks.size()], bytes.size() - pos);
    // Copy the chunk into its own buffer and scribble over it after use: proves no view outlives its chunk.
    Bytes chunk(bytes.begin() + static_cast<std::ptrdiff_t>(pos), bytes.begin() + static_cast<std::ptrdiff_t>(pos + n));
    std::span<const std::byte> in(chunk);
    DecodedFrame f;
    for (;;) {
      auto r = d.next(in, f);
      if (!r) {
        if (error != nullptr) *error = d.error_code();
        return out;
      }
      if (!*r) break;
      if (f.first) out.push_back(WholeFrame{f.header, {}});
      out.back().payload.insert(out.back().payload.end(), f.payload.begin(), f.payload.end());
    }
    std::memset(chunk.data(), 0xEE, chunk.size());
    pos += n;
  }
  return out;
}

struct StreamRx {
  StreamId id = 0;
  Bytes data;     // everything delivered (when keep_data)
  Fnv64 fnv;
  std::uint64_t delivered = 0;
  std::uint64_t consumed = 0;
  bool fin = false;
  bool reset = false;
  bool closed = false;
  ErrorCode reset_code = ErrorCode::kNoError;
  Bytes open_meta;
};

// Records every callback; optionally consumes delivered data immediately.
class Recorder : public SessionHandler {
 public:
  Session* session = nullptr;
  bool auto_consume = true;
  bool keep_data = true;
  std::map<std::pair<std::uint32_t, std::uint32_t>, StreamRx> rx;  // by (index, generation)
  std::vector<StreamHandle> opened;       // peer-opened, in order
  std::vector<std::uint64_t> released;    // cookies, in release order
  std::vector<Bytes> controls;
  std::vector<std::pair<StreamId, ErrorCode>> goaways;
  std::vector<std::uint64_t> ping_acks;
  std::uint64_t closed_count = 0;

  static std::pair<std::uint32_t, std::uint32_t> key(StreamHandle h) { return {h.index, h.generation}; }
  StreamRx& of(StreamHandle h) { return rx[key(h)]; }

  void on_open(StreamHandle h, StreamId id, std::span<const std::byte> meta) override {
    StreamRx& r = of(h);
    r.id = id;
    r.open_meta.assign(meta.begin(), meta.end());
    opened.push_back(h);
  }
  void on_data(StreamHandle h, std::span<const std::byte> bytes) override {
    StreamRx& r = of(h);
    REQUIRE_FALSE(r.fin);
    if (keep_data) r.data.insert(r.data.end(), bytes.begin(), bytes.end());
    r.fnv.add(bytes);
    r.delivered += bytes.size();
    if (auto_consume && session != nullptr) {
      REQUIRE(session->consumed(h, bytes.size()).has_value());
      r.consumed += bytes.size();
    }
  }
  void on_fin(StreamHandle h) override { of(h).fin = true; }
  void on_reset(StreamHandle h, ErrorCode code) override {
    of(h).reset = true;
    of(h).reset_code = code;
  }
  void on_closed(StreamHandle h) override {
    StreamRx& r = of(h);
    REQUIRE_FALSE(r.closed);
    r.closed = true;
    ++closed_count;
  }
  void on_goaway(StreamId last, ErrorCode code) override { goaways.emplace_back(last, code); }
  void on_control(std::span<const std::byte> json) override { controls.emplace_back(json.begin(), json.end()); }
  void on_ping_ack(std::uint64_t rtt_us) override { ping_acks.push_back(rtt_us); }
  void on_send_released(std::uint64_t cookie) override { released.push_back(cookie); }
};

// One side of the simulated connection.
struct Endpoint {
  Recorder handler;
  Session session;
  FrameBatch batch;
  Bytes last_error_context;

  explicit Endpoint(const SessionOptions& options) : session(options, handler) { handler.session = &session; }
};

inline SessionOptions options_for(Role role) {
  SessionOptions o;
  o.role = role;
  return o;
}

// Decodes one direction of the simulated wire so tests can see which frames were sent (headers only).
struct Tap {
  Decoder decoder{1U << 20};
  std::size_t preface_left = kPrefaceSize;
  std::vector<FrameHeader> frames;
  void see(std::span<const std::byte> bytes) {
    std::size_t skip = std::min(preface_left, bytes.size());
    preface_left -= skip;
    bytes = bytes.subspan(skip);
    DecodedFrame f;
    for (;;) {
      auto r = decoder.next(bytes, f);
      REQUIRE(r.has_value());
      if (!*r) return;
      if (f.first) frames.push_back(f.header);
    }
  }
  std::size_t count(FrameType t) const {
    std::size_t n = 0;
    for (const auto& h : frames) n += h.type == t ? 1 : 0;
    return n;
  }
  const FrameHeader* last(FrameType t) const {
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
      if (it->type == t) return &*it;
    }
    return nullptr;
  }
};

// Gateway and agent joined by an in-memory byte pipe in each direction.
struct Pair {
  Endpoint gw;
  Endpoint ag;
  std::mt19937_64 rng{12345};
  std::uint64_t now_us = 1'000'000;
  std::size_t max_chunk = 0;  // 0: feed each batch whole; else random chunks in [1, max_chunk]
  std::uint64_t bytes_gw_to_ag = 0;
  std::uint64_t bytes_ag_to_gw = 0;
  bool gw_failed = false;
  bool ag_failed = false;
  Tap gw_tap;  // frames the gateway sent
  Tap ag_tap;  // frames the agent sent

  Pair() : Pair(options_for(Role::kGateway), options_for(Role::kAgent)) {}
  Pair(const SessionOptions& g, const SessionOptions& a) : gw(g), ag(a) {}

  void tick(std::uint64_t us = 100) {
    now_us += us;
    gw.session.set_time(now_us);
    ag.session.set_time(now_us);
  }

  // Moves one batch from `from` to `to`; returns the bytes moved.
  std::size_t transfer(Endpoint& from, Endpoint& to, bool& to_failed) {
    from.session.build_batch(from.batch);
    if (from.batch.empty()) return 0;
    Bytes wire = flatten(from.batch);
    (&from == &gw ? gw_tap : ag_tap).see(wire);
    from.session.sent(wire.size());
    std::size_t pos = 0;
    while (pos < wire.size() && !to_failed) {
      std::size_t n = wire.size() - pos;
      if (max_chunk > 0) n = std::min<std::size_t>(n, 1 + rng() % max_chunk);
      auto st = to.session.feed(std::span<const std::byte>(wire).subspan(pos, n));
      if (!st) to_failed = true;
      pos += n;
    }
    return wire.size();
  }

  // One round: each side sends one batch. Returns the bytes moved.
  std::size_t step() {
    tick();
    std::size_t a = transfer(gw, ag, ag_failed);
    std::size_t b = transfer(ag, gw, gw_failed);
    bytes_gw_to_ag += a;
    bytes_ag_to_gw += b;
    return a + b;
  }

  // Steps until nothing moves (or the bound is hit).
  void settle(int max_steps = 100000) {
    for (int i = 0; i < max_steps; ++i) {
      if (step() == 0) return;
    }
    FAIL("Pair::settle did not converge");
  }
};

}  // namespace frame_test
