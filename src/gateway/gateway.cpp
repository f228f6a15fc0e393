// GatewayCore: one core's share of the gateway; run_gateway. See gateway.hpp.
#include "gateway/gateway.hpp"

#include <unistd.h>

#include <algorithm>
#include <utility>
#include <cstring>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "ops/sd_notify.hpp"
#include "ring/post.hpp"

namespace ringtun::gateway {

// ---------------------------------------------------------------- start and stop

GatewayCore::GatewayCore(Gateway& gateway, ring::Loop& loop)
    : gateway_(gateway),
      loop_(loop),
      tcore_(loop, 256ULL * 1024 * 1024),
      intake_(gateway, loop, &GatewayCore::on_arrival, this),
      routing_(loop),
      listeners_(loop, &GatewayCore::on_public_client, &GatewayCore::on_port_closed, this) {
  if (loop.core() == gateway.registry_core) {
    registry_ = std::make_unique<RegistryRoom>(gateway, loop, std::make_unique<LocalRegistry>());
  }
  if (!gateway.http_listener_fds.empty()) {
    HttpFrontOptions options;
    options.head_timeout_ms = gateway.config.http_head_timeout_ms;
    options.idle_timeout_ms = gateway.config.http_idle_timeout_ms;
    http_ = std::make_unique<HttpFront>(tcore_, routing_, options);
  }
  if (!gateway.tls_listener_fds.empty()) {
    tls_front_ = std::make_unique<TlsFront>(tcore_, routing_, gateway.config.tls_hello_timeout_ms);
  }
  if (gateway.access_log) {
    access_log_ = std::make_unique<ops::AccessLog>(loop, gateway.access_log);
    routing_.set_access_log(access_log_.get());
  }
  routing_.set_access(gateway.access);
  if (!gateway.admin_listener_fds.empty()) routing_.set_refusal_sink(&GatewayCore::on_refusal, this);
  watchdog_timer_.set_callback([](void* self) { static_cast<GatewayCore*>(self)->on_watchdog_timer(); }, this);
  drain_deadline_.set_callback(
      [](void* self) {
        auto* core = static_cast<GatewayCore*>(self);
        LOG_WARN("drain deadline reached: closing %zu tunnel connection(s)", core->live_links_);
        for (Link& link : core->links_) {
          if (link.conn != nullptr) link.conn->close("gateway stopping (drain deadline)");
        }
        core->check_stopped();
      },
      this);
}

GatewayCore::~GatewayCore() = default;

Status GatewayCore::start() {
  const int fd = gateway_.tunnel_listener_fds[loop_.core()];
  gateway_.tunnel_listener_fds[loop_.core()] = -1;
  RINGTUN_TRY(intake_.start(fd));
  if (http_) {
    RINGTUN_TRY(http_->listen(std::exchange(gateway_.http_listener_fds[loop_.core()], -1)));
  }
  if (tls_front_) {
    RINGTUN_TRY(tls_front_->listen(std::exchange(gateway_.tls_listener_fds[loop_.core()], -1)));
  }
  if (registry_) registry_->start();
  if (registry_ && !gateway_.admin_listener_fds.empty()) start_admin();
  loop_.set_stop_handler([](ring::Loop&, void* self) { static_cast<GatewayCore*>(self)->begin_stop(); }, this);
  if (const std::uint64_t watchdog_us = ops::watchdog_interval_us(); watchdog_us != 0) {
    watchdog_interval_ms_ = std::max<std::uint64_t>(watchdog_us / 1000, 4);
    loop_.timers().schedule(watchdog_timer_, static_cast<std::uint32_t>(watchdog_interval_ms_ / 4));
  }
  // The last core to start tells systemd (Type=notify) that every listener is bound and served.
  if (gateway_.cores_started.fetch_add(1, std::memory_order_acq_rel) + 1 == gateway_.core_count) {
    (void)ops::notify_systemd("READY=1\nSTATUS=serving");
  }
  return {};
}

void GatewayCore::start_admin() {
  admin_ = std::make_unique<GatewayAdmin>(gateway_, *registry_);
  ops::AdminOptions options;
  options.token = gateway_.config.common.admin_token;
  const int fd = std::exchange(gateway_.admin_listener_fds[0], -1);
  auto server = ops::AdminServer::start(loop_, fd, options, *admin_);
  if (!server) {
    char buf[160];
    LOG_ERROR("admin endpoint: %s", server.error().describe(buf, sizeof buf));
    return;
  }
  admin_server_ = std::move(*server);
}

// Each core moves its beat; the registry core pings systemd's watchdog only when every core's beat moved since the
// last ping, so a core whose loop is stuck stops the pings and systemd restarts the gateway.
void GatewayCore::on_watchdog_timer() {
  ++watchdog_beats;
  if (registry_) {
    watchdog_seen_.resize(gateway_.core_count, UINT64_MAX);
    bool all_moved = true;
    for (unsigned core = 0; core < gateway_.core_count; ++core) {
      const GatewayCore* c = gateway_.started_core(core);
      const std::uint64_t beats = c != nullptr ? c->watchdog_beats.get() : 0;
      if (beats == watchdog_seen_[core]) all_moved = false;
      watchdog_seen_[core] = beats;
    }
    if (all_moved) (void)ops::notify_systemd("WATCHDOG=1");
  }
  if (!stopping_) loop_.timers().schedule(watchdog_timer_, static_cast<std::uint32_t>(watchdog_interval_ms_ / 4));
}

void GatewayCore::on_first_byte(tunnel::TunnelConn&, tunnel::StreamEnd&, std::uint64_t elapsed_us) {
  routing_.first_byte().observe_us(elapsed_us);
}

void GatewayCore::on_stream_finished(tunnel::TunnelConn&, tunnel::StreamEnd& end) { routing_.stream_finished(end); }

namespace {
struct RefusalMessage {
  Gateway* gateway = nullptr;
  Routing::RefusalEvent event;
};
}  // namespace

void GatewayCore::on_refusal(void* self, Routing::RefusalEvent event) {
  auto* core = static_cast<GatewayCore*>(self);
  auto message = std::make_unique<RefusalMessage>(RefusalMessage{&core->gateway_, std::move(event)});
  ring::post_owned<RefusalMessage>(core->loop_, core->gateway_.registry_core, std::move(message),
                                   [](ring::Loop& loop, RefusalMessage& m) {
                                     GatewayCore& registry_core = m.gateway->core(loop.core());
                                     if (registry_core.admin_) registry_core.admin_->note_refusal(std::move(m.event));
                                   });
}

void GatewayCore::close_link(std::uint64_t tag, const char* reason) {
  Link* link = link_of(tag);
  if (link == nullptr || link->conn == nullptr) return;
  LOG_INFO("agent connection closed: %s", reason);
  link->conn->close(reason);
}

void GatewayCore::begin_stop() {
  stopping_ = true;
  loop_.timers().cancel(watchdog_timer_);
  if (registry_) {
    gateway_.draining.store(true, std::memory_order_relaxed);
    (void)ops::notify_systemd("STOPPING=1\nSTATUS=draining");
  }
  intake_.stop();
  listeners_.close_all();
  if (http_) http_->stop();
  if (tls_front_) tls_front_->stop();
  routing_.stop();
  for (Link& link : links_) {
    if (link.conn == nullptr) continue;
    if (link.state == Link::State::kReady) link.conn->goaway();
    else link.conn->close("gateway stopping");
  }
  loop_.timers().schedule(drain_deadline_, gateway_.config.common.drain_timeout_ms);
  check_stopped();
}

void GatewayCore::check_stopped() {
  if (stopping_ && live_links_ == 0 && intake_.pending() == 0) {
    loop_.timers().cancel(drain_deadline_);
    loop_.exit();
  }
}

// ---------------------------------------------------------------- links

std::uint64_t GatewayCore::new_link() {
  std::uint32_t index;
  if (!free_links_.empty()) {
    index = free_links_.back();
    free_links_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(links_.size());
    links_.emplace_back();
  }
  Link& link = links_[index];
  const std::uint32_t generation = link.generation + 1;
  link = Link{};
  link.generation = generation;
  link.state = Link::State::kAttaching;
  ++live_links_;
  return (static_cast<std::uint64_t>(generation) << 32) | index;
}

GatewayCore::Link* GatewayCore::link_of(std::uint64_t tag) noexcept {
  const auto index = static_cast<std::uint32_t>(tag);
  const auto generation = static_cast<std::uint32_t>(tag >> 32);
  if (index >= links_.size()) return nullptr;
  Link& link = links_[index];
  return link.state != Link::State::kFree && link.generation == generation ? &link : nullptr;
}

void GatewayCore::free_link(std::uint64_t tag) noexcept {
  Link* link = link_of(tag);
  if (link == nullptr) return;
  const std::uint32_t generation = link->generation;
  *link = Link{};
  link->generation = generation;
  free_links_.push_back(static_cast<std::uint32_t>(tag));
  --live_links_;
}

// ---------------------------------------------------------------- tunnel connections

void GatewayCore::on_arrival(void* self, std::unique_ptr<Arrival> arrival) {
  auto* core = static_cast<GatewayCore*>(self);
  // A refused connection is told why on this core; an accepted one is served by the core its index names.
  const unsigned target = arrival->refusal ? core->loop_.core() : arrival->hello.conn_index;
  if (target == core->loop_.core()) {
    core->adopt(std::move(arrival));
    return;
  }
  struct Handoff {
    Gateway* gateway;
    std::unique_ptr<Arrival> arrival;
  };
  auto handoff = std::make_unique<Handoff>(Handoff{&core->gateway_, std::move(arrival)});
  ring::post_owned<Handoff>(core->loop_, target, std::move(handoff), [](ring::Loop& loop, Handoff& m) {
    m.gateway->core(loop.core()).adopt(std::move(m.arrival));
  });
}

void GatewayCore::adopt(std::unique_ptr<Arrival> arrival) {
  if (stopping_) return;  // ~Arrival closes the socket
  auto socket = loop_.adopt(arrival->fd, &adopting_);
  arrival->fd = -1;  // the loop owns it now, also on failure
  if (!socket) return;
  const std::uint64_t tag = new_link();
  Link& link = *link_of(tag);
  link.conn_index = arrival->hello.conn_index;
  link.conn_count = arrival->hello.conn_count;
  link.conn = tunnel::TunnelConn::start(tcore_, *socket, frame::Role::kGateway, gateway_.tunnel_options, *this, tag,
                                        tunnel::as_bytes(arrival->replay), std::move(arrival->tls));
  // start() may have failed the connection already (a corrupt replay): then on_tunnel_closed frees the link later.
  link_of(tag)->conn->app_name = arrival->hello.agent_id;
  if (arrival->refusal) {
    refuse(*link_of(tag)->conn, *arrival->refusal);
    return;
  }
  auto request = std::make_unique<AttachRequest>();
  request->gateway = &gateway_;
  request->core = loop_.core();
  request->tag = tag;
  request->owner = route::Owner{arrival->token, arrival->hello.agent_id};
  request->instance = arrival->hello.instance;
  request->conn_index = arrival->hello.conn_index;
  request->peer = arrival->peer.to_string();
  ring::post_owned<AttachRequest>(loop_, gateway_.registry_core, std::move(request), [](ring::Loop&, AttachRequest& m) {
    m.gateway->core(m.gateway->registry_core).registry().attach(m);
  });
}

void GatewayCore::refuse(tunnel::TunnelConn& conn, const tunnel::Refusal& refusal) {
  if (Link* link = link_of(conn.app_tag)) link->state = Link::State::kRefused;
  (void)conn.send_control(tunnel::encode_refusal(refusal));
  conn.close_after_flush("handshake refused");
}

void GatewayCore::attached(const AttachReply& reply) {
  Link* link = link_of(reply.tag);
  if (link == nullptr || link->conn == nullptr || link->conn->closing() || link->state != Link::State::kAttaching) {
    // The connection went away while the registry decided: the session must not count it.
    if (!reply.refusal) send_detach(reply.session, reply.tag);
    return;
  }
  tunnel::TunnelConn& conn = *link->conn;
  if (reply.refusal) {
    refuse(conn, *reply.refusal);
    return;
  }
  if (stopping_) {
    send_detach(reply.session, reply.tag);
    refuse(conn, tunnel::Refusal{tunnel::RefusalCode::kShuttingDown, "the gateway is shutting down"});
    return;
  }
  tunnel::Welcome welcome{gateway_.core_count, link->conn_index};
  if (!conn.send_control(tunnel::encode_welcome(welcome))) {
    send_detach(reply.session, reply.tag);
    conn.close("could not send the welcome");
    return;
  }
  link->state = Link::State::kReady;
  link->session = reply.session;
  if (tunnel::TunnelConn* replaced = routing_.conn_up(reply.session, conn)) {
    LOG_INFO("agent '%s': a new connection %u replaces the one on this core", conn.app_name.c_str(),
             link->conn_index);
    replaced->close("replaced by a newer connection of the same agent");
  }
  LOG_INFO("agent '%s' connection %u/%u from %s ready", conn.app_name.c_str(), link->conn_index + 1,
           link->conn_count, conn.peer().to_string().c_str());
  if (!link->waiting_claims.empty()) {
    QueuedClaim first = std::move(link->waiting_claims.front());
    link->waiting_claims.erase(link->waiting_claims.begin());
    send_claim(*link, reply.tag, std::move(first));
  }
}

void GatewayCore::send_detach(route::SessionRef session, std::uint64_t tag) {
  if (!session.valid()) return;
  auto message = std::make_unique<DetachRequest>();
  message->gateway = &gateway_;
  message->session = session;
  message->core = loop_.core();
  message->tag = tag;
  ring::post_owned<DetachRequest>(loop_, gateway_.registry_core, std::move(message), [](ring::Loop&, DetachRequest& m) {
    m.gateway->core(m.gateway->registry_core).registry().detach(m);
  });
}

void GatewayCore::send_claim(Link& link, std::uint64_t tag, QueuedClaim claim) {
  auto message = std::make_unique<ClaimRequestMsg>();
  message->gateway = &gateway_;
  message->session = link.session;
  message->core = loop_.core();
  message->tag = tag;
  message->services = std::move(claim.services);
  message->release = std::move(claim.release);
  link.claim_in_flight = true;
  ring::post_owned<ClaimRequestMsg>(loop_, gateway_.registry_core, std::move(message),
                                    [](ring::Loop&, ClaimRequestMsg& m) {
                                      m.gateway->core(m.gateway->registry_core).registry().claim(m);
                                    });
}

void GatewayCore::send_health(Link& link, tunnel::TunnelConn& conn, std::vector<tunnel::ServiceHealth> services) {
  std::uint64_t dropped = 0;
  if (!link.health_budget.take(loop_.now_ms(), &dropped)) {
    refuse(conn, tunnel::Refusal{tunnel::RefusalCode::kBadRequest,
                                 "more than " + std::to_string(kMaxHealthPerSecond) + " health messages a second"});
    return;
  }
  // Health says which of the session's granted services are up: before the session exists there are none.
  if (!link.session.valid() || services.empty()) return;
  auto message = std::make_unique<HealthReport>();
  message->gateway = &gateway_;
  message->session = link.session;
  message->services = std::move(services);
  ring::post_owned<HealthReport>(loop_, gateway_.registry_core, std::move(message), [](ring::Loop&, HealthReport& m) {
    m.gateway->core(m.gateway->registry_core).registry().health(m);
  });
}

void GatewayCore::claimed(ClaimReply& reply) {
  Link* link = link_of(reply.tag);
  if (link == nullptr || link->conn == nullptr || link->conn->closing()) return;  // the agent asks again on reconnect
  link->claim_in_flight = false;
  // A release is not answered to the agent: its reply only gives the next claim its turn.
  const std::vector<std::string> answers =
      reply.release ? std::vector<std::string>{} : tunnel::encode_claimed(reply.statuses);
  for (const std::string& message : answers) {
    if (!link->conn->send_control(message)) {
      link->conn->close("could not send the claim answers");
      return;
    }
  }
  if (!link->waiting_claims.empty() && link->state == Link::State::kReady) {
    QueuedClaim next = std::move(link->waiting_claims.front());
    link->waiting_claims.erase(link->waiting_claims.begin());
    send_claim(*link, reply.tag, std::move(next));
  }
}

void GatewayCore::on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) {
  Link* link = link_of(conn.app_tag);
  if (link == nullptr || link->state == Link::State::kRefused) return;
  std::string error;
  auto message = tunnel::parse_control(json, &error);
  if (!message) {
    LOG_WARN("agent '%s' at %s: bad control message: %s", conn.app_name.c_str(), conn.peer().to_string().c_str(),
             error.c_str());
    refuse(conn, tunnel::Refusal{tunnel::RefusalCode::kBadRequest, error});
    return;
  }
  using Type = tunnel::ControlMessage::Type;
  if (message->type == Type::kHealth) {
    send_health(*link, conn, std::move(message->health));
    return;
  }
  if (message->type != Type::kClaim && message->type != Type::kRelease) {
    refuse(conn, tunnel::Refusal{tunnel::RefusalCode::kBadRequest, "unexpected control message"});
    return;
  }
  if (message->type == Type::kRelease && message->release.empty()) return;  // nothing to do
  QueuedClaim claim{std::move(message->claim), std::move(message->release)};
  // One claim per connection is with the registry at a time; the others wait here (bounded): an agent cannot pile
  // work on the registry core, which every agent shares. Claims sent right behind the hello wait here too, until
  // the registry has placed the connection in its session.
  if (link->state == Link::State::kAttaching || link->claim_in_flight) {
    if (link->waiting_claims.size() >= kMaxWaitingClaims) {
      refuse(conn, tunnel::Refusal{tunnel::RefusalCode::kBadRequest,
                                   "more than " + std::to_string(kMaxWaitingClaims) + " claims waiting for answers"});
      return;
    }
    link->waiting_claims.push_back(std::move(claim));
    return;
  }
  send_claim(*link, conn.app_tag, std::move(claim));
}

