// AgentCore, AgentConn and ServiceBook: the agent's connections, reconnect policy, service claims and stream
// routing. See agent.hpp.
#include "edge-agent/agent.hpp"

#include "edge-agent/admin.hpp"
#include "edge-agent/health.hpp"
#include "edge-agent/reload.hpp"
#include "ops/sd_notify.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "ring/post.hpp"
#include "tunnel/stream_meta.hpp"

namespace ringtun::agent {

namespace {

constexpr std::uint32_t kFirstBackoffMs = 100;
constexpr int kExitRefused = 3;
constexpr std::uint32_t kAgentMaxStreams = 16384;
constexpr std::size_t kServiceLinesUpTo = 16;  // beyond, services served at start are counted in one summary line

struct StartConnection {
  Agent* agent = nullptr;
  std::uint32_t index = 0;
};

std::string describe(const app::ServiceConfig& config) {
  return "'" + config.name + "' (" + public_to_local(config) + ")";
}

}  // namespace

// ---------------------------------------------------------------- AgentConn

AgentConn::AgentConn(AgentCore& core, std::uint32_t index) : core_(core), index_(index) {
  retry_.set_callback([](void* self) { static_cast<AgentConn*>(self)->connect_now(); }, this);
}

AgentConn::~AgentConn() {
  if (resolve_ != nullptr) resolve_->cancel();
}

void AgentConn::connect_now() noexcept {
  if (stopped_ || (state_ != State::kIdle && state_ != State::kBackoff)) return;
  not_needed_ = false;
  const app::AgentConfig& config = core_.agent().config;
  addresses_.clear();
  next_address_ = 0;
  if (auto numeric = ring::net::numeric_address(config.gateway_host, config.gateway_port)) {
    addresses_.push_back(*numeric);
    connect_next();
    return;
  }
  // A name is looked up again at every attempt: the gateway may have moved.
  state_ = State::kResolving;
  resolve_ = ring::Resolve::start(core_.loop(), config.gateway_host, config.gateway_port, config.connect_timeout_ms,
                                  tunnel::kTunnelPool, &AgentConn::on_resolved, this);
  if (resolve_ == nullptr) retry_later("cannot resolve");
}

void AgentConn::on_resolved(void* self, ring::Resolve::Answer&& answer) {
  auto* conn = static_cast<AgentConn*>(self);
  conn->resolve_ = nullptr;
  if (conn->stopped_) {
    conn->state_ = State::kIdle;
    conn->core_.connection_stopped();
    return;
  }
  if (answer.addresses.empty()) {
    LOG_WARN("connection %u: cannot resolve %s: %s", conn->index_, conn->core_.agent().config.gateway_host.c_str(),
             answer.error.c_str());
    conn->state_ = State::kIdle;
    conn->retry_later("cannot resolve the gateway");
    return;
  }
  conn->addresses_ = std::move(answer.addresses);
  conn->connect_next();
}

void AgentConn::connect_next() noexcept {
  if (next_address_ >= addresses_.size()) {
    retry_later("no address of the gateway answered");
    return;
  }
  const ring::net::Address& address = addresses_[next_address_++];
  auto socket =
      core_.loop().connect(address.get(), address.length, core_.agent().config.connect_timeout_ms, this);
  if (!socket) {
    char buf[160];
    LOG_WARN("connection %u to %s: %s", index_, address.to_string().c_str(), socket.error().describe(buf, sizeof buf));
    connect_next();
    return;
  }
  connecting_ = *socket;
  state_ = State::kConnecting;
}

void AgentConn::on_connect(ring::Loop& loop, ring::SocketId socket, int res) {
  if (res < 0 || stopped_) {
    if (res < 0) {
      const ring::net::Address& address = addresses_[next_address_ - 1];
      LOG_WARN("connection %u to %s (%s): %s", index_, core_.agent().config.gateway_text.c_str(),
               address.to_string().c_str(), std::strerror(-res));
    }
    loop.close(socket);  // on_close() tries the next address or schedules the retry
    return;
  }
  connecting_ = {};
  start_tunnel(socket);
}

void AgentConn::start_tunnel(ring::SocketId socket) noexcept {
  Agent& agent = core_.agent();
  state_ = State::kHandshaking;
  std::unique_ptr<tls::Session> tls;
  if (agent.tls) {
    auto session = tls::Session::create(agent.tls);
    if (!session) {
      LOG_ERROR("connection %u: cannot create a TLS session", index_);
      core_.loop().close(socket);
      return;
    }
    tls = std::move(*session);
  }
  // With TLS, the hello queued below leaves only once the gateway is verified.
  conn_ = tunnel::TunnelConn::start(core_.tunnel_core(), socket, frame::Role::kAgent, agent.tunnel_options, core_,
                                    index_, {}, std::move(tls));
  tunnel::Hello hello;
  hello.agent_id = agent.config.agent_id;
  hello.token = agent.config.token;
  hello.instance = agent.instance;
  hello.conn_index = index_;
  hello.conn_count = std::max<std::uint32_t>(index_ + 1, agent.gateway_cores.load(std::memory_order_relaxed));
  if (!conn_->send_control(tunnel::encode_hello(hello))) {
    conn_->close("could not send the hello");
    return;
  }
  if (index_ == 0) {
    // Claimed right behind the hello, without waiting for the welcome: one round trip to serving. Releases a reload
    // could not send go first: the session may have outlived connection 0 (the others kept it) with those claims.
    std::vector<std::size_t> all(core_.service_set().size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    core_.services().send_pending_releases();
    core_.services().claimed_all();
    (void)core_.send_claims(all);
  }
}

void AgentConn::on_close(ring::Loop&, ring::SocketId) {
  // The connect failed (or we stopped while connecting): the socket never became a tunnel.
  connecting_ = {};
  if (stopped_) {
    state_ = State::kIdle;
    core_.connection_stopped();
    return;
  }
  if (next_address_ < addresses_.size()) {
    connect_next();
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
  switch (message->type) {
    case tunnel::ControlMessage::Type::kWelcome:
      if (state_ != State::kHandshaking) break;
      state_ = State::kReady;
      core_.agent().connections_ready.fetch_add(1, std::memory_order_relaxed);
      backoff_ms_ = 0;
      LOG_INFO("connection %u/%u to gateway %s ready", index_ + 1, message->welcome.gateway_cores,
               conn.peer().to_string().c_str());
      if (index_ == 0) core_.gateway_cores_known(message->welcome.gateway_cores);
      return;
    case tunnel::ControlMessage::Type::kClaimed:
      if (index_ != 0) break;
      core_.services().on_claimed(message->claimed);
      // A claim granted (again) starts up on the gateway: what the checks found down is said again.
      if (HealthChecks* health = core_.health()) health->report_down();
      return;
    case tunnel::ControlMessage::Type::kRefused: {
      const tunnel::Refusal& refusal = message->refusal;
      if (tunnel::refusal_is_fatal(refusal.code)) {
        LOG_ERROR("the gateway refused this agent (%s): %s", tunnel::refusal_code_name(refusal.code),
                  refusal.message.c_str());
        stopped_ = true;
        conn.close("refused by the gateway");
        core_.give_up();
        return;
      }
      if (refusal.code == tunnel::RefusalCode::kIndexOutOfRange) {
        // Not stopped for good: a gateway that comes back with more cores asks for it again (gateway_cores_known).
        LOG_INFO("connection %u: the gateway has fewer cores now; not needed", index_);
        not_needed_ = true;
      } else {
        LOG_WARN("connection %u refused for now (%s): %s", index_, tunnel::refusal_code_name(refusal.code),
                 refusal.message.c_str());
      }
      conn.close("refused by the gateway");
      return;
    }
    default:
      break;
  }
  conn.close("unexpected control message");
}

void AgentConn::on_tunnel_closed(const char* reason) {
  conn_ = nullptr;
  const bool ready = state_ == State::kReady;
  const bool handshaking = state_ == State::kHandshaking;
  if (ready) core_.agent().connections_ready.fetch_sub(1, std::memory_order_relaxed);
  state_ = State::kIdle;
  if (stopped_) {
    core_.connection_stopped();
    return;
  }
  if (not_needed_) return;  // idle until a welcome names more gateway cores again
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
  } else if (resolve_ != nullptr) {
    resolve_->cancel();
    resolve_ = nullptr;
    state_ = State::kIdle;
  } else {
    state_ = State::kIdle;
  }
}

// ---------------------------------------------------------------- ServiceBook

ServiceBook::ServiceBook(AgentCore& core) : core_(core), entries_(core.service_set().size()) {
  retry_timer_.set_callback([](void* self) { static_cast<ServiceBook*>(self)->retry(); }, this);
}

const ServiceSet& ServiceBook::service_set() const noexcept { return core_.service_set(); }

void ServiceBook::claimed_all() {
  for (Entry& entry : entries_) {
    if (entry.state != State::kRefused) entry.state = State::kPending;
  }
  claimed_ns_ = monotonic_ns();
  summary_due_ = true;
}

// One line once every service has its first answer: what a user looks for, and, with many services, instead of a
// line each for the ones served.
void ServiceBook::log_summary() {
  if (!summary_due_) return;
  std::size_t serving = 0;
  std::size_t retrying = 0;
  std::size_t refused = 0;
  for (const Entry& entry : entries_) {
    if (entry.state == State::kPending) return;
    serving += entry.state == State::kServing;
    retrying += entry.state == State::kRetrying;
    refused += entry.state == State::kRefused;
  }
  summary_due_ = false;
  const double ms = static_cast<double>(monotonic_ns() - claimed_ns_) / 1e6;
  LOG_INFO("%zu service(s) claimed in %.2f ms: %zu served, %zu refused for now, %zu refused", entries_.size(), ms,
           serving, retrying, refused);
}

const char* ServiceBook::state_name(std::size_t index) const noexcept {
  switch (entries_[index].state) {
    case State::kPending: return "pending";
    case State::kServing: return "serving";
    case State::kRetrying: return "retrying";
    case State::kRefused: return "refused";
  }
  return "pending";
}

void ServiceBook::on_claimed(const std::vector<tunnel::ServiceStatus>& statuses) {
  const Agent& agent = core_.agent();
  const ServiceSet& set = core_.service_set();
  for (const tunnel::ServiceStatus& status : statuses) {
    const AgentService* service = set.find(status.name);
    if (service == nullptr) continue;  // a name we never claimed, or one a reload removed since: ignore it
    const app::ServiceConfig* config = &service->config;
    Entry& entry = entries_[set.index_of(*service)];
    if (status.ok) {
      if (entry.state != State::kServing && (entries_.size() <= kServiceLinesUpTo || !summary_due_)) {
        LOG_INFO("service %s is served by the gateway", describe(*config).c_str());
      }
      entry.state = State::kServing;
      entry.last_message.clear();
      continue;
    }
    const bool retryable = tunnel::service_refusal_is_retryable(status.code);
    if (entry.last_message != status.message || entry.state == State::kPending) {
      if (retryable) {
        LOG_WARN("service %s refused for now (%s): %s; asking again every %u ms", describe(*config).c_str(),
                 tunnel::refusal_code_name(status.code), status.message.c_str(), agent.config.retry_refused_ms);
      } else {
        LOG_ERROR("service %s refused (%s): %s", describe(*config).c_str(),
                  tunnel::refusal_code_name(status.code), status.message.c_str());
      }
    }
    entry.state = retryable ? State::kRetrying : State::kRefused;
    entry.last_message = status.message;
  }
  log_summary();
  const bool all_refused =
      !entries_.empty() && std::all_of(entries_.begin(), entries_.end(), [](const Entry& e) { return e.state == State::kRefused; });
  if (all_refused) {
    LOG_ERROR("the gateway refused every service of this agent for good: nothing to serve");
    core_.give_up();
    return;
  }
  const bool any_retrying =
      std::any_of(entries_.begin(), entries_.end(), [](const Entry& e) { return e.state == State::kRetrying; });
  if (any_retrying && !retry_timer_.armed()) {
    core_.loop().timers().schedule(retry_timer_, agent.config.retry_refused_ms);
  }
}

void ServiceBook::retry() noexcept {
  std::vector<std::size_t> again;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].state == State::kRetrying) again.push_back(i);
  }
  if (again.empty()) return;
  // Connection 0 down: its reconnect claims everything anyway. Otherwise the answers re-arm the timer.
  if (!core_.send_claims(again)) core_.loop().timers().schedule(retry_timer_, core_.agent().config.retry_refused_ms);
}

