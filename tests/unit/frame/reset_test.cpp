// Mass resets between two simulated endpoints: resetting a live stream never fails (the RST waits in the stream's
// slot, not in the bounded control queue), every RST reaches the peer, slots are freed once their RST is in a batch,
// and the batch bound, GOAWAY, connection errors and abort_all all account for resets still waiting.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "sim.hpp"

using namespace frame_test;  // NOLINT

namespace {

// Streams the peer saw reset (on_reset) with `code`.
std::size_t resets_seen(const Recorder& r, ErrorCode code) {
  std::size_t n = 0;
  for (const auto& [key, rx] : r.rx) n += rx.reset && rx.reset_code == code ? 1 : 0;
  return n;
}

std::size_t closed_seen(const Recorder& r) {
  std::size_t n = 0;
  for (const auto& [key, rx] : r.rx) n += rx.closed ? 1 : 0;
  return n;
}

// A pair with room for `streams` gateway-opened streams, the handshake done.
std::unique_ptr<Pair> pair_for(std::uint32_t streams, std::uint32_t gw_batch_bytes = 256 * 1024) {
  SessionOptions g = options_for(Role::kGateway);
  g.max_local_streams = streams;
  g.max_concurrent_streams = streams;
  g.max_batch_bytes = gw_batch_bytes;
  SessionOptions a = options_for(Role::kAgent);
  a.max_local_streams = streams;
  a.max_concurrent_streams = streams;
  auto p = std::make_unique<Pair>(g, a);
  p->settle();
  return p;
}

std::vector<StreamHandle> open_many(Pair& p, std::uint32_t n) {
  std::vector<StreamHandle> hs;
  for (std::uint32_t i = 0; i < n; ++i) {
    auto h = p.gw.session.open_stream({});
    REQUIRE(h.has_value());
    hs.push_back(*h);
  }
  return hs;
}

void check_no_failure(const Pair& p) {
  CHECK_FALSE(p.gw_failed);
  CHECK_FALSE(p.ag_failed);
  CHECK_FALSE(p.gw.session.failed());
  CHECK_FALSE(p.ag.session.failed());
  CHECK(p.gw.handler.goaways.empty());
  CHECK(p.ag.handler.goaways.empty());
  CHECK(p.gw_tap.count(FrameType::kGoaway) == 0);
  CHECK(p.ag_tap.count(FrameType::kGoaway) == 0);
}

}  // namespace

// Regression (found by flooding a real gateway): 1,000 public clients resetting at once made the gateway reset
// 1,000 streams in one loop turn; reset_stream() failed with kExhausted once the 256-entry control queue was full,
// the I/O layer dropped the stream anyway, and the slot leaked with the agent never told.
TEST_CASE("gateway resets 1,024 open streams in one go: all succeed, all reach the agent, the table empties") {
  constexpr std::uint32_t kStreams = 1024;
  auto p = pair_for(kStreams);
  std::vector<StreamHandle> hs = open_many(*p, kStreams);
  p->settle();
  REQUIRE(p->ag.handler.opened.size() == kStreams);
  REQUIRE(p->ag.session.live_streams() == kStreams);
  // Bytes queued but never sent (the agent stalls nothing here: they are simply not built yet).
  Bytes payload(100, std::byte{5});
  for (std::uint32_t i = 0; i < kStreams; ++i) REQUIRE(p->gw.session.queue_data(hs[i], payload, i).has_value());
  p->tick(2'000'000);  // the streams lived a while: not rapid reset from the agent's point of view

  for (StreamHandle h : hs) REQUIRE(p->gw.session.reset_stream(h, ErrorCode::kCancel).has_value());
  // Queued bytes came back and the handler is done with every stream at once...
  CHECK(p->gw.handler.released.size() == kStreams);
  CHECK(p->gw.handler.closed_count == kStreams);
  CHECK(resets_seen(p->gw.handler, ErrorCode::kCancel) == 0);  // on_reset is not fired for our own resets
  // ...while the slots wait for their RSTs.
  CHECK(p->gw.session.live_streams() == kStreams);
  CHECK(p->gw.session.wants_write());
  CHECK(p->gw.session.reset_stream(hs[0], ErrorCode::kCancel).error().code() == ringtun::Errc::kNotFound);

  p->settle();
  check_no_failure(*p);
  CHECK(p->gw_tap.count(FrameType::kRst) == kStreams);
  CHECK(p->gw_tap.count(FrameType::kData) == 0);  // the queued bytes never went out
  CHECK(resets_seen(p->ag.handler, ErrorCode::kCancel) == kStreams);
  CHECK(closed_seen(p->ag.handler) == kStreams);
  CHECK(p->ag.session.live_streams() == 0);
  CHECK(p->gw.session.live_streams() == 0);
  CHECK_FALSE(p->gw.session.wants_write());

  // Every slot and every concurrency unit is back: as many streams open again.
  std::vector<StreamHandle> again = open_many(*p, kStreams);
  p->settle();
  check_no_failure(*p);
  CHECK(p->ag.handler.opened.size() == 2 * kStreams);
  CHECK(p->ag.session.live_streams() == kStreams);
  CHECK(p->gw.session.live_streams() == kStreams);
  CHECK(p->ag_tap.count(FrameType::kRst) == 0);  // nothing refused
}

