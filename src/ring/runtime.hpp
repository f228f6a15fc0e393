// Runtime: N loops, one per core, each on its own thread (pinned to a CPU unless told not to); clean stop on SIGINT/SIGTERM.
//
// run() blocks SIGINT/SIGTERM in every thread, starts the loop threads, and waits in the calling thread for a
// signal or for stop(). Each thread creates its own Loop (io_uring rings with SINGLE_ISSUER belong to their
// creator), then all loops are wired together for cross-core posts, then each calls `init(loop)` on its own thread
// and runs. A stop asks every loop to stop: each runs its stop handler, closes its sockets, reaps every in-flight
// operation and returns; run() joins the threads and returns the exit code given to stop() (0 for a signal).
// Ownership: the Runtime owns the loops and threads; init callbacks own what they create on their loop.
// Thread rules: run() from one thread (usually main); stop() from any thread, including loop threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "ring/loop.hpp"

namespace ringtun::ring {

struct RuntimeOptions {
  unsigned threads = 0;     // 0 = as many as `cpus` lists, or the CPUs this process may run on
  bool pin_threads = true;  // pin loop i to cpus[i % size], or without cpus to the i-th allowed CPU
  std::vector<unsigned> cpus;  // where to pin (each one the process may run on: the caller checks)
  bool handle_signals = true;
  LoopOptions loop;
  // Runs on each loop's thread after its loop stopped: frees per-thread state of libraries (e.g. wolfSSL's ECC cache).
  void (*on_thread_exit)() = nullptr;
  // With handle_signals: runs on the thread in run() (not a loop) when SIGHUP arrives. Unset: SIGHUP keeps its
  // default action (the process ends), as for any program that cannot reload.
  std::function<void()> on_reload;
};

class Runtime {
 public:
  // Runs on each loop's thread before it starts turning; may create sockets, timers, handlers on that loop.
  // Returning an error stops the whole runtime.
  using LoopInit = std::function<Status(Loop& loop)>;

  explicit Runtime(RuntimeOptions options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Blocks until stopped. Returns the exit code, or an error if a loop could not start.
  Result<int> run(const LoopInit& init);
  // Thread-safe. The first call's exit code wins.
  void stop(int exit_code = 0) noexcept;

  unsigned thread_count() const noexcept { return thread_count_; }
  // The CPUs this process may run on, in order (what threads=0 counts).
  static std::vector<unsigned> allowed_cpus();

 private:
  RuntimeOptions options_;
  unsigned thread_count_;
  std::mutex loops_mutex_;  // guards loops_ between stop() on any thread and run() creating/destroying them
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<int> exit_code_{0};
};

}  // namespace ringtun::ring
