// Limits and abuse defences: a hand-written hostile peer feeds raw bytes to a Session; every case must end in
// the specific answer (RST or GOAWAY with its code), never a crash or unbounded memory.
#include <doctest/doctest.h>

#include "sim.hpp"

using namespace frame_test;  // NOLINT

namespace {

// Raw bytes from a hostile gateway (odd stream ids).
struct Raw {
  Bytes b;
  Raw& preface() {
    b.insert(b.end(), kPreface.begin(), kPreface.end());
    return *this;
  }
  Raw& frame(FrameType t, std::uint8_t fl, StreamId id, std::uint32_t arg, std::span<const std::byte> payload = {}) {
    std::byte hdr[kHeaderSize];
    encode_header(FrameHeader{t, fl, 0, id, static_cast<std::uint32_t>(payload.size()), arg}, hdr);
    b.insert(b.end(), hdr, hdr + kHeaderSize);
    b.insert(b.end(), payload.begin(), payload.end());
    return *this;
  }
  Raw& settings(std::initializer_list<std::pair<SettingId, std::uint32_t>> entries = {}) {
    Bytes p;
    for (auto [id, v] : entries) {
      std::byte e[8];
      store_be32(e, static_cast<std::uint32_t>(id));
      store_be32(e + 4, v);
      p.insert(p.end(), e, e + 8);
    }
    return frame(FrameType::kSettings, 0, 0, 0, p);
  }
  Raw& hello() { return preface().settings(); }
  Raw& open(StreamId id, std::uint8_t fl = 0) { return frame(FrameType::kOpen, fl, id, 0); }
  Raw& data(StreamId id, std::size_t n, std::uint8_t fl = 0) {
    Bytes p(n, std::byte{0x61});
    return frame(FrameType::kData, fl, id, 0, p);
  }
  Raw& window(StreamId id, std::uint32_t inc) { return frame(FrameType::kWindowUpdate, 0, id, inc); }
  Raw& rst(StreamId id, ErrorCode c) { return frame(FrameType::kRst, 0, id, static_cast<std::uint32_t>(c)); }
  Raw& ping(std::uint32_t v) { return frame(FrameType::kPing, 0, 0, v); }
};

// The agent under attack.
struct Victim {
  Recorder handler;
  Session session;
  FrameBatch batch;
  Tap out;
  ringtun::Status last;

  explicit Victim(SessionOptions o = options_for(Role::kAgent)) : session(o, handler) {
    handler.session = &session;
    session.set_time(1'000'000);
  }
  // Outcome of feed(); not [[nodiscard]] because the abuse cases check `last` via expect_goaway.
  struct Fed {
    bool ok;
    bool has_value() const { return ok; }
  };
  // Feeds everything (in 1000-byte chunks, stopping at the first error), then collects what the victim sends.
  Fed feed(const Raw& r) {
    last = ringtun::Status{};
    for (std::size_t pos = 0; pos < r.b.size() && last; pos += 1000) {
      last = session.feed(std::span<const std::byte>(r.b).subspan(pos, std::min<std::size_t>(1000, r.b.size() - pos)));
    }
    flush();
    return Fed{last.has_value()};
  }
  void flush() {
    for (int i = 0; i < 100 && session.wants_write(); ++i) {
      session.build_batch(batch);
      Bytes wire = flatten(batch);
      out.see(wire);
      session.sent(wire.size());
    }
  }
  // The GOAWAY code sent, or -1.
  long goaway_code() const {
    const FrameHeader* h = out.last(FrameType::kGoaway);
    return h == nullptr ? -1 : static_cast<long>(h->arg);
  }
  long rst_code(StreamId id) const {
    for (auto it = out.frames.rbegin(); it != out.frames.rend(); ++it) {
      if (it->type == FrameType::kRst && it->stream == id) return static_cast<long>(it->arg);
    }
    return -1;
  }
};

long code(ErrorCode c) { return static_cast<long>(c); }

void expect_goaway(Victim& v, ErrorCode c, ringtun::Errc errc) {
  REQUIRE_FALSE(v.last.has_value());
  CHECK(v.last.error().code() == errc);
  CHECK(v.session.failed());
  CHECK(v.session.error_code() == c);
  CHECK(v.goaway_code() == code(c));
  // Sticky: more input is refused, nothing is processed.
  Bytes more = Raw{}.ping(1).b;
  CHECK_FALSE(v.session.feed(more).has_value());
}

}  // namespace