// The agent's side of the same field report: 2,000 failed local connects reset 2,000 gateway-opened streams. The
// RSTs name streams the gateway opened itself, which is not a peer reset on its side, young or old.
TEST_CASE("agent resets 2,000 gateway-opened streams in one go") {
  constexpr std::uint32_t kStreams = 2000;
  for (bool young : {true, false}) {
    CAPTURE(young);
    auto p = pair_for(kStreams);
    std::vector<StreamHandle> hs = open_many(*p, kStreams);
    p->settle();
    REQUIRE(p->ag.handler.opened.size() == kStreams);
    if (!young) p->tick(5'000'000);
    for (StreamHandle h : p->ag.handler.opened) {
      REQUIRE(p->ag.session.reset_stream(h, ErrorCode::kConnectFailed).has_value());
    }
    CHECK(p->ag.handler.closed_count == kStreams);
    p->settle();
    check_no_failure(*p);
    CHECK(p->ag_tap.count(FrameType::kRst) == kStreams);
    CHECK(p->gw_tap.count(FrameType::kRst) == 0);  // no answers to the race
    CHECK(resets_seen(p->gw.handler, ErrorCode::kConnectFailed) == kStreams);
    for (StreamHandle h : hs) CHECK(p->gw.handler.of(h).closed);
    CHECK(p->gw.session.live_streams() == 0);
    CHECK(p->ag.session.live_streams() == 0);
  }
}

TEST_CASE("both sides reset the same 1,024 streams at once: the crossing RSTs are a race, not an error") {
  constexpr std::uint32_t kStreams = 1024;
  auto p = pair_for(kStreams);
  std::vector<StreamHandle> hs = open_many(*p, kStreams);
  p->settle();
  REQUIRE(p->ag.handler.opened.size() == kStreams);
  p->tick(2'000'000);
  for (StreamHandle h : hs) REQUIRE(p->gw.session.reset_stream(h, ErrorCode::kCancel).has_value());
  for (StreamHandle h : p->ag.handler.opened) REQUIRE(p->ag.session.reset_stream(h, ErrorCode::kCancel).has_value());
  p->settle();
  check_no_failure(*p);
  CHECK(p->gw_tap.count(FrameType::kRst) == kStreams);
  CHECK(p->ag_tap.count(FrameType::kRst) == kStreams);
  CHECK(p->gw.session.live_streams() == 0);
  CHECK(p->ag.session.live_streams() == 0);
}

