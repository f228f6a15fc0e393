// AgentCore and AgentConn: the agent's connections, reconnect policy and stream routing. See agent.hpp.
#include "edge-agent/agent.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "app/options.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "ring/post.hpp"

namespace ringtun::agent {

namespace {

Agent* g_agent = nullptr;
AgentCore& core_of(ring::Loop& loop) { return *g_agent->cores[loop.core()]; }

constexpr std::uint32_t kFirstBackoffMs = 100;
constexpr int kExitRefused = 3;
constexpr std::uint32_t kAgentMaxStreams = 16384;

struct StartConnection {
  std::uint32_t index = 0;
};

}  // namespace

// ---------------------------------------------------------------- AgentConn

AgentConn::AgentConn(AgentCore& core, std::uint32_t index) : core_(core), index_(index) {
  retry_.set_callback([](void* self) { static_cast<AgentConn*>(self)->connect_now(); }, this);
}

AgentConn::~AgentConn() = default;

void AgentConn::connect_now() noexcept {
  if (stopped_ || (state_ != State::kIdle && state_ != State::kBackoff)) return;
  const app::AgentConfig& config = core_.agent().config;
  const ring::net::Address& gateway = core_.agent().gateway;
  auto socket = core_.loop().connect(gateway.get(), gateway.length, config.connect_timeout_ms, this);
  if (!socket) {
    char buf[160];
    LOG_WARN("connection %u: %s", index_, socket.error().describe(buf, sizeof buf));
    retry_later("could not create a socket");
    return;
  }
  connecting_ = *socket;
  state_ = State::kConnecting;
}

void AgentConn::on_connect(ring::Loop& loop, ring::SocketId socket, int res) {
  if (res < 0 || stopped_) {
    loop.close(socket);  // on_close() schedules the retry
    if (res < 0) {
      LOG_WARN("connection %u to %s: %s", index_, core_.agent().config.gateway_text.c_str(), std::strerror(-res));
    }
    return;
  }
  connecting_ = {};
  state_ = State::kHandshaking;
  std::unique_ptr<tls::Session> tls;
  if (core_.agent().tls) {
    auto session = tls::Session::create(core_.agent().tls);
    if (!session) {
      LOG_ERROR("connection %u: cannot create a TLS session", index_);
      loop.close(socket);
      return;
    }
    tls = std::move(*session);
  }
  // With TLS, the hello queued below leaves only once the gateway is verified.
  conn_ = tunnel::TunnelConn::start(core_.tunnel_core(), socket, frame::Role::kAgent, core_.agent().tunnel_options,
                                    core_, {}, std::move(tls));
  conn_->app_tag = index_;
  const app::AgentConfig& config = core_.agent().config;
  tunnel::Hello hello;
  hello.agent_id = config.agent_id;
  hello.token = config.token;
  hello.conn_index = index_;
  hello.conn_count = std::max<std::uint32_t>(index_ + 1, core_.agent().gateway_cores.load(std::memory_order_relaxed));
  for (const auto& service : config.services) hello.services.push_back({service.name, service.public_port});
  if (!conn_->send_control(tunnel::encode_hello(hello))) conn_->close("could not send the hello");
}

void AgentConn::on_close(ring::Loop&, ring::SocketId) {
  // The connect failed (or we stopped while connecting): the socket never became a tunnel.
  connecting_ = {};
  if (stopped_) {
    state_ = State::kIdle;
    core_.connection_stopped();
    return;
  }
  retry_later("connect failed");
}

void AgentConn::on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) {
  std::string error;
  auto message = tunnel::parse_control(json, &error);
  if (!message) {
    LOG_ERROR("connection %u: the gateway sent a bad control message: %s", index_, error.c_str());
    conn.close("bad control message from the gateway");
    return;
  }
  if (message->type == tunnel::ControlMessage::Type::kWelcome && state_ == State::kHandshaking) {
    state_ = State::kReady;
    backoff_ms_ = 0;
    LOG_INFO("connection %u/%u to gateway %s ready", index_ + 1, message->welcome.gateway_cores,
             conn.peer().to_string().c_str());
    if (index_ == 0) core_.gateway_cores_known(message->welcome.gateway_cores);
    return;
  }
  if (message->type == tunnel::ControlMessage::Type::kRefused) {
    const tunnel::Refusal& refusal = message->refusal;
    if (tunnel::refusal_is_fatal(refusal.code)) {
      LOG_ERROR("the gateway refused this agent (%s): %s", tunnel::refusal_code_name(refusal.code),
                refusal.message.c_str());
      stopped_ = true;
      conn.close("refused by the gateway");
      core_.agent().runtime->stop(kExitRefused);
      return;
    }
    if (refusal.code == tunnel::RefusalCode::kIndexOutOfRange) {
      LOG_INFO("connection %u: the gateway has fewer cores now; not needed", index_);
      stopped_ = true;
    } else {
      LOG_WARN("connection %u refused for now (%s): %s", index_, tunnel::refusal_code_name(refusal.code),
               refusal.message.c_str());
    }
    conn.close("refused by the gateway");
    return;
  }
  conn.close("unexpected control message");
}

