// Routing: one core's way from a public connection to the agent that serves it.
//
// The core keeps the latest route snapshot the registry sent (immutable, shared by every core) and, by session slot,
// its own tunnel connection of each agent session. A public client is routed by its listener (and, for http/tls, the
// name it asks for) to a service, then to one of the service's sessions whose connection on this core is up (for a
// load-balancing group: the one with the fewest streams), and a stream is opened on that connection with the service
// and client address as metadata. Nothing on this path locks or allocates (the lookup is a hash probe into the snapshot, the metadata is built on the stack).
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

#include "common/counter.hpp"
#include "common/log.hpp"
#include "gateway/access_gate.hpp"
#include "gateway/traffic_table.hpp"
#include "ops/access_log.hpp"
#include "ops/histogram.hpp"
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
  // The gateway's access policies (null: none), before the first client.
  void set_access(const AccessPolicies* policies);
  const AccessGate& gate() const noexcept { return gate_; }
  // The policy check for a client of `route` at `client` (a no-op without rules for its token). Not kAllowed: the
  // refusal is counted, logged at a bounded rate and reported (as refused()); the caller closes the client.
  route::Verdict admit(const route::Route& route, route::Kind kind, std::uint16_t port,
                       const ring::net::Address& client, AccessPass* pass);
  void release(AccessPass& pass) noexcept { gate_.release(pass); }
  const route::Table& table() const noexcept { return *table_; }

  // The session's connection on this core is up; returns the connection it replaces (to be closed), if any.
  tunnel::TunnelConn* conn_up(route::SessionRef session, tunnel::TunnelConn& conn);
  // The connection is gone (only if it is the one recorded for the session).
  void conn_down(route::SessionRef session, const tunnel::TunnelConn& conn);
  std::size_t connections() const noexcept { return connections_; }

  // The connection on this core of one of `route`'s sessions that has one up, or null (http and tls clients are
  // answered at once then: their protocols have an error to say so). For a group: the member with the fewest open
  // streams on its connection on this core, ties broken in turn.
  tunnel::TunnelConn* conn_for(const route::Route& route) noexcept;

  // ---- accounting: metrics, the access log, the admin's list of recent refusals ----
  // A public connection that got no stream, for the admin endpoint's recent list: at most 20 a second per core are
  // reported (the rest are counted only), so it may allocate.
  struct RefusalEvent {
    std::uint64_t time_ms = 0;  // wall clock
    std::string listener;       // "tcp:8080", "http", "tls"
    std::string client;
    std::string service;        // empty: no service found
    const char* reason = "";    // a fixed word: no_route, no_tunnel, stream_limit, unknown_host...
  };
  using RefusalSink = void (*)(void* context, RefusalEvent event);
  void set_refusal_sink(RefusalSink sink, void* context) noexcept {
    refusal_sink_ = sink;
    refusal_context_ = context;
  }
  void set_access_log(ops::AccessLog* log) noexcept { access_log_ = log; }
  ops::AccessLog* access_log() noexcept { return access_log_; }
  TrafficTable& traffic() noexcept { return traffic_; }
  const TrafficTable& traffic() const noexcept { return traffic_; }
  ops::LatencyHistogram& first_byte() noexcept { return first_byte_; }
  const ops::LatencyHistogram& first_byte() const noexcept { return first_byte_; }
  // How a stream for `route` from `client` (public port `port`; 0 for the shared ports) is counted: its service's
  // entry, timed to its first byte, and with the access log on, a record that stream_finished() writes and frees.
  // `pass` (what the access policy let the client hold) moves into the record and is released when the stream ends.
  tunnel::Tracking tracking(const route::Route& route, const ring::net::Address& client, std::uint16_t port,
                            AccessPass& pass);
  // The open failed: frees what tracking() made and releases its pass.
  void drop(const tunnel::Tracking& tracking) noexcept;
  void stream_finished(tunnel::StreamEnd& end) noexcept;
  // Counts a public connection that got no stream (for its service when known), writes its access line (not for
  // kHttp: the HTTP port logs its requests itself) and reports it to the sink. The listener is `kind`, and for kTcp
  // public port `port`.
  void refused(const route::Route* route, const ring::net::Address* client, route::Kind kind, std::uint16_t port,
               const char* reason);
  // A client accepted on public TCP port `port`; takes `fd`.
  void tcp_client(std::uint16_t port, int fd);
  // The gateway is stopping: parked clients are closed, none parks any more.
  void stop();

  struct Stats {
    Counter streams_opened;
    Counter refused_no_route;       // the port has no route (released meanwhile)
    Counter refused_stream_limit;   // the agent connection's stream limit or pending opens
    Counter refused_no_tunnel;      // no connection on this core within kParkMs, or too many waiting
    Counter parked;
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
    AccessPass pass;
    ring::net::Address client;
  };

  tunnel::TunnelConn* conn_of(route::SessionRef session) const noexcept;
  // `client`: the peer address of `fd`, read once at accept (the policy and the stream metadata both need it).
  void route_client(const route::Route& route, std::uint16_t port, int fd, const ring::net::Address& client,
                    AccessPass pass);
  void open_stream(tunnel::TunnelConn& conn, const route::Route& route, std::uint16_t port, int fd,
                   const ring::net::Address& client, AccessPass pass);
  void park(route::SessionRef session, const route::RouteKey& key, int fd, const ring::net::Address& client,
            AccessPass pass);
  void close_parked(Parked& parked) noexcept;
  void release_parked(route::SessionRef session);
  void sweep_parked(bool all);
  void note_refusal(std::uint16_t port, const char* agent, const char* why);
  // refused() for a client known by its socket.
  void refused_fd(const route::Route* route, route::Kind kind, std::uint16_t port, int fd, const char* reason);
  // Both: the client's address is taken from `client`, else (fd >= 0) looked up when a line or a report needs it.
  void refuse(const route::Route* route, const ring::net::Address* client, int fd, route::Kind kind,
              std::uint16_t port, const char* reason);

  ring::Loop& loop_;
  std::shared_ptr<const route::Table> table_;
  std::vector<SessionConn> by_slot_;
  std::size_t connections_ = 0;
  std::size_t next_turn_ = 0;  // conn_for's round-robin among a group's least-loaded members
  std::vector<Parked> parked_;
  ring::Timer sweep_timer_;
  bool stopped_ = false;
  Stats stats_;
  TrafficTable traffic_;
  ops::LatencyHistogram first_byte_;
  ops::AccessLog* access_log_ = nullptr;
  AccessGate gate_{nullptr};
  RefusalSink refusal_sink_ = nullptr;
  void* refusal_context_ = nullptr;
  log::LineBudget refusal_budget_{20};  // refusals reported to the sink, per second
  // Refused clients are logged at most once a second, with a count: a burst must not become a burst of log lines.
  std::uint64_t refused_log_ms_ = 0;
  std::uint64_t refused_since_log_ = 0;
  log::LineBudget policy_log_budget_{1};  // "refused by the access policy" lines, per second
};

}  // namespace ringtun::gateway