TEST_CASE("a reset-pending stream is gone for the handler: stale handle, no second RST") {
  auto p = pair_for(16);
  std::vector<StreamHandle> hs = open_many(*p, 2);
  p->settle();
  StreamHandle h = hs[0];
  Bytes data(10, std::byte{1});
  REQUIRE(p->gw.session.reset_stream(h, ErrorCode::kCancel).has_value());
  CHECK(p->gw.handler.of(h).closed);
  CHECK(p->gw.session.live_streams() == 2);  // slot still held until the RST is in a batch
  CHECK(p->gw.session.reset_stream(h, ErrorCode::kInternalError).error().code() == ringtun::Errc::kNotFound);
  CHECK(p->gw.session.queue_data(h, data, 1).error().code() == ringtun::Errc::kNotFound);
  CHECK(p->gw.session.close_stream(h).error().code() == ringtun::Errc::kNotFound);
  CHECK(p->gw.session.consumed(h, 0).error().code() == ringtun::Errc::kNotFound);
  CHECK(p->gw.session.stream_id(h).error().code() == ringtun::Errc::kNotFound);
  p->gw.session.set_user(h, 99);  // ignored
  p->gw.session.flush_credit();   // must not pick up the reset-pending slot
  p->settle();
  CHECK(p->gw_tap.count(FrameType::kRst) == 1);
  CHECK(p->gw_tap.last(FrameType::kRst)->arg == static_cast<std::uint32_t>(ErrorCode::kCancel));
  CHECK(p->gw.session.live_streams() == 1);
  // The freed slot is reused with a new generation: the old handle stays stale.
  auto reused = p->gw.session.open_stream({});
  REQUIRE(reused.has_value());
  CHECK(p->gw.session.reset_stream(h, ErrorCode::kCancel).error().code() == ringtun::Errc::kNotFound);
  CHECK(p->gw.handler.closed_count == 1);
  // A stream reset before its OPEN went out just disappears: no RST, slot freed at once.
  REQUIRE(p->gw.session.reset_stream(*reused, ErrorCode::kCancel).has_value());
  CHECK(p->gw.session.live_streams() == 1);
  p->settle();
  CHECK(p->gw_tap.count(FrameType::kRst) == 1);
  check_no_failure(*p);
}

TEST_CASE("1,000 pending RSTs leave over several batches, each within max_batch_bytes") {
  constexpr std::uint32_t kStreams = 1000;
  constexpr std::uint32_t kBatchBytes = 1024;
  auto p = pair_for(kStreams, kBatchBytes);
  std::vector<StreamHandle> hs = open_many(*p, kStreams);
  p->settle();
  REQUIRE(p->ag.handler.opened.size() == kStreams);
  p->tick(2'000'000);
  for (StreamHandle h : hs) REQUIRE(p->gw.session.reset_stream(h, ErrorCode::kCancel).has_value());
  std::size_t rst_before = p->gw_tap.count(FrameType::kRst);
  int batches = 0;
  while (p->gw.session.wants_write()) {
    REQUIRE(batches < 1000);
    std::size_t moved = p->step();
    REQUIRE(moved > 0);
    CHECK(p->gw.batch.bytes() <= kBatchBytes);
    std::size_t rst_now = p->gw_tap.count(FrameType::kRst);
    CHECK(rst_now - rst_before <= kBatchBytes / kHeaderSize);
    rst_before = rst_now;
    ++batches;
  }
  CHECK(batches >= static_cast<int>(kStreams * kHeaderSize / kBatchBytes));
  p->settle();
  check_no_failure(*p);
  CHECK(p->gw_tap.count(FrameType::kRst) == kStreams);
  CHECK(resets_seen(p->ag.handler, ErrorCode::kCancel) == kStreams);
  CHECK(p->gw.session.live_streams() == 0);
  CHECK(p->ag.session.live_streams() == 0);
}

TEST_CASE("abort_all with resets pending releases every slot, once") {
  auto p = pair_for(300);
  std::vector<StreamHandle> hs = open_many(*p, 300);
  p->settle();
  Bytes data(1000, std::byte{2});
  for (std::uint32_t i = 0; i < 300; ++i) REQUIRE(p->gw.session.queue_data(hs[i], data, i).has_value());
  for (std::uint32_t i = 0; i < 200; ++i) REQUIRE(p->gw.session.reset_stream(hs[i], ErrorCode::kCancel).has_value());
  CHECK(p->gw.session.live_streams() == 300);
  CHECK(p->gw.handler.released.size() == 200);
  p->gw.session.abort_all();
  CHECK(p->gw.session.live_streams() == 0);
  CHECK_FALSE(p->gw.session.wants_write());
  CHECK(p->gw.handler.closed_count == 300);  // on_closed exactly once per stream (Recorder checks "once")
  std::vector<std::uint64_t> released = p->gw.handler.released;
  std::sort(released.begin(), released.end());
  CHECK(released.size() == 300);
  CHECK(std::adjacent_find(released.begin(), released.end()) == released.end());
  p->gw.session.build_batch(p->gw.batch);
  CHECK(p->gw.batch.empty());
}