void GatewayCore::on_tunnel_closed(tunnel::TunnelConn& conn, const char* reason) {
  Link* link = link_of(conn.app_tag);
  if (link != nullptr) {
    // Whatever state the link ended in (ready, or refused after its welcome for a bad message), a connection that
    // joined a session leaves it: otherwise the session, its ports and the agent id would outlive it.
    if (link->session.valid()) {
      routing_.conn_down(link->session, conn);
      send_detach(link->session, conn.app_tag);
      LOG_INFO("agent '%s': tunnel connection from %s closed: %s", conn.app_name.c_str(),
               conn.peer().to_string().c_str(), reason);
    }
    // An attaching link is freed too: the registry's answer for its tag then finds nothing and detaches.
    free_link(conn.app_tag);
  }
  check_stopped();
}

// ---------------------------------------------------------------- routes and public ports

void GatewayCore::set_table(SetTable& message) { routing_.set_table(std::move(message.table)); }

void GatewayCore::bind(BindPort& message) {
  if (stopping_) return;  // ~BindPort closes the fd
  const int fd = message.fd;
  message.fd = -1;
  listeners_.bind(message.port, fd);
}

void GatewayCore::unbind(const UnbindPort& message) { listeners_.unbind(message.port); }

// ---------------------------------------------------------------- reloads

