// The two echo servers that ringtun-echo compares: one on the ring (src/ring: io_uring, multishot recv from the
// per-core provided buffer ring, gather sends) and a classic epoll server written as a fair reference.
//
// Both follow the same shape: `threads` workers, each pinned to one allowed CPU, each with its own SO_REUSEPORT
// listener on the same address (the kernel spreads connections), TCP_NODELAY on every accepted socket, and per-core
// counters another thread can read while the server runs (relaxed snapshots, for benchmarks and the demo).
//
// Life cycle: open() binds the listeners (so the port is known, also for port 0, before anything runs); run()
// blocks until stop() or, with ServerOptions::handle_signals, SIGINT/SIGTERM; stop() may be called from any
// thread, including before run() has started the workers (run() then returns at once).
// Ownership: each server owns its listeners, threads and connections; connections die with their server.
// Thread rules: open()/run() on one thread; stop(), port() and snapshot() from any thread.
#pragma once

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "ring/net.hpp"

namespace ringtun::echo {

namespace net = ::ringtun::ring::net;

// Written by one worker thread (load + store, no locked instruction), read by anyone.
struct alignas(64) CoreCounters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> closed{0};
  std::atomic<std::uint64_t> bytes{0};             // bytes echoed (sent back)
  std::atomic<std::uint64_t> reads{0};             // ring: recv chunks; epoll: recv() calls that returned data
  std::atomic<std::uint64_t> writes{0};            // ring: gather sends completed; epoll: send() calls
  std::atomic<std::uint64_t> iterations{0};        // ring: loop turns; epoll: epoll_wait() returns
  std::atomic<std::uint64_t> events{0};            // ring: CQEs; epoll: ready events
  std::atomic<std::uint64_t> syscalls{0};          // ring: io_uring_enter calls (= turns); epoll: every data-path call
  std::atomic<std::uint64_t> paused{0};            // back-pressure: receiving stopped for a full queue
  std::atomic<std::uint64_t> late_chunks{0};       // ring only: chunks that arrived after recv_stop()
  std::atomic<std::uint64_t> queue_high_water{0};  // ring only: most chunks one connection held at once (max)
  std::atomic<std::uint64_t> stale{0};             // ring only: stale CQEs (must stay 0)
  std::atomic<std::uint64_t> enobufs{0};           // ring only: multishot recvs ended by an empty buffer ring
  std::atomic<bool> cpu_clock_valid{false};
  clockid_t cpu_clock{};  // this worker thread's CPU-time clock, set before cpu_clock_valid

  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t delta) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  // Called on the worker thread itself when it starts, and retired before it ends (the clock id dies with it).
  void publish_cpu_clock() noexcept;
  void retire_cpu_clock() noexcept { cpu_clock_valid.store(false, std::memory_order_release); }
};

// A sum over all cores at one moment (each counter read relaxed; good to within one event).
struct ServerSnapshot {
  std::uint64_t accepted = 0;
  std::uint64_t closed = 0;
  std::uint64_t bytes = 0;
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;
  std::uint64_t iterations = 0;
  std::uint64_t events = 0;
  std::uint64_t syscalls = 0;
  std::uint64_t paused = 0;
  std::uint64_t late_chunks = 0;
  std::uint64_t queue_high_water = 0;  // a maximum, not a sum (and not a delta in operator-)
  std::uint64_t stale = 0;
  std::uint64_t enobufs = 0;
  std::uint64_t cpu_ns = 0;  // CPU time of the worker threads (user + system)

  std::uint64_t open_connections() const noexcept { return accepted - closed; }
  ServerSnapshot operator-(const ServerSnapshot& earlier) const noexcept;
};

ServerSnapshot sum_counters(const std::vector<std::unique_ptr<CoreCounters>>& cores) noexcept;

// Pins the calling thread to `cpu` (or to the set `cpus`); a failure is reported but harmless for correctness.
Status pin_current_thread(unsigned cpu) noexcept;
Status pin_current_thread(const std::vector<unsigned>& cpus) noexcept;

enum class Engine { kRing, kEpoll };
const char* engine_name(Engine engine) noexcept;

class EchoServer {
 public:
  virtual ~EchoServer() = default;
  // Blocks until stopped; returns the exit code given to stop() (0 for a signal). Call once.
  virtual Result<int> run() = 0;
  virtual void stop(int exit_code = 0) noexcept = 0;
  virtual ServerSnapshot snapshot() const noexcept = 0;
  // True once every worker is accepting (connections made earlier wait in the listen backlog anyway).
  virtual bool serving() const noexcept = 0;
  // One line about how the engine runs (ring: the loop's mode and features; epoll: the trigger mode).
  virtual std::string describe() const = 0;
  // The bound address (with the kernel's port when port 0 was asked for).
  virtual const net::Address& address() const noexcept = 0;
};

struct ServerOptions {
  net::Address listen;
  unsigned threads = 1;
  bool pin_threads = true;     // worker i on the i-th allowed CPU
  std::uint32_t ring_buffers = 1024;        // ring only: provided buffers per loop (power of two)
  std::uint32_t ring_buffer_size = 16384;   // ring only: bytes per provided buffer
  bool handle_signals = true;  // run() also returns on SIGINT/SIGTERM (then the caller must block them in
                               // every other thread, e.g. by blocking them before starting any thread)
};

// Creates and binds either server.
Result<std::unique_ptr<EchoServer>> open_server(Engine engine, const ServerOptions& options);
Result<std::unique_ptr<EchoServer>> open_ring_server(const ServerOptions& options);
Result<std::unique_ptr<EchoServer>> open_epoll_server(const ServerOptions& options);

}  // namespace ringtun::echo
