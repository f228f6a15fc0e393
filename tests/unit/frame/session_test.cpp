// Session behaviour between two simulated endpoints: handshake, stream lifecycle, the buffer-release contract,
// GOAWAY, PING, CONTROL, credit coalescing and back-pressure.
#include <doctest/doctest.h>

#include <algorithm>

#include "sim.hpp"

using namespace frame_test;  // NOLINT

TEST_CASE("handshake: preface then SETTINGS, both ways") {
  Pair p;
  CHECK(p.gw.session.wants_write());
  p.gw.session.build_batch(p.gw.batch);
  Bytes first = flatten(p.gw.batch);
  REQUIRE(first.size() >= kPrefaceSize + kHeaderSize);
  CHECK(std::equal(kPreface.begin(), kPreface.end(), first.begin()));
  CHECK(decode_header(first.data() + kPrefaceSize).type == FrameType::kSettings);
  p.gw.session.sent(first.size());
  REQUIRE(p.ag.session.feed(first).has_value());
  CHECK(p.ag.session.settings_received());
  p.settle();
  CHECK(p.gw.session.settings_received());
  CHECK_FALSE(p.gw.session.wants_write());
  CHECK(p.gw.session.connection_send_window() == kDefaultConnectionWindow);
}

TEST_CASE("stream lifecycle: OPEN with metadata, data both ways, FIN both ways, slots freed") {
  Pair p;
  auto meta = to_bytes(R"({"target":"10.0.0.5:22"})");
  auto h = p.gw.session.open_stream(meta);
  REQUIRE(h.has_value());
  CHECK(*p.gw.session.stream_id(*h) == 1);
  Bytes request = to_bytes("GET / HTTP/1.1\r\n\r\n");
  REQUIRE(p.gw.session.queue_data(*h, request, 42, /*fin=*/true).has_value());
  p.settle();

  REQUIRE(p.ag.handler.opened.size() == 1);
  StreamHandle ah = p.ag.handler.opened[0];
  StreamRx& arx = p.ag.handler.of(ah);
  CHECK(arx.id == 1);
  CHECK(arx.open_meta == meta);
  CHECK(arx.data == request);
  CHECK(arx.fin);
  CHECK(p.gw.handler.released == std::vector<std::uint64_t>{42});
  CHECK(p.ag.session.live_streams() == 1);  // half-closed (remote) until the agent finishes

  Bytes reply(100000);
  for (std::size_t i = 0; i < reply.size(); ++i) reply[i] = static_cast<std::byte>(i % 251);
  REQUIRE(p.ag.session.queue_data(ah, std::span<const std::byte>(reply).first(60000), 1).has_value());
  REQUIRE(p.ag.session.queue_data(ah, std::span<const std::byte>(reply).subspan(60000), 2, true).has_value());
  CHECK(p.ag.session.queue_data(ah, reply, 3).error().code() == ringtun::Errc::kClosed);  // after FIN
  p.settle();
  StreamRx& grx = p.gw.handler.of(*h);
  CHECK(grx.data == reply);
  CHECK(grx.fin);
  CHECK(grx.closed);
  CHECK(p.ag.handler.of(ah).closed);
  CHECK(p.ag.handler.released == std::vector<std::uint64_t>{1, 2});
  CHECK(p.gw.session.live_streams() == 0);
  CHECK(p.ag.session.live_streams() == 0);
  CHECK(p.gw.session.queue_data(*h, reply, 4).error().code() == ringtun::Errc::kNotFound);  // stale handle
  CHECK_FALSE(p.gw_failed);
  CHECK_FALSE(p.ag_failed);
}