TEST_CASE("a well-behaved raw peer is accepted (sanity check of the harness)") {
  Victim v;
  Raw r;
  r.hello().open(1).data(1, 100).window(0, 5000).window(1, 5000).ping(7).rst(1, ErrorCode::kCancel);
  REQUIRE(v.feed(r).has_value());
  CHECK(v.handler.opened.size() == 1);
  CHECK(v.out.count(FrameType::kPing) == 1);
  CHECK(v.goaway_code() == -1);
}

TEST_CASE("preface and handshake violations") {
  SUBCASE("garbage instead of the preface") {
    Victim v;
    Raw r;
    r.b = to_bytes("GET / HTTP/1.1\r\n\r\n");
    v.feed(r);
    expect_goaway(v, ErrorCode::kProtocolError, ringtun::Errc::kProtocol);
  }
  SUBCASE("another protocol version") {
    Victim v;
    Raw r;
    r.preface();
    r.b.back() = std::byte{2};
    v.feed(r);
    expect_goaway(v, ErrorCode::kVersionMismatch, ringtun::Errc::kUnsupported);
  }
  SUBCASE("first frame is not SETTINGS") {
    Victim v;
    v.feed(Raw{}.preface().ping(1));
    expect_goaway(v, ErrorCode::kProtocolError, ringtun::Errc::kProtocol);
  }
  SUBCASE("SETTINGS twice") {
    Victim v;
    v.feed(Raw{}.hello().settings());
    expect_goaway(v, ErrorCode::kProtocolError, ringtun::Errc::kProtocol);
  }
  SUBCASE("SETTINGS value out of range") {
    Victim v;
    v.feed(Raw{}.preface().settings({{SettingId::kMaxFrameSize, 100}}));
    expect_goaway(v, ErrorCode::kSettingsError, ringtun::Errc::kProtocol);
    Victim w;
    w.feed(Raw{}.preface().settings({{SettingId::kInitialStreamWindow, 1}}));  // tiny-window dribble
    expect_goaway(w, ErrorCode::kSettingsError, ringtun::Errc::kProtocol);
  }
  SUBCASE("unknown settings are ignored") {
    Victim v;
    CHECK(v.feed(Raw{}.preface().settings({{static_cast<SettingId>(999), 1}})).has_value());
  }
}

TEST_CASE("framing violations: oversized length, unknown type") {
  SUBCASE("length above MAX_FRAME_SIZE") {
    Victim v;
    Raw r;
    r.hello().open(1);
    std::byte hdr[kHeaderSize];
    encode_header(FrameHeader{FrameType::kData, 0, 0, 1, 1U << 30, 0}, hdr);
    r.b.insert(r.b.end(), hdr, hdr + kHeaderSize);
    v.feed(r);
    expect_goaway(v, ErrorCode::kFrameSizeError, ringtun::Errc::kLimit);
  }
  SUBCASE("unknown frame type") {
    Victim v;
    Raw r;
    r.hello();
    std::byte hdr[kHeaderSize];
    encode_header(FrameHeader{static_cast<FrameType>(0x42), 0, 0, 0, 0, 0}, hdr);
    r.b.insert(r.b.end(), hdr, hdr + kHeaderSize);
    v.feed(r);
    expect_goaway(v, ErrorCode::kUnknownFrameType, ringtun::Errc::kProtocol);
  }
}

