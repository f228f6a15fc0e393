// Echo clients: a blocking ping-pong connection (the demo and the latency test), the latency test itself, and the
// requests-per-second test (an epoll client keeping one request outstanding on each of many connections).
//
// Every echo is checked byte-exact against what was sent (payload.hpp makes each request's bytes unique); a
// mismatch, an early close or a timeout is an error, never a silently skipped sample.
// Ownership: each call owns its sockets and closes them before returning.
// Thread rules: each function runs on the calling thread (run_rps also on `threads` threads it starts and joins).
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "ring/net.hpp"

namespace ringtun::echo {

namespace net = ::ringtun::ring::net;

// One blocking TCP connection with TCP_NODELAY and send/receive timeouts.
class PingPongConnection {
 public:
  PingPongConnection() = default;
  ~PingPongConnection();
  PingPongConnection(const PingPongConnection&) = delete;
  PingPongConnection& operator=(const PingPongConnection&) = delete;

  Status connect(const net::Address& target, std::uint32_t timeout_ms);
  // Sends `size` bytes and waits for exactly `size` bytes back into `echo`; returns the round-trip time in
  // nanoseconds. kProtocol if the echo differs, kClosed if the server closed, kTimedOut after the timeout.
  Result<std::uint64_t> round_trip(const std::uint8_t* data, std::uint32_t size, std::uint8_t* echo);
  int fd() const noexcept { return fd_; }
  void close() noexcept;

 private:
  int fd_ = -1;
};

struct LatencyOptions {
  net::Address target;
  std::uint32_t size = 64;
  std::uint32_t requests = 10000;
  std::uint32_t warmup = 1000;
  std::uint32_t timeout_ms = 5000;  // per round trip
};

struct LatencyReport {
  std::uint64_t requests = 0;  // measured (after warm-up)
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
};

Result<LatencyReport> run_latency(const LatencyOptions& options);

struct RpsOptions {
  net::Address target;
  std::uint32_t connections = 100;
  std::uint32_t size = 64;
  double seconds = 5.0;
  std::uint32_t warmup_ms = 500;    // not counted: lets both sides reach a steady state
  unsigned threads = 1;             // client threads; connections are split between them
  std::vector<unsigned> cpus;       // client thread i is pinned to cpus[i % size]; empty = not pinned
  std::uint32_t timeout_ms = 5000;  // no progress on a connection for this long is an error
};

struct RpsReport {
  std::uint64_t requests = 0;  // completed in the measured window
  double seconds = 0;          // length of the measured window
  double rps = 0;
  double client_busy = 0;  // CPU time / wall time of the client threads, averaged (1.0 = saturated)
};

Result<RpsReport> run_rps(const RpsOptions& options);

}  // namespace ringtun::echo