TEST_CASE("OPEN with FIN and a bare FIN after data") {
  Pair p;
  p.settle();
  auto h = p.ag.session.open_stream(to_bytes("x"), /*fin=*/true);  // agent: even ids
  REQUIRE(h.has_value());
  CHECK(*p.ag.session.stream_id(*h) == 2);
  p.settle();
  REQUIRE(p.gw.handler.opened.size() == 1);
  StreamHandle gh = p.gw.handler.opened[0];
  CHECK(p.gw.handler.of(gh).fin);
  Bytes abc = to_bytes("abc");  // queued bytes must outlive their release
  REQUIRE(p.gw.session.queue_data(gh, abc, 7).has_value());
  p.settle();
  REQUIRE(p.gw.session.close_stream(gh).has_value());
  p.settle();
  CHECK(to_string(p.ag.handler.of(*h).data) == "abc");
  CHECK(p.ag.handler.of(*h).fin);
  CHECK(p.ag.handler.of(*h).closed);
  CHECK(p.gw.handler.of(gh).closed);
  CHECK(p.gw.session.live_streams() == 0);
  CHECK(p.ag.session.live_streams() == 0);
  CHECK(p.ag_tap.count(FrameType::kOpen) == 1);
  CHECK(p.ag_tap.last(FrameType::kOpen)->has(flags::kFin));
}

TEST_CASE("release contract: cookies come back only once their bytes were reported sent, partial sends too") {
  SessionOptions g = options_for(Role::kGateway);
  g.max_batch_bytes = 10000;
  Pair p(g, options_for(Role::kAgent));
  p.settle();
  auto h = p.gw.session.open_stream({});
  REQUIRE(h.has_value());
  Bytes a(1000, std::byte{1});
  Bytes b(2000, std::byte{2});
  REQUIRE(p.gw.session.queue_data(*h, a, 100).has_value());
  REQUIRE(p.gw.session.queue_data(*h, b, 200).has_value());
  FrameBatch& batch = p.gw.batch;
  p.gw.session.build_batch(batch);
  Bytes wire = flatten(batch);
  // OPEN + one DATA frame gathering both buffers (3 iovecs: headers, a, b) - payload referenced, not copied.
  bool refs_a = false;
  for (std::size_t i = 0; i < batch.iov_count(); ++i) refs_a |= batch.iov()[i].iov_base == a.data();
  CHECK(refs_a);
  CHECK(p.gw.handler.released.empty());
  std::size_t header_bytes = 2 * kHeaderSize;  // OPEN(empty) + DATA header
  p.gw.session.sent(header_bytes + 999);
  CHECK(p.gw.handler.released.empty());
  p.gw.session.sent(1);
  // `a` is inside a frame that is not yet fully sent; release waits for the frame end, which is conservative.
  p.gw.session.sent(wire.size() - header_bytes - 1000 - 1);
  CHECK(p.gw.handler.released.empty());
  p.gw.session.sent(1);
  CHECK(p.gw.handler.released == std::vector<std::uint64_t>{100, 200});

  // Two batches in flight, reported in order.
  Bytes c(12000, std::byte{3});
  REQUIRE(p.gw.session.queue_data(*h, c, 300).has_value());
  FrameBatch second;
  p.gw.session.build_batch(batch);
  std::size_t first_len = batch.bytes();
  p.gw.session.build_batch(second);  // c is larger than one batch: the rest goes in the second
  std::size_t second_len = second.bytes();
  REQUIRE(second_len > 0);
  p.gw.session.sent(first_len);
  CHECK(p.gw.handler.released.size() == 2);
  p.gw.session.sent(second_len);
  CHECK(p.gw.handler.released.back() == 300);
}

TEST_CASE("reset releases unsent bytes at once, bytes already in a batch only after sent()") {
  SessionOptions g = options_for(Role::kGateway);
  g.max_batch_bytes = 20000;
  Pair p(g, options_for(Role::kAgent));
  p.settle();
  auto h = p.gw.session.open_stream({});
  REQUIRE(h.has_value());
  Bytes big(40000, std::byte{1});
  REQUIRE(p.gw.session.queue_data(*h, big, 1).has_value());
  REQUIRE(p.gw.session.queue_data(*h, big, 2).has_value());
  p.gw.session.build_batch(p.gw.batch);  // OPEN + the first ~20000 bytes of segment 1
  Bytes first = flatten(p.gw.batch);
  REQUIRE(first.size() <= 20000);
  REQUIRE(p.gw.session.reset_stream(*h, ErrorCode::kCancel).has_value());
  // Segment 2 was never encoded: released now. Segment 1 is referenced by the unsent batch: not yet.
  CHECK(p.gw.handler.released == std::vector<std::uint64_t>{2});
  CHECK(p.gw.handler.of(*h).closed);
  CHECK_FALSE(p.gw.handler.of(*h).reset);  // on_reset is for resets the handler did not ask for
  CHECK(p.gw.session.queue_data(*h, big, 3).error().code() == ringtun::Errc::kNotFound);
  p.gw.session.sent(first.size());
  CHECK(p.gw.handler.released == std::vector<std::uint64_t>{2, 1});
  // The peer sees OPEN, some DATA, then RST CANCEL.
  p.gw.session.build_batch(p.gw.batch);
  Bytes second = flatten(p.gw.batch);
  p.gw.session.sent(second.size());
  REQUIRE(p.ag.session.feed(first).has_value());
  REQUIRE(p.ag.session.feed(second).has_value());
  REQUIRE(p.ag.handler.opened.size() == 1);
  StreamRx& rx = p.ag.handler.of(p.ag.handler.opened[0]);
  CHECK(rx.reset);
  CHECK(rx.reset_code == ErrorCode::kCancel);
  CHECK(rx.closed);
  CHECK(p.ag.session.live_streams() == 0);
}