TEST_CASE("flow-control violations") {
  SUBCASE("stream window overflow -> RST FLOW_CONTROL_ERROR") {
    Victim v;
    REQUIRE(v.feed(Raw{}.hello().open(1).window(1, kMaxWindow)).has_value());
    CHECK(v.rst_code(1) == code(ErrorCode::kFlowControlError));
    CHECK(v.handler.of(v.handler.opened[0]).reset_code == ErrorCode::kFlowControlError);
    CHECK(v.session.live_streams() == 0);
    CHECK_FALSE(v.session.failed());
  }
  SUBCASE("connection window overflow -> GOAWAY FLOW_CONTROL_ERROR") {
    Victim v;
    v.feed(Raw{}.hello().window(0, kMaxWindow));
    expect_goaway(v, ErrorCode::kFlowControlError, ringtun::Errc::kFlowControl);
  }
  SUBCASE("data beyond the stream window -> RST FLOW_CONTROL_ERROR, connection stays") {
    SessionOptions o = options_for(Role::kAgent);
    o.initial_stream_window = 32 * 1024;
    Victim v(o);
    v.handler.auto_consume = false;
    Raw r;
    r.hello().open(1).data(1, 16384).data(1, 16384).data(1, 1).open(3).data(3, 10);
    REQUIRE(v.feed(r).has_value());
    CHECK(v.rst_code(1) == code(ErrorCode::kFlowControlError));
    CHECK(v.handler.of(v.handler.opened[0]).delivered == 32768);  // nothing past the window was delivered
    CHECK(v.handler.opened.size() == 2);
    CHECK_FALSE(v.session.failed());
  }
  SUBCASE("data beyond the connection window -> GOAWAY FLOW_CONTROL_ERROR") {
    SessionOptions o = options_for(Role::kAgent);
    o.initial_connection_window = 32 * 1024;
    o.initial_stream_window = 64 * 1024;
    Victim v(o);
    v.handler.auto_consume = false;
    v.feed(Raw{}.hello().open(1).open(3).data(1, 16384).data(3, 16384).data(1, 1));
    // The victim releases connection credit as data is queued into streams, but the attacker may only use it once
    // the WINDOW_UPDATE arrives; this one sends before reading anything.
    expect_goaway(v, ErrorCode::kFlowControlError, ringtun::Errc::kFlowControl);
  }
}

TEST_CASE("frames on idle, closed and half-closed streams") {
  SUBCASE("DATA on a never-opened stream -> GOAWAY PROTOCOL_ERROR") {
    Victim v;
    v.feed(Raw{}.hello().data(99, 10));
    expect_goaway(v, ErrorCode::kProtocolError, ringtun::Errc::kProtocol);
  }
  SUBCASE("WINDOW_UPDATE / RST on an idle stream of our own parity -> GOAWAY PROTOCOL_ERROR") {
    Victim v;
    v.feed(Raw{}.hello().window(4, 100000));
    expect_goaway(v, ErrorCode::kProtocolError, ringtun::Errc::kProtocol);
    Victim w;
    w.feed(Raw{}.hello().rst(5, ErrorCode::kCancel));
    expect_goaway(w, ErrorCode::kProtocolError, ringtun::Errc::kProtocol);
  }
  SUBCASE("DATA on a closed stream -> RST STREAM_CLOSED") {
    Victim v;
    REQUIRE(v.feed(Raw{}.hello().open(1).rst(1, ErrorCode::kCancel).data(1, 10).data(1, 10)).has_value());
    CHECK(v.rst_code(1) == code(ErrorCode::kStreamClosed));
    CHECK(v.out.count(FrameType::kRst) == 1);  // answered once, not per frame
    CHECK_FALSE(v.session.failed());
  }
  SUBCASE("DATA after the peer's FIN -> RST STREAM_CLOSED") {
    Victim v;
    REQUIRE(v.feed(Raw{}.hello().open(1).data(1, 5, flags::kFin).data(1, 5)).has_value());
    CHECK(v.rst_code(1) == code(ErrorCode::kStreamClosed));
    CHECK(v.handler.of(v.handler.opened[0]).reset_code == ErrorCode::kStreamClosed);
  }
  SUBCASE("OPEN reusing an id, or with our parity -> GOAWAY PROTOCOL_ERROR") {
    Victim v;
    v.feed(Raw{}.hello().open(3).open(1));
    expect_goaway(v, ErrorCode::kProtocolError, ringtun::Errc::kProtocol);
    Victim w;
    w.feed(Raw{}.hello().open(2));
    expect_goaway(w, ErrorCode::kProtocolError, ringtun::Errc::kProtocol);
  }
}

