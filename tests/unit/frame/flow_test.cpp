// Flow-control windows and the stream table containers.
#include <doctest/doctest.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <set>

#include "frame/flood_guard.hpp"
#include "frame/flow.hpp"
#include "frame/stream_table.hpp"

using namespace ringtun::frame;  // NOLINT

TEST_CASE("SendWindow refuses to grow past 2^31-1") {
  SendWindow w(100);
  CHECK(w.grant(kMaxWindow - 100));
  CHECK(w.available() == kMaxWindow);
  CHECK_FALSE(w.grant(1));
  CHECK(w.available() == kMaxWindow);
  w.consume(kMaxWindow);
  CHECK(w.available() == 0);
}

TEST_CASE("ReceiveWindow: data beyond the window is refused; credit is coalesced to half a window") {
  ReceiveWindow w(1000, 1000);
  CHECK_FALSE(w.on_receive(1001));
  CHECK(w.on_receive(600));
  CHECK(w.held() == 600);
  CHECK_FALSE(w.on_receive(401));
  w.on_released(100);
  CHECK_FALSE(w.update_due());
  CHECK(w.take_update(0, 0) == 100);  // an explicit flush still works below the threshold
  w.on_released(499);
  CHECK_FALSE(w.update_due());
  w.on_released(1);
  CHECK(w.update_due());
  CHECK(w.take_update(10, 0) == 500);
  CHECK(w.available() == 1000);
  CHECK(w.held() == 0);
}

TEST_CASE("ReceiveWindow auto-tuning doubles when credit drains within two RTTs, bounded by the max") {
  ReceiveWindow w(1000, 3000);
  const std::uint64_t rtt = 1000;
  std::uint64_t now = 0;
  auto cycle = [&](std::uint64_t dt) {
    now += dt;
    REQUIRE(w.on_receive(w.window() / 2));
    w.on_released(w.window() / 2);
    return w.take_update(now, rtt);
  };
  CHECK(cycle(0) == 500);         // first update starts the epoch, no growth
  CHECK(cycle(500) == 500 + 1000);  // fast: doubles to 2000
  CHECK(w.window() == 2000);
  CHECK(cycle(500) == 1000 + 1000);  // fast again: capped at 3000
  CHECK(w.window() == 3000);
  CHECK(cycle(500) == 1500);  // at max: no more growth
  CHECK(cycle(5000) == 1500);
  ReceiveWindow slow(1000, 3000);
  REQUIRE(slow.on_receive(500));
  slow.on_released(500);
  CHECK(slow.take_update(0, rtt) == 500);
  REQUIRE(slow.on_receive(500));
  slow.on_released(500);
  CHECK(slow.take_update(10 * rtt, rtt) == 500);  // slow consumer: no growth
  CHECK(slow.window() == 1000);
  ReceiveWindow unknown_rtt(1000, 3000);
  REQUIRE(unknown_rtt.on_receive(500));
  unknown_rtt.on_released(500);
  CHECK(unknown_rtt.take_update(0, 0) == 500);
  REQUIRE(unknown_rtt.on_receive(500));
  unknown_rtt.on_released(500);
  CHECK(unknown_rtt.take_update(1, 0) == 500);
}

TEST_CASE("StreamTable: handles go stale on release; the id index survives heavy churn") {
  StreamTable t(100);
  std::uint32_t a = t.allocate();
  StreamHandle ha = t.handle(a);
  REQUIRE(t.get(ha) != nullptr);
  t.release(a);
  CHECK(t.get(ha) == nullptr);
  std::uint32_t b = t.allocate();
  CHECK(b == a);  // slot reused
  CHECK(t.get(ha) == nullptr);
  CHECK(t.get(t.handle(b)) != nullptr);
  t.release(b);

  // Churn ids of one parity through the index and compare with a reference set.
  std::set<StreamId> live;
  std::mt19937 rng(3);
  StreamId next = 1;
  for (int i = 0; i < 20000; ++i) {
    if (live.size() < 90 && (live.empty() || rng() % 2 == 0)) {
      std::uint32_t idx = t.allocate();
      REQUIRE(idx != kNoIndex);
      t.at(idx).id = next;
      t.bind(next, idx);
      live.insert(next);
      next += 2;
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      std::uint32_t idx = t.find(*it);
      REQUIRE(idx != kNoIndex);
      REQUIRE(t.at(idx).id == *it);
      t.unbind(*it);
      t.release(idx);
      live.erase(it);
    }
    if (i % 97 == 0) {
      for (StreamId id : live) REQUIRE(t.find(id) != kNoIndex);
      CHECK(t.find(next) == kNoIndex);
    }
  }
  CHECK(t.live() == live.size());
  CHECK(t.created() <= 100);
}

TEST_CASE("StreamTable: the id index starts small and grows with the streams bound, up to the capacity's") {
  constexpr std::uint32_t kCapacity = 5000;
  StreamTable t(kCapacity);
  CHECK(t.index_slots() <= 16);  // an idle connection: a few hundred bytes, not 16,384 slots
  std::vector<StreamId> ids;
  for (std::uint32_t i = 0; i < kCapacity; ++i) {
    const std::uint32_t idx = t.allocate();
    REQUIRE(idx != kNoIndex);
    const StreamId id = 2 * i + 1;
    t.at(idx).id = id;
    t.bind(id, idx);
    ids.push_back(id);
    REQUIRE(t.index_slots() >= 2 * (i + 1));  // load factor <= 1/2 at every size
  }
  CHECK(t.index_slots() == 16384);  // bit_ceil(2 * 5000 + 2): no larger than the table sized up front was
  for (StreamId id : ids) REQUIRE(t.at(t.find(id)).id == id);
  std::mt19937 rng(7);
  std::shuffle(ids.begin(), ids.end(), rng);
  for (std::size_t n = 0; n < ids.size(); ++n) {
    const std::uint32_t idx = t.find(ids[n]);
    REQUIRE(idx != kNoIndex);
    t.unbind(ids[n]);
    t.release(idx);
    if (n % 499 == 0) {
      for (std::size_t m = n + 1; m < ids.size(); ++m) REQUIRE(t.find(ids[m]) != kNoIndex);
      CHECK(t.find(ids[n]) == kNoIndex);
    }
  }
  CHECK(t.live() == 0);
}

TEST_CASE("StreamTable refuses allocation at capacity") {
  StreamTable t(3);
  CHECK(t.allocate() != kNoIndex);
  CHECK(t.allocate() != kNoIndex);
  CHECK(t.allocate() != kNoIndex);
  CHECK(t.allocate() == kNoIndex);
}

TEST_CASE("FloodGuard counts per fixed window") {
  FloodLimits limits;
  limits.window_us = 1000;
  limits.max_pings = 3;
  FloodGuard g(limits);
  CHECK(g.record(Flood::kPing, 10));
  CHECK(g.record(Flood::kPing, 20));
  CHECK(g.record(Flood::kPing, 30));
  CHECK_FALSE(g.record(Flood::kPing, 40));
  CHECK(g.record(Flood::kPing, 1500));  // new window
  CHECK(g.count(Flood::kPing) == 1);
}
