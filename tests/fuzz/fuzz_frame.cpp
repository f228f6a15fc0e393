// libFuzzer target over src/frame: the incremental decoder and the Session state machine, driven by hostile bytes.
//
// Input layout: [mode][chunk seed][wire bytes...]
//   mode bit 0: prepend a valid preface + SETTINGS, so mutations spend their time past the handshake
//   mode bit 1: the session is a gateway (else an agent)
//   chunk seed: seeds the PRNG that picks chunk sizes and the I/O layer's actions between chunks
// The same wire bytes go through a bare Decoder (checking fragment bookkeeping) and a Session whose handler
// behaves like a busy I/O layer: it queues data, consumes, resets, opens, pings, builds batches and reports
// partial sends. Invariants (every queued cookie released exactly once, windows never overdrawn) trap on failure;
// crashes, leaks and sanitizer reports are caught by the harness.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "frame/decoder.hpp"
#include "frame/encoder.hpp"
#include "frame/session.hpp"
#include "frame/wire.hpp"

namespace {

using namespace ringtun::frame;  // NOLINT

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

const std::byte kPayload[64 * 1024] = {};

class FuzzHandler : public SessionHandler {
 public:
  Session* session = nullptr;
  std::vector<StreamHandle> live;
  std::uint64_t queued = 0;
  std::uint64_t released = 0;
  std::vector<std::uint8_t> seen;  // cookie -> released?
  Rng* rng = nullptr;

