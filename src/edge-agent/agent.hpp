// ringtun-agent: dials the gateway, registers its services, and serves the streams the gateway opens.
//
// The agent keeps one tunnel connection per gateway core (the gateway's welcome says how many). Connection i lives on
// agent loop i % threads, so each connection's streams and their local sockets share one core. Connection 0 registers
// the services; when it is welcomed, the others are started. Each connection reconnects on its own with exponential
// back-off and jitter (capped by --reconnect-max-ms) after any failure; a refusal that retrying cannot cure (bad
// token, port taken, not allowed) stops the agent with exit code 3 and a message naming the refusal.
// A stream's OPEN names the public port; the agent connects to that service's local address on the same core and
// pumps bytes both ways (tunnel::EdgeStream); a failed local connect comes back to the gateway as a reset.
// Thread rules: an AgentCore and its connections are used only by their loop's thread; `Agent` is read-only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "app/config.hpp"
#include "ring/loop.hpp"
#include "ring/runtime.hpp"
#include "tls/tls.hpp"
#include "tunnel/handshake.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::agent {

class AgentCore;

struct Agent {
  app::AgentConfig config;
  ring::net::Address gateway;  // numeric --gateway only, until the resolver lands
  tunnel::TunnelOptions tunnel_options;
  unsigned threads = 1;
  std::atomic<std::uint32_t> gateway_cores{1};  // from connection 0's welcome; what hellos report as conn_count
  std::vector<AgentCore*> cores;
  ring::Runtime* runtime = nullptr;
  std::shared_ptr<const tls::Context> tls;  // null: --insecure-plaintext
};

// Runs the agent until SIGINT/SIGTERM or a fatal refusal; returns the exit code.
int run_agent(const app::AgentConfig& config);

// One tunnel connection slot (index i of N): connecting, handshaking, ready, or waiting to retry.
class AgentConn final : public ring::SocketHandler {
 public:
  AgentConn(AgentCore& core, std::uint32_t index);
  ~AgentConn() override;
  void connect_now() noexcept;
  void stop() noexcept;
  bool idle() const noexcept { return state_ == State::kIdle || state_ == State::kBackoff; }

  void on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json);
  void on_tunnel_closed(const char* reason);
  std::uint32_t index() const noexcept { return index_; }

 private:
  enum class State { kIdle, kBackoff, kConnecting, kHandshaking, kReady };
  void on_connect(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;
  void retry_later(const char* why) noexcept;

  AgentCore& core_;
  std::uint32_t index_;
  State state_ = State::kIdle;
  ring::SocketId connecting_;
  tunnel::TunnelConn* conn_ = nullptr;
  ring::Timer retry_;
  std::uint32_t backoff_ms_ = 0;
  bool stopped_ = false;
};

class AgentCore final : public tunnel::TunnelEvents {
 public:
  AgentCore(Agent& agent, ring::Loop& loop);
  ~AgentCore() override;
  Status start();
  // Makes sure connection `index` exists on this core and is running.
  void ensure_connection(std::uint32_t index);
  // Connection 0 was welcomed by a gateway with `cores` cores: start the others (on their own loops).
  void gateway_cores_known(std::uint32_t cores);

  Agent& agent() noexcept { return agent_; }
  ring::Loop& loop() noexcept { return loop_; }
  tunnel::TunnelCore& tunnel_core() noexcept { return tcore_; }
  std::uint32_t jitter(std::uint32_t ms) noexcept;
  void connection_stopped();

 private:
  void on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) override;
  void on_stream_open(tunnel::TunnelConn& conn, frame::StreamHandle stream,
                      std::span<const std::byte> metadata) override;
  void on_tunnel_closed(tunnel::TunnelConn& conn, const char* reason) override;
  void begin_stop();

  Agent& agent_;
  ring::Loop& loop_;
  tunnel::TunnelCore tcore_;
  std::vector<std::unique_ptr<AgentConn>> conns_;
  std::uint64_t rng_;
  bool stopping_ = false;
  ring::Timer drain_deadline_;
};

}  // namespace ringtun::agent
