// ringtun-gateway: accepts agents on the tunnel port and public clients on their services' ports.
//
// Cores: one loop per core, shared-nothing. An agent opens one tunnel connection per gateway core; connection i is
// served by core i, so a public client accepted on core i rides core i's tunnel and its bytes never cross cores.
// Each core is made of rooms with one job each:
//   intake.hpp           the tunnel port: handshakes (bounded per core and per address), the hello and its token
//   routing.hpp          public client -> route snapshot -> the agent session's connection on this core -> stream
//   public_listeners.hpp the public TCP ports this core accepts on
//   http_front.hpp       the shared HTTP port: requests routed by Host, one stream per request
//   tls_front.hpp        the shared TLS port: connections routed by SNI, then passed through
//   registry_room.hpp    (core 0 only) sessions, claims, route snapshots and port opening, behind registry.hpp
// and GatewayCore below ties them together: it adopts tunnel connections the intake hands it, speaks the control
// messages on them, and passes what the registry decides to the rooms. Cores talk only by messages (messages.hpp).
// Thread rules: a GatewayCore is used only by its own loop thread; `Gateway` holds read-only settings after start.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/admin.hpp"
#include "gateway/http_front.hpp"
#include "gateway/intake.hpp"
#include "gateway/messages.hpp"
#include "gateway/public_listeners.hpp"
#include "gateway/registry_room.hpp"
#include "gateway/routing.hpp"
#include "gateway/tls_front.hpp"
#include "gateway/token_table.hpp"
#include "ring/loop.hpp"
#include "ring/runtime.hpp"
#include "ops/access_log.hpp"
#include "ops/admin_server.hpp"
#include "tls/tls.hpp"
#include "app/config.hpp"
#include "app/options.hpp"
#include "tunnel/handshake.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::gateway {

class GatewayCore;

// Where the configuration came from, parsed again by a reload (SIGHUP): the same argv, so the same --config file with
// the same flags on top. argv outlives the runtime (main's).
struct ConfigSource {
  int argc = 0;
  const char* const* argv = nullptr;
};

// Shared, read-only once the runtime runs (except `cores`, whose entry i its own core fills in before it handles any
// message, and `tls`, `tokens` and the access policies, which a reload replaces whole).
struct Gateway {
  app::GatewayConfig config;  // as started: a reload does not change it (settings it cannot apply say so in the log)
  ConfigSource source;
  // The tokens by stable index (token_table.hpp). A reload stores a new table; the intake loads it once per hello,
  // the registry core once per claim or attach. Never read per frame.
  std::atomic<std::shared_ptr<const TokenTable>> tokens;
  tunnel::TunnelOptions tunnel_options;
  ring::net::Address public_bind;          // host part of --listen: public ports bind the same address
  std::vector<std::uint16_t> reserved_ports;  // the gateway's own listeners on that host: never public ports
  std::vector<int> tunnel_listener_fds;    // one per core
  std::vector<int> http_listener_fds;      // one per core with --http-listen
  std::vector<int> tls_listener_fds;       // one per core with --tls-listen
  std::vector<int> admin_listener_fds;     // one, served by the registry core, with --admin-listen
  std::shared_ptr<ops::AccessLogSink> access_log;  // with --access-log
  // Access policies: the counters live as long as the gateway; the rules are a generation per reload that has
  // policies, each core told of a new one by message (SetAccess). `access_generations` belongs to the runtime's
  // thread (start-up, then reloads), which frees a generation once no core uses it.
  AccessCounts access_counts;
  const AccessPolicies* access = nullptr;  // the generation cores start with (null: no token has a policy)
  std::vector<std::unique_ptr<AccessPolicies>> access_generations;
  std::atomic<unsigned> cores_started{0};  // every core's start() done: listeners adopted (/ready, READY=1)
  std::atomic<bool> draining{false};       // a stop began (/ready answers 503)
  unsigned core_count = 1;
  unsigned registry_core = 0;
  std::vector<GatewayCore*> cores;         // by core index
  // Null with --insecure-plaintext. A reload (SIGHUP, on the runtime's thread) stores a new one; a core loads it once
  // per tunnel connection, whose session keeps its own reference: open connections keep the certificate they began
  // with. Loaded per handshake, never per frame.
  std::atomic<std::shared_ptr<const tls::Context>> tls;

  GatewayCore& core(unsigned index) const noexcept { return *cores[index]; }
  // For another core's reader (the admin endpoint): core `index` once every core has started, else null. Each core
  // files itself in `cores` before its start() counts it in cores_started (acq_rel), so the acquire load below makes
  // the pointers safe to read.
  const GatewayCore* started_core(unsigned index) const noexcept {
    return cores_started.load(std::memory_order_acquire) == core_count ? cores[index] : nullptr;
  }
};

// The gateway's TLS context (null with --insecure-plaintext); logs the certificate's fingerprint. Errors are logged.
Result<std::shared_ptr<const tls::Context>> make_gateway_tls(const app::GatewayConfig& config);

// SIGHUP: reads --cert/--key (or the state directory's pair) and --client-ca again and swaps the context for new
// tunnel connections; on any error logs it and keeps serving the previous one.
void reload_gateway_tls(Gateway& gateway);

// SIGHUP: parses the configuration again (gateway.source) and applies what a running gateway can change: tokens,
// their ports, hosts and access policies (gateway_reload.cpp). A config with an error changes nothing.
void reload_gateway_config(Gateway& gateway);

// One line per token with a policy (at start, and for the tokens a reload changed).
void log_access_policy(std::uint32_t index, const route::AccessRules& rules);

// Runs the gateway until SIGINT/SIGTERM (SIGHUP reloads the configuration and the TLS certificate); returns the exit
// code.
int run_gateway(const app::GatewayConfig& config, ConfigSource source);