TEST_CASE("peer RST reaches the handler with its code and frees the stream") {
  Pair p;
  auto h = p.gw.session.open_stream({});
  REQUIRE(h.has_value());
  Bytes hello = to_bytes("hello");
  REQUIRE(p.gw.session.queue_data(*h, hello, 1).has_value());
  p.settle();
  REQUIRE(p.ag.handler.opened.size() == 1);
  StreamHandle ah = p.ag.handler.opened[0];
  Bytes pending(10, std::byte{4});
  REQUIRE(p.ag.session.queue_data(ah, pending, 9).has_value());
  REQUIRE(p.ag.session.reset_stream(ah, ErrorCode::kConnectFailed).has_value());
  CHECK(p.ag.handler.released == std::vector<std::uint64_t>{9});
  p.settle();
  CHECK(p.gw.handler.of(*h).reset);
  CHECK(p.gw.handler.of(*h).reset_code == ErrorCode::kConnectFailed);
  CHECK(p.gw.handler.of(*h).closed);
  CHECK(p.gw.session.live_streams() == 0);
  CHECK(p.ag.session.live_streams() == 0);
  CHECK_FALSE(p.gw_failed);
}

TEST_CASE("opens wait for SETTINGS and for the peer's concurrency limit; pending opens are bounded") {
  SessionOptions g = options_for(Role::kGateway);
  g.max_pending_opens = 5;
  SessionOptions a = options_for(Role::kAgent);
  a.max_concurrent_streams = 2;
  Pair p(g, a);
  std::vector<StreamHandle> hs;
  for (int i = 0; i < 5; ++i) {
    auto h = p.gw.session.open_stream({});
    REQUIRE(h.has_value());
    hs.push_back(*h);
  }
  auto over = p.gw.session.open_stream({});
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().code() == ringtun::Errc::kLimit);
  p.settle();
  CHECK(p.ag.handler.opened.size() == 2);  // the agent's limit
  CHECK(p.gw_tap.count(FrameType::kOpen) == 2);
  REQUIRE(p.gw.session.reset_stream(hs[0], ErrorCode::kCancel).has_value());
  p.settle();
  CHECK(p.ag.handler.opened.size() == 3);
  CHECK(p.ag.handler.of(p.ag.handler.opened[2]).id == 5);
  CHECK(p.ag.handler.of(p.ag.handler.opened[0]).reset);
  CHECK_FALSE(p.ag_failed);
  CHECK(p.gw_tap.count(FrameType::kRst) == 1);
}

