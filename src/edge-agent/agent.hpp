// ringtun-agent: dials the gateway, claims its services, and serves the streams the gateway opens.
//
// The agent keeps one tunnel connection per gateway core (the gateway's welcome says how many). Connection i lives on
// agent loop i % threads, so each connection's streams and their local sockets share one core. Every hello carries
// the agent id, the token and this process's instance nonce (so the gateway tells a reconnect of this instance from
// another instance of the same id). Connection 0 claims the services, right behind its hello; the gateway answers
// per service, and the ones refused for now (a port another agent holds, or another program) are asked for again
// every --retry-refused-ms without dropping the tunnel. Each connection reconnects on its own with exponential
// back-off and jitter (capped by --reconnect-max-ms), resolving --gateway again each time (off the loop: ring/resolver)
// and trying each of its addresses in order.
// The agent exits with code 3 only on refusals that retrying cannot cure: a bad token, an id held by another running
// instance, or every service refused for good (not allowed for the token, a port the gateway keeps for itself).
// A stream's OPEN names its service (tunnel/stream_meta.hpp); the agent connects to that service's local address on
// the same core and pumps bytes both ways (tunnel::EdgeStream); a failed local connect comes back as a reset.
// SIGHUP re-reads the services (edge-agent/reload.hpp): each core gets the new ServiceSet by message and swaps its
// pointer; connection 0 releases what is gone and claims what is new on the live tunnel, without reconnecting.
// Thread rules: an AgentCore and its connections are used only by their loop's thread; `Agent` is read-only except
// `gateway_cores` (atomic). Each core reads its own ServiceSet pointer. Service statuses live on the core of
// connection 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "app/config.hpp"
#include "app/options.hpp"
#include "edge-agent/service_set.hpp"
#include "ops/admin_server.hpp"
#include "ring/loop.hpp"
#include "ring/resolver.hpp"
#include "ring/runtime.hpp"
#include "tls/tls.hpp"
#include "tunnel/handshake.hpp"
#include "tunnel/tunnel_conn.hpp"
#include "tunnel/upstream_pool.hpp"

namespace ringtun::agent {

class AgentCore;
class AgentAdmin;
class HealthChecks;

struct Agent {
  app::AgentConfig config;
  tunnel::TunnelOptions tunnel_options;
  unsigned threads = 1;
  std::string instance;                        // this process's nonce, in every hello
  // The services at start-up (from config.services); each core starts with it and takes later sets by message.
  std::shared_ptr<const ServiceSet> initial_services;
  std::atomic<std::uint32_t> gateway_cores{1};  // from the first welcome; what hellos report as conn_count
  std::vector<AgentCore*> cores;
  ring::Runtime* runtime = nullptr;
  std::shared_ptr<const tls::Context> tls;  // null: --insecure-plaintext
  int admin_listener_fd = -1;               // --admin-listen: served by core 0
  std::atomic<unsigned> connections_ready{0};  // tunnel connections that got their welcome (/ready)
  std::atomic<unsigned> cores_started{0};
  std::atomic<bool> draining{false};

  AgentCore& core(unsigned index) const noexcept { return *cores[index]; }
  // For another core's reader (the admin endpoint): core `index` once every core has started (see the gateway's
  // started_core), else null.
  const AgentCore* started_core(unsigned index) const noexcept {
    return cores_started.load(std::memory_order_acquire) == threads ? cores[index] : nullptr;
  }
};

// Parses the command line and --config again, as at start-up (for SIGHUP).
using Reparse = Result<app::Parsed<app::AgentConfig>> (*)(std::string* error);

// Runs the agent until SIGINT/SIGTERM or a fatal refusal; returns the exit code. With `reparse`, SIGHUP reloads the
// services (without it, SIGHUP ends the process, its default action).
int run_agent(const app::AgentConfig& config, Reparse reparse = nullptr);

// One tunnel connection slot (index i of N): resolving, connecting, handshaking, ready, or waiting to retry.
class AgentConn final : public ring::SocketHandler {
 public:
  AgentConn(AgentCore& core, std::uint32_t index);
  ~AgentConn() override;
  void connect_now() noexcept;
  void stop() noexcept;
  bool idle() const noexcept { return state_ == State::kIdle || state_ == State::kBackoff; }
  bool ready() const noexcept { return state_ == State::kReady; }
  tunnel::TunnelConn* conn() noexcept { return conn_; }

  void on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json);
  void on_tunnel_closed(const char* reason);
  std::uint32_t index() const noexcept { return index_; }

