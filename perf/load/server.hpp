// The services ringtun-bench measures against: an echo service (every byte back, in order) and a sink (reads a
// request of N bytes, optionally hashes them, answers with the count and the hash; see payload.hpp), both on
// ring::Runtime with one loop per thread and SO_REUSEPORT listeners per loop.
// Ownership: run_services() owns the runtime, the listeners and every connection until it returns.
// Thread rules: run_services() blocks the calling thread; it returns after SIGINT/SIGTERM or `max_seconds`.
#pragma once

#include <cstdint>

#include "common/result.hpp"
#include "ring/net.hpp"

namespace ringtun::bench {

struct ServiceOptions {
  ring::net::Address echo;   // port 0: any free port (printed at start)
  ring::net::Address sink;
  bool has_echo = false;
  bool has_sink = false;
  unsigned threads = 1;
  std::uint32_t max_seconds = 3600;  // the service stops by itself after this long
};

// Prints one line "ringtun-bench serve: echo HOST:PORT sink HOST:PORT" to stdout once listening; returns the exit
// code.
Result<int> run_services(const ServiceOptions& options);

}  // namespace ringtun::bench