void AgentConn::on_tunnel_closed(const char* reason) {
  conn_ = nullptr;
  const bool ready = state_ == State::kReady;
  const bool handshaking = state_ == State::kHandshaking;
  state_ = State::kIdle;
  if (stopped_) {
    core_.connection_stopped();
    return;
  }
  if (ready) {
    LOG_WARN("connection %u to the gateway lost: %s", index_, reason);
  } else if (handshaking) {
    LOG_WARN("connection %u closed before the gateway answered: %s%s", index_, reason,
             core_.agent().tls ? ""
                               : " (this agent runs with --insecure-plaintext: if the gateway requires TLS, give "
                                 "--gateway-fingerprint or --ca instead)");
  }
  retry_later(reason);
}

void AgentConn::retry_later(const char*) noexcept {
  if (stopped_) return;
  // Exponential back-off with jitter (+-25%), capped: many agents restarted together do not reconnect in lockstep.
  const std::uint32_t cap = std::max<std::uint32_t>(core_.agent().config.reconnect_max_ms, kFirstBackoffMs);
  backoff_ms_ = backoff_ms_ == 0 ? kFirstBackoffMs : std::min(cap, backoff_ms_ * 2);
  const std::uint32_t delay = std::min(cap, core_.jitter(backoff_ms_));
  LOG_DEBUG("connection %u: reconnecting in %u ms", index_, delay);
  state_ = State::kBackoff;
  core_.loop().timers().schedule(retry_, delay);
}

void AgentConn::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  core_.loop().timers().cancel(retry_);
  if (conn_ != nullptr) {
    conn_->goaway();
  } else if (connecting_.valid()) {
    core_.loop().close(connecting_);
  } else {
    state_ = State::kIdle;
  }
}

// ---------------------------------------------------------------- AgentCore

AgentCore::AgentCore(Agent& agent, ring::Loop& loop)
    : agent_(agent), loop_(loop), tcore_(loop, 256ULL * 1024 * 1024), rng_(monotonic_ns() ^ (loop.core() * 0x9E3779B97F4A7C15ULL)) {
  drain_deadline_.set_callback(
      [](void* self) {
        auto* core = static_cast<AgentCore*>(self);
        LOG_WARN("drain deadline reached: closing the tunnel");
        core->loop_.exit();
      },
      this);
}

AgentCore::~AgentCore() = default;

Status AgentCore::start() {
  loop_.set_stop_handler([](ring::Loop& loop, void*) { core_of(loop).begin_stop(); }, nullptr);
  if (loop_.core() == 0) ensure_connection(0);
  return {};
}

std::uint32_t AgentCore::jitter(std::uint32_t ms) noexcept {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const std::uint32_t spread = ms / 2;  // +-25%
  return ms - ms / 4 + (spread == 0 ? 0 : static_cast<std::uint32_t>(rng_ % spread));
}

void AgentCore::ensure_connection(std::uint32_t index) {
  if (stopping_) return;
  for (auto& conn : conns_) {
    if (conn->index() == index) {
      if (conn->idle()) conn->connect_now();
      return;
    }
  }
  conns_.push_back(std::make_unique<AgentConn>(*this, index));
  conns_.back()->connect_now();
}

void AgentCore::gateway_cores_known(std::uint32_t cores) {
  agent_.gateway_cores.store(cores, std::memory_order_relaxed);
  for (std::uint32_t index = 1; index < cores; ++index) {
    const unsigned target = index % agent_.threads;
    if (target == loop_.core()) {
      ensure_connection(index);
      continue;
    }
    auto message = std::make_unique<StartConnection>();
    message->index = index;
    ring::post_owned<StartConnection>(loop_, target, std::move(message),
                                      [](ring::Loop& loop, StartConnection& m) { core_of(loop).ensure_connection(m.index); });
  }
}

