// Scheduler: control frames first, deficit round-robin fairness, isolation of a stalled stream, batch bounds.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "sim.hpp"

using namespace frame_test;  // NOLINT

TEST_CASE("fairness: two streams with equal demand get shares within 10%") {
  // Different segment granularity on purpose: DRR shares bytes, not frames or segments.
  SessionOptions g = options_for(Role::kGateway);
  g.max_send_segments = 20000;
  Pair p(g, options_for(Role::kAgent));
  p.gw.handler.keep_data = false;
  p.ag.handler.keep_data = false;
  p.settle();
  auto a = p.gw.session.open_stream({});
  auto b = p.gw.session.open_stream({});
  REQUIRE((a.has_value() && b.has_value()));
  Bytes data(16 * 1024 * 1024, std::byte{1});
  for (std::size_t off = 0; off < data.size(); off += 1000) {
    std::size_t n = std::min<std::size_t>(1000, data.size() - off);
    if (!p.gw.session.queue_data(*a, std::span<const std::byte>(data).subspan(off, n), off).has_value()) break;
  }
  for (std::size_t off = 0; off < data.size(); off += 65536) {
    REQUIRE(p.gw.session.queue_data(*b, std::span<const std::byte>(data).subspan(off, 65536), off).has_value());
  }
  for (int i = 0; i < 40; ++i) p.step();
  REQUIRE(p.ag.handler.opened.size() == 2);
  double da = static_cast<double>(p.ag.handler.of(p.ag.handler.opened[0]).delivered);
  double db = static_cast<double>(p.ag.handler.of(p.ag.handler.opened[1]).delivered);
  REQUIRE(da > 1e6);
  CHECK(std::abs(da - db) <= 0.10 * std::max(da, db));
}

TEST_CASE("fairness: three streams, byte shares stay equal across batch boundaries") {
  SessionOptions g = options_for(Role::kGateway);
  g.max_batch_bytes = 50000;  // not a multiple of the frame size: turns get cut by the batch bound
  Pair p(g, options_for(Role::kAgent));
  p.ag.handler.keep_data = false;
  p.settle();
  Bytes data(8 * 1024 * 1024, std::byte{2});
  std::vector<StreamHandle> hs;
  for (int i = 0; i < 3; ++i) {
    auto h = p.gw.session.open_stream({});
    REQUIRE(h.has_value());
    REQUIRE(p.gw.session.queue_data(*h, data, static_cast<std::uint64_t>(i)).has_value());
    hs.push_back(*h);
  }
  for (int i = 0; i < 60; ++i) {
    p.step();
    REQUIRE(p.gw.batch.bytes() <= 50000);
  }
  std::vector<double> shares;
  for (auto h : p.ag.handler.opened) shares.push_back(static_cast<double>(p.ag.handler.of(h).delivered));
  REQUIRE(shares.size() == 3);
  double lo = *std::min_element(shares.begin(), shares.end());
  double hi = *std::max_element(shares.begin(), shares.end());
  CHECK(hi - lo <= 0.10 * hi);
}

TEST_CASE("a stream whose reader stalls does not stop another stream") {
  Pair p;
  p.gw.handler.keep_data = false;
  p.ag.handler.keep_data = false;
  p.ag.handler.auto_consume = false;
  auto stuck = p.gw.session.open_stream({});
  auto flowing = p.gw.session.open_stream({});
  REQUIRE((stuck.has_value() && flowing.has_value()));
  Bytes data(12 * 1024 * 1024, std::byte{3});  // 3x the connection window
  REQUIRE(p.gw.session.queue_data(*stuck, data, 1).has_value());
  REQUIRE(p.gw.session.queue_data(*flowing, data, 2, true).has_value());
  for (int i = 0; i < 100000; ++i) {
    // Only the second stream's reader makes progress.
    if (p.ag.handler.opened.size() == 2) {
      StreamHandle h = p.ag.handler.opened[1];
      StreamRx& rx = p.ag.handler.of(h);
      if (!rx.closed && rx.delivered > rx.consumed) {
        REQUIRE(p.ag.session.consumed(h, rx.delivered - rx.consumed).has_value());
        rx.consumed = rx.delivered;
      }
    }
    if (p.step() == 0) break;
  }
  StreamRx& s = p.ag.handler.of(p.ag.handler.opened.at(0));
  StreamRx& f = p.ag.handler.of(p.ag.handler.opened.at(1));
  CHECK(f.delivered == data.size());
  CHECK(f.fin);
  CHECK(s.delivered == kDefaultStreamWindow);  // exactly its window, then it stops
  CHECK(*p.ag.session.unconsumed(p.ag.handler.opened[0]) == kDefaultStreamWindow);
  CHECK(p.gw.handler.released == std::vector<std::uint64_t>{2});
}

TEST_CASE("control frames go before queued data; each batch respects the byte bound") {
  SessionOptions g = options_for(Role::kGateway);
  g.max_batch_bytes = 64 * 1024;
  Pair p(g, options_for(Role::kAgent));
  p.settle();
  auto h = p.gw.session.open_stream({});
  REQUIRE(h.has_value());
  Bytes data(1024 * 1024, std::byte{4});
  REQUIRE(p.gw.session.queue_data(*h, data, 1).has_value());
  p.gw.session.build_batch(p.gw.batch);
  CHECK(p.gw.batch.bytes() <= 64 * 1024);
  Bytes first = flatten(p.gw.batch);
  p.gw.session.sent(first.size());
  REQUIRE(p.ag.session.feed(first).has_value());
  // With data still queued, a PING and a CONTROL jump the queue.
  REQUIRE(p.gw.session.ping().has_value());
  Bytes json = to_bytes(R"({"type":"stats"})");
  REQUIRE(p.gw.session.send_control(json).has_value());
  REQUIRE(p.gw.session.reset_stream(*h, ErrorCode::kCancel).has_value());
  p.gw.session.build_batch(p.gw.batch);
  Bytes second = flatten(p.gw.batch);
  auto frames = decode_all(second, {second.size()});
  REQUIRE(frames.size() >= 3);
  CHECK(frames[0].header.type == FrameType::kPing);
  CHECK(frames[1].header.type == FrameType::kControl);
  CHECK(frames[2].header.type == FrameType::kRst);
}

TEST_CASE("DATA gathers many small segments into one frame, up to the max frame size") {
  Pair p;
  p.settle();
  auto h = p.gw.session.open_stream({});
  REQUIRE(h.has_value());
  std::vector<Bytes> bufs(300, Bytes(64, std::byte{5}));
  for (std::size_t i = 0; i < bufs.size(); ++i) REQUIRE(p.gw.session.queue_data(*h, bufs[i], i).has_value());
  p.gw.session.build_batch(p.gw.batch);
  Bytes wire = flatten(p.gw.batch);
  p.gw.session.sent(wire.size());
  CHECK(p.gw.batch.iov_count() <= FrameBatch::kMaxIov);
  // The batch's iovec array bounds the first DATA frame: one header and ~250 payload slices.
  auto frames = decode_all(wire, {wire.size()});
  REQUIRE(frames.size() == 2);
  CHECK(frames[1].header.type == FrameType::kData);
  CHECK(frames[1].payload.size() >= 240 * 64);
  p.gw.session.build_batch(p.gw.batch);
  Bytes rest = flatten(p.gw.batch);
  auto more = decode_all(rest, {rest.size()});
  std::size_t total = frames[1].payload.size();
  for (const auto& f : more) total += f.payload.size();
  CHECK(more.size() <= 2);  // the rest of the interrupted DRR turn, then a fresh one
  CHECK(total == 300 * 64);
}
