#include "gateway/registry_room.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <iterator>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "gateway/gateway.hpp"
#include "gateway/public_listeners.hpp"
#include "ring/post.hpp"

namespace ringtun::gateway {

namespace {

std::string utc_time(std::uint64_t ms_since_epoch) {
  const std::time_t seconds = static_cast<std::time_t>(ms_since_epoch / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::uint64_t wall_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

route::RouteKey key_of(const tunnel::ServiceDecl& service) {
  return route::RouteKey{service.kind, service.kind == route::Kind::kTcp ? service.port : std::uint16_t{0},
                         service.host};
}

// What a token may claim, for a host_not_allowed message: its patterns, cut short when there are many (the status
// message is bounded on the wire).
std::string allowed_hosts_text(const std::vector<std::string>& hosts) {
  if (hosts.empty()) return "this token may claim no host names (--allow-hosts)";
  constexpr std::size_t kShown = 4;
  std::string text = "it may claim ";
  for (std::size_t i = 0; i < hosts.size() && i < kShown; ++i) {
    if (i > 0) text += ", ";
    text += hosts[i];
  }
  if (hosts.size() > kShown) text += " and " + std::to_string(hosts.size() - kShown) + " more";
  return text;
}

constexpr char kTokenRevoked[] = "this agent's token was removed from the gateway's configuration";

tunnel::ServiceStatus refused(const std::string& name, tunnel::RefusalCode code, std::string message) {
  tunnel::ServiceStatus status;
  status.name = name;
  status.ok = false;
  status.code = code;
  status.message = std::move(message);
  return status;
}

}  // namespace

RegistryRoom::RegistryRoom(Gateway& gateway, ring::Loop& loop, std::unique_ptr<Registry> registry)
    : gateway_(gateway), loop_(loop), registry_(std::move(registry)) {
  waiting_timer_.set_callback([](void* self) { static_cast<RegistryRoom*>(self)->expire_waiting(); }, this);
}

RegistryRoom::~RegistryRoom() = default;

void RegistryRoom::start() {
  registry_->watch([this](std::shared_ptr<const route::Table> table) { broadcast_table(std::move(table)); });
}

void RegistryRoom::broadcast_table(std::shared_ptr<const route::Table> table) {
  for (unsigned core = 0; core < gateway_.core_count; ++core) {
    auto message = std::make_unique<SetTable>();
    message->gateway = &gateway_;
    message->table = table;
    ring::post_owned<SetTable>(loop_, core, std::move(message),
                               [](ring::Loop& loop, SetTable& m) { m.gateway->core(loop.core()).set_table(m); });
  }
}

RegistryRoom::Session* RegistryRoom::find(route::SessionRef ref) {
  auto it = sessions_.find(ref.slot);
  return it != sessions_.end() && it->second.ref == ref ? &it->second : nullptr;
}

RegistryRoom::Session* RegistryRoom::find(const route::Owner& owner) {
  auto it = by_owner_.find({owner.token, owner.agent_id});
  return it == by_owner_.end() ? nullptr : find(it->second);
}

void RegistryRoom::refuse_in_use(const AttachRequest& request, const SessionInfo& holder) {
  refuse_attach(request, tunnel::RefusalCode::kIdInUse,
                "agent id '" + request.owner.agent_id + "' is in use by another running instance, connected from " +
                    holder.peer + " since " + utc_time(holder.since_ms) +
                    ": stop that one, or give this agent another --agent-id");
}

// ---------------------------------------------------------------- sessions

void RegistryRoom::attach(const AttachRequest& request) {
  // The intake checked the token against the table of its time; a reload may have revoked it since.
  if (gateway_.tokens.load(std::memory_order_acquire)->live(request.owner.token) == nullptr) {
    refuse_attach(request, tunnel::RefusalCode::kTokenRevoked, kTokenRevoked);
    return;
  }
  if (Session* session = find(request.owner)) {
    if (session->info.instance == request.instance) {
      join(*session, request);
      return;
    }
    // Another instance holds the id. It may be on its way out (its other connections' closes still travelling
    // between cores): wait a little before refusing for good.
    waiting_.push_back(Waiting{request, loop_.now_ms() + kConflictGraceMs});
    if (!waiting_timer_.armed()) loop_.timers().schedule(waiting_timer_, kConflictGraceMs);
    return;
  }
  begin_session(request);
}

void RegistryRoom::begin_session(const AttachRequest& request) {
  SessionInfo info;
  info.owner = request.owner;
  info.instance = request.instance;
  info.peer = request.peer;
  info.since_ms = wall_ms();
  registry_->open_session(info, [this, request, info](const OpenResult& result) {
    if (!result.ok) {
      refuse_in_use(request, result.holder);
      return;
    }
    Session& session = sessions_[result.session.slot];
    session = Session{};
    session.ref = result.session;
    session.info = info;
    by_owner_[{info.owner.token, info.owner.agent_id}] = result.session;
    join(session, request);
  });
}

void RegistryRoom::join(Session& session, const AttachRequest& request) {
  session.conns.push_back(Conn{request.core, request.tag, request.conn_index});
  auto reply = std::make_unique<AttachReply>();
  reply->gateway = &gateway_;
  reply->tag = request.tag;
  reply->session = session.ref;
  ring::post_owned<AttachReply>(loop_, request.core, std::move(reply),
                                [](ring::Loop& loop, AttachReply& m) { m.gateway->core(loop.core()).attached(m); });
}

void RegistryRoom::refuse_attach(const AttachRequest& request, tunnel::RefusalCode code, std::string message) {
  LOG_WARN("agent '%s' at %s refused: %s", request.owner.agent_id.c_str(), request.peer.c_str(), message.c_str());
  auto reply = std::make_unique<AttachReply>();
  reply->gateway = &gateway_;
  reply->tag = request.tag;
  reply->refusal = tunnel::Refusal{code, std::move(message)};
  ring::post_owned<AttachReply>(loop_, request.core, std::move(reply),
                                [](ring::Loop& loop, AttachReply& m) { m.gateway->core(loop.core()).attached(m); });
}

void RegistryRoom::detach(const DetachRequest& request) {
  Session* session = find(request.session);
  if (session == nullptr) return;
  auto& conns = session->conns;
  conns.erase(std::remove_if(conns.begin(), conns.end(),
                             [&](const Conn& c) { return c.core == request.core && c.tag == request.tag; }),
              conns.end());
  if (conns.empty()) end_session(*session);
}

void RegistryRoom::end_session(Session& session) {
  const route::Owner owner = session.info.owner;
  const std::set<std::uint16_t> ports = std::move(session.ports);
  registry_->close_session(session.ref);  // publishes the snapshot without its routes before its ports close
  std::size_t closed = 0;
  for (std::uint16_t port : ports) closed += leave_port(port, session.ref) ? 1 : 0;
  if (closed > 0) LOG_INFO("agent '%s' is gone: its %zu port(s) are closed", owner.agent_id.c_str(), closed);
  if (closed < ports.size()) {
    LOG_INFO("agent '%s' is gone: its group serves %zu port(s) on", owner.agent_id.c_str(), ports.size() - closed);
  }
  const std::uint32_t slot = session.ref.slot;
  by_owner_.erase({owner.token, owner.agent_id});
  sessions_.erase(slot);
  retry_waiting(owner);
}

void RegistryRoom::release(ClaimRequestMsg& request) {
  if (Session* session = find(request.session)) {
    std::vector<route::RouteKey> keys;
    std::vector<std::uint16_t> ports;
    std::vector<PortOpen*> waiting = waiting_opens(session->ref);
    for (const std::string& name : request.release) {
      auto it = session->services.find(name);
      if (it == session->services.end()) {
        // Granted, but its port was still closing: it must not open when the port is free.
        for (PortOpen* open : waiting) {
          const tunnel::ServiceDecl& service = open->claim->services[open->index];
          if (open->dropped || service.name != name) continue;
          open->dropped = true;
          keys.push_back(key_of(service));
          LOG_INFO("agent '%s' released '%s' (%s) before its port was free", session->info.owner.agent_id.c_str(),
                   name.c_str(), key_of(service).describe().c_str());
        }
        continue;
      }
      const route::RouteKey key = it->second;
      session->services.erase(it);
      LOG_INFO("agent '%s' released '%s' (%s)", session->info.owner.agent_id.c_str(), name.c_str(),
               key.describe().c_str());
      if (key.kind == route::Kind::kTcp && session->ports.erase(key.port) > 0) ports.push_back(key.port);
      keys.push_back(key);
    }
    // The snapshot without those routes goes out before the ports close, as when a session ends.
    if (!keys.empty()) registry_->release(session->ref, keys);
    for (std::uint16_t port : ports) leave_port(port, session->ref);
  }
  auto reply = std::make_unique<ClaimReply>();
  reply->gateway = &gateway_;
  reply->tag = request.tag;
  reply->release = true;
  ring::post_owned<ClaimReply>(loop_, request.core, std::move(reply),
                               [](ring::Loop& loop, ClaimReply& m) { m.gateway->core(loop.core()).claimed(m); });
}

void RegistryRoom::retry_waiting(const route::Owner& owner) {
  std::vector<Waiting> ready;
  auto it = std::stable_partition(waiting_.begin(), waiting_.end(),
                                  [&](const Waiting& w) { return !(w.request.owner == owner); });
  std::move(it, waiting_.end(), std::back_inserter(ready));
  waiting_.erase(it, waiting_.end());
  for (const Waiting& w : ready) attach(w.request);
}

void RegistryRoom::expire_waiting() {
  const std::uint64_t now = loop_.now_ms();
  std::vector<Waiting> due;
  auto it = std::stable_partition(waiting_.begin(), waiting_.end(), [&](const Waiting& w) { return w.deadline_ms > now; });
  std::move(it, waiting_.end(), std::back_inserter(due));
  waiting_.erase(it, waiting_.end());
  for (const Waiting& w : due) {
    Session* holder = find(w.request.owner);
    if (holder == nullptr || holder->info.instance == w.request.instance) {
      attach(w.request);
      continue;
    }
    refuse_in_use(w.request, holder->info);
  }
  if (!waiting_.empty()) {
    const std::uint64_t next = waiting_.front().deadline_ms;
    loop_.timers().schedule(waiting_timer_, static_cast<std::uint32_t>(next > now ? next - now : 1));
  }
}

// ---------------------------------------------------------------- health

void RegistryRoom::health(const HealthReport& report) {
  Session* session = find(report.session);
  if (session == nullptr) return;
  std::vector<HealthChange> changes;
  for (const tunnel::ServiceHealth& service : report.services) {
    auto granted = session->services.find(service.name);
    if (granted == session->services.end()) continue;  // not (or no longer) its: nothing to change
    changes.push_back(HealthChange{granted->second, service.up});
    LOG_INFO("agent '%s': service '%s' is %s (its health check)", session->info.owner.agent_id.c_str(),
             service.name.c_str(), service.up ? "up" : "down");
  }
  if (!changes.empty()) registry_->set_health(session->ref, changes);
}

// ---------------------------------------------------------------- claims

tunnel::ServiceStatus RegistryRoom::precheck(const Session& session, const tunnel::ServiceDecl& service,
                                             std::size_t more) const {
  tunnel::ServiceStatus ok;
  ok.name = service.name;
  ok.ok = true;
  const std::shared_ptr<const TokenTable> table = gateway_.tokens.load(std::memory_order_acquire);
  const app::TokenRule* rule = table->live(session.info.owner.token);
  if (rule == nullptr) {
    return refused(service.name, tunnel::RefusalCode::kBusy, "this agent's token was removed; its session ends");
  }
  if (service.kind == route::Kind::kTcp) {
    if (auto allowed = token_allows(*rule, service); !allowed.ok) return allowed;
    if (std::find(gateway_.reserved_ports.begin(), gateway_.reserved_ports.end(), service.port) !=
        gateway_.reserved_ports.end()) {
      return refused(service.name, tunnel::RefusalCode::kPortReserved,
                     "port " + std::to_string(service.port) + " is one of the gateway's own listeners");
    }
  } else {
    // Host names are served on the shared port of their kind: without it there is nothing to route them from.
    const bool http = service.kind == route::Kind::kHttp;
    if ((http ? gateway_.config.http_listen_text : gateway_.config.tls_listen_text).empty()) {
      return refused(service.name, tunnel::RefusalCode::kKindUnsupported,
                     std::string("this gateway has no ") + (http ? "--http-listen" : "--tls-listen") +
                         " (it serves no " + route::kind_name(service.kind) + " services)");
    }
    if (auto allowed = token_allows(*rule, service); !allowed.ok) return allowed;
  }
  if (auto granted = session.services.find(service.name); granted != session.services.end()) {
    if (!(granted->second == key_of(service))) {
      return refused(service.name, tunnel::RefusalCode::kBadRequest,
                     "service '" + service.name + "' already serves " + granted->second.describe());
    }
    return ok;  // asked again for what it holds: answered as before
  }
  // What counts is what an agent holds (a TCP service costs a listener per core), not the names it has tried.
  if (session.services.size() + more >= tunnel::kMaxServices) {
    return refused(service.name, tunnel::RefusalCode::kTooManyServices,
                   "this agent already has " + std::to_string(tunnel::kMaxServices) + " services");
  }
  return ok;
}

tunnel::ServiceStatus RegistryRoom::token_allows(const app::TokenRule& rule, const tunnel::ServiceDecl& service) {
  if (service.kind == route::Kind::kTcp) {
    if (service.port < rule.port_low || service.port > rule.port_high) {
      return refused(service.name, tunnel::RefusalCode::kPortNotAllowed,
                     "port " + std::to_string(service.port) + " is outside the range " + std::to_string(rule.port_low) +
                         "-" + std::to_string(rule.port_high) + " allowed for this token");
    }
  } else if (!route::host_allowed(rule.hosts, service.host)) {
    // The host came through the handshake's parser: normalized, so it can be shown and compared as it is.
    return refused(service.name, tunnel::RefusalCode::kHostNotAllowed,
                   "host " + service.host + " is not allowed for this token: " + allowed_hosts_text(rule.hosts));
  }
  tunnel::ServiceStatus ok;
  ok.name = service.name;
  ok.ok = true;
  return ok;
}

void RegistryRoom::claim(ClaimRequestMsg& request) {
  if (!request.release.empty()) {
    release(request);
    return;
  }
  // What the answer needs once the registry has decided (later than this call, for a registry that is not local).
  auto pending = std::make_shared<PendingClaim>();
  pending->session = request.session;
  pending->core = request.core;
  pending->tag = request.tag;
  pending->services = std::move(request.services);
  pending->statuses.resize(pending->services.size());
  Session* session = find(request.session);
  std::vector<ClaimRequest> claims;
  std::set<std::string> names;
  std::set<std::pair<std::uint8_t, std::string>> keys;  // (kind, port or host) seen in this message
  for (std::size_t i = 0; i < pending->services.size(); ++i) {
    const tunnel::ServiceDecl& service = pending->services[i];
    if (session == nullptr) {
      pending->statuses[i] = refused(service.name, tunnel::RefusalCode::kBusy, "the agent's session ended; reconnect");
      continue;
    }
    const bool new_name = names.insert(service.name).second;
    const bool new_key =
        keys.insert({static_cast<std::uint8_t>(service.kind), service.host + ":" + std::to_string(service.port)}).second;
    if (!new_name || !new_key) {
      pending->statuses[i] = refused(service.name, tunnel::RefusalCode::kBadRequest,
                                     new_name ? key_of(service).describe() + " is listed twice in this claim"
                                              : "service '" + service.name + "' is listed twice in this claim");
      continue;
    }
    pending->statuses[i] = precheck(*session, service, claims.size());
    if (!pending->statuses[i].ok) continue;
    std::shared_ptr<const route::AccessRules> lists;
    if (!service.allow_from.empty() || !service.deny_from.empty()) {
      auto rules = std::make_shared<route::AccessRules>();
      rules->allow = service.allow_from;
      rules->deny = service.deny_from;
      rules->compile();
      lists = std::move(rules);
    }
    claims.push_back(ClaimRequest{key_of(service), service.name, std::move(lists), service.group});
    pending->claimed.push_back(i);
  }
  if (session == nullptr || claims.empty()) {
    finish_claim(*pending);
    return;
  }
  registry_->claim(session->ref, std::move(claims), [this, pending](std::vector<route::ClaimResult> results) {
    Session* owner = find(pending->session);
    std::vector<std::size_t> to_open;
    for (std::size_t k = 0; k < results.size() && k < pending->claimed.size(); ++k) {
      const std::size_t i = pending->claimed[k];
      const tunnel::ServiceDecl& service = pending->services[i];
      const route::ClaimResult& result = results[k];
      if (result.ok()) {
        if (owner != nullptr && service.kind == route::Kind::kTcp && owner->ports.count(service.port) == 0) {
          to_open.push_back(i);
        } else if (owner != nullptr) {
          // A host claim opens no listener: the shared port of its kind serves it once the table has the key.
          const bool fresh = service.kind != route::Kind::kTcp && owner->services.count(service.name) == 0;
          owner->services[service.name] = key_of(service);
          if (fresh) {
            LOG_INFO("%s now serves '%s' of agent '%s'", key_of(service).describe().c_str(), service.name.c_str(),
                     owner->info.owner.agent_id.c_str());
          }
        }
        continue;
      }
      if (result.error == route::ClaimError::kGroupMismatch) {
        pending->statuses[i] = refused(service.name, tunnel::RefusalCode::kGroupMismatch,
                                       "group '" + result.group + "' serves " + key_of(service).describe() +
                                           " as service '" + result.service + "': its members must use that name");
      } else if (result.error == route::ClaimError::kTaken) {
        // Another tenant's agent is not named: an agent id is its token's business.
        const bool same_token = owner != nullptr && result.holder.token == owner->info.owner.token;
        std::string holder = same_token ? "agent '" + result.holder.agent_id + "'" : "another agent";
        // Why a group member could not join: the holder is in no group, or another one.
        if (same_token && !service.group.empty()) {
          holder += result.group.empty() ? " (in no group)" : " (in group '" + result.group + "')";
        }
        pending->statuses[i] = service.kind == route::Kind::kTcp
                                   ? refused(service.name, tunnel::RefusalCode::kPortTaken,
                                             "port " + std::to_string(service.port) + " is taken by " + holder)
                                   : refused(service.name, tunnel::RefusalCode::kHostTaken,
                                             key_of(service).describe() + " is taken by " + holder);
      } else {
        pending->statuses[i] = refused(service.name, tunnel::RefusalCode::kBadRequest, "invalid service");
      }
    }
    for (std::size_t i : to_open) open_port(pending, i);
    if (pending->waiting_ports == 0) finish_claim(*pending);
  });
}

void RegistryRoom::open_port(const std::shared_ptr<PendingClaim>& pending, std::size_t index) {
  const std::uint16_t port = pending->services[index].port;
  auto state = ports_.find(port);
  if (state != ports_.end() && state->second.closing > 0) {
    state->second.waiting.push_back(PortOpen{pending, index});
    ++pending->waiting_ports;
    return;
  }
  open_port_now(*pending, index);
}

void RegistryRoom::open_port_now(PendingClaim& pending, std::size_t index) {
  const tunnel::ServiceDecl& service = pending.services[index];
  const std::uint16_t port = service.port;
  Session* session = find(pending.session);
  if (session == nullptr) return;  // gone while the port was closing: its claims went with it
  if (session->ports.count(port) != 0) return;  // the same port twice in one claim: opened already
  if (auto held = ports_.find(port); held != ports_.end() && !held->second.holders.empty()) {
    // Another member of the service's group opened it: its listeners serve this member's route too.
    held->second.holders.push_back(session->ref);
    session->ports.insert(port);
    session->services[service.name] = key_of(service);
    LOG_INFO("port %u: agent '%s' joins group '%s' serving '%s'", port, session->info.owner.agent_id.c_str(),
             service.group.c_str(), service.name.c_str());
    return;
  }
  PortGroup group = open_port_group(gateway_.public_bind, port, gateway_.core_count, gateway_.reserved_ports);
  if (group.problem != PortProblem::kNone) {
    pending.statuses[index] =
        refused(service.name,
                group.problem == PortProblem::kReserved ? tunnel::RefusalCode::kPortReserved
                                                        : tunnel::RefusalCode::kPortUnavailable,
                group.problem == PortProblem::kReserved
                    ? "port " + std::to_string(port) + " is one of the gateway's own listeners"
                    : "the gateway cannot listen on port " + std::to_string(port) + ": " + std::strerror(group.error) +
                          (group.error == EADDRINUSE ? " (another program holds it)" : ""));
    registry_->release(session->ref, {key_of(service)});
    return;
  }
  session->ports.insert(port);
  session->services[service.name] = key_of(service);
  ports_[port] = PortState{{session->ref}, 0, {}};
  for (unsigned core = 0; core < gateway_.core_count; ++core) {
    auto bind = std::make_unique<BindPort>();
    bind->gateway = &gateway_;
    bind->port = port;
    bind->fd = group.fds[core];
    ring::post_owned<BindPort>(loop_, core, std::move(bind),
                               [](ring::Loop& loop, BindPort& m) { m.gateway->core(loop.core()).bind(m); });
  }
  LOG_INFO("port %u now serves '%s' of agent '%s'", port, service.name.c_str(), session->info.owner.agent_id.c_str());
}

void RegistryRoom::port_closed(std::uint16_t port) {
  auto it = ports_.find(port);
  if (it == ports_.end() || it->second.closing == 0) return;
  if (--it->second.closing > 0) return;
  std::vector<PortOpen> waiting = std::move(it->second.waiting);
  ports_.erase(it);
  for (PortOpen& open : waiting) {
    if (!open.dropped) open_port_now(*open.claim, open.index);
    if (--open.claim->waiting_ports == 0) finish_claim(*open.claim);
  }
}

std::vector<RegistryRoom::PortOpen*> RegistryRoom::waiting_opens(route::SessionRef session) {
  std::vector<PortOpen*> out;
  for (auto& [port, state] : ports_) {
    for (PortOpen& open : state.waiting) {
      if (!open.dropped && open.claim->session == session) out.push_back(&open);
    }
  }
  return out;
}

void RegistryRoom::finish_claim(PendingClaim& pending) {
  // A line per refused service, up to a few per answer: an agent claiming thousands of forbidden ports must not turn
  // into thousands of log lines (the agent itself is told of every one).
  constexpr std::size_t kLinesPerAnswer = 8;
  const Session* session = find(pending.session);
  std::size_t refusals = 0;
  for (const tunnel::ServiceStatus& status : pending.statuses) {
    if (status.ok || session == nullptr) continue;
    if (refusals++ < kLinesPerAnswer) {
      LOG_WARN("agent '%s': service '%s' refused (%s): %s", session->info.owner.agent_id.c_str(), status.name.c_str(),
               tunnel::refusal_code_name(status.code), status.message.c_str());
    }
  }
  if (refusals > kLinesPerAnswer) {
    LOG_WARN("agent '%s': %zu more service(s) of the same claim refused", session->info.owner.agent_id.c_str(),
             refusals - kLinesPerAnswer);
  }
  auto reply = std::make_unique<ClaimReply>();
  reply->gateway = &gateway_;
  reply->tag = pending.tag;
  reply->statuses = std::move(pending.statuses);
  ring::post_owned<ClaimReply>(loop_, pending.core, std::move(reply),
                               [](ring::Loop& loop, ClaimReply& m) { m.gateway->core(loop.core()).claimed(m); });
}

std::vector<RegistryRoom::AgentView> RegistryRoom::agents() const {
  std::vector<AgentView> out;
  out.reserve(sessions_.size());
  for (const auto& [slot, session] : sessions_) {
    AgentView view;
    view.info = &session.info;
    view.connections_per_core.assign(gateway_.core_count, 0);
    for (const Conn& conn : session.conns) {
      if (conn.core < view.connections_per_core.size()) ++view.connections_per_core[conn.core];
    }
    for (const auto& [name, key] : session.services) view.services.push_back(name);
    out.push_back(std::move(view));
  }
  return out;
}

namespace {
struct CloseLinkMessage {
  Gateway* gateway = nullptr;
  std::uint64_t tag = 0;
  const char* reason = "";
};
}  // namespace

std::size_t RegistryRoom::disconnect(std::string_view agent_id, long token, const char* reason) {
  std::size_t closed = 0;
  for (const auto& [slot, session] : sessions_) {
    if (session.info.owner.agent_id != agent_id) continue;
    if (token >= 0 && session.info.owner.token != static_cast<std::uint32_t>(token)) continue;
    for (const Conn& conn : session.conns) {
      auto message = std::make_unique<CloseLinkMessage>(CloseLinkMessage{&gateway_, conn.tag, reason});
      ring::post_owned<CloseLinkMessage>(loop_, conn.core, std::move(message),
                                         [](ring::Loop& loop, CloseLinkMessage& m) {
                                           m.gateway->core(loop.core()).close_link(m.tag, m.reason);
                                         });
      ++closed;
    }
  }
  return closed;
}

// ---------------------------------------------------------------- reloads

bool RegistryRoom::leave_port(std::uint16_t port, route::SessionRef session) {
  PortState& state = ports_[port];
  std::erase(state.holders, session);
  if (!state.holders.empty()) return false;  // other members of its group still serve it
  state.closing = gateway_.core_count;
  for (unsigned core = 0; core < gateway_.core_count; ++core) {
    auto unbind = std::make_unique<UnbindPort>();
    unbind->gateway = &gateway_;
    unbind->port = port;
    ring::post_owned<UnbindPort>(loop_, core, std::move(unbind),
                                 [](ring::Loop& loop, UnbindPort& m) { m.gateway->core(loop.core()).unbind(m); });
  }
  return true;
}

std::size_t RegistryRoom::release_disallowed(Session& session, const app::TokenRule& rule) {
  std::vector<tunnel::ServiceStatus> statuses;
  std::vector<route::RouteKey> keys;
  std::vector<std::uint16_t> ports;
  for (auto it = session.services.begin(); it != session.services.end();) {
    tunnel::ServiceDecl service;
    service.name = it->first;
    service.kind = it->second.kind;
    service.port = it->second.port;
    service.host = it->second.host;
    tunnel::ServiceStatus status = token_allows(rule, service);
    if (status.ok) {
      ++it;
      continue;
    }
    status.message = "released by the gateway's configuration reload: " + status.message;
    LOG_WARN("agent '%s': service '%s' (%s) released: %s", session.info.owner.agent_id.c_str(), service.name.c_str(),
             it->second.describe().c_str(), status.message.c_str());
    keys.push_back(it->second);
    statuses.push_back(std::move(status));
    if (service.kind == route::Kind::kTcp && session.ports.erase(service.port) != 0) ports.push_back(service.port);
    it = session.services.erase(it);
  }
  // Granted claims still waiting for their port to close were checked against the old rule: checked again here,
  // and a refusal goes out with the claim's own answer (not yet sent).
  for (PortOpen* open : waiting_opens(session.ref)) {
    const tunnel::ServiceDecl& service = open->claim->services[open->index];
    tunnel::ServiceStatus status = token_allows(rule, service);
    if (status.ok) continue;
    status.message = "released by the gateway's configuration reload: " + status.message;
    LOG_WARN("agent '%s': service '%s' (%s) released before its port was free: %s",
             session.info.owner.agent_id.c_str(), service.name.c_str(), key_of(service).describe().c_str(),
             status.message.c_str());
    open->dropped = true;
    keys.push_back(key_of(service));
    open->claim->statuses[open->index] = std::move(status);
  }
  if (keys.empty()) return 0;
  // The route goes from the snapshot before the listeners close: no new client is routed to it meanwhile. Streams
  // already open on it run to their end; only new connections are refused.
  registry_->release(session.ref, keys);
  for (std::uint16_t port : ports) leave_port(port, session.ref);
  auto conn = std::find_if(session.conns.begin(), session.conns.end(), [](const Conn& c) { return c.conn_index == 0; });
  if (!statuses.empty() && conn != session.conns.end()) {
    auto message = std::make_unique<ServicesReleased>();
    message->gateway = &gateway_;
    message->tag = conn->tag;
    message->statuses = std::move(statuses);
    ring::post_owned<ServicesReleased>(loop_, conn->core, std::move(message),
                                       [](ring::Loop& loop, ServicesReleased& m) {
                                         m.gateway->core(loop.core()).services_released(m);
                                       });
  }
  return keys.size();
}

void RegistryRoom::tokens_changed(const TokensChanged& message) {
  std::size_t agents_released = 0;
  std::size_t routes_released = 0;
  for (auto& [slot, session] : sessions_) {
    const std::uint32_t token = session.info.owner.token;
    if (std::find(message.removed.begin(), message.removed.end(), token) != message.removed.end()) {
      ++agents_released;
      LOG_WARN("agent '%s': its token (token%u) was removed by a reload: releasing its %zu connection(s)",
               session.info.owner.agent_id.c_str(), token + 1, session.conns.size());
      // Each connection is told and closed on its own core; their detaches then end the session as usual.
      for (const Conn& conn : session.conns) {
        auto revoke = std::make_unique<RevokeLink>();
        revoke->gateway = &gateway_;
        revoke->tag = conn.tag;
        revoke->refusal = tunnel::Refusal{tunnel::RefusalCode::kTokenRevoked, kTokenRevoked};
        ring::post_owned<RevokeLink>(loop_, conn.core, std::move(revoke), [](ring::Loop& loop, RevokeLink& m) {
          m.gateway->core(loop.core()).revoke_link(m);
        });
      }
      continue;
    }
    if (std::find(message.routes_narrowed.begin(), message.routes_narrowed.end(), token) !=
        message.routes_narrowed.end()) {
      const app::TokenRule* rule = message.table->live(token);
      if (rule != nullptr) routes_released += release_disallowed(session, *rule);
    }
  }
  // Agents waiting for an id held by another instance: a revoked token's are refused now, not after the grace.
  std::vector<Waiting> revoked;
  auto it = std::stable_partition(waiting_.begin(), waiting_.end(), [&](const Waiting& w) {
    return message.table->live(w.request.owner.token) != nullptr;
  });
  std::move(it, waiting_.end(), std::back_inserter(revoked));
  waiting_.erase(it, waiting_.end());
  for (const Waiting& w : revoked) {
    refuse_attach(w.request, tunnel::RefusalCode::kTokenRevoked, kTokenRevoked);
  }
  LOG_INFO("reload: %s, agents released %zu, routes released %zu", message.summary.c_str(), agents_released,
           routes_released);
}

}  // namespace ringtun::gateway