void GatewayCore::set_access(const SetAccess& message) {
  const AccessPolicies* previous = routing_.gate().policies();
  routing_.set_access(message.policies);
  // Counted out after the switch: the reload thread may free `previous` as soon as every core has done this.
  if (previous != nullptr && previous != message.policies) previous->users.fetch_sub(1, std::memory_order_release);
}

void GatewayCore::revoke_link(const RevokeLink& message) {
  Link* link = link_of(message.tag);
  if (link == nullptr || link->conn == nullptr || link->conn->closing()) return;
  LOG_WARN("agent '%s' connection %u released: %s", link->conn->app_name.c_str(), link->conn_index,
           message.refusal.message.c_str());
  // The refusal format, sent after the welcome: agents already treat a fatal code as final (they exit, status 3),
  // so a revoked token's agent stops instead of coming back to a gateway that will refuse it.
  link->state = Link::State::kRefused;
  (void)link->conn->send_control(tunnel::encode_refusal(message.refusal));
  link->conn->close_after_flush("token revoked by a configuration reload");
}

void GatewayCore::services_released(const ServicesReleased& message) {
  Link* link = link_of(message.tag);
  if (link == nullptr || link->conn == nullptr || link->conn->closing()) return;
  for (const std::string& json : tunnel::encode_claimed(message.statuses)) {
    if (!link->conn->send_control(json)) {
      link->conn->close("could not send the released services");
      return;
    }
  }
}

