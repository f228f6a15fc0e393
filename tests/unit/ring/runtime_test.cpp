#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <initializer_list>
#include <thread>

#include "ring/net.hpp"
#include "ring/runtime.hpp"
#include "ring/spsc_queue.hpp"
#include "test_support.hpp"

using namespace ringtun;
using ring::CrossCoreTask;
using ring::Loop;

using test::skip_if_unsupported;

namespace {
// run() blocks the signals it takes in its own thread and the loops it starts, not in threads that existed before:
// a test thread that sends signals must block them itself, or a signal landing while the runtime thread is between
// two sigtimedwait calls is delivered to it (and kills the process).
void block_in_this_thread(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Runs loops that do nothing but count themselves into `started`; returns run()'s exit code (skips without io_uring).
int run_idle_loops(ring::Runtime& runtime, std::atomic<unsigned>* started) {
  auto result = runtime.run([&](Loop&) -> Status {
    started->fetch_add(1);
    return {};
  });
  skip_if_unsupported(result);
  REQUIRE(result);
  return *result;
}
}  // namespace

TEST_CASE("SpscQueue: bounded, FIFO, across two threads") {
  ring::SpscQueue<std::uint64_t> q(64);
  std::uint64_t v = 0;
  CHECK_FALSE(q.try_pop(&v));
  for (std::uint64_t i = 0; i < 64; ++i) REQUIRE(q.try_push(i));
  CHECK_FALSE(q.try_push(99));  // full is reported, never grown
  for (std::uint64_t i = 0; i < 64; ++i) {
    REQUIRE(q.try_pop(&v));
    CHECK(v == i);
  }
  // Both sides yield when they cannot make progress: on a busy 2-core machine a consumer spinning without yielding
  // took 98 s to drain what takes 0.1 s alone. Order is checked once at the end, not by a million assertions.
  // A larger queue for this part: with both threads on one busy core, each hand-off costs a time slice.
  ring::SpscQueue<std::uint64_t> shared(4096);
  constexpr std::uint64_t kCount = 300'000;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kCount; ++i) {
      while (!shared.try_push(i)) std::this_thread::yield();
    }
  });
  std::uint64_t expected = 0;
  std::uint64_t out_of_order = 0;
  while (expected < kCount) {
    if (shared.try_pop(&v)) {
      out_of_order += v != expected ? 1 : 0;
      ++expected;
    } else {
      std::this_thread::yield();
    }
  }
  producer.join();
  CHECK(out_of_order == 0);
}

// Two loops bounce a counter back and forth through their mailboxes; each increment happens on the loop that owns
// the counter, so ThreadSanitizer sees the queue as the only synchronisation.
TEST_CASE("mailbox between two loops: ping-pong of 20,000 tasks, doorbell wakes a sleeping loop") {
  ring::RuntimeOptions options;
  options.threads = 2;
  options.pin_threads = false;
  options.handle_signals = false;
  ring::Runtime runtime(options);

  struct Shared {
    ring::Runtime* runtime;
    std::uint64_t counts[2] = {0, 0};  // counts[i] touched only by loop i
    std::atomic<std::uint64_t> doorbells{0};
  } shared{&runtime};
  constexpr std::uint64_t kRounds = 10'000;

  static void (*bounce)(Loop&, const CrossCoreTask&) = [](Loop& loop, const CrossCoreTask& task) {
    auto* s = static_cast<Shared*>(task.object);
    ++s->counts[loop.core()];
    if (task.arg0 == 2 * kRounds) {
      s->doorbells.fetch_add(loop.stats().doorbells);
      s->runtime->stop(0);
      return;
    }
    CrossCoreTask next{bounce, s, task.arg0 + 1};
    REQUIRE(loop.post(1 - loop.core(), next));
  };

  auto result = runtime.run([&](Loop& loop) -> Status {
    if (loop.core() == 0) {
      RINGTUN_TRY(loop.post(1, CrossCoreTask{bounce, &shared, 1}));
    }
    return {};
  });
  skip_if_unsupported(result);
  REQUIRE(result);
  CHECK(*result == 0);
  CHECK(shared.counts[0] + shared.counts[1] == 2 * kRounds);
  CHECK(shared.counts[1] == kRounds);
}