  void on_open(StreamHandle h, StreamId id, std::span<const std::byte> meta) override {
    (void)id;
    FUZZ_CHECK(meta.size() <= kMaxOpenPayload);
    live.push_back(h);
    if (rng->next() % 8 == 0) (void)session->reset_stream(h, ErrorCode::kRefusedStream);  // from inside a callback
  }
  void on_data(StreamHandle h, std::span<const std::byte> bytes) override {
    if (!bytes.empty()) {
      volatile std::byte sink = bytes[bytes.size() - 1];  // the view must be readable
      (void)sink;
    }
    if (rng->next() % 2 == 0) FUZZ_CHECK(session->consumed(h, bytes.size()).has_value());
  }
  void on_fin(StreamHandle h) override {
    if (rng->next() % 2 == 0) (void)session->close_stream(h);
  }
  void on_reset(StreamHandle, ErrorCode) override {}
  void on_closed(StreamHandle h) override {
    for (auto& s : live) {
      if (s == h) {
        s = live.back();
        live.pop_back();
        break;
      }
    }
  }
  void on_goaway(StreamId, ErrorCode) override {}
  void on_control(std::span<const std::byte> json) override {
    if (!json.empty()) {
      volatile std::byte sink = json[0];
      (void)sink;
    }
  }
  void on_send_released(std::uint64_t cookie) override {
    FUZZ_CHECK(cookie < seen.size() && seen[cookie] == 0);  // exactly once
    seen[cookie] = 1;
    ++released;
  }
};

void run_decoder(std::span<const std::byte> wire, Rng rng) {
  Decoder d(kDefaultMaxFrameSize);
  std::uint64_t fragment_bytes = 0;
  std::uint32_t expected = 0;
  while (!wire.empty()) {
    std::size_t n = 1 + rng.next() % 2048;
    std::span<const std::byte> chunk = wire.first(n < wire.size() ? n : wire.size());
    wire = wire.subspan(chunk.size());
    DecodedFrame f;
    for (;;) {
      auto r = d.next(chunk, f);
      if (!r) return;
      if (!*r) break;
      if (f.first) {
        fragment_bytes = 0;
        expected = f.header.length;
      }
      fragment_bytes += f.payload.size();
      FUZZ_CHECK(fragment_bytes <= expected);
      if (f.last) FUZZ_CHECK(fragment_bytes == expected);
    }
  }
}

void app_actions(Session& s, FuzzHandler& h, FrameBatch& batch, Rng& rng) {
  int actions = static_cast<int>(rng.next() % 4);
  for (int i = 0; i < actions; ++i) {
    switch (rng.next() % 9) {
      case 0: {
        auto opened = s.open_stream({}, rng.next() % 4 == 0);
        if (opened) h.live.push_back(*opened);
        break;
      }
      case 1:
      case 2:
        if (!h.live.empty()) {
          StreamHandle sh = h.live[rng.next() % h.live.size()];
          std::size_t n = 1 + rng.next() % sizeof kPayload;
          std::uint64_t cookie = h.seen.size();
          if (s.queue_data(sh, std::span<const std::byte>(kPayload, n), cookie, rng.next() % 8 == 0)) {
            h.seen.push_back(0);
            ++h.queued;
          }
        }
        break;
      case 3:
        if (!h.live.empty()) {
          StreamHandle sh = h.live[rng.next() % h.live.size()];
          auto held = s.unconsumed(sh);
          if (held && *held > 0) FUZZ_CHECK(s.consumed(sh, 1 + rng.next() % *held).has_value());
        }
        break;
      case 4:
        if (!h.live.empty()) (void)s.reset_stream(h.live[rng.next() % h.live.size()], ErrorCode::kCancel);
        break;
      case 5:
        (void)s.ping();
        s.flush_credit();
        break;
      case 6:
        if (rng.next() % 16 == 0) (void)s.goaway(ErrorCode::kNoError);
        break;
      default: {
        // Build a batch and report a random part of it sent; the rest goes later (in order).
        s.build_batch(batch);
        FUZZ_CHECK(batch.bytes() <= 256 * 1024 + FrameBatch::kMaxFrames * kHeaderSize + kPrefaceSize + 64 * 1024);
        std::size_t total = batch.bytes();
        std::size_t part = total == 0 ? 0 : rng.next() % (total + 1);
        s.sent(part);
        s.sent(total - part);
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0];
  Rng rng{0x9E3779B97F4A7C15ULL ^ data[1]};
  std::vector<std::byte> wire;
  if ((mode & 1) != 0) {
    wire.insert(wire.end(), kPreface.begin(), kPreface.end());
    std::byte hdr[kHeaderSize];
    encode_header(FrameHeader{FrameType::kSettings, 0, 0, 0, 0, 0}, hdr);
    wire.insert(wire.end(), hdr, hdr + kHeaderSize);
  }
  const auto* body = reinterpret_cast<const std::byte*>(data + 2);
  wire.insert(wire.end(), body, body + (size - 2));

  run_decoder(std::span<const std::byte>(wire).subspan((mode & 1) != 0 ? kPrefaceSize : 0), rng);

  SessionOptions o;
  o.role = (mode & 2) != 0 ? Role::kGateway : Role::kAgent;
  o.max_concurrent_streams = 8;
  o.max_local_streams = 8;
  o.max_pending_opens = 4;
  o.max_send_segments = 64;
  o.max_control_frames = 16;
  o.control_buffer_bytes = 4096;
  o.initial_stream_window = kMinInitialWindow;  // small windows: flow-control edges are reached quickly
  o.initial_connection_window = 2 * kMinInitialWindow;
  o.autotune = (mode & 4) != 0;
  o.flood.max_pings = 20;
  o.flood.max_empty_frames = 20;
  o.flood.max_peer_resets = 20;
  o.flood.max_closed_stream_frames = 20;
  o.flood.max_refused_streams = 20;
  o.flood.max_control_frames = 20;
  o.flood.max_small_window_updates = 20;
  FuzzHandler handler;
  handler.rng = &rng;
  Session session(o, handler);
  handler.session = &session;
  auto batch = std::make_unique<FrameBatch>();
  std::uint64_t now = 1;
  std::span<const std::byte> rest(wire);
  while (!rest.empty()) {
    std::size_t n = 1 + rng.next() % 512;
    std::span<const std::byte> chunk = rest.first(n < rest.size() ? n : rest.size());
    rest = rest.subspan(chunk.size());
    now += rng.next() % 5000;
    session.set_time(now);
    bool ok = session.feed(chunk).has_value();
    if (!ok) {
      FUZZ_CHECK(session.failed());
      FUZZ_CHECK(!session.feed(chunk).has_value());  // sticky
      break;
    }
    app_actions(session, handler, *batch, rng);
    FUZZ_CHECK(session.connection_receive_window().held() <= session.connection_receive_window().window());
  }
  // Drain what is left, then tear down: every cookie must come back exactly once.
  for (int i = 0; i < 4 && session.wants_write(); ++i) {
    session.build_batch(*batch);
    session.sent(batch->bytes());
  }
  session.abort_all();
  FUZZ_CHECK(handler.released == handler.queued);
  FUZZ_CHECK(session.live_streams() == 0);
  return 0;
}
