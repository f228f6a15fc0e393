#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "ring/timer_wheel.hpp"
#include "test_support.hpp"

using ringtun::ring::Timer;
using ringtun::ring::TimerWheel;

namespace {
struct Probe {
  std::vector<int>* log = nullptr;
  int id = 0;
  std::uint64_t fired_at = 0;
  TimerWheel* wheel = nullptr;
  Timer timer{[](void* p) {
                auto* self = static_cast<Probe*>(p);
                self->log->push_back(self->id);
                self->fired_at = self->wheel->now_ms();
              },
              this};
};
}  // namespace

TEST_CASE("timers fire in expiry order, at their tick, across every level") {
  const std::uint64_t start = 1'000'000;
  TimerWheel wheel(start);
  std::vector<int> log;
  // Delays straddle level boundaries (64, 4096, 262144 ms) and the wheel's end (parked and re-filed).
  const std::uint64_t delays[] = {5, 1, 63, 64, 65, 4095, 4096, 4097, 100'000, 262'143, 262'144, 3'000'000,
                                  TimerWheel::kMaxDelayMs + 5000, 2, 7000};
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < static_cast<int>(std::size(delays)); ++i) {
    auto p = std::make_unique<Probe>();
    p->log = &log;
    p->id = i;
    p->wheel = &wheel;
    wheel.schedule(p->timer, delays[i]);
    probes.push_back(std::move(p));
  }
  // Advance in uneven steps, never past the next expiry hint, as the loop does.
  std::uint64_t now = start;
  const std::uint64_t end = start + TimerWheel::kMaxDelayMs + 10'000;
  while (now < end && wheel.armed_count() > 0) {
    auto next = wheel.next_expiry_ms();
    REQUIRE(next.has_value());
    now = std::max(now + 1, *next);
    wheel.advance(now);
  }
  REQUIRE(log.size() == std::size(delays));
  std::vector<int> expected(std::size(delays));
  for (int i = 0; i < static_cast<int>(expected.size()); ++i) expected[i] = i;
  std::stable_sort(expected.begin(), expected.end(), [&](int a, int b) { return delays[a] < delays[b]; });
  CHECK(log == expected);
  for (int i = 0; i < static_cast<int>(std::size(delays)); ++i) {
    CAPTURE(delays[i]);
    CHECK(probes[i]->fired_at == start + delays[i]);  // exactly on time when advanced by the hint
  }
}

TEST_CASE("next_expiry_ms is never later than the earliest armed timer (randomised against a model)") {
  ringtun::test::Xorshift rng(42);
  TimerWheel wheel(0);
  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<int> log;
  std::uint64_t now = 0;
  for (int round = 0; round < 3000; ++round) {
    auto p = std::make_unique<Probe>();
    p->log = &log;
    p->id = round;
    p->wheel = &wheel;
    std::uint64_t delay = rng.below(4) == 0 ? rng.below(300'000) : rng.below(5000);
    wheel.schedule(p->timer, delay);
    probes.push_back(std::move(p));
    if (rng.below(5) == 0) {  // cancel a random armed one
      auto& victim = probes[rng.below(static_cast<std::uint32_t>(probes.size()))];
      wheel.cancel(victim->timer);
    }
    std::uint64_t earliest = UINT64_MAX;
    for (auto& q : probes) {
      if (q->timer.armed()) earliest = std::min(earliest, q->timer.expiry_ms());
    }
    auto hint = wheel.next_expiry_ms();
    REQUIRE(hint.has_value() == (earliest != UINT64_MAX));
    if (hint) REQUIRE(*hint <= earliest);
    now += rng.below(200);
    wheel.advance(now);
    for (auto& q : probes) {
      if (!q->timer.armed() && q->fired_at != 0) REQUIRE(q->fired_at <= now);
    }
  }
  // Every timer that fired did so no earlier than its expiry.
  for (auto& q : probes) {
    if (q->fired_at != 0) CHECK(q->fired_at >= q->timer.expiry_ms());
  }
}

TEST_CASE("cancelled timers do not fire; a callback may re-arm itself and cancel others") {
  TimerWheel wheel(0);
  int a_count = 0;
  int b_count = 0;
  Timer b([](void* p) { ++*static_cast<int*>(p); }, &b_count);
  struct Rearm {
    TimerWheel* wheel;
    int* count;
    Timer* other;
    Timer self;
  } rearm{&wheel, &a_count, &b, {}};
  rearm.self.set_callback(
      [](void* p) {
        auto* r = static_cast<Rearm*>(p);
        ++*r->count;
        r->wheel->cancel(*r->other);  // cancel a timer due in the same tick
        if (*r->count < 3) r->wheel->schedule(r->self, 0);
      },
      &rearm);
  wheel.schedule(rearm.self, 10);
  wheel.schedule(b, 10);
  Timer c([](void*) { FAIL("cancelled timer fired"); }, nullptr);
  wheel.schedule(c, 5);
  wheel.cancel(c);
  CHECK_FALSE(c.armed());
  wheel.advance(10);
  CHECK(a_count == 1);
  CHECK(b_count == 0);
  wheel.advance(11);  // delay 0 from inside a callback: the next tick
  CHECK(a_count == 2);
  wheel.advance(12);
  CHECK(a_count == 3);
  wheel.advance(1000);
  CHECK(a_count == 3);
  CHECK(wheel.armed_count() == 0);
}

TEST_CASE("re-scheduling moves a timer; destroying an armed timer disarms it") {
  TimerWheel wheel(0);
  int fired = 0;
  Timer t([](void* p) { ++*static_cast<int*>(p); }, &fired);
  wheel.schedule(t, 100);
  wheel.schedule(t, 5000);
  wheel.advance(4999);
  CHECK(fired == 0);
  wheel.advance(5000);
  CHECK(fired == 1);
  {
    Timer temp([](void*) { FAIL("destroyed timer fired"); }, nullptr);
    wheel.schedule(temp, 10);
    CHECK(wheel.armed_count() == 1);
  }
  CHECK(wheel.armed_count() == 0);
  wheel.advance(6000);
}

TEST_CASE("many timers: 100,000 with random delays all fire, in order") {
  TimerWheel wheel(0);
  ringtun::test::Xorshift rng(7);
  struct Entry {
    std::uint64_t expiry;
    std::uint64_t* last;
    bool* ordered;
    Timer timer;
  };
  std::uint64_t last = 0;
  bool ordered = true;
  std::vector<std::unique_ptr<Entry>> entries;
  for (int i = 0; i < 100'000; ++i) {
    auto e = std::make_unique<Entry>();
    e->last = &last;
    e->ordered = &ordered;
    e->timer.set_callback(
        [](void* p) {
          auto* en = static_cast<Entry*>(p);
          if (en->timer.expiry_ms() < *en->last) *en->ordered = false;
          *en->last = en->timer.expiry_ms();
        },
        e.get());
    wheel.schedule(e->timer, 1 + rng.below(600'000));
    entries.push_back(std::move(e));
  }
  std::uint64_t now = 0;
  std::size_t fired = 0;
  while (wheel.armed_count() > 0) {
    now += 1 + rng.below(50);
    fired += wheel.advance(now);
  }
  CHECK(fired == 100'000);
  CHECK(ordered);
}
