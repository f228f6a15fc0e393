// Property test: many streams opened by both sides, random sizes, random segmenting, random chunking of the byte
// stream and random reader stalls; every stream is reassembled byte-exact (FNV-1a), no side ever sends beyond a
// window (tallied independently from the wire), and the bytes a receiver holds never exceed its windows.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>

#include "sim.hpp"

using namespace frame_test;  // NOLINT

namespace {

struct Outgoing {
  StreamHandle h;
  StreamId id = 0;
  Bytes data;
  std::size_t queued = 0;
  bool fin = false;
  std::uint64_t fnv = 0;
};

Bytes make_payload(std::mt19937_64& rng, std::size_t n) {
  Bytes b(n);
  for (auto& c : b) c = static_cast<std::byte>(rng());
  return b;
}

std::uint64_t fnv_of(const Bytes& b) {
  Fnv64 f;
  f.add(b);
  return f.h;
}

// Independent tally of credit per direction, from the frames seen on the wire.
struct CreditTally {
  std::int64_t stream_initial;
  std::int64_t conn;
  std::map<StreamId, std::int64_t> streams;
  std::uint64_t violations = 0;

  std::int64_t& of(StreamId id) { return streams.try_emplace(id, stream_initial).first->second; }
  void data(const FrameHeader& h) {
    conn -= h.length;
    of(h.stream) -= h.length;
    if (conn < 0 || of(h.stream) < 0) ++violations;
  }
  void update(const FrameHeader& h) {
    if (h.stream == 0) conn += h.arg; else of(h.stream) += h.arg;
  }
};

}  // namespace

