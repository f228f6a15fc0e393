// GatewayCore: one core's share of the gateway, plus the registry on core 0. See gateway.hpp.
#include "gateway/gateway.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "app/options.hpp"
#include "common/log.hpp"
#include "gateway/handshake_reader.hpp"
#include "ring/post.hpp"

namespace ringtun::gateway {

// ---------------------------------------------------------------- messages between cores

struct GatewayCore::Handoff {
  int fd = -1;
  std::string bytes;                 // plaintext read so far
  std::unique_ptr<tls::Session> tls; // the open TLS session (null: plaintext)
};
struct GatewayCore::RegisterRequest {
  unsigned reply_core = 0;
  std::uint64_t conn_tag = 0;
  std::string agent_id;
  std::vector<tunnel::HelloService> services;
};
struct GatewayCore::RegisterReply {
  std::uint64_t conn_tag = 0;
  std::string agent_id;
  bool ok = false;
  tunnel::RefusalCode code = tunnel::RefusalCode::kBadRequest;
  std::string message;
};
struct GatewayCore::BindPort {
  int fd = -1;
  std::uint16_t port = 0;
  std::string agent_id;
  std::string service;
};
struct GatewayCore::UnbindPort {
  std::uint16_t port = 0;
};
struct GatewayCore::ConnChange {
  std::string agent_id;
  int delta = 0;
};

namespace {

// Each message handler finds its core's GatewayCore through the loop's index.
Gateway* g_gateway = nullptr;
GatewayCore& core_of(ring::Loop& loop) { return *g_gateway->cores[loop.core()]; }

// Compares without leaking where the first difference is (or, for equal lengths, whether there is one).
bool constant_time_equal(const std::string& a, const std::string& b) noexcept {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// OPEN metadata: the public port (big-endian u16) then the service name.
std::string stream_metadata(std::uint16_t port, const std::string& service) {
  std::string m;
  m.push_back(static_cast<char>(port >> 8));
  m.push_back(static_cast<char>(port & 0xFF));
  m += service.substr(0, frame::kMaxOpenPayload - 2);
  return m;
}

}  // namespace

// ---------------------------------------------------------------- start and stop

GatewayCore::GatewayCore(Gateway& gateway, ring::Loop& loop)
    : gateway_(gateway), loop_(loop), tcore_(loop, 256ULL * 1024 * 1024) {
  drain_deadline_.set_callback(
      [](void* self) {
        auto* core = static_cast<GatewayCore*>(self);
        LOG_WARN("drain deadline reached: closing %zu tunnel connection(s)", core->ready_.size() + core->pending_.size());
        for (auto& [agent, conn] : core->ready_) conn->close("gateway stopping (drain deadline)");
        for (auto& [tag, pending] : core->pending_) pending.conn->close("gateway stopping (drain deadline)");
        core->check_stopped();
      },
      this);
  parked_sweep_.set_callback([](void* self) { static_cast<GatewayCore*>(self)->sweep_parked(false); }, this);
}

GatewayCore::~GatewayCore() = default;

Status GatewayCore::start() {
  auto listener = loop_.adopt(gateway_.tunnel_listener_fds[loop_.core()], this);
  gateway_.tunnel_listener_fds[loop_.core()] = -1;
  if (!listener) return Unexpected{listener.error()};
  tunnel_listener_ = *listener;
  RINGTUN_TRY(loop_.accept_start(tunnel_listener_));
  loop_.set_stop_handler([](ring::Loop& loop, void*) { core_of(loop).begin_stop(); }, nullptr);
  return {};
}

void GatewayCore::begin_stop() {
  stopping_ = true;
  loop_.close(tunnel_listener_);
  for (auto& [slot, port] : public_by_listener_) loop_.close(port.listener);
  for (HandshakeReader* reader : std::vector<HandshakeReader*>(readers_)) reader->abandon("gateway stopping");
  for (auto& [agent, conn] : ready_) conn->goaway();
  for (auto& [tag, pending] : pending_) pending.conn->close("gateway stopping");
  loop_.timers().cancel(parked_sweep_);
  sweep_parked(true);
  loop_.timers().schedule(drain_deadline_, gateway_.config.common.drain_timeout_ms);
  check_stopped();
}

void GatewayCore::check_stopped() {
  if (stopping_ && ready_.empty() && pending_.empty() && readers_.empty()) {
    loop_.timers().cancel(drain_deadline_);
    loop_.exit();
  }
}

// ---------------------------------------------------------------- accepting

void GatewayCore::on_accept(ring::Loop& loop, ring::SocketId listener, int res) {
  if (res < 0) {
    LOG_WARN("accept: %s", std::strerror(-res));
    return;
  }
  if (stopping_) {
    ::close(res);
    return;
  }
  if (listener == tunnel_listener_) {
    if (readers_.size() >= kMaxHandshakesPerCore) {
      // A flood of connections that never finish their handshake must not grow memory (a TLS session in handshake
      // holds tens of KB): beyond the cap, new ones are closed at once, logged once a second with a count.
      ::close(res);
      ++handshakes_refused_;
      if (loop.now_ms() - handshake_log_ms_ >= 1000) {
        LOG_WARN("%llu tunnel connection(s) closed: %zu handshakes already in progress on this core",
                 static_cast<unsigned long long>(handshakes_refused_), readers_.size());
        handshake_log_ms_ = loop.now_ms();
        handshakes_refused_ = 0;
      }
      return;
    }
    auto socket = loop.adopt(res, this);
    if (!socket) return;
    std::string peer = "?";
    if (auto address = ring::net::peer_address(loop.fd(*socket))) peer = address->to_string();
    // The reader is its socket's handler from here on; it deletes itself when done.
    // A peer that says nothing for dead_peer_ms is as dead during the handshake as after it.
    auto* reader =
        new HandshakeReader(*this, *socket, std::move(peer), gateway_.config.common.dead_peer_ms,
                             gateway_.tls.load());
    (void)loop.set_handler(*socket, reader);
    readers_.push_back(reader);
    return;
  }
  auto it = public_by_listener_.find(listener.index);
  if (it == public_by_listener_.end()) {
    ::close(res);
    return;
  }
  route_public(it->second, res);
}

void GatewayCore::route_public(PublicPort& port, int fd) {
  auto conn = ready_.find(port.agent_id);
  if (conn != ready_.end() && !conn->second->closing()) {
    open_public_stream(*conn->second, port.port, port.service, fd);
    return;
  }
  // The agent's connection for this core is not up (yet: the agent opens them one after another, and connection 0
  // opens the ports on every core; or again: it is reconnecting). The client waits for it, a bounded number and
  // for a bounded time, rather than being closed while the agent is on its way.
  if (stopping_ || parked_count_ >= kMaxParkedPerCore) {
    LOG_DEBUG("port %u: agent '%s' has no tunnel on this core: closing the client", port.port, port.agent_id.c_str());
    ::close(fd);
    return;
  }
  parked_[port.agent_id].push_back(ParkedClient{fd, port.port, port.service, loop_.now_ms()});
  ++parked_count_;
  if (!parked_sweep_.armed()) loop_.timers().schedule(parked_sweep_, kParkSweepMs);
}

void GatewayCore::open_public_stream(tunnel::TunnelConn& conn, std::uint16_t port, const std::string& service,
                                     int fd) {
  const std::string metadata = stream_metadata(port, service);
  if (auto status = conn.open_stream(fd, tunnel::as_bytes(metadata)); !status) {
    ++refused_since_log_;
    if (loop_.now_ms() - refused_log_ms_ >= 1000) {
      char buf[160];
      LOG_WARN("port %u: %llu client(s) closed: cannot open a stream to agent '%s': %s", port,
               static_cast<unsigned long long>(refused_since_log_), conn.app_name.c_str(),
               status.error().describe(buf, sizeof buf));
      refused_log_ms_ = loop_.now_ms();
      refused_since_log_ = 0;
    }
  }
}

void GatewayCore::release_parked(const std::string& agent_id, tunnel::TunnelConn& conn) {
  auto it = parked_.find(agent_id);
  if (it == parked_.end()) return;
  std::vector<ParkedClient> clients = std::move(it->second);
  parked_.erase(it);
  parked_count_ -= clients.size();
  for (const ParkedClient& c : clients) open_public_stream(conn, c.port, c.service, c.fd);
}

void GatewayCore::sweep_parked(bool all) {
  const std::uint64_t now = loop_.now_ms();
  std::size_t closed = 0;
  for (auto it = parked_.begin(); it != parked_.end();) {
    auto& clients = it->second;
    const auto expired = [&](const ParkedClient& c) { return all || now - c.since_ms >= kParkMs; };
    for (const ParkedClient& c : clients) {
      if (expired(c)) ::close(c.fd);
    }
    const std::size_t before = clients.size();
    clients.erase(std::remove_if(clients.begin(), clients.end(), expired), clients.end());
    closed += before - clients.size();
    if (before != clients.size() && !all) {
      LOG_WARN("%zu public client(s) of agent '%s' closed: no tunnel connection on this core for %u ms",
               before - clients.size(), it->first.c_str(), kParkMs);
    }
    it = clients.empty() ? parked_.erase(it) : std::next(it);
  }
  parked_count_ -= closed;
  if (parked_count_ > 0) loop_.timers().schedule(parked_sweep_, kParkSweepMs);
}

void GatewayCore::handshake_gone(HandshakeReader& reader) {
  readers_.erase(std::remove(readers_.begin(), readers_.end(), &reader), readers_.end());
  check_stopped();
}

void GatewayCore::handshake_done(HandshakeReader& reader, int fd, unsigned target, std::string&& bytes,
                                 std::unique_ptr<tls::Session> tls) {
  readers_.erase(std::remove(readers_.begin(), readers_.end(), &reader), readers_.end());
  auto message = std::make_unique<Handoff>();
  message->fd = fd;
  message->bytes = std::move(bytes);
  message->tls = std::move(tls);
  if (target == loop_.core()) {
    adopt_handoff(*message);
  } else {
    ring::post_owned<Handoff>(loop_, target, std::move(message),
                              [](ring::Loop& loop, Handoff& m) { core_of(loop).adopt_handoff(m); });
  }
  check_stopped();
}

void GatewayCore::adopt_handoff(Handoff& message) {
  if (stopping_) {
    ::close(message.fd);
    return;
  }
  auto socket = loop_.adopt(message.fd, this);
  if (!socket) return;
  auto* conn = tunnel::TunnelConn::start(tcore_, *socket, frame::Role::kGateway, gateway_.tunnel_options, *this,
                                         tunnel::as_bytes(message.bytes), std::move(message.tls));
  conn->app_tag = next_tag_++;
}

// ---------------------------------------------------------------- the handshake

void GatewayCore::on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) {
  std::string error;
  auto message = tunnel::parse_control(json, &error);
  if (!message) {
    LOG_WARN("agent at %s: bad hello: %s", conn.peer().to_string().c_str(), error.c_str());
    refuse(conn, tunnel::RefusalCode::kBadRequest, error);
    return;
  }
  if (message->type != tunnel::ControlMessage::Type::kHello || !conn.app_name.empty() ||
      pending_.count(conn.app_tag) != 0) {
    refuse(conn, tunnel::RefusalCode::kBadRequest, "unexpected control message");
    return;
  }
  handle_hello(conn, std::move(message->hello));
}

const app::TokenRule* GatewayCore::find_token(const std::string& token) const noexcept {
  const app::TokenRule* match = nullptr;
  for (const app::TokenRule& rule : gateway_.config.tokens) {  // every rule, so timing does not tell which
    if (constant_time_equal(rule.secret, token) && match == nullptr) match = &rule;
  }
  return match;
}

void GatewayCore::handle_hello(tunnel::TunnelConn& conn, tunnel::Hello&& hello) {
  if (stopping_) {
    refuse(conn, tunnel::RefusalCode::kShuttingDown, "the gateway is shutting down");
    return;
  }
  if (hello.conn_index >= gateway_.core_count) {
    refuse(conn, tunnel::RefusalCode::kIndexOutOfRange,
           "connection index " + std::to_string(hello.conn_index) + " but the gateway has " +
               std::to_string(gateway_.core_count) + " cores");
    return;
  }
  const app::TokenRule* rule = find_token(hello.token);
  if (rule == nullptr) {
    LOG_WARN("agent '%s' at %s: token refused", hello.agent_id.c_str(), conn.peer().to_string().c_str());
    refuse(conn, tunnel::RefusalCode::kBadToken, "token refused by the gateway");
    return;
  }
  for (const tunnel::HelloService& service : hello.services) {
    if (service.port < rule->port_low || service.port > rule->port_high) {
      std::string message = "port " + std::to_string(service.port) + " is outside the range " +
                            std::to_string(rule->port_low) + "-" + std::to_string(rule->port_high) +
                            " allowed for this token";
      LOG_WARN("agent '%s': %s", hello.agent_id.c_str(), message.c_str());
      refuse(conn, tunnel::RefusalCode::kPortNotAllowed, message);
      return;
    }
  }
  conn.app_name = hello.agent_id;
  if (hello.conn_index != 0) {
    // The agent registered its services through connection 0; this core learnt of them as BindPort messages.
    bool known = std::any_of(public_by_listener_.begin(), public_by_listener_.end(),
                             [&](const auto& entry) { return entry.second.agent_id == hello.agent_id; }) ||
                 hello.services.empty();
    if (!known) {
      refuse(conn, tunnel::RefusalCode::kNotRegistered, "connection 0 has not registered this agent yet");
      return;
    }
    welcome(conn, hello);
    return;
  }
  auto request = std::make_unique<RegisterRequest>();
  request->reply_core = loop_.core();
  request->conn_tag = conn.app_tag;
  request->agent_id = hello.agent_id;
  request->services = hello.services;
  pending_.emplace(conn.app_tag, PendingHello{&conn, std::move(hello)});
  ring::post_owned<RegisterRequest>(loop_, 0, std::move(request),
                                    [](ring::Loop& loop, RegisterRequest& m) { core_of(loop).registry_register(m); });
}

void GatewayCore::refuse(tunnel::TunnelConn& conn, tunnel::RefusalCode code, const std::string& message) {
  tunnel::Refusal refusal{code, message};
  (void)conn.send_control(tunnel::encode_refusal(refusal));
  conn.close_after_flush("handshake refused");
}

void GatewayCore::welcome(tunnel::TunnelConn& conn, const tunnel::Hello& hello) {
  auto existing = ready_.find(hello.agent_id);
  if (existing != ready_.end() && existing->second != &conn) {
    LOG_INFO("agent '%s': a new connection %u replaces the one on this core", hello.agent_id.c_str(),
             hello.conn_index);
    tunnel::TunnelConn* old = existing->second;
    ready_.erase(existing);
    old->app_name.clear();  // no longer counted for this agent
    send_conn_change(hello.agent_id, -1);
    old->close("replaced by a newer connection of the same agent");
  }
  tunnel::Welcome w{gateway_.core_count, hello.conn_index};
  if (!conn.send_control(tunnel::encode_welcome(w))) return;
  ready_[hello.agent_id] = &conn;
  send_conn_change(hello.agent_id, +1);
  release_parked(hello.agent_id, conn);
  std::string ports;
  for (const auto& s : hello.services) ports += (ports.empty() ? "" : ", ") + s.name + ":" + std::to_string(s.port);
  LOG_INFO("agent '%s' connection %u/%u from %s ready%s%s", hello.agent_id.c_str(), hello.conn_index + 1,
           hello.conn_count, conn.peer().to_string().c_str(), ports.empty() ? "" : ": ", ports.c_str());
}

void GatewayCore::on_register_reply(RegisterReply& reply) {
  auto it = pending_.find(reply.conn_tag);
  if (it == pending_.end()) {
    // The connection died meanwhile. The registry counts only welcomed connections, so a nudge (delta 0) lets it
    // release the ports it just opened if no other connection of this agent lives.
    if (reply.ok) send_conn_change(reply.agent_id, 0);
    return;
  }
  PendingHello pending = std::move(it->second);
  pending_.erase(it);
  if (!reply.ok) {
    LOG_WARN("agent '%s' refused: %s", pending.hello.agent_id.c_str(), reply.message.c_str());
    pending.conn->app_name.clear();
    refuse(*pending.conn, reply.code, reply.message);
    return;
  }
  welcome(*pending.conn, pending.hello);
}

void GatewayCore::send_conn_change(const std::string& agent_id, int delta) {
  auto message = std::make_unique<ConnChange>();
  message->agent_id = agent_id;
  message->delta = delta;
  ring::post_owned<ConnChange>(loop_, 0, std::move(message),
                               [](ring::Loop& loop, ConnChange& m) { core_of(loop).registry_conn_change(m); });
}

void GatewayCore::on_tunnel_closed(tunnel::TunnelConn& conn, const char* reason) {
  pending_.erase(conn.app_tag);
  if (!conn.app_name.empty()) {
    auto it = ready_.find(conn.app_name);
    if (it != ready_.end() && it->second == &conn) {
      ready_.erase(it);
      send_conn_change(conn.app_name, -1);
      LOG_INFO("agent '%s': tunnel connection from %s closed: %s", conn.app_name.c_str(),
               conn.peer().to_string().c_str(), reason);
    }
  }
  check_stopped();
}

// ---------------------------------------------------------------- the registry (core 0)

void GatewayCore::registry_register(RegisterRequest& request) {
  auto reply = std::make_unique<RegisterReply>();
  reply->conn_tag = request.conn_tag;
  reply->agent_id = request.agent_id;
  for (const auto& service : request.services) {
    auto owner = port_owner_.find(service.port);
    if (owner != port_owner_.end() && owner->second != request.agent_id) {
      reply->code = tunnel::RefusalCode::kPortTaken;
      reply->message = "port " + std::to_string(service.port) + " is already taken by agent '" + owner->second + "'";
    }
  }
  if (reply->message.empty()) {
    AgentRecord& record = agents_[request.agent_id];
    for (const auto& service : request.services) {
      if (port_owner_.count(service.port) != 0) continue;  // the same agent coming back: its listeners still stand
      ring::net::Address address = gateway_.public_bind;
      address.set_port(service.port);
      auto fds = ring::net::listen_tcp_group(address, gateway_.core_count);
      if (!fds) {
        char buf[160];
        reply->code = tunnel::RefusalCode::kPortUnavailable;
        reply->message = "cannot listen on port " + std::to_string(service.port) + ": " +
                         fds.error().describe(buf, sizeof buf);
        break;
      }
      port_owner_[service.port] = request.agent_id;
      record.ports.push_back(service.port);
      for (unsigned core = 0; core < gateway_.core_count; ++core) {
        auto bind = std::make_unique<BindPort>();
        bind->fd = (*fds)[core];
        bind->port = service.port;
        bind->agent_id = request.agent_id;
        bind->service = service.name;
        ring::post_owned<BindPort>(loop_, core, std::move(bind),
                                   [](ring::Loop& loop, BindPort& m) { core_of(loop).bind_port(m); });
      }
      LOG_INFO("port %u now serves '%s' of agent '%s'", service.port, service.name.c_str(), request.agent_id.c_str());
    }
    if (record.live_connections == 0 && !reply->message.empty()) {
      // A failed first registration must not keep the ports it did get.
      ConnChange none{request.agent_id, 0};
      registry_conn_change(none);
    }
  }
  reply->ok = reply->message.empty();
  ring::post_owned<RegisterReply>(loop_, request.reply_core, std::move(reply),
                                  [](ring::Loop& loop, RegisterReply& m) { core_of(loop).on_register_reply(m); });
}

void GatewayCore::registry_conn_change(ConnChange& change) {
  auto it = agents_.find(change.agent_id);
  if (it == agents_.end()) return;
  AgentRecord& record = it->second;
  if (change.delta > 0) record.live_connections += static_cast<unsigned>(change.delta);
  if (change.delta < 0) record.live_connections -= std::min(record.live_connections, static_cast<unsigned>(-change.delta));
  if (record.live_connections > 0) return;
  // The agent's last connection is gone: its ports stop accepting on every core and become free.
  for (std::uint16_t port : record.ports) {
    port_owner_.erase(port);
    for (unsigned core = 0; core < gateway_.core_count; ++core) {
      auto unbind = std::make_unique<UnbindPort>();
      unbind->port = port;
      ring::post_owned<UnbindPort>(loop_, core, std::move(unbind),
                                   [](ring::Loop& loop, UnbindPort& m) { core_of(loop).unbind_port(m); });
    }
  }
  if (!record.ports.empty()) LOG_INFO("agent '%s' is gone: its %zu port(s) are closed", change.agent_id.c_str(), record.ports.size());
  agents_.erase(it);
}

void GatewayCore::bind_port(BindPort& message) {
  if (stopping_) {
    ::close(message.fd);
    return;
  }
  auto socket = loop_.adopt(message.fd, this);
  if (!socket) return;
  if (!loop_.accept_start(*socket)) {
    loop_.close(*socket);
    return;
  }
  PublicPort port{*socket, message.port, std::move(message.agent_id), std::move(message.service)};
  listener_by_port_[message.port] = socket->index;
  public_by_listener_.emplace(socket->index, std::move(port));
}

void GatewayCore::unbind_port(UnbindPort& message) {
  auto it = listener_by_port_.find(message.port);
  if (it == listener_by_port_.end()) return;
  auto entry = public_by_listener_.find(it->second);
  if (entry != public_by_listener_.end()) {
    loop_.close(entry->second.listener);
    public_by_listener_.erase(entry);
  }
  listener_by_port_.erase(it);
}

// ---------------------------------------------------------------- the program

int run_gateway(const app::GatewayConfig& config) {
  Gateway gateway;
  gateway.config = config;
  gateway.tunnel_options = app::tunnel_options(config.common, config.max_streams_per_connection);
  gateway.public_bind = config.listen;
  gateway.public_bind.set_port(0);
  auto tls = make_gateway_tls(config);
  if (!tls) return 2;
  gateway.tls.store(std::move(*tls));

  (void)ring::net::raise_fd_limit();
  ring::RuntimeOptions runtime_options = app::runtime_options(config.common);
  runtime_options.on_reload = [&gateway] { reload_gateway_tls(gateway); };
  ring::Runtime runtime(runtime_options);
  gateway.runtime = &runtime;
  gateway.core_count = runtime.thread_count();
  gateway.cores.assign(gateway.core_count, nullptr);

  auto fds = ring::net::listen_tcp_group(config.listen, gateway.core_count);
  if (!fds) {
    char buf[160];
    LOG_ERROR("cannot listen on %s: %s", config.listen_text.c_str(), fds.error().describe(buf, sizeof buf));
    return 1;
  }
  gateway.tunnel_listener_fds = *fds;
  const std::uint16_t port = ring::net::local_address((*fds)[0])->port();
  std::vector<std::unique_ptr<GatewayCore>> cores(gateway.core_count);
  g_gateway = &gateway;
  LOG_INFO("ringtun-gateway listening for agents on %s (port %u), %u core(s), %zu token(s)",
           config.listen_text.c_str(), port, gateway.core_count, config.tokens.size());
  auto result = runtime.run([&](ring::Loop& loop) -> Status {
    cores[loop.core()] = std::make_unique<GatewayCore>(gateway, loop);
    gateway.cores[loop.core()] = cores[loop.core()].get();
    return cores[loop.core()]->start();
  });
  for (int fd : gateway.tunnel_listener_fds) {
    if (fd >= 0) ::close(fd);
  }
  g_gateway = nullptr;
  if (!result) {
    char buf[160];
    LOG_ERROR("cannot start: %s", result.error().describe(buf, sizeof buf));
    return 1;
  }
  LOG_INFO("ringtun-gateway stopped");
  return *result;
}

}  // namespace ringtun::gateway
