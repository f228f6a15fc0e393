// ringtun-bench's load clients. Each runs on `threads` threads, each thread with its own ring::Loop that it creates
// and drives (run_once) until its share of the work is done or the deadline passes; nothing is shared between
// threads until they are joined and their results merged.
//
// Every byte that comes back is checked: echoes byte-exact against what was sent, sink replies by count and (with
// verify) by hash. A mismatch, an early close, a refused connect or a timeout is counted as an error, never skipped.
// Ownership: each call owns its loops, sockets and handlers and releases them before returning.
// Thread rules: call from one thread; it starts and joins its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "common/result.hpp"
#include "load/histogram.hpp"
#include "ring/net.hpp"

namespace ringtun::bench {

struct CommonOptions {
  ring::net::Address target;
  unsigned threads = 1;
  std::uint32_t connect_timeout_ms = 5000;
  std::uint32_t io_timeout_ms = 10000;  // no progress on a connection for this long is an error
};

struct ThroughputOptions {
  CommonOptions common;
  std::uint32_t streams = 1;
  std::uint64_t bytes = 100'000'000;  // per stream
  bool verify = false;
  std::uint32_t chunk = 256 * 1024;   // bytes handed to one send
};

struct ThroughputReport {
  std::uint64_t bytes = 0;       // delivered and acknowledged by the sink
  std::uint32_t streams_ok = 0;
  std::uint32_t errors = 0;
  std::uint32_t verify_failures = 0;
  double seconds = 0;            // first connect to last reply
  double mb_per_s = 0;           // 10^6 bytes per second
  std::string first_error;
};

struct LatencyOptions {
  CommonOptions common;
  std::uint32_t size = 64;
  std::uint32_t requests = 10'000;
  std::uint32_t warmup = 1'000;
  std::uint32_t connections = 1;  // each does requests/connections sequential round trips
};

struct LatencyReport {
  LatencyHistogram histogram;
  std::uint32_t errors = 0;
  std::uint32_t mismatches = 0;
  double seconds = 0;
  std::string first_error;
};

struct ConnectRateOptions {
  CommonOptions common;
  double seconds = 5;
  std::uint32_t concurrency = 8;  // connections in progress at once
  std::uint32_t size = 16;
};

struct ConnectRateReport {
  std::uint64_t completed = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  double per_second = 0;
  LatencyHistogram histogram;  // connect + echo + close, per connection
  std::string first_error;
};

struct HoldOptions {
  CommonOptions common;
  std::uint32_t connections = 1000;
  std::uint32_t concurrency = 64;    // connections being opened at once
  double max_seconds = 300;          // stops by itself after this long even if never told to
  std::uint32_t size = 16;
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by a signal handler) to end the hold
};

struct HoldReport {
  std::uint32_t opened = 0;     // verified with one echo
  std::uint32_t errors = 0;     // failed to open or verify
  std::uint32_t dropped = 0;    // closed by the other side while held
  std::uint32_t pending = 0;    // neither verified nor failed when the hold began (stopped or timed out first)
  double open_seconds = 0;      // until every connection was verified (or failed)
  double held_seconds = 0;
  std::string first_error;
};

Result<ThroughputReport> run_throughput(const ThroughputOptions& options);
Result<LatencyReport> run_latency(const LatencyOptions& options);
Result<ConnectRateReport> run_connect_rate(const ConnectRateOptions& options);
// Calls `ready` (on the calling thread's first loop thread) once all connections are verified, then holds them until
// *options.stop or max_seconds.
Result<HoldReport> run_hold(const HoldOptions& options, void (*ready)(const HoldReport& so_far));

}  // namespace ringtun::bench