 private:
  enum class State { kIdle, kBackoff, kResolving, kConnecting, kHandshaking, kReady };
  void on_connect(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;
  static void on_resolved(void* self, ring::Resolve::Answer&& answer);
  void connect_next() noexcept;
  void start_tunnel(ring::SocketId socket) noexcept;
  void retry_later(const char* why) noexcept;

  AgentCore& core_;
  std::uint32_t index_;
  State state_ = State::kIdle;
  ring::SocketId connecting_;
  ring::Resolve* resolve_ = nullptr;
  std::vector<ring::net::Address> addresses_;  // this attempt's addresses of --gateway, tried in order
  std::size_t next_address_ = 0;
  std::string last_failure_;
  tunnel::TunnelConn* conn_ = nullptr;
  ring::Timer retry_;
  std::uint32_t backoff_ms_ = 0;
  bool stopped_ = false;
  bool not_needed_ = false;  // refused as beyond the gateway's cores: idle, not retried, until asked for again
};

// What the gateway said of each service (kept on the core of connection 0, which claims them).
class ServiceBook {
 public:
  enum class State : std::uint8_t { kPending, kServing, kRetrying, kRefused };
  explicit ServiceBook(AgentCore& core);
  // Connection 0 was (re)connected and has claimed every service again.
  void claimed_all();
  // The gateway's answers; may end the agent (every service refused for good).
  void on_claimed(const std::vector<tunnel::ServiceStatus>& statuses);
  // A reload replaced `before` by the core's set now: carries the statuses of the services kept, releases what is
  // gone and claims what is new (now if connection 0 is up; else the releases wait for its next hello).
  void services_changed(const ServiceSet& before, const ServiceDiff& diff);
  // Connection 0's hello is out: the releases that could not be sent when they were decided go right behind it.
  void send_pending_releases();
  void stop();
  // For the admin endpoint (same core): by index into the core's ServiceSet.
  const char* state_name(std::size_t index) const noexcept;
  const std::string& message(std::size_t index) const noexcept { return entries_[index].last_message; }
  // The set the indexes above refer to (the core's).
  const ServiceSet& service_set() const noexcept;

 private:
  struct Entry {
    State state = State::kPending;
    std::string last_message;
  };
  void retry() noexcept;
  void log_summary();

  AgentCore& core_;
  std::vector<Entry> entries_;  // by index into the core's ServiceSet
  std::vector<std::string> pending_release_;  // names to release once connection 0 is up again
  ring::Timer retry_timer_;
  std::uint64_t claimed_ns_ = 0;  // when connection 0 sent its claims (for the summary line)
  bool summary_due_ = false;
};

class AgentCore final : public tunnel::TunnelEvents {
 public:
  AgentCore(Agent& agent, ring::Loop& loop);
  ~AgentCore() override;
  Status start();
  // Makes sure connection `index` exists on this core and is running.
  void ensure_connection(std::uint32_t index);
  // The first welcome came from a gateway with `cores` cores: start the other connections (on their own loops).
  void gateway_cores_known(std::uint32_t cores);
  // Connection 0 (on this core) claims `services` (indexes into the core's ServiceSet); false if it is not up.
  bool send_claims(const std::vector<std::size_t>& services);
  // Connection 0 releases the services called `names`; false if it is not up.
  bool send_release(const std::vector<std::string>& names);
  // Sends CONTROL messages on connection 0 (on this core); false if it is not up (or the send failed: it closes).
  bool send_on_first(const std::vector<std::string>& messages);
  // A reload: this core's services are `next` from now on (`before` is what it had; `diff` between the two).
  void set_services(std::shared_ptr<const ServiceSet> next, const ServiceSet& before, const ServiceDiff& diff);
  // This core's services (its own pointer: a reload swaps it by message).
  const ServiceSet& service_set() const noexcept { return *services_; }
  // Stops the agent with exit code 3 (a refusal retrying cannot cure).
  void give_up();

  Agent& agent() noexcept { return agent_; }
  ring::Loop& loop() noexcept { return loop_; }
  tunnel::TunnelCore& tunnel_core() noexcept { return tcore_; }
  ServiceBook& services() noexcept { return book_; }
  HealthChecks* health() noexcept { return health_.get(); }  // core 0 with --health, else null
  std::uint32_t jitter(std::uint32_t ms) noexcept;
  void connection_stopped();

  // ---- read by the admin core (Counters only) ----
  // This core's streams of each service (by AgentService::slot): "edge" is the local service.
  const TrafficSlots& traffic() const noexcept { return traffic_; }
  const tunnel::TunnelStats& tunnel_stats() const noexcept { return tcore_.stats; }
  const ring::LoopStats& loop_stats() const noexcept { return loop_.stats(); }

 private:
  void on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) override;
  void on_stream_open(tunnel::TunnelConn& conn, frame::StreamHandle stream,
                      std::span<const std::byte> metadata) override;
  void on_tunnel_closed(tunnel::TunnelConn& conn, const char* reason) override;
  AgentConn* conn_at(std::uint64_t index) noexcept;
  void begin_stop();

  Agent& agent_;
  ring::Loop& loop_;
  tunnel::TunnelCore tcore_;
  std::shared_ptr<const ServiceSet> services_;  // read by this core only; swapped whole by a reload
  tunnel::UpstreamPool upstream_;  // idle connections to http services, keyed by AgentService::upstream_key
  ServiceBook book_;
  std::vector<std::unique_ptr<AgentConn>> conns_;
  std::uint64_t rng_;
  bool stopping_ = false;
  ring::Timer drain_deadline_;
  TrafficSlots traffic_;                           // by slot, never moved (open streams and the admin core point in)
  std::unique_ptr<HealthChecks> health_;           // core 0, with --health
  std::unique_ptr<AgentAdmin> admin_;              // core 0, with --admin-listen
  std::unique_ptr<ops::AdminServer> admin_server_;
};

}  // namespace ringtun::agent