TEST_CASE("GOAWAY: existing streams finish, later peer streams are refused, no new opens, then drained") {
  Pair p;
  p.settle();
  auto early = p.ag.session.open_stream({});
  REQUIRE(early.has_value());
  p.settle();
  REQUIRE(p.gw.handler.opened.size() == 1);
  StreamHandle g_early = p.gw.handler.opened[0];
  // The agent opens another stream while the gateway's GOAWAY is on its way.
  auto late = p.ag.session.open_stream({});
  REQUIRE(late.has_value());
  REQUIRE(p.gw.session.goaway(ErrorCode::kNoError).has_value());
  CHECK(p.gw.session.open_stream({}).error().code() == ringtun::Errc::kClosed);
  p.settle();
  REQUIRE(p.ag.handler.goaways.size() == 1);
  CHECK(p.ag.handler.goaways[0].first == 2);  // last agent stream the gateway processed
  CHECK(p.ag.handler.goaways[0].second == ErrorCode::kNoError);
  CHECK(p.ag.handler.of(*late).reset);
  CHECK(p.ag.handler.of(*late).reset_code == ErrorCode::kRefusedStream);
  CHECK(p.ag.session.open_stream({}).error().code() == ringtun::Errc::kClosed);
  // The early stream still works both ways.
  Bytes still = to_bytes("still");
  Bytes here = to_bytes("here");
  REQUIRE(p.ag.session.queue_data(*early, still, 1, true).has_value());
  REQUIRE(p.gw.session.queue_data(g_early, here, 2, true).has_value());
  CHECK_FALSE(p.gw.session.drained());
  p.settle();
  CHECK(to_string(p.gw.handler.of(g_early).data) == "still");
  CHECK(to_string(p.ag.handler.of(*early).data) == "here");
  CHECK(p.gw.session.drained());
  CHECK(p.ag.session.drained());
  CHECK_FALSE(p.gw_failed);
  CHECK_FALSE(p.ag_failed);
}

TEST_CASE("PING measures RTT with injected time; one outstanding at a time") {
  Pair p;
  p.settle();
  REQUIRE(p.gw.session.ping().has_value());
  CHECK(p.gw.session.ping().error().code() == ringtun::Errc::kExhausted);
  p.settle();
  REQUIRE(p.gw.handler.ping_acks.size() == 1);
  CHECK(p.gw.handler.ping_acks[0] == 100);  // one step (100 us) between the PING's queueing and its ACK
  CHECK(p.gw.session.rtt_us() == 100);
  REQUIRE(p.gw.session.ping().has_value());
}

TEST_CASE("CONTROL carries JSON both ways; size bounded by the peer's frame size") {
  Pair p;
  Bytes hello = to_bytes(R"({"type":"hello","agent":"edge-1","version":1})");
  REQUIRE(p.ag.session.send_control(hello).has_value());  // allowed before SETTINGS arrived
  p.settle();
  REQUIRE(p.gw.handler.controls.size() == 1);
  CHECK(p.gw.handler.controls[0] == hello);
  Bytes big(kDefaultMaxFrameSize + 1, std::byte{'x'});
  CHECK(p.gw.session.send_control(big).error().code() == ringtun::Errc::kLimit);
  // Large control payloads straddle chunks: reassembled by the decoder.
  Bytes large(16000, std::byte{'y'});
  p.max_chunk = 999;
  REQUIRE(p.gw.session.send_control(large).has_value());
  p.settle();
  REQUIRE(p.ag.handler.controls.size() == 1);
  CHECK(p.ag.handler.controls[0] == large);
}

TEST_CASE("credit is coalesced: about two WINDOW_UPDATEs per window, not one per frame") {
  Pair p;
  auto h = p.gw.session.open_stream({});
  REQUIRE(h.has_value());
  Bytes data(4 * 1024 * 1024, std::byte{7});
  REQUIRE(p.gw.session.queue_data(*h, data, 1).has_value());
  p.ag.handler.keep_data = false;
  p.settle();
  StreamRx& rx = p.ag.handler.of(p.ag.handler.opened.at(0));
  CHECK(rx.delivered == data.size());
  std::size_t data_frames = p.gw_tap.count(FrameType::kData);
  std::size_t updates = p.ag_tap.count(FrameType::kWindowUpdate);
  CHECK(data_frames >= data.size() / kDefaultMaxFrameSize);
  // At most one per half window: stream 4 MiB / 256 KiB = 16, connection 4 MiB / 2 MiB = 2. Fewer when a whole
  // batch of data is processed before the receiver writes (credit accumulates past the threshold).
  CHECK(updates <= 16 + 2 + 2);
  CHECK(updates >= 4 + 1);
  CHECK(updates * 20 < data_frames);
}

