// ClientLoop: a ring::Loop created and driven by one client thread, plus the small pieces every client needs
// (monotonic time, splitting work across threads, recording the first error).
// Ownership: ClientLoop owns its Loop; finish() closes every socket and reaps every operation.
// Thread rules: a ClientLoop is used only on the thread that created it.
#pragma once

#include <time.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "ring/loop.hpp"

namespace ringtun::bench {

inline std::uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline ring::LoopOptions client_loop_options() {
  ring::LoopOptions o;
  o.fixed_buffers = 0;  // clients send from their own memory
  o.recv_pools[0] = {256, 16384};
  return o;
}

class ClientLoop {
 public:
  static Result<ClientLoop> create() {
    auto loop = ring::Loop::create(client_loop_options());
    if (!loop) return Unexpected{loop.error()};
    return ClientLoop(std::move(*loop));
  }

  ring::Loop& loop() noexcept { return *loop_; }

  // Turns the loop until done() or until `deadline_ns`; returns false on the deadline.
  template <typename Done>
  bool drive(Done&& done, std::uint64_t deadline_ns) {
    while (!done()) {
      const std::uint64_t now = now_ns();
      if (now >= deadline_ns) return false;
      const std::uint64_t left_ms = (deadline_ns - now) / 1'000'000 + 1;
      loop_->run_once(static_cast<std::uint32_t>(std::min<std::uint64_t>(left_ms, 50)));
    }
    return true;
  }

  // Closes everything still open and reaps every operation (handlers get on_close()).
  void finish() {
    loop_->exit();
    loop_->run();
  }

 private:
  explicit ClientLoop(std::unique_ptr<ring::Loop> loop) : loop_(std::move(loop)) {}
  std::unique_ptr<ring::Loop> loop_;
};

// Runs fn(thread_index) on `threads` threads and joins them.
inline void run_threads(unsigned threads, const std::function<void(unsigned)>& fn) {
  if (threads <= 1) {
    fn(0);
    return;
  }
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) pool.emplace_back(fn, i);
  for (auto& t : pool) t.join();
}

// Runs fn(thread_index, client) on `threads` threads, each driving a ClientLoop of its own. fn must call
// client.finish() before the handlers it owns go out of scope (finishing delivers their on_close()). A loop that
// cannot be created fails the whole run.
inline Status run_client_threads(unsigned threads, const std::function<void(unsigned, ClientLoop&)>& fn) {
  std::mutex mutex;
  Error error;
  bool failed = false;
  run_threads(threads, [&](unsigned t) {
    auto client = ClientLoop::create();
    if (!client) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!failed) error = client.error();
      failed = true;
      return;
    }
    fn(t, *client);
  });
  if (failed) return Unexpected{error};
  return {};
}

// The share of `total` that thread `index` of `threads` gets (the first ones get the remainder).
inline std::uint32_t share(std::uint32_t total, unsigned threads, unsigned index) {
  return total / threads + (index < total % threads ? 1 : 0);
}

inline void note_error(std::string& first, const char* what, int res) {
  if (!first.empty()) return;
  first = what;
  if (res < 0) {
    char buf[64];
    first += ": ";
    first += strerror_r(-res, buf, sizeof buf);
  }
}

inline std::string describe(const Error& error) {
  char buf[160];
  return error.describe(buf, sizeof buf);
}

}  // namespace ringtun::bench