TEST_CASE("stream limits: concurrent streams are refused, persistent excess is a flood, pending opens bounded") {
  SessionOptions o = options_for(Role::kAgent);
  o.max_concurrent_streams = 4;
  o.flood.max_refused_streams = 10;
  Victim v(o);
  Raw r;
  r.hello();
  for (StreamId id = 1; id <= 2 * 6 - 1; id += 2) r.open(id);  // 6 streams, limit 4
  REQUIRE(v.feed(r).has_value());
  CHECK(v.handler.opened.size() == 4);
  CHECK(v.rst_code(9) == code(ErrorCode::kRefusedStream));
  CHECK(v.rst_code(11) == code(ErrorCode::kRefusedStream));
  CHECK(v.session.live_streams() == 4);
  Raw more;
  for (StreamId id = 13; id < 13 + 2 * 20; id += 2) more.open(id);
  v.feed(more);
  expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
  CHECK(v.session.live_streams() == 4);  // memory stayed bounded throughout

  SessionOptions lo = options_for(Role::kAgent);
  lo.max_pending_opens = 3;
  Victim w(lo);  // never receives SETTINGS: every open stays pending
  for (int i = 0; i < 3; ++i) REQUIRE(w.session.open_stream({}).has_value());
  auto over = w.session.open_stream({});
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().code() == ringtun::Errc::kLimit);
}

TEST_CASE("floods are counted per time window and answered with ENHANCE_YOUR_CALM") {
  auto limits = [] {
    SessionOptions o = options_for(Role::kAgent);
    o.flood.window_us = 1'000'000;
    o.flood.max_pings = 10;
    o.flood.max_empty_frames = 10;
    o.flood.max_peer_resets = 10;
    o.flood.max_control_frames = 10;
    o.flood.max_small_window_updates = 10;
    o.flood.max_closed_stream_frames = 10;
    return o;
  };
  SUBCASE("PING flood") {
    Victim v(limits());
    Raw r;
    r.hello();
    for (int i = 0; i < 10; ++i) r.ping(static_cast<std::uint32_t>(i));
    REQUIRE(v.feed(r).has_value());
    CHECK(v.out.count(FrameType::kPing) == 10);  // all answered
    // The window rolls over: another 10 are fine a second later...
    v.session.set_time(2'000'001);
    Raw r2;
    for (int i = 0; i < 10; ++i) r2.ping(static_cast<std::uint32_t>(i));
    REQUIRE(v.feed(r2).has_value());
    // ...but one more within the same window is not.
    v.feed(Raw{}.ping(99));
    expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
  }
  SUBCASE("empty DATA frames") {
    Victim v(limits());
    Raw r;
    r.hello().open(1);
    for (int i = 0; i < 11; ++i) r.data(1, 0);
    v.feed(r);
    expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
  }
  SUBCASE("rapid open-then-reset") {
    Victim v(limits());
    Raw r;
    r.hello();
    for (StreamId id = 1; id < 2 * 11 + 1; id += 2) r.open(id).rst(id, ErrorCode::kCancel);
    v.feed(r);
    expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
    CHECK(v.handler.opened.size() == 11);
    CHECK(v.session.live_streams() == 0);
  }
  SUBCASE("CONTROL flood") {
    Victim v(limits());
    Raw r;
    r.hello();
    Bytes json = to_bytes("{}");
    for (int i = 0; i < 11; ++i) r.frame(FrameType::kControl, 0, 0, 0, json);
    v.feed(r);
    expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
    CHECK(v.handler.controls.size() == 10);
  }
  SUBCASE("tiny WINDOW_UPDATE dribble") {
    Victim v(limits());
    Raw r;
    r.hello();
    for (int i = 0; i < 11; ++i) r.window(0, 1);
    v.feed(r);
    expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
  }
  SUBCASE("frames aimed at closed streams") {
    Victim v(limits());
    Raw r;
    r.hello().open(1).rst(1, ErrorCode::kCancel);
    for (int i = 0; i < 11; ++i) r.window(1, 5000);
    v.feed(r);
    expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
  }
  SUBCASE("a peer that never reads cannot grow our control queue: bounded, then GOAWAY") {
    SessionOptions o = options_for(Role::kAgent);
    o.max_control_frames = 8;
    Victim v(o);
    Raw r;
    r.hello();
    for (int i = 0; i < 20; ++i) r.ping(static_cast<std::uint32_t>(i));
    // Feed without ever building a batch: PING answers pile up.
    auto st = v.session.feed(r.b);
    REQUIRE_FALSE(st.has_value());
    CHECK(v.session.error_code() == ErrorCode::kEnhanceYourCalm);
    v.flush();
    CHECK(v.goaway_code() == code(ErrorCode::kEnhanceYourCalm));  // the reserved slot still fits GOAWAY
  }
}