TEST_CASE("back-pressure: a reader that does not consume stops its stream at the stream window") {
  Pair p;
  p.ag.handler.auto_consume = false;
  p.ag.handler.keep_data = false;
  auto h = p.gw.session.open_stream({});
  REQUIRE(h.has_value());
  Bytes data(2 * 1024 * 1024, std::byte{7});
  REQUIRE(p.gw.session.queue_data(*h, data, 1).has_value());
  p.settle();
  StreamHandle ah = p.ag.handler.opened.at(0);
  CHECK(p.ag.handler.of(ah).delivered == kDefaultStreamWindow);
  CHECK(*p.gw.session.send_window(*h) == 0);
  CHECK(*p.gw.session.queued_bytes(*h) == data.size() - kDefaultStreamWindow);
  CHECK(*p.ag.session.unconsumed(ah) == kDefaultStreamWindow);
  CHECK(p.gw.handler.released.empty());
  // A small consumption stays below the half-window threshold until flushed.
  REQUIRE(p.ag.session.consumed(ah, 1000).has_value());
  p.settle();
  CHECK(p.ag.handler.of(ah).delivered == kDefaultStreamWindow);
  p.ag.session.flush_credit();
  p.settle();
  CHECK(p.ag.handler.of(ah).delivered == kDefaultStreamWindow + 1000);
  CHECK(p.ag.session.consumed(ah, kDefaultStreamWindow + 1).error().code() == ringtun::Errc::kInvalidArgument);
  // Consuming everything lets the rest through.
  p.ag.handler.auto_consume = true;
  REQUIRE(p.ag.session.consumed(ah, *p.ag.session.unconsumed(ah)).has_value());
  p.settle();
  CHECK(p.ag.handler.of(ah).delivered == data.size());
  CHECK(p.gw.handler.released == std::vector<std::uint64_t>{1});
}

TEST_CASE("auto-tuning grows a stream window under fast consumption, up to the max") {
  SessionOptions g = options_for(Role::kGateway);
  SessionOptions a = options_for(Role::kAgent);
  a.autotune = true;
  a.initial_stream_window = 64 * 1024;
  a.max_stream_window = 1024 * 1024;
  Pair p(g, a);
  p.settle();
  REQUIRE(p.ag.session.ping().has_value());  // RTT sample: 100 us per step
  p.settle();
  REQUIRE(p.ag.session.rtt_us() > 0);
  auto h = p.gw.session.open_stream({});
  REQUIRE(h.has_value());
  Bytes data(8 * 1024 * 1024, std::byte{1});
  REQUIRE(p.gw.session.queue_data(*h, data, 1).has_value());
  p.ag.handler.keep_data = false;
  p.settle();
  StreamHandle ah = p.ag.handler.opened.at(0);
  CHECK(p.ag.handler.of(ah).delivered == data.size());
  CHECK(*p.ag.session.receive_window(ah) == 1024 * 1024);
}

TEST_CASE("abort_all hands back every cookie and closes every stream") {
  Pair p;
  p.settle();
  Bytes data(100000, std::byte{1});
  std::vector<StreamHandle> hs;
  for (int i = 0; i < 3; ++i) {
    auto h = p.gw.session.open_stream({});
    REQUIRE(h.has_value());
    REQUIRE(p.gw.session.queue_data(*h, data, static_cast<std::uint64_t>(i)).has_value());
    hs.push_back(*h);
  }
  p.gw.session.build_batch(p.gw.batch);  // some bytes in flight, never reported sent
  p.gw.session.abort_all();
  auto released = p.gw.handler.released;
  std::sort(released.begin(), released.end());
  CHECK(released == std::vector<std::uint64_t>{0, 1, 2});
  for (auto h : hs) CHECK(p.gw.handler.of(h).closed);
  CHECK(p.gw.session.live_streams() == 0);
  CHECK_FALSE(p.gw.session.wants_write());
}

TEST_CASE("streams that can be opened at once do not count as pending") {
  SessionOptions g = options_for(Role::kGateway);
  g.max_pending_opens = 2;
  SessionOptions a = options_for(Role::kAgent);
  a.max_concurrent_streams = 40;
  Pair p(g, a);
  p.settle();
  for (int i = 0; i < 42; ++i) REQUIRE(p.gw.session.open_stream({}).has_value());  // 40 slots + 2 pending
  CHECK(p.gw.session.open_stream({}).error().code() == ringtun::Errc::kLimit);
  p.settle();
  CHECK(p.ag.handler.opened.size() == 40);
  CHECK_FALSE(p.ag_failed);
}