void ServiceBook::services_changed(const ServiceSet& before, const ServiceDiff& diff) {
  const ServiceSet& now = core_.service_set();
  std::vector<Entry> entries(now.size());
  for (std::size_t i = 0; i < now.size(); ++i) {
    const AgentService* was = before.find(now[i].config.name);
    if (was != nullptr) entries[i] = std::move(entries_[before.index_of(*was)]);
  }
  std::vector<std::string> release;
  std::vector<std::size_t> claim = diff.added;
  for (std::size_t i : diff.removed) release.push_back(before[i].config.name);
  for (std::size_t i : diff.reclaimed) {
    release.push_back(now[i].config.name);
    claim.push_back(i);
    entries[i] = Entry{};
  }
  entries_ = std::move(entries);
  // In this order on connection 0: the gateway takes a release and the claims behind it in turn, so a claim under a
  // released name (another port) does not meet the old claim.
  if (!release.empty() && !core_.send_release(release)) {
    // Bounded: a name once (the slots bound the names), and at most what one claim may hold, so that the messages
    // behind the next hello stay within what the gateway holds for a connection. Beyond that the gateway keeps the
    // claims until the agent's session ends (every connection down), which releases everything.
    for (std::string& name : release) {
      if (std::find(pending_release_.begin(), pending_release_.end(), name) != pending_release_.end()) continue;
      if (pending_release_.size() >= tunnel::kMaxServices) {
        LOG_WARN("connection 0 is down: service '%s' is released when the agent's session ends", name.c_str());
        continue;
      }
      pending_release_.push_back(std::move(name));
    }
  }
  // Connection 0 down: its next hello claims the whole set anyway.
  if (!claim.empty()) (void)core_.send_claims(claim);
}

