// ringtun-gateway: accepts agents on the tunnel port and public clients on their services' ports.
//
// Cores: every loop has a tunnel listener (SO_REUSEPORT) and, for each registered service, a public listener.
// An agent opens one tunnel connection per gateway core; connection i is served by core i, so a public client
// accepted on core i rides core i's tunnel and its bytes never cross cores. A tunnel connection may be accepted on any
// core: a HandshakeReader reads its hello, and the socket (with the bytes read so far) is handed to core i.
//
// The registry (who holds which public port) lives on core 0 and changes only by messages: core i asks core 0 to
// register an agent (connection 0's hello), core 0 checks port ownership, opens the public listeners (one per core)
// and hands each core its listener; cores report connections up and down, and when an agent's last connection is
// gone core 0 closes its ports on every core.
// Thread rules: a GatewayCore is used only by its own loop thread; `Gateway` holds read-only settings after start.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "app/config.hpp"
#include "ring/loop.hpp"
#include "ring/runtime.hpp"
#include "tls/tls.hpp"
#include "tunnel/handshake.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::gateway {

class GatewayCore;

// Shared, read-only once the runtime runs (except `cores`, filled in by each core's own init before any message, and
// `tls`, which a reload swaps whole).
struct Gateway {
  app::GatewayConfig config;
  tunnel::TunnelOptions tunnel_options;
  ring::net::Address public_bind;         // host part of --listen: public ports bind the same address
  std::vector<int> tunnel_listener_fds;   // one per core
  unsigned core_count = 1;
  std::vector<GatewayCore*> cores;        // by core index
  ring::Runtime* runtime = nullptr;
  // Null with --insecure-plaintext. A reload (SIGHUP, on the runtime's thread) stores a new one; a core loads it once
  // per tunnel connection, whose session keeps its own reference: open connections keep the certificate they began
  // with. Loaded per handshake, never per frame.
  std::atomic<std::shared_ptr<const tls::Context>> tls;
};

// The gateway's TLS context (null with --insecure-plaintext); logs the certificate's fingerprint. Errors are logged.
Result<std::shared_ptr<const tls::Context>> make_gateway_tls(const app::GatewayConfig& config);

// SIGHUP: reads --cert/--key (or the state directory's pair) and --client-ca again and swaps the context for new
// tunnel connections; on any error logs it and keeps serving the previous one.
void reload_gateway_tls(Gateway& gateway);

// Runs the gateway until SIGINT/SIGTERM (SIGHUP reloads the TLS certificate); returns the exit code.
int run_gateway(const app::GatewayConfig& config);

class GatewayCore final : public ring::SocketHandler, public tunnel::TunnelEvents {
 public:
  GatewayCore(Gateway& gateway, ring::Loop& loop);
  ~GatewayCore() override;
  Status start();

  // ---- messages (run on this core) ----
  struct Handoff;
  struct RegisterRequest;
  struct RegisterReply;
  struct BindPort;
  struct UnbindPort;
  struct ConnChange;
  void adopt_handoff(Handoff& message);
  void on_register_reply(RegisterReply& message);
  void bind_port(BindPort& message);
  void unbind_port(UnbindPort& message);
  // Core 0 only: the registry.
  void registry_register(RegisterRequest& message);
  void registry_conn_change(ConnChange& message);

  void handshake_done(class HandshakeReader& reader, int fd, unsigned target, std::string&& bytes,
                      std::unique_ptr<tls::Session> tls);
  void handshake_gone(class HandshakeReader& reader);
  ring::Loop& loop() noexcept { return loop_; }
  tunnel::TunnelCore& tunnel_core() noexcept { return tcore_; }

 private:
  struct PublicPort {
    ring::SocketId listener;
    std::uint16_t port = 0;
    std::string agent_id;
    std::string service;
  };
  struct AgentRecord {  // core 0's registry
    std::vector<std::uint16_t> ports;
    unsigned live_connections = 0;
  };
  struct PendingHello {  // a connection-0 hello waiting for the registry's answer
    tunnel::TunnelConn* conn;
    tunnel::Hello hello;
  };

  // ring::SocketHandler: the tunnel listener and the public listeners.
  void on_accept(ring::Loop& loop, ring::SocketId listener, int res) override;
  // tunnel::TunnelEvents
  void on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) override;
  void on_tunnel_closed(tunnel::TunnelConn& conn, const char* reason) override;

  void handle_hello(tunnel::TunnelConn& conn, tunnel::Hello&& hello);
  void refuse(tunnel::TunnelConn& conn, tunnel::RefusalCode code, const std::string& message);
  void welcome(tunnel::TunnelConn& conn, const tunnel::Hello& hello);
  const app::TokenRule* find_token(const std::string& token) const noexcept;
  void route_public(PublicPort& port, int fd);
  void open_public_stream(tunnel::TunnelConn& conn, std::uint16_t port, const std::string& service, int fd);
  void release_parked(const std::string& agent_id, tunnel::TunnelConn& conn);
  void sweep_parked(bool all);
  void begin_stop();
  void check_stopped();
  void send_conn_change(const std::string& agent_id, int delta);

  Gateway& gateway_;
  ring::Loop& loop_;
  tunnel::TunnelCore tcore_;
  ring::SocketId tunnel_listener_;
  std::map<std::uint32_t, PublicPort> public_by_listener_;  // listener slot index -> port
  std::map<std::uint16_t, std::uint32_t> listener_by_port_;
  std::unordered_map<std::string, tunnel::TunnelConn*> ready_;  // agent id -> this core's connection
  std::map<std::uint64_t, PendingHello> pending_;              // by TunnelConn::app_tag
  std::vector<class HandshakeReader*> readers_;
  std::uint64_t next_tag_ = 1;
  bool stopping_ = false;
  ring::Timer drain_deadline_;
  // Public clients that cannot get a stream are logged at most once a second per core, with a count: a burst of
  // clients must not turn into a burst of log lines.
  std::uint64_t refused_log_ms_ = 0;
  std::uint64_t refused_since_log_ = 0;
  static constexpr std::size_t kMaxHandshakesPerCore = 256;
  // Public clients accepted while the agent has no tunnel connection on this core wait for one (bounded).
  struct ParkedClient {
    int fd;
    std::uint16_t port;
    std::string service;
    std::uint64_t since_ms;
  };
  static constexpr std::size_t kMaxParkedPerCore = 4096;
  static constexpr std::uint32_t kParkMs = 5'000;
  static constexpr std::uint32_t kParkSweepMs = 250;
  std::unordered_map<std::string, std::vector<ParkedClient>> parked_;  // by agent id
  std::size_t parked_count_ = 0;
  ring::Timer parked_sweep_;
  std::uint64_t handshake_log_ms_ = 0;
  std::uint64_t handshakes_refused_ = 0;

  // Registry (core 0).
  std::map<std::string, AgentRecord> agents_;
  std::map<std::uint16_t, std::string> port_owner_;
};

}  // namespace ringtun::gateway