TEST_CASE("peer GOAWAY with an error code refuses our unprocessed streams") {
  Victim v;
  REQUIRE(v.feed(Raw{}.hello()).has_value());
  auto a = v.session.open_stream({});
  auto b = v.session.open_stream({});
  REQUIRE((a.has_value() && b.has_value()));
  v.flush();  // OPEN 2 and OPEN 4 go out
  REQUIRE(v.feed(Raw{}.frame(FrameType::kGoaway, 0, 2, static_cast<std::uint32_t>(ErrorCode::kInternalError)))
              .has_value());
  REQUIRE(v.handler.goaways.size() == 1);
  CHECK(v.handler.goaways[0] == std::make_pair(StreamId{2}, ErrorCode::kInternalError));
  CHECK_FALSE(v.handler.of(*a).reset);
  CHECK(v.handler.of(*b).reset_code == ErrorCode::kRefusedStream);
  CHECK(v.session.open_stream({}).error().code() == ringtun::Errc::kClosed);
}

// Regression (found by perf/run_loopback.sh): when many streams end at once, the peer's frames already in flight for
// them (DATA, WINDOW_UPDATE, its own RST) are a race, not a flood, however many streams there were. With a memory
// of only 64 recent resets, 1,024 streams reset together tripped the closed-stream flood limit and the whole tunnel
// connection was torn down by GOAWAY ENHANCE_YOUR_CALM.
TEST_CASE("a burst of streams reset by us: the peer's in-flight frames for all of them are not a flood") {
  SessionOptions o = options_for(Role::kAgent);
  o.max_concurrent_streams = 2000;
  Victim v(o);
  constexpr StreamId kStreams = 1500;
  Raw opens;
  opens.hello();
  for (StreamId i = 0; i < kStreams; ++i) opens.open(2 * i + 1);
  REQUIRE(v.feed(opens).has_value());
  REQUIRE(v.handler.opened.size() == kStreams);
  // All in one loop turn: the RSTs wait in their stream slots, not in the bounded control queue.
  for (StreamHandle h : v.handler.opened) REQUIRE(v.session.reset_stream(h, ErrorCode::kCancel));
  v.flush();
  Raw late;
  for (StreamId i = 0; i < kStreams; ++i) late.data(2 * i + 1, 100).window(2 * i + 1, 5000).rst(2 * i + 1, ErrorCode::kCancel);
  REQUIRE(v.feed(late).has_value());
  CHECK_FALSE(v.session.failed());
  CHECK(v.goaway_code() == -1);
  CHECK(v.out.count(FrameType::kRst) == kStreams);  // our resets only: no STREAM_CLOSED answers to the race
}