void ServiceBook::send_pending_releases() {
  if (pending_release_.empty()) return;
  if (core_.send_release(pending_release_)) pending_release_.clear();
}

void ServiceBook::stop() { core_.loop().timers().cancel(retry_timer_); }

// ---------------------------------------------------------------- AgentCore

AgentCore::AgentCore(Agent& agent, ring::Loop& loop)
    : agent_(agent),
      loop_(loop),
      tcore_(loop, 256ULL * 1024 * 1024),
      services_(agent.initial_services),
      upstream_(loop, agent.config.upstream_max_idle, agent.config.upstream_idle_ms),
      book_(*this),
      rng_(monotonic_ns() ^ (loop.core() * 0x9E3779B97F4A7C15ULL)) {
  for (const AgentService& service : services_->services()) traffic_.ensure(service.slot);
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
  loop_.set_stop_handler([](ring::Loop&, void* self) { static_cast<AgentCore*>(self)->begin_stop(); }, this);
  if (loop_.core() == 0) ensure_connection(0);
  if (loop_.core() == 0 && !agent_.config.health.empty()) {
    // Checked when the config was read: it parses.
    health_ = std::make_unique<HealthChecks>(*this, *app::parse_health_spec(agent_.config.health, nullptr));
    health_->set_services(*services_);
  }
  if (loop_.core() == 0 && agent_.admin_listener_fd >= 0) {
    admin_ = std::make_unique<AgentAdmin>(agent_, book_);
    ops::AdminOptions options;
    options.token = agent_.config.common.admin_token;
    auto server = ops::AdminServer::start(loop_, std::exchange(agent_.admin_listener_fd, -1), options, *admin_);
    if (!server) return Unexpected{server.error()};
    admin_server_ = std::move(*server);
  }
  if (agent_.cores_started.fetch_add(1, std::memory_order_acq_rel) + 1 == agent_.threads) {
    (void)ops::notify_systemd("READY=1\nSTATUS=connecting to the gateway");
  }
  return {};
}