void GatewayCore::on_port_closed(void* self, std::uint16_t port) {
  auto* core = static_cast<GatewayCore*>(self);
  auto message = std::make_unique<PortClosed>(PortClosed{&core->gateway_, port});
  ring::post_owned<PortClosed>(core->loop_, core->gateway_.registry_core, std::move(message),
                               [](ring::Loop&, PortClosed& m) {
                                 m.gateway->core(m.gateway->registry_core).registry().port_closed(m.port);
                               });
}

void GatewayCore::on_public_client(void* self, std::uint16_t port, int fd) {
  auto* core = static_cast<GatewayCore*>(self);
  if (core->stopping_) {
    ::close(fd);
    return;
  }
  core->routing_.tcp_client(port, fd);
}

// ---------------------------------------------------------------- the program

namespace {

// The tunnel listeners: none may join a port that another socket holds (a second gateway, any SO_REUSEPORT group).
// A gateway that has just died still holds its sockets for a moment (its io_uring's files are released by the
// kernel after the process is gone: ~40 ms measured, longer under load), so a restart waits a little for the port
// before it calls it taken.
Result<std::vector<int>> listen_group(const ring::net::Address& address, const std::string& text, unsigned cores) {
  constexpr std::uint64_t kWaitMs = 3'000;
  if (address.port() != 0) {
    const std::uint64_t start = monotonic_ms();
    bool waited = false;
    for (;;) {
      Status free = probe_bindable(address);
      if (free) break;
      if (free.error().sys_errno() != EADDRINUSE || monotonic_ms() - start >= kWaitMs) return Unexpected{free.error()};
      if (!waited) {
        LOG_INFO("%s is in use; waiting up to %llu ms in case a gateway that just stopped still holds it",
                 text.c_str(), static_cast<unsigned long long>(kWaitMs));
        waited = true;
      }
      ::usleep(50'000);
    }
  }
  return ring::net::listen_tcp_group(address, cores);
}

// Opens one of the gateway's own listener groups, or logs why not: exit status 2 when another program holds the
// address, 1 for other failures, 0 when done.
int open_listener(const ring::net::Address& address, const std::string& text, const char* what, unsigned cores,
                  std::vector<int>* fds) {
  auto group = listen_group(address, text, cores);
  if (!group) {
    char buf[160];
    const bool in_use = group.error().sys_errno() == EADDRINUSE;
    LOG_ERROR("cannot listen %s on %s: %s%s", what, text.c_str(), group.error().describe(buf, sizeof buf),
              in_use ? " (another ringtun-gateway or program holds it)" : "");
    return in_use ? 2 : 1;
  }
  *fds = std::move(*group);
  return 0;
}

void close_all(std::vector<int>& fds) {
  for (int& fd : fds) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

}  // namespace

// One line per token with a policy: what the operator set is what runs.
void log_access_policy(std::uint32_t index, const route::AccessRules& r) {
  if (r.empty()) {
    LOG_INFO("token%u access policy: none", index + 1);
    return;
  }
  std::string text;
  auto part = [&text](const std::string& item) { text += (text.empty() ? "" : ", ") + item; };
  auto cidrs = [](const std::vector<route::Cidr>& list) {
    std::string joined;
    for (const route::Cidr& c : list) joined += (joined.empty() ? "" : ",") + c.to_string();
    return joined;
  };
  part("allow " + (r.allow.empty() ? std::string("all") : cidrs(r.allow)));
  if (!r.deny.empty()) part("deny " + cidrs(r.deny));
  if (r.conn_rate > 0) part("conn-rate " + std::to_string(r.conn_rate) + "/s per client");
  if (r.max_conns > 0) part("max-conns " + std::to_string(r.max_conns) + " per service");
  if (r.max_conns_per_client > 0) part("max-conns-per-client " + std::to_string(r.max_conns_per_client));
  LOG_INFO("token%u access policy: %s", index + 1, text.c_str());
}

int run_gateway(const app::GatewayConfig& config, ConfigSource source) {
  Gateway gateway;
  gateway.config = config;
  gateway.source = source;
  gateway.tokens.store(std::make_shared<const TokenTable>(make_token_table(config.tokens)));
  gateway.tunnel_options = app::tunnel_options(config.common, config.max_streams_per_connection);
  gateway.public_bind = config.listen;
  gateway.public_bind.set_port(0);
  auto tls = make_gateway_tls(config);
  if (!tls) return 2;
  if (!config.access_log.empty()) {
    std::string error;
    const ops::LogFormat format = config.access_log_json ? ops::LogFormat::kJson : ops::LogFormat::kText;
    auto sink = ops::AccessLogSink::open(config.access_log, format, &error);
    if (!sink) {
      LOG_ERROR("%s", error.c_str());
      return 2;
    }
    gateway.access_log = std::move(*sink);
  }
  gateway.tls.store(std::move(*tls));

  (void)ring::net::raise_fd_limit();
  ring::RuntimeOptions runtime_options = app::runtime_options(config.common, /*pin_by_default=*/true);
  runtime_options.on_reload = [&gateway] {
    reload_gateway_config(gateway);
    reload_gateway_tls(gateway);
    if (gateway.access_log) gateway.access_log->reopen();
  };
  ring::Runtime runtime(runtime_options);
  gateway.core_count = runtime.thread_count();
  gateway.cores.assign(gateway.core_count, nullptr);
  if (std::any_of(config.tokens.begin(), config.tokens.end(), [](const app::TokenRule& t) { return !t.access.empty(); })) {
    std::vector<route::AccessRules> rules;
    for (const app::TokenRule& token : config.tokens) rules.push_back(token.access);
    auto policies = std::make_unique<AccessPolicies>(std::move(rules), gateway.access_counts, gateway.core_count);
    policies->users.store(gateway.core_count, std::memory_order_relaxed);
    gateway.access = policies.get();
    gateway.access_generations.push_back(std::move(policies));
    for (std::size_t i = 0; i < config.tokens.size(); ++i) {
      if (!config.tokens[i].access.empty()) log_access_policy(static_cast<std::uint32_t>(i), config.tokens[i].access);
    }
  }

  // The gateway's own listeners: the tunnel port, then the shared ports that are configured. Each becomes a reserved
  // port (never a service's).
  struct OwnListener {
    const ring::net::Address& address;
    const std::string& text;
    const char* what;         // for the error line: "cannot listen <what> on ..."
    std::vector<int>& fds;
    const char* name;         // for the start line (null: logged below, with the agent count or the admin URL)
    const char* description;
    unsigned count;           // sockets: one per core, or one for the registry core's admin endpoint
  };
  const OwnListener own[] = {
      {config.listen, config.listen_text, "for agents", gateway.tunnel_listener_fds, nullptr, nullptr,
       gateway.core_count},
      {config.http_listen, config.http_listen_text, "for HTTP", gateway.http_listener_fds, "shared HTTP port",
       "requests routed by Host", gateway.core_count},
      {config.tls_listen, config.tls_listen_text, "for TLS", gateway.tls_listener_fds, "shared TLS port",
       "connections routed by SNI, passed through", gateway.core_count},
      {config.common.admin_listen, config.common.admin_listen_text, "for the admin endpoint",
       gateway.admin_listener_fds, nullptr, nullptr, 1},
  };
  for (const OwnListener& listener : own) {
    if (listener.text.empty()) continue;  // a shared port that is not configured (--listen is required)
    if (int code = open_listener(listener.address, listener.text, listener.what, listener.count, &listener.fds)) {
      for (const OwnListener& opened : own) close_all(opened.fds);
      return code;
    }
    const std::uint16_t bound = ring::net::local_address(listener.fds[0])->port();
    gateway.reserved_ports.push_back(bound);
    if (listener.name != nullptr) {
      LOG_INFO("%s on %s (port %u): %s", listener.name, listener.text.c_str(), bound, listener.description);
    }
    if (&listener.fds == &gateway.admin_listener_fds) {
      LOG_INFO("admin endpoint: http://%s/ (/metrics, /healthz, /ready, /api/v1/..., the dashboard at /)",
               ring::net::local_address(listener.fds[0])->to_string().c_str());
    }
  }
  const std::uint16_t port = gateway.reserved_ports.front();
  std::vector<std::unique_ptr<GatewayCore>> cores(gateway.core_count);
  LOG_INFO("ringtun-gateway listening for agents on %s (port %u), %u core(s), %zu token(s)",
           config.listen_text.c_str(), port, gateway.core_count, config.tokens.size());
  auto result = runtime.run([&](ring::Loop& loop) -> Status {
    cores[loop.core()] = std::make_unique<GatewayCore>(gateway, loop);
    gateway.cores[loop.core()] = cores[loop.core()].get();
    return cores[loop.core()]->start();
  });
  for (const OwnListener& listener : own) close_all(listener.fds);
  if (!result) {
    char buf[160];
    LOG_ERROR("cannot start: %s", result.error().describe(buf, sizeof buf));
    return 1;
  }
  LOG_INFO("ringtun-gateway stopped");
  return *result;
}

}  // namespace ringtun::gateway