TEST_CASE("resets pending while opening: concurrency is held until the RSTs go, which precede the new OPENs") {
  SessionOptions g = options_for(Role::kGateway);
  g.max_local_streams = 4;
  g.max_pending_opens = 2;
  SessionOptions a = options_for(Role::kAgent);
  a.max_concurrent_streams = 4;
  Pair p(g, a);
  p.settle();
  std::vector<StreamHandle> hs = open_many(p, 4);
  p.settle();
  REQUIRE(p.ag.handler.opened.size() == 4);
  for (StreamHandle h : hs) REQUIRE(p.gw.session.reset_stream(h, ErrorCode::kCancel).has_value());
  // The agent still counts the four streams open, so new ones are pending, and pending opens stay bounded.
  REQUIRE(p.gw.session.open_stream({}).has_value());
  REQUIRE(p.gw.session.open_stream({}).has_value());
  auto over = p.gw.session.open_stream({});
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().code() == ringtun::Errc::kLimit);
  CHECK(p.gw.session.live_streams() == 6);
  std::size_t before = p.gw_tap.frames.size();
  p.settle();
  check_no_failure(p);
  // One batch: four RSTs, then the two OPENs the freed slots allow.
  std::vector<FrameType> sent;
  for (std::size_t i = before; i < p.gw_tap.frames.size(); ++i) sent.push_back(p.gw_tap.frames[i].type);
  CHECK(sent == std::vector<FrameType>{FrameType::kRst, FrameType::kRst, FrameType::kRst, FrameType::kRst,
                                       FrameType::kOpen, FrameType::kOpen});
  CHECK(p.ag.handler.opened.size() == 6);
  CHECK(p.ag.session.live_streams() == 2);
  CHECK(p.ag_tap.count(FrameType::kRst) == 0);  // nothing refused
}

TEST_CASE("GOAWAY with resets pending: the RSTs still go, then the session drains") {
  auto p = pair_for(500);
  std::vector<StreamHandle> hs = open_many(*p, 500);
  p->settle();
  p->tick(2'000'000);
  for (StreamHandle h : hs) REQUIRE(p->gw.session.reset_stream(h, ErrorCode::kCancel).has_value());
  REQUIRE(p->gw.session.goaway(ErrorCode::kNoError).has_value());
  CHECK_FALSE(p->gw.session.drained());
  p->settle();
  CHECK(p->gw_tap.count(FrameType::kRst) == 500);
  CHECK(resets_seen(p->ag.handler, ErrorCode::kCancel) == 500);
  CHECK(p->gw.session.drained());
  CHECK(p->ag.session.drained());
  CHECK_FALSE(p->gw_failed);
  CHECK_FALSE(p->ag_failed);
}

TEST_CASE("a connection error with resets pending: only GOAWAY goes out, and the session drains") {
  auto p = pair_for(300);
  std::vector<StreamHandle> hs = open_many(*p, 300);
  p->settle();
  for (StreamHandle h : hs) REQUIRE(p->gw.session.reset_stream(h, ErrorCode::kCancel).has_value());
  std::byte bad[kHeaderSize];
  encode_header(FrameHeader{static_cast<FrameType>(0x42), 0, 0, 0, 0, 0}, bad);
  REQUIRE_FALSE(p->gw.session.feed(bad).has_value());
  CHECK(p->gw.session.live_streams() == 0);
  std::size_t rst_before = p->gw_tap.count(FrameType::kRst);
  p->gw_failed = true;  // the agent's answers are not fed to a failed gateway
  p->settle();
  CHECK(p->gw_tap.count(FrameType::kRst) == rst_before);
  CHECK(p->gw_tap.last(FrameType::kGoaway)->arg == static_cast<std::uint32_t>(ErrorCode::kUnknownFrameType));
  CHECK(p->gw.session.drained());
  CHECK(p->gw.handler.closed_count == 300);
}