std::uint32_t AgentCore::jitter(std::uint32_t ms) noexcept {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const std::uint32_t spread = ms / 2;  // +-25%
  return ms - ms / 4 + (spread == 0 ? 0 : static_cast<std::uint32_t>(rng_ % spread));
}

AgentConn* AgentCore::conn_at(std::uint64_t index) noexcept {
  for (auto& conn : conns_) {
    if (conn->index() == index) return conn.get();
  }
  return nullptr;
}

void AgentCore::ensure_connection(std::uint32_t index) {
  if (stopping_) return;
  if (AgentConn* conn = conn_at(index)) {
    if (conn->idle()) conn->connect_now();
    return;
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
    auto message = std::make_unique<StartConnection>(StartConnection{&agent_, index});
    ring::post_owned<StartConnection>(loop_, target, std::move(message), [](ring::Loop& loop, StartConnection& m) {
      m.agent->core(loop.core()).ensure_connection(m.index);
    });
  }
}

bool AgentCore::send_claims(const std::vector<std::size_t>& services) {
  std::vector<tunnel::ServiceDecl> decls;
  decls.reserve(services.size());
  for (std::size_t i : services) decls.push_back((*services_)[i].decl);
  return send_on_first(tunnel::encode_claims(decls));
}

bool AgentCore::send_release(const std::vector<std::string>& names) {
  return send_on_first(tunnel::encode_release(names));
}