void AgentCore::on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) {
  for (auto& c : conns_) {
    if (c->index() == conn.app_tag) {
      c->on_control(conn, json);
      return;
    }
  }
}

void AgentCore::on_stream_open(tunnel::TunnelConn& conn, frame::StreamHandle stream,
                               std::span<const std::byte> metadata) {
  if (metadata.size() < 2) {
    conn.refuse_stream(stream, frame::ErrorCode::kRefusedStream);
    return;
  }
  const auto port = static_cast<std::uint16_t>((std::to_integer<unsigned>(metadata[0]) << 8) |
                                               std::to_integer<unsigned>(metadata[1]));
  for (const auto& service : agent_.config.services) {
    if (service.public_port == port) {
      conn.connect_stream(stream, service.local);
      return;
    }
  }
  LOG_WARN("the gateway opened a stream for port %u, which this agent does not serve", port);
  conn.refuse_stream(stream, frame::ErrorCode::kRefusedStream);
}

void AgentCore::on_tunnel_closed(tunnel::TunnelConn& conn, const char* reason) {
  for (auto& c : conns_) {
    if (c->index() == conn.app_tag) {
      c->on_tunnel_closed(reason);
      return;
    }
  }
}

void AgentCore::begin_stop() {
  stopping_ = true;
  for (auto& conn : conns_) conn->stop();
  loop_.timers().schedule(drain_deadline_, agent_.config.common.drain_timeout_ms);
  connection_stopped();
}

void AgentCore::connection_stopped() {
  if (!stopping_) {
    // A connection stopped by a refusal: if none is left running anywhere on this core, nothing more happens here.
    return;
  }
  bool all_idle = std::all_of(conns_.begin(), conns_.end(), [](const auto& c) { return c->idle(); });
  if (all_idle) {
    loop_.timers().cancel(drain_deadline_);
    loop_.exit();
  }
}

// ---------------------------------------------------------------- the program

int run_agent(const app::AgentConfig& config) {
  Agent agent;
  agent.config = config;
  // Temporary, until the resolver lands: numeric addresses and localhost only.
  const std::string& host = config.gateway_host;
  auto gateway = ring::net::parse_address((host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                                          std::to_string(config.gateway_port));
  if (!gateway) {
    LOG_ERROR("--gateway %s: DNS names are not resolved yet", host.c_str());
    return 2;
  }
  agent.gateway = *gateway;
  // The gateway decides how many streams it opens (its --max-streams); the agent accepts up to the protocol's
  // practical bound so that it is never the tighter limit.
  agent.tunnel_options = app::tunnel_options(config.common, kAgentMaxStreams);
  agent.tunnel_options.connect_timeout_ms = config.connect_timeout_ms;
  if (config.common.insecure_plaintext) {
    LOG_WARN("--insecure-plaintext: tunnel traffic is NOT encrypted and the gateway is NOT verified; use it on "
             "trusted links and for benchmarks only");
  } else {
    tls::ClientSettings settings;
    settings.ca_file = config.ca_file;
    settings.fingerprint = config.gateway_fingerprint;
    settings.server_name = config.server_name;
    settings.cert_file = config.common.cert_file;
    settings.key_file = config.common.key_file;
    std::string error;
    auto context = tls::Context::client(settings, &error);
    if (!context) {
      LOG_ERROR("%s", error.c_str());
      return 2;
    }
    agent.tls = std::move(*context);
  }

  (void)ring::net::raise_fd_limit();
  ring::Runtime runtime(app::runtime_options(config.common));
  agent.runtime = &runtime;
  agent.threads = runtime.thread_count();
  agent.cores.assign(agent.threads, nullptr);
  std::vector<std::unique_ptr<AgentCore>> cores(agent.threads);
  g_agent = &agent;
  LOG_INFO("ringtun-agent '%s' connecting to %s with %zu service(s)", config.agent_id.c_str(),
           config.gateway_text.c_str(), config.services.size());
  for (const auto& service : config.services) {
    LOG_INFO("  %s: gateway port %u -> %s", service.name.c_str(), service.public_port, service.local_text.c_str());
  }
  auto result = runtime.run([&](ring::Loop& loop) -> Status {
    cores[loop.core()] = std::make_unique<AgentCore>(agent, loop);
    agent.cores[loop.core()] = cores[loop.core()].get();
    return cores[loop.core()]->start();
  });
  g_agent = nullptr;
  if (!result) {
    char buf[160];
    LOG_ERROR("cannot start: %s", result.error().describe(buf, sizeof buf));
    return 1;
  }
  return *result;
}

}  // namespace ringtun::agent