// Regression: stream errors used to queue their RST in the control queue and turned a full queue into GOAWAY
// ENHANCE_YOUR_CALM, so a peer within every limit whose streams all overran at once (or a small control queue)
// lost the whole connection. A stream error is a reset of a live stream: its RST waits in the slot.
TEST_CASE("a burst of stream errors never overflows the control queue") {
  SessionOptions o = options_for(Role::kAgent);
  o.max_control_frames = 8;
  o.max_concurrent_streams = 100;
  Victim v(o);
  Raw r;
  r.hello();
  for (StreamId id = 1; id < 200; id += 2) r.open(id).data(id, 1, flags::kFin);
  for (StreamId id = 1; id < 200; id += 2) r.data(id, 1);  // DATA after FIN: stream error STREAM_CLOSED
  // One feed, no batch built in between.
  REQUIRE(v.session.feed(r.b).has_value());
  CHECK_FALSE(v.session.failed());
  CHECK(v.session.live_streams() == 100);  // reset-pending until their RSTs are in a batch
  v.flush();
  CHECK(v.goaway_code() == -1);
  CHECK(v.out.count(FrameType::kRst) == 100);
  CHECK(v.rst_code(199) == code(ErrorCode::kStreamClosed));
  CHECK(v.session.live_streams() == 0);
  CHECK(v.handler.closed_count == 100);

  // Answers to frames on streams we hold no slot for still use the control queue: a peer that floods those while
  // never reading is still cut off.
  SessionOptions q = options_for(Role::kAgent);
  q.max_control_frames = 8;
  q.max_concurrent_streams = 1;
  Victim w(q);
  Raw refused;
  refused.hello().open(1);
  for (StreamId id = 3; id < 40; id += 2) refused.open(id);  // beyond the limit: RST REFUSED_STREAM each
  CHECK_FALSE(w.session.feed(refused.b).has_value());
  CHECK(w.session.error_code() == ErrorCode::kEnhanceYourCalm);
}

// Rapid reset (CVE-2023-44487) is open-then-cancel churn. A peer that keeps every limit and resets many streams that
// lived a while (a gateway whose public clients all vanished) is not that: only resets within the flood window of
// the stream's OPEN count.
TEST_CASE("rapid reset counts only streams reset within the flood window of their OPEN") {
  SessionOptions o = options_for(Role::kAgent);
  o.max_concurrent_streams = 3000;
  const std::uint64_t window = o.flood.window_us;
  const std::uint32_t limit = o.flood.max_peer_resets;
  constexpr StreamId kOld = 1500;
  Raw opens;
  opens.hello();
  for (StreamId i = 0; i < kOld; ++i) opens.open(2 * i + 1);
  Raw resets;
  for (StreamId i = 0; i < kOld; ++i) resets.rst(2 * i + 1, ErrorCode::kCancel);

  SUBCASE("1,500 streams reset at once after living a whole window: no flood") {
    Victim v(o);
    REQUIRE(v.feed(opens).has_value());
    v.session.set_time(1'000'000 + window);
    REQUIRE(v.feed(resets).has_value());
    CHECK_FALSE(v.session.failed());
    CHECK(v.goaway_code() == -1);
    CHECK(v.session.live_streams() == 0);
    CHECK(v.handler.closed_count == kOld);
    // Those resets did not use up the budget for young ones: `limit` open-then-resets are still fine...
    Raw churn;
    StreamId id = 2 * kOld + 1;
    for (std::uint32_t i = 0; i < limit; ++i, id += 2) churn.open(id).rst(id, ErrorCode::kCancel);
    REQUIRE(v.feed(churn).has_value());
    // ...and one more is a flood.
    v.feed(Raw{}.open(id).rst(id, ErrorCode::kCancel));
    expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
  }
  SUBCASE("the same streams reset just inside the window: rapid reset") {
    Victim v(o);
    REQUIRE(v.feed(opens).has_value());
    v.session.set_time(1'000'000 + window - 1);
    v.feed(resets);
    expect_goaway(v, ErrorCode::kEnhanceYourCalm, ringtun::Errc::kLimit);
    CHECK(v.handler.closed_count == limit + 1);
  }
}