bool AgentCore::send_on_first(const std::vector<std::string>& messages) {
  AgentConn* zero = conn_at(0);
  if (zero == nullptr || zero->conn() == nullptr || zero->conn()->closing()) return false;
  for (const std::string& message : messages) {
    if (!zero->conn()->send_control(message)) {
      zero->conn()->close("could not send a control message");
      return false;
    }
  }
  return true;
}

void AgentCore::set_services(std::shared_ptr<const ServiceSet> next, const ServiceSet& before,
                             const ServiceDiff& diff) {
  services_ = std::move(next);
  for (const AgentService& service : services_->services()) traffic_.ensure(service.slot);
  // Pooled http connections of a service that is gone, or that points elsewhere now, serve no further request.
  for (std::size_t i : diff.removed) upstream_.retire(before[i].upstream_key);
  for (const AgentService& service : services_->services()) {
    const AgentService* was = before.find(service.config.name);
    if (was != nullptr && was->upstream_key != service.upstream_key) upstream_.retire(was->upstream_key);
  }
  // Streams already open keep going to the end, to the address they were connected to (as with a graceful stop):
  // the gateway sends no new ones for a released service, and this core refuses any that crossed the release.
  if (loop_.core() == 0) book_.services_changed(before, diff);  // connection 0's core keeps the statuses
  if (health_) health_->set_services(*services_);
}

void AgentCore::give_up() {
  stopping_ = true;
  agent_.runtime->stop(kExitRefused);
}

void AgentCore::on_control(tunnel::TunnelConn& conn, std::span<const std::byte> json) {
  if (AgentConn* c = conn_at(conn.app_tag)) c->on_control(conn, json);
}

void AgentCore::on_stream_open(tunnel::TunnelConn& conn, frame::StreamHandle stream,
                               std::span<const std::byte> metadata) {
  auto meta = tunnel::decode_stream_meta(metadata);
  if (!meta) {
    char buf[160];
    LOG_WARN("the gateway opened a stream this agent cannot read: %s", meta.error().describe(buf, sizeof buf));
    conn.refuse_stream(stream, frame::ErrorCode::kRefusedStream);
    return;
  }
  if (const AgentService* entry = services_->find(meta->service)) {
    const app::ServiceConfig* service = &entry->config;
    if (service->kind != meta->kind) {
      LOG_WARN("the gateway opened a %s stream for %s service '%s': refused", route::kind_name(meta->kind),
               route::kind_name(service->kind), service->name.c_str());
      conn.refuse_stream(stream, frame::ErrorCode::kRefusedStream);
      return;
    }
    const tunnel::Tracking tracking{&traffic_.at(entry->slot), false, nullptr};
    // The public client's address for the service, ahead of the stream's bytes (empty without the option).
    std::array<std::byte, tunnel::kMaxProxyHeader> header;
    const std::span<const std::byte> prefix(
        header.data(), tunnel::write_proxy_header(service->proxy_protocol, meta->client, meta->public_port, header));
    if (service->kind == route::Kind::kHttp) {
      conn.connect_http_stream(stream, service->local, upstream_, entry->upstream_key,
                               (meta->flags & tunnel::kStreamHeadRequest) != 0, tracking, prefix);
      return;
    }
    conn.connect_stream(stream, service->local, tracking, prefix);
    return;
  }
  LOG_WARN("the gateway opened a stream for service '%.*s', which this agent does not serve",
           static_cast<int>(meta->service.size()), meta->service.data());
  conn.refuse_stream(stream, frame::ErrorCode::kRefusedStream);
}