TEST_CASE("runtime with N loops: per-core SO_REUSEPORT listeners serve, then stop cleanly") {
  for (unsigned threads : {1u, 3u}) {
    CAPTURE(threads);
    ring::RuntimeOptions options;
    options.threads = threads;
    options.handle_signals = false;
    ring::Runtime runtime(options);
    auto addr = ring::net::parse_address("127.0.0.1:0");
    REQUIRE(addr);
    auto fds = ring::net::listen_tcp_group(*addr, threads);
    REQUIRE(fds);
    auto port = ring::net::local_address((*fds)[0])->port();

    // Each core answers every connection with one byte naming the core, then closes.
    struct Greeter : ring::SocketHandler {
      std::uint8_t core_byte = 0;
      void on_accept(Loop& loop, ring::SocketId, int res) override {
        if (res < 0) return;
        auto id = loop.adopt(res, this);
        if (!id) return;
        iov = iovec{&core_byte, 1};
        if (!loop.send_busy(*id)) (void)loop.send(*id, &iov, 1);
      }
      void on_send(Loop& loop, ring::SocketId id, int) override { loop.close(id); }
      iovec iov{};
    };
    std::vector<std::unique_ptr<Greeter>> greeters(threads);
    std::atomic<unsigned> started{0};
    std::thread client([&] {
      while (started.load() < threads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      for (int i = 0; i < 50; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa = test::loopback_addr(port);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        std::uint8_t b = 0xFF;
        REQUIRE(::read(fd, &b, 1) == 1);
        CHECK(b < threads);
        ::close(fd);
      }
      runtime.stop(7);
    });
    auto result = runtime.run([&](Loop& loop) -> Status {
      auto& g = greeters[loop.core()];
      g = std::make_unique<Greeter>();
      g->core_byte = static_cast<std::uint8_t>(loop.core());
      auto id = loop.adopt((*fds)[loop.core()], g.get());
      if (!id) return Unexpected{id.error()};
      RINGTUN_TRY(loop.accept_start(*id));
      started.fetch_add(1);
      return {};
    });
    client.join();
    skip_if_unsupported(result);
    REQUIRE(result);
    CHECK(*result == 7);  // the exit code given to stop()
  }
}

TEST_CASE("runtime: SIGTERM stops every loop; a failing init stops the runtime with exit code 1") {
  {
    ring::RuntimeOptions options;
    options.threads = 2;
    options.pin_threads = false;
    ring::Runtime runtime(options);
    std::atomic<unsigned> started{0};
    std::thread killer([&] {
      block_in_this_thread({SIGTERM});
      while (started.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ::kill(::getpid(), SIGTERM);  // blocked in every thread; the runtime's sigtimedwait takes it
    });
    const int exit_code = run_idle_loops(runtime, &started);
    killer.join();
    CHECK(exit_code == 0);
  }
  {
    ring::RuntimeOptions options;
    options.threads = 2;
    options.pin_threads = false;
    options.handle_signals = false;
    ring::Runtime runtime(options);
    auto result = runtime.run([&](Loop& loop) -> Status {
      if (loop.core() == 1) return fail(Errc::kInvalidArgument, "test: refusing to start");
      return {};
    });
    skip_if_unsupported(result);
    REQUIRE(result);
    CHECK(*result == 1);
  }
}

TEST_CASE("runtime: SIGHUP runs on_reload on the runtime's own thread, as often as it arrives") {
  ring::RuntimeOptions options;
  options.threads = 2;
  options.pin_threads = false;
  const std::thread::id runtime_thread = std::this_thread::get_id();
  std::atomic<int> reloads{0};
  std::atomic<int> reloads_elsewhere{0};
  options.on_reload = [&] {
    (std::this_thread::get_id() == runtime_thread ? reloads : reloads_elsewhere).fetch_add(1);
  };
  ring::Runtime runtime(options);
  std::atomic<unsigned> started{0};
  std::thread sender([&] {
    block_in_this_thread({SIGHUP, SIGTERM});
    while (started.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (int i = 1; i <= 3; ++i) {
      ::kill(::getpid(), SIGHUP);
      // Signals of one kind do not queue: wait for each reload before sending the next.
      for (int spin = 0; spin < 5000 && reloads.load() < i; ++spin) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    ::kill(::getpid(), SIGTERM);
  });
  const int exit_code = run_idle_loops(runtime, &started);
  sender.join();
  CHECK(exit_code == 0);
  CHECK(reloads.load() == 3);
  CHECK(reloads_elsewhere.load() == 0);
}

namespace {
std::atomic<int> g_thread_exits{0};
std::atomic<int> g_task_ran{0};
std::atomic<int> g_task_dropped{0};
}  // namespace

TEST_CASE("runtime: on_thread_exit runs on every loop thread; a task its target never ran is dropped, not leaked") {
  ring::RuntimeOptions options;
  options.threads = 2;
  options.pin_threads = false;
  options.handle_signals = false;
  options.on_thread_exit = [] { g_thread_exits.fetch_add(1); };
  g_thread_exits = g_task_ran = g_task_dropped = 0;
  {
    ring::Runtime runtime(options);
    auto result = runtime.run([&](Loop& loop) -> Status {
      if (loop.core() == 0) {
        // Posted while the runtime is stopping: loop 1 runs it or, if it stopped first, drops it. Never neither.
        CrossCoreTask task{[](Loop&, const CrossCoreTask& t) { delete static_cast<int*>(t.object), ++g_task_ran; },
                           new int(7), 0,
                           [](const CrossCoreTask& t) { delete static_cast<int*>(t.object), ++g_task_dropped; }};
        runtime.stop(0);
        RINGTUN_TRY(loop.post(1, task));
      }
      return {};
    });
    skip_if_unsupported(result);
    REQUIRE(result);
  }
  CHECK(g_thread_exits.load() == 2);
  CHECK(g_task_ran.load() + g_task_dropped.load() == 1);
}