class GatewayCore final : public tunnel::TunnelEvents {
 public:
  GatewayCore(Gateway& gateway, ring::Loop& loop);
  ~GatewayCore() override;
  Status start();

  // ---- messages (run on this core) ----
  void adopt(std::unique_ptr<Arrival> arrival);
  void attached(const AttachReply& reply);
  void claimed(ClaimReply& reply);
  void set_table(SetTable& message);
  void bind(BindPort& message);
  void unbind(const UnbindPort& message);
  void set_access(const SetAccess& message);
  // The registry releases this connection (its token was revoked): tells the agent why, then closes.
  void revoke_link(const RevokeLink& message);
  // Tells the agent, on this connection, of services a reload no longer allows.
  void services_released(const ServicesReleased& message);
  RegistryRoom& registry() noexcept { return *registry_; }  // the registry core only
  // Closes the tunnel connection filed under `tag` (the admin's disconnect), if it is still there.
  void close_link(std::uint64_t tag, const char* reason);

  ring::Loop& loop() noexcept { return loop_; }
  const Routing& routing() const noexcept { return routing_; }

  // ---- read by the admin core (Counters only) ----
  const tunnel::TunnelStats& tunnel_stats() const noexcept { return tcore_.stats; }
  const ring::LoopStats& loop_stats() const noexcept { return loop_.stats(); }
  const Intake& intake() const noexcept { return intake_; }
  const HttpStats* http_stats() const noexcept { return http_ ? &http_->stats() : nullptr; }
  const TlsStats* tls_stats() const noexcept { return tls_front_ ? &tls_front_->stats() : nullptr; }
  Counter watchdog_beats;  // moved by a timer of this core: the watchdog ping proves every loop still turns

 private:
  // A tunnel connection of an agent on this core, from its hand-off until it closes. Addressed by the connection's
  // app_tag: {index: low 32 bits, generation: high 32 bits}, so that an answer for a connection that is gone (and
  // whose slot was reused) is recognised.
  // A claim, or a release (names only), waiting for its turn with the registry: releases take their turn with the
  // claims so that the registry sees them in the order the agent sent them.
  struct QueuedClaim {
    std::vector<tunnel::ServiceDecl> services;
    std::vector<std::string> release;
  };
  struct Link {
    enum class State : std::uint8_t { kFree, kAttaching, kReady, kRefused };
    State state = State::kFree;
    std::uint32_t generation = 0;
    tunnel::TunnelConn* conn = nullptr;
    route::SessionRef session;
    std::uint32_t conn_index = 0;
    std::uint32_t conn_count = 0;
    std::vector<QueuedClaim> waiting_claims;  // before the attach answer, or behind a claim
    bool claim_in_flight = false;             // one claim (or release) at a time with the registry
    // Health messages come only when a check changes its mind (at most once per --health-interval-ms per service):
    // more than this a second is an agent flooding the registry core with snapshot rebuilds.
    log::LineBudget health_budget{kMaxHealthPerSecond};
  };
  static constexpr std::size_t kMaxWaitingClaims = 16;  // claim messages (each up to 16 KiB) held per connection
  static constexpr unsigned kMaxHealthPerSecond = 20;   // health messages per connection

  // tunnel::TunnelEvents
  void on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) override;
  void on_tunnel_closed(tunnel::TunnelConn& conn, const char* reason) override;
  void on_first_byte(tunnel::TunnelConn& conn, tunnel::StreamEnd& end, std::uint64_t elapsed_us) override;
  void on_stream_finished(tunnel::TunnelConn& conn, tunnel::StreamEnd& end) override;
  static void on_refusal(void* self, Routing::RefusalEvent event);
  void start_admin();
  void on_watchdog_timer();

  static void on_arrival(void* self, std::unique_ptr<Arrival> arrival);
  static void on_public_client(void* self, std::uint16_t port, int fd);
  static void on_port_closed(void* self, std::uint16_t port);
  std::uint64_t new_link();
  Link* link_of(std::uint64_t tag) noexcept;
  void free_link(std::uint64_t tag) noexcept;
  void refuse(tunnel::TunnelConn& conn, const tunnel::Refusal& refusal);
  void send_claim(Link& link, std::uint64_t tag, QueuedClaim claim);
  void send_health(Link& link, tunnel::TunnelConn& conn, std::vector<tunnel::ServiceHealth> services);
  void send_detach(route::SessionRef session, std::uint64_t tag);
  void begin_stop();
  void check_stopped();

  Gateway& gateway_;
  ring::Loop& loop_;
  tunnel::TunnelCore tcore_;
  Intake intake_;
  Routing routing_;
  PublicListeners listeners_;
  std::unique_ptr<HttpFront> http_;         // with --http-listen
  std::unique_ptr<TlsFront> tls_front_;     // with --tls-listen
  std::unique_ptr<RegistryRoom> registry_;  // on the registry core
  std::unique_ptr<GatewayAdmin> admin_;      // on the registry core, with --admin-listen
  std::unique_ptr<ops::AdminServer> admin_server_;
  std::unique_ptr<ops::AccessLog> access_log_;  // with --access-log
  ring::Timer watchdog_timer_;
  std::uint64_t watchdog_interval_ms_ = 0;   // 0: no systemd watchdog
  std::vector<std::uint64_t> watchdog_seen_; // the registry core: each core's beats at the last ping
  ring::SocketHandler adopting_;             // an adopted socket's handler until its TunnelConn takes it over
  std::vector<Link> links_;
  std::vector<std::uint32_t> free_links_;
  std::size_t live_links_ = 0;
  bool stopping_ = false;
  ring::Timer drain_deadline_;
};

}  // namespace ringtun::gateway