TEST_CASE("property: random streams both ways are reassembled exactly, within windows, under random chunking") {
  for (std::uint64_t seed : {1ULL, 2ULL, 3ULL}) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    SessionOptions g = options_for(Role::kGateway);
    SessionOptions a = options_for(Role::kAgent);
    for (SessionOptions* o : {&g, &a}) {
      o->initial_stream_window = 64 * 1024;
      o->initial_connection_window = 256 * 1024;
      o->max_concurrent_streams = 12;
      o->max_batch_bytes = 48 * 1024;
      o->max_pending_opens = 64;
    }
    auto p = std::make_unique<Pair>(g, a);
    p->rng.seed(seed * 77);
    p->max_chunk = 1 + rng() % 6000;
    p->gw.handler.auto_consume = false;
    p->ag.handler.auto_consume = false;
    p->gw.handler.keep_data = false;
    p->ag.handler.keep_data = false;

    std::map<StreamId, Outgoing> out[2];  // [0] gateway's sends, [1] agent's
    std::size_t seen_opened[2] = {0, 0};
    std::uint64_t cookies_queued[2] = {0, 0};
    CreditTally tally[2] = {{64 * 1024, 256 * 1024, {}, 0}, {64 * 1024, 256 * 1024, {}, 0}};  // [0] gw->ag
    std::size_t tap_pos[2] = {0, 0};
    const int kGatewayStreams = 40;
    const int kAgentStreams = 15;
    int opened[2] = {0, 0};
    Endpoint* ep[2] = {&p->gw, &p->ag};

    auto queue_some = [&](int side, Outgoing& o) {
      if (o.fin) return;
      std::size_t left = o.data.size() - o.queued;
      // One rng() call per statement: the order of calls within an expression is unspecified.
      std::size_t cap = 1 + rng() % 40000;
      std::size_t n = left == 0 ? 0 : 1 + rng() % std::min<std::size_t>(left, cap);
      bool fin = o.queued + n == o.data.size();
      if (n == 0 && !fin) return;
      std::uint64_t cookie = (static_cast<std::uint64_t>(o.id) << 32) | o.queued;
      auto st = ep[side]->session.queue_data(o.h, std::span<const std::byte>(o.data).subspan(o.queued, n), cookie, fin);
      if (!st) {
        REQUIRE(st.error().code() == ringtun::Errc::kExhausted);  // segment pool: try later
        return;
      }
      if (n > 0) ++cookies_queued[side];
      o.queued += n;
      o.fin = fin;
    };

    for (int step = 0; step < 200000; ++step) {
      for (int side = 0; side < 2; ++side) {
        Endpoint& e = *ep[side];
        // Open our own streams over time.
        int goal = side == 0 ? kGatewayStreams : kAgentStreams;
        if (opened[side] < goal && rng() % 4 == 0) {
          Bytes meta = to_bytes("s" + std::to_string(opened[side]));
          auto h = e.session.open_stream(meta);
          REQUIRE(h.has_value());
          Outgoing o;
          o.h = *h;
          o.id = *e.session.stream_id(*h);
          std::size_t size = rng() % 4 == 0 ? 0 : rng() % 200000;
          o.data = make_payload(rng, size);
          o.fnv = fnv_of(o.data);
          out[side].emplace(o.id, std::move(o));
          ++opened[side];
        }
        // Answer streams the peer opened with a response of our own.
        while (seen_opened[side] < e.handler.opened.size()) {
          StreamHandle h = e.handler.opened[seen_opened[side]++];
          Outgoing o;
          o.h = h;
          o.id = e.handler.of(h).id;
          std::size_t size = rng() % 3 == 0 ? 0 : rng() % 150000;
          o.data = make_payload(rng, size);
          o.fnv = fnv_of(o.data);
          out[side].emplace(o.id, std::move(o));
        }
        // Queue more data on a few streams.
        for (auto& [id, o] : out[side]) {
          if (rng() % 3 == 0) queue_some(side, o);
        }
        // Readers consume at random; some stall for a while.
        for (auto& [key, rx] : e.handler.rx) {
          if (rx.closed || rx.delivered == rx.consumed || rng() % 5 != 0) continue;
          std::uint64_t n = 1 + rng() % (rx.delivered - rx.consumed);
          REQUIRE(e.session.consumed(StreamHandle{key.first, key.second}, n).has_value());
          rx.consumed += n;
        }
        if (rng() % 50 == 0) e.session.flush_credit();
        // Memory held by a receiver never exceeds its windows.
        for (auto& [key, rx] : e.handler.rx) {
          StreamHandle h{key.first, key.second};
          auto held = e.session.unconsumed(h);
          if (!held) continue;
          REQUIRE(*held <= *e.session.receive_window(h));
          REQUIRE(*held <= 64 * 1024);
        }
        const ReceiveWindow& cw = e.session.connection_receive_window();
        REQUIRE(cw.held() <= cw.window());
      }
      p->step();
      REQUIRE_FALSE(p->gw_failed);
      REQUIRE_FALSE(p->ag_failed);
      // Tally credit from the wire in the order it was sent.
      for (int side = 0; side < 2; ++side) {
        Tap& tap = side == 0 ? p->gw_tap : p->ag_tap;
        for (; tap_pos[side] < tap.frames.size(); ++tap_pos[side]) {
          const FrameHeader& h = tap.frames[tap_pos[side]];
          if (h.type == FrameType::kData) tally[side].data(h);
          if (h.type == FrameType::kWindowUpdate) tally[1 - side].update(h);
          REQUIRE(h.type != FrameType::kRst);
          REQUIRE(h.type != FrameType::kGoaway);
        }
      }
      bool done = opened[0] == kGatewayStreams && opened[1] == kAgentStreams &&
                  p->gw.session.live_streams() == 0 && p->ag.session.live_streams() == 0;
      if (done) break;
    }
    MESSAGE("seed " << seed << ": " << p->bytes_gw_to_ag << " bytes gw->ag, " << p->bytes_ag_to_gw
                    << " bytes ag->gw, " << p->gw_tap.count(FrameType::kWindowUpdate) + p->ag_tap.count(FrameType::kWindowUpdate)
                    << " window updates, max chunk " << p->max_chunk);
    CHECK(p->bytes_gw_to_ag > 1'000'000);
    CHECK(p->bytes_ag_to_gw > 1'000'000);
    CHECK(tally[0].violations == 0);
    CHECK(tally[1].violations == 0);
    REQUIRE(p->gw.session.live_streams() == 0);
    REQUIRE(p->ag.session.live_streams() == 0);

    // Every stream arrived whole, on the right stream, and every cookie came back once.
    for (int side = 0; side < 2; ++side) {
      Recorder& receiver = ep[1 - side]->handler;
      std::map<StreamId, const StreamRx*> by_id;
      for (auto& [key, rx] : receiver.rx) {
        if (rx.id != 0) by_id[rx.id] = &rx;
      }
      // Streams opened by the receiver itself are recorded by handle without an id: map them via `out`.
      for (auto& [id, o] : out[1 - side]) {
        if (receiver.rx.count(Recorder::key(o.h)) != 0) by_id[id] = &receiver.rx[Recorder::key(o.h)];
      }
      for (auto& entry : out[side]) {
        const StreamId id = entry.first;  // not a structured binding: CAPTURE's lambda cannot capture one (clang 14)
        const Outgoing& o = entry.second;
        CAPTURE(id);
        REQUIRE(by_id.count(id) == 1);
        const StreamRx& rx = *by_id[id];
        CHECK(rx.delivered == o.data.size());
        CHECK(rx.fnv.h == o.fnv);
        CHECK(rx.fin);
        CHECK(rx.closed);
        CHECK_FALSE(rx.reset);
      }
      std::vector<std::uint64_t> released = ep[side]->handler.released;
      CHECK(released.size() == cookies_queued[side]);
      std::sort(released.begin(), released.end());
      CHECK(std::adjacent_find(released.begin(), released.end()) == released.end());
    }
  }
}
