// The control path between loops (Loop::post_control / deliver, ring/post.hpp): never refused, never lost, in order.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "ring/control_inbox.hpp"
#include "ring/post.hpp"
#include "ring/runtime.hpp"
#include "test_support.hpp"

using namespace ringtun;
using ring::Loop;
using test::skip_if_unsupported;

namespace {

ring::RuntimeOptions two_loops() {
  ring::RuntimeOptions options;
  options.threads = 2;
  options.pin_threads = false;
  options.handle_signals = false;
  options.loop.mailbox_capacity = 4;  // the bounded mailboxes are tiny: control must not depend on them
  return options;
}

struct Tally {
  std::uint64_t next = 0;    // the sequence number expected next (touched by the receiving loop only)
  std::uint64_t out_of_order = 0;
  std::uint64_t total = 0;
  ring::Runtime* runtime = nullptr;
};

struct Numbered {
  Tally* counter;
  std::uint64_t seq;
};

void count(Loop&, Numbered& m) {
  if (m.seq != m.counter->next) ++m.counter->out_of_order;
  m.counter->next = m.seq + 1;
  if (m.counter->next == m.counter->total) m.counter->runtime->stop(0);
}

std::atomic<int> g_alive{0};
std::atomic<int> g_ran{0};
struct Tracked {
  Tracked() { g_alive.fetch_add(1); }
  ~Tracked() { g_alive.fetch_sub(1); }
};

}  // namespace

TEST_CASE("control inbox: FIFO, empty() sees every push, the stub never leaks out") {
  struct Item final : ring::ControlMessage {
    explicit Item(int v) : value(v) {}
    void run(Loop&) noexcept override {}
    int value;
  };
  ring::ControlInbox inbox;
  CHECK(inbox.empty());
  CHECK(inbox.pop() == nullptr);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) inbox.push(new Item(i));
    CHECK_FALSE(inbox.empty());
    for (int i = 0; i < 100; ++i) {
      std::unique_ptr<ring::ControlMessage> m(inbox.pop());
      REQUIRE(m != nullptr);
      CHECK(static_cast<Item*>(m.get())->value == i);
    }
    CHECK(inbox.pop() == nullptr);
    CHECK(inbox.empty());
  }
  inbox.push(new Item(1));  // left in the inbox: its destructor deletes it (ASan would report a leak otherwise)
}

TEST_CASE("control: 100,000 messages from one loop to another with a 4-slot mailbox all run, in order") {
  ring::Runtime runtime(two_loops());
  Tally counter;
  counter.total = 100'000;
  counter.runtime = &runtime;
  auto result = runtime.run([&](Loop& loop) -> Status {
    if (loop.core() == 0) {
      // All at once, before loop 1 has run a single turn: a bounded mailbox would refuse all but 4.
      for (std::uint64_t i = 0; i < counter.total; ++i) {
        ring::post_owned<Numbered>(loop, 1, std::make_unique<Numbered>(Numbered{&counter, i}), count);
      }
    }
    return {};
  });
  skip_if_unsupported(result);
  REQUIRE(result);
  CHECK(*result == 0);
  CHECK(counter.next == counter.total);
  CHECK(counter.out_of_order == 0);
}

TEST_CASE("control: a thread that is not a loop delivers to a running loop; in order; the loop wakes for it") {
  ring::Runtime runtime(two_loops());
  Tally counter;
  counter.total = 20'000;
  counter.runtime = &runtime;
  std::atomic<Loop*> target{nullptr};
  std::thread sender([&] {
    Loop* loop = nullptr;
    while ((loop = target.load()) == nullptr) std::this_thread::yield();
    for (std::uint64_t i = 0; i < counter.total; ++i) {
      ring::deliver_owned<Numbered>(*loop, std::make_unique<Numbered>(Numbered{&counter, i}), count);
      if (i % 1000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let the loop fall asleep
    }
  });
  auto result = runtime.run([&](Loop& loop) -> Status {
    if (loop.core() == 1) target.store(&loop);
    return {};
  });
  if (target.load() == nullptr) target.store(reinterpret_cast<Loop*>(1));  // never started: release the thread
  sender.join();
  skip_if_unsupported(result);
  REQUIRE(result);
  CHECK(counter.next == counter.total);
  CHECK(counter.out_of_order == 0);
}

TEST_CASE("control: a message its target never ran is destroyed with the loop, exactly once") {
  g_alive = 0;
  g_ran = 0;
  {
    ring::Runtime runtime(two_loops());
    auto result = runtime.run([&](Loop& loop) -> Status {
      if (loop.core() == 0) {
        runtime.stop(0);
        for (int i = 0; i < 50; ++i) {
          ring::post_owned<Tracked>(loop, 1, std::make_unique<Tracked>(), [](Loop&, Tracked&) { g_ran.fetch_add(1); });
        }
      }
      return {};
    });
    skip_if_unsupported(result);
  }
  CHECK(g_alive.load() == 0);  // run or not, every message was freed
  CHECK(g_ran.load() <= 50);
}
