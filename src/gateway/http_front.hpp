// The shared HTTP port (--http-listen): public clients speak HTTP/1.1 to the gateway, and each request is routed by
// its own Host to the http: service that claimed that name, over a fresh stream of the agent's tunnel connection on
// this core (the agent keeps connections to the local service open between requests, so a stream costs an OPEN
// frame, not a TCP connect).
//
// One HttpClient per client connection, one request at a time on it: the request head is read and checked
// (src/http: strict framing, no smuggling), routed, rewritten (X-Forwarded-*, hop-by-hop fields) and sent with its
// body as it arrives; the response is read back with the same framing rules and passed to the client, never a byte
// past its end, so the next request on the connection (which may be for another tenant's host) starts clean.
// Pipelined requests wait in the client's buffer until the response before them is out: responses go in order.
// After a 101 the connection is a byte pipe both ways (WebSocket). Errors are small plain pages: 400 (malformed),
// 404 (no service for the host), 405 (CONNECT), 408 (head timeout), 414/431 (too long), 502 (agent not connected,
// the service refused or sent garbage), 503 (stream limits), 504 (the service did not answer the connect in time).
//
// Memory: an idle keep-alive connection holds its socket, this object (a few hundred bytes) and nothing else; the
// buffers of a request live from its first byte to its response's last.
// Thread rules: one core's loop thread; HttpFront and its clients belong to that core.
#pragma once

#include <cstdint>
#include <string>

#include "common/counter.hpp"
#include "common/log.hpp"
#include "ring/loop.hpp"
#include "ring/net.hpp"
#include "ring/timer_wheel.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::gateway {

class Routing;
class HttpClient;

struct HttpFrontOptions {
  std::uint32_t head_timeout_ms = 10'000;  // a request head not complete in this time: 408
  std::uint32_t idle_timeout_ms = 60'000;  // a keep-alive connection waiting for its next request
  std::uint32_t linger_ms = 2'000;         // after our last response: how long to wait for the client's FIN
};

// Per-core counters (read by whoever owns the core).
struct HttpStats {
  Counter connections;
  Counter requests;
  Counter responses[6];              // by status class: [1] 1xx ... [5] 5xx, from services and from the gateway
  Counter gateway_errors;            // answers the gateway wrote itself (404, 502...)
  Counter upgrades;
  Counter open;                      // client connections now
};

class HttpFront final : public ring::SocketHandler {
 public:
  HttpFront(tunnel::TunnelCore& core, Routing& routing, const HttpFrontOptions& options);
  ~HttpFront() override;
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // Adopts this core's listener of the --http-listen group and accepts on it. Takes the fd in every case.
  Status listen(int fd);
  // Stops accepting and closes every client connection (the gateway is stopping).
  void stop();

  const HttpStats& stats() const noexcept { return stats_; }
  HttpStats& stats() noexcept { return stats_; }
  const HttpFrontOptions& options() const noexcept { return options_; }
  tunnel::TunnelCore& core() noexcept { return core_; }
  Routing& routing() noexcept { return routing_; }
  std::uint16_t port() const noexcept { return port_; }

  // Problems are logged at most kLogLinesPerSecond a second per core; the rest are counted into a later line.
  void log_problem(const char* format, ...) noexcept __attribute__((format(printf, 2, 3)));

 private:
  friend class HttpClient;
  static constexpr unsigned kLogLinesPerSecond = 10;

  void on_accept(ring::Loop& loop, ring::SocketId listener, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;
  void link(HttpClient* client) noexcept;
  void unlink(HttpClient* client) noexcept;

  tunnel::TunnelCore& core_;
  ring::Loop& loop_;
  Routing& routing_;
  HttpFrontOptions options_;
  ring::SocketId listener_;
  std::uint16_t port_ = 0;
  HttpClient* clients_ = nullptr;  // intrusive list of live clients
  bool stopped_ = false;
  HttpStats stats_;
  log::LineBudget log_budget_;
};

}  // namespace ringtun::gateway
