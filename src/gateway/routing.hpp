// Routing: one core's way from a public connection to the agent that serves it.
//
// The core keeps the latest route snapshot the registry sent (immutable, shared by every core) and, by session slot,
// its own tunnel connection of each agent session. A public client is routed by its listener (and, for http/tls
// later, the name it asks for) to a service, then to the first of the service's sessions whose connection on this
// core is up, and a stream is opened on that connection with the service and client address as metadata. Nothing on
// this path locks or allocates (the lookup is a hash probe into the snapshot, the metadata is built on the stack).
//
// A client whose agent has no connection on this core yet (the agent opens them one after another, or one is
// reconnecting) waits for it, a bounded number (kMaxParked per core) for a bounded time (kParkMs), rather than
// being closed while the agent is on its way. A stream that cannot be opened (the connection's stream limit, a
// tunnel going away) closes that client alone, counted by reason and logged at most once a second.
// Thread rules: one core's loop thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ring/loop.hpp"
#include "ring/timer_wheel.hpp"
#include "route/route.hpp"
#include "tunnel/stream_meta.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::gateway {

// The OPEN metadata of a stream for `route` (its kind and service) from a client at `client` (unknown: AF_UNSPEC)
// on public port `port`, written into `out` (no allocation: it runs for every public connection and every HTTP
// request). Empty only if the route's service name does not fit, which the registry never lets happen.
std::span<const std::byte> encode_route_meta(const route::Route& route, std::uint16_t port,
                                             const ring::net::Address& client, std::uint8_t flags,
                                             std::span<std::byte, tunnel::kMaxStreamMeta> out) noexcept;

class Routing {
 public:
  static constexpr std::size_t kMaxParked = 4096;
  static constexpr std::uint32_t kParkMs = 5'000;
  static constexpr std::uint32_t kParkSweepMs = 250;

  explicit Routing(ring::Loop& loop);
  ~Routing();
  Routing(const Routing&) = delete;
  Routing& operator=(const Routing&) = delete;

  void set_table(std::shared_ptr<const route::Table> table);
  const route::Table& table() const noexcept { return *table_; }

  // The session's connection on this core is up; returns the connection it replaces (to be closed), if any.
  tunnel::TunnelConn* conn_up(route::SessionRef session, tunnel::TunnelConn& conn);
  // The connection is gone (only if it is the one recorded for the session).
  void conn_down(route::SessionRef session, const tunnel::TunnelConn& conn);
  std::size_t connections() const noexcept { return connections_; }

  // The connection on this core of the first of `route`'s sessions that has one up, or null (http and tls clients
  // are answered at once then: their protocols have an error to say so).
  tunnel::TunnelConn* conn_for(const route::Route& route) const noexcept;
  // A client accepted on public TCP port `port`; takes `fd`.
  void tcp_client(std::uint16_t port, int fd);
  // The gateway is stopping: parked clients are closed, none parks any more.
  void stop();

  struct Stats {
    std::uint64_t streams_opened = 0;
    std::uint64_t refused_no_route = 0;       // the port has no route (released meanwhile)
    std::uint64_t refused_stream_limit = 0;   // the agent connection's stream limit or pending opens
    std::uint64_t refused_no_tunnel = 0;      // no connection on this core within kParkMs, or too many waiting
    std::uint64_t parked = 0;
  };
  const Stats& stats() const noexcept { return stats_; }

 private:
  struct SessionConn {
    std::uint32_t generation = 0;
    tunnel::TunnelConn* conn = nullptr;
  };
  struct Parked {
    int fd = -1;
    route::SessionRef session;
    route::RouteKey key;
    std::uint64_t since_ms = 0;
  };

  tunnel::TunnelConn* conn_of(route::SessionRef session) const noexcept;
  void route_client(const route::Route& route, std::uint16_t port, int fd);
  void open_stream(tunnel::TunnelConn& conn, const route::Route& route, std::uint16_t port, int fd);
  void park(route::SessionRef session, const route::RouteKey& key, int fd);
  void release_parked(route::SessionRef session);
  void sweep_parked(bool all);
  void note_refusal(std::uint16_t port, const char* agent, const char* why);

  ring::Loop& loop_;
  std::shared_ptr<const route::Table> table_;
  std::vector<SessionConn> by_slot_;
  std::size_t connections_ = 0;
  std::vector<Parked> parked_;
  ring::Timer sweep_timer_;
  bool stopped_ = false;
  Stats stats_;
  // Refused clients are logged at most once a second, with a count: a burst must not become a burst of log lines.
  std::uint64_t refused_log_ms_ = 0;
  std::uint64_t refused_since_log_ = 0;
};

}  // namespace ringtun::gateway