void AgentCore::on_tunnel_closed(tunnel::TunnelConn& conn, const char* reason) {
  if (AgentConn* c = conn_at(conn.app_tag)) c->on_tunnel_closed(reason);
}

void AgentCore::begin_stop() {
  stopping_ = true;
  if (loop_.core() == 0) {
    agent_.draining.store(true, std::memory_order_relaxed);
    (void)ops::notify_systemd("STOPPING=1\nSTATUS=draining");
  }
  book_.stop();
  if (health_) health_->stop();
  upstream_.close_all();
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

int run_agent(const app::AgentConfig& config, Reparse reparse) {
  Agent agent;
  agent.config = config;
  // The gateway decides how many streams it opens (its --max-streams); the agent accepts up to the protocol's
  // practical bound so that it is never the tighter limit.
  agent.tunnel_options = app::tunnel_options(config.common, kAgentMaxStreams);
  agent.tunnel_options.connect_timeout_ms = config.connect_timeout_ms;
  // Only the gateway opens streams, and it opens them within our MAX_CONCURRENT_STREAMS: a burst of resets from it
  // is its public clients going away (a flood's end, a scanner), and each one only cancels our own work for that
  // stream. Closing the tunnel for it would hand every other client the flooder's problem.
  agent.tunnel_options.session.flood.max_peer_resets = UINT32_MAX;
  // A claim answer for many services can outgrow the default control buffer; it is per connection, not per stream.
  agent.instance = tunnel::make_instance_nonce();
  Reloader reloader(agent, reparse);
  {
    std::string error;
    auto services = reloader.start(config.services, &error);
    if (!services) {
      LOG_ERROR("%s", error.c_str());
      return 2;
    }
    agent.initial_services = std::move(*services);
  }
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
  if (!config.common.admin_listen_text.empty()) {
    auto fd = ring::net::listen_tcp(config.common.admin_listen, false, 64);
    if (!fd) {
      char buf[160];
      LOG_ERROR("cannot listen for the admin endpoint on %s: %s", config.common.admin_listen_text.c_str(),
                fd.error().describe(buf, sizeof buf));
      return fd.error().sys_errno() == EADDRINUSE ? 2 : 1;
    }
    agent.admin_listener_fd = *fd;
    if (auto local = ring::net::local_address(*fd)) {
      LOG_INFO("admin endpoint: http://%s/", local->to_string().c_str());
    }
  }
  ring::RuntimeOptions runtime_options = app::runtime_options(config.common, /*pin_by_default=*/false);
  if (reparse != nullptr) runtime_options.on_reload = [&reloader] { reloader.reload(); };
  ring::Runtime runtime(runtime_options);
  agent.runtime = &runtime;
  agent.threads = runtime.thread_count();
  agent.cores.assign(agent.threads, nullptr);
  std::vector<std::unique_ptr<AgentCore>> cores(agent.threads);
  LOG_INFO("ringtun-agent '%s' (instance %.8s) connecting to %s with %zu service(s)", config.agent_id.c_str(),
           agent.instance.c_str(), config.gateway_text.c_str(), config.services.size());
  for (const auto& service : config.services) {
    LOG_INFO("  %s: %s%s%s", service.name.c_str(), public_to_local(service).c_str(),
             service.proxy_protocol == tunnel::ProxyProtocol::kNone ? "" : ", PROXY protocol ",
             service.proxy_protocol == tunnel::ProxyProtocol::kNone
                 ? ""
                 : tunnel::proxy_protocol_name(service.proxy_protocol));
  }
  auto result = runtime.run([&](ring::Loop& loop) -> Status {
    cores[loop.core()] = std::make_unique<AgentCore>(agent, loop);
    agent.cores[loop.core()] = cores[loop.core()].get();
    return cores[loop.core()]->start();
  });
  if (agent.admin_listener_fd >= 0) ::close(agent.admin_listener_fd);
  if (!result) {
    char buf[160];
    LOG_ERROR("cannot start: %s", result.error().describe(buf, sizeof buf));
    return 1;
  }
  return *result;
}

}  // namespace ringtun::agent
