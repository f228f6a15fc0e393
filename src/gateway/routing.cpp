#include "gateway/routing.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "tunnel/stream_meta.hpp"

namespace ringtun::gateway {

Routing::Routing(ring::Loop& loop) : loop_(loop), table_(route::Claims().build()) {
  sweep_timer_.set_callback([](void* self) { static_cast<Routing*>(self)->sweep_parked(false); }, this);
}

Routing::~Routing() {
  for (Parked& p : parked_) ::close(p.fd);
}

void Routing::set_table(std::shared_ptr<const route::Table> table) {
  if (!table || table->version() < table_->version()) return;  // snapshots arrive in order; never go back
  table_ = std::move(table);
  // Clients waiting for a route that is gone (or no longer served by the session they wait for) go now.
  auto gone = [&](const Parked& p) {
    const route::Route* route = table_->find(p.key);
    return route == nullptr || std::find(route->sessions.begin(), route->sessions.end(), p.session) ==
                                   route->sessions.end();
  };
  for (Parked& p : parked_) {
    if (gone(p)) {
      close_parked(p);
      ++stats_.refused_no_route;
    }
  }
  parked_.erase(std::remove_if(parked_.begin(), parked_.end(), [](const Parked& p) { return p.fd < 0; }),
                parked_.end());
}

void Routing::set_access(const AccessPolicies* policies) { gate_.set_policies(policies); }

route::Verdict Routing::admit(const route::Route& route, route::Kind kind, std::uint16_t port,
                              const ring::net::Address& client, AccessPass* pass) {
  if (!gate_.applies(route)) return route::Verdict::kAllowed;
  const route::Verdict verdict = gate_.admit(route, client, loop_.now_ms(), pass);
  if (verdict == route::Verdict::kAllowed) return verdict;
  refused(&route, &client, kind, port, route::verdict_name(verdict));
  std::uint64_t dropped = 0;
  // The shared HTTP port logs its refused requests itself, with the status it answered.
  if (kind != route::Kind::kHttp && policy_log_budget_.take(loop_.now_ms(), &dropped)) {
    LOG_WARN("%s: client %s refused by the access policy of service '%s' (%s)%s", route.key.describe().c_str(),
             client.to_string().c_str(), route.service.c_str(), route::verdict_name(verdict),
             dropped > 0 ? (" (and " + std::to_string(dropped) + " more since the last line)").c_str() : "");
  }
  return verdict;
}

void Routing::close_parked(Parked& parked) noexcept {
  gate_.release(parked.pass);
  ::close(parked.fd);
  parked.fd = -1;
}

tunnel::TunnelConn* Routing::conn_of(route::SessionRef session) const noexcept {
  if (session.slot >= by_slot_.size()) return nullptr;
  const SessionConn& entry = by_slot_[session.slot];
  if (entry.generation != session.generation || entry.conn == nullptr || entry.conn->closing()) return nullptr;
  return entry.conn;
}

tunnel::TunnelConn* Routing::conn_up(route::SessionRef session, tunnel::TunnelConn& conn) {
  if (session.slot >= by_slot_.size()) by_slot_.resize(session.slot + 1);
  SessionConn& entry = by_slot_[session.slot];
  tunnel::TunnelConn* replaced = nullptr;
  if (entry.conn != nullptr && entry.generation == session.generation && entry.conn != &conn) replaced = entry.conn;
  if (entry.conn == nullptr) ++connections_;
  entry.generation = session.generation;
  entry.conn = &conn;
  release_parked(session);
  return replaced;
}

void Routing::conn_down(route::SessionRef session, const tunnel::TunnelConn& conn) {
  if (session.slot >= by_slot_.size()) return;
  SessionConn& entry = by_slot_[session.slot];
  if (entry.conn != &conn) return;
  entry.conn = nullptr;
  --connections_;
}

namespace {

// What the access log keeps of a public connection until it ends (only with the access log on).
struct StreamRecord {
  ring::net::Address client;
  std::uint64_t start_ms = 0;  // wall clock
  const TrafficEntry* entry = nullptr;
  std::uint16_t port = 0;
  AccessPass pass;  // released when the stream ends
};

void listener_name(route::Kind kind, std::uint16_t port, char* out, std::size_t size) {
  if (kind == route::Kind::kTcp) std::snprintf(out, size, "tcp:%u", port);
  else std::snprintf(out, size, "%s", route::kind_name(kind));
}

}  // namespace

tunnel::Tracking Routing::tracking(const route::Route& route, const ring::net::Address& client, std::uint16_t port,
                                   AccessPass& pass) {
  TrafficEntry& entry = traffic_.entry(*table_, route);
  tunnel::Tracking tracking{&entry.traffic, true, nullptr};
  if (access_log_ != nullptr || pass.holds()) {
    tracking.app_record = new StreamRecord{client, wall_clock_ms(), &entry, port, pass};
    pass = AccessPass{};
  }
  return tracking;
}

void Routing::drop(const tunnel::Tracking& tracking) noexcept {
  std::unique_ptr<StreamRecord> record(static_cast<StreamRecord*>(tracking.app_record));
  if (record != nullptr) gate_.release(record->pass);
}

void Routing::stream_finished(tunnel::StreamEnd& end) noexcept {
  std::unique_ptr<StreamRecord> record(static_cast<StreamRecord*>(end.app_record));
  if (record == nullptr) return;
  gate_.release(record->pass);
  if (access_log_ == nullptr) return;
  const std::uint64_t now = wall_clock_ms();
  char listener[16];
  listener_name(record->entry->kind, record->port, listener, sizeof listener);
  const std::string client = record->client.to_string();
  ops::AccessRecord line;
  line.end_ms = now;
  line.duration_ms = now > record->start_ms ? now - record->start_ms : 0;
  line.client = client;
  line.listener = listener;
  line.service = record->entry->service;
  line.host = record->entry->host;
  line.agent = record->entry->agent;
  line.bytes_in = end.bytes_from_edge;
  line.bytes_out = end.bytes_to_edge;
  if (end.reset_code == frame::ErrorCode::kNoError) {
    line.outcome = "ok";
  } else {
    line.outcome = "reset";
    line.reason = frame::error_code_name(end.reset_code);
  }
  access_log_->write(line);
}

void Routing::refused_fd(const route::Route* route, route::Kind kind, std::uint16_t port, int fd,
                         const char* reason) {
  refuse(route, nullptr, fd, kind, port, reason);
}

void Routing::refused(const route::Route* route, const ring::net::Address* client, route::Kind kind,
                      std::uint16_t port, const char* reason) {
  refuse(route, client, -1, kind, port, reason);
}

void Routing::refuse(const route::Route* route, const ring::net::Address* client, int fd, route::Kind kind,
                     std::uint16_t port, const char* reason) {
  if (route != nullptr) ++traffic_.entry(*table_, *route).refused;
  // The shared HTTP port writes its own line per request (with the status it answered); the others get one here.
  const bool log_line = access_log_ != nullptr && kind != route::Kind::kHttp;
  // The admin's recent list takes a bounded number a second: under a flood, the rest cost nothing more here.
  std::uint64_t dropped = 0;
  const bool report = refusal_sink_ != nullptr && refusal_budget_.take(loop_.now_ms(), &dropped);
  if (!log_line && !report) return;
  std::optional<ring::net::Address> peer;  // looked up only now that someone reads it
  if (client == nullptr && fd >= 0) {
    if (auto found = ring::net::peer_address(fd)) client = &peer.emplace(*found);
  }
  char listener[16];
  listener_name(kind, port, listener, sizeof listener);
  const std::string client_text = client != nullptr ? client->to_string() : std::string();
  const std::uint64_t now = wall_clock_ms();
  if (log_line) {
    ops::AccessRecord line;
    line.end_ms = now;
    line.client = client_text;
    line.listener = listener;
    if (route != nullptr) {
      line.service = route->service;
      line.host = route->key.host;
      line.agent = route->owner.agent_id;
    }
    line.outcome = "refused";
    line.reason = reason;
    access_log_->write(line);
  }
  if (!report) return;
  RefusalEvent event;
  event.time_ms = now;
  event.listener = listener;
  event.client = client_text;
  if (route != nullptr) event.service = route->service;
  event.reason = reason;
  refusal_sink_(refusal_context_, std::move(event));
}

void Routing::tcp_client(std::uint16_t port, int fd) {
  const route::Route* route = table_->find_tcp(port);
  if (route == nullptr) {  // the port was released and its listener is on its way out
    ++stats_.refused_no_route;
    refused_fd(nullptr, route::Kind::kTcp, port, fd, "no_route");
    ::close(fd);
    return;
  }
  ring::net::Address client;
  if (auto peer = ring::net::peer_address(fd)) client = *peer;
  AccessPass pass;
  if (gate_.applies(*route) && admit(*route, route::Kind::kTcp, port, client, &pass) != route::Verdict::kAllowed) {
    ::close(fd);
    return;
  }
  route_client(*route, port, fd, client, pass);
}

tunnel::TunnelConn* Routing::conn_for(const route::Route& route) noexcept {
  const std::vector<route::SessionRef>& sessions = route.sessions;
  if (sessions.size() == 1) return conn_of(sessions[0]);
  // A group: the member whose connection on this core carries the fewest streams now, and among equals the next in
  // turn (the scan starts one further each time). Each core balances its own connections: no shared counter.
  const std::size_t count = sessions.size();
  const std::size_t start = next_turn_++ % count;
  tunnel::TunnelConn* best = nullptr;
  std::uint32_t best_load = UINT32_MAX;
  for (std::size_t i = 0; i < count; ++i) {
    tunnel::TunnelConn* conn = conn_of(sessions[(start + i) % count]);
    if (conn == nullptr) continue;
    const std::uint32_t load = conn->session().live_streams();
    if (load < best_load) {
      best = conn;
      best_load = load;
    }
  }
  return best;
}

void Routing::route_client(const route::Route& route, std::uint16_t port, int fd, const ring::net::Address& client,
                           AccessPass pass) {
  if (tunnel::TunnelConn* conn = conn_for(route)) {
    open_stream(*conn, route, port, fd, client, pass);
    return;
  }
  park(route.sessions.front(), route.key, fd, client, pass);
}

std::span<const std::byte> encode_route_meta(const route::Route& route, std::uint16_t port,
                                             const ring::net::Address& client, std::uint8_t flags,
                                             std::span<std::byte, tunnel::kMaxStreamMeta> out) noexcept {
  tunnel::StreamMeta meta;
  meta.kind = route.key.kind;
  meta.public_port = port;
  meta.client = client;
  meta.service = route.service;
  meta.flags = flags;
  auto length = tunnel::encode_stream_meta(meta, out);
  if (!length) return {};
  return out.first(*length);
}

void Routing::open_stream(tunnel::TunnelConn& conn, const route::Route& route, std::uint16_t port, int fd,
                          const ring::net::Address& client, AccessPass pass) {
  std::array<std::byte, tunnel::kMaxStreamMeta> buffer;
  const auto meta = encode_route_meta(route, port, client, 0, buffer);
  if (meta.empty()) {  // a service name the registry accepted always fits; this would be a bug
    gate_.release(pass);
    ::close(fd);
    return;
  }
  const tunnel::Tracking tracked = tracking(route, client, port, pass);
  if (auto status = conn.open_stream(fd, meta, tracked); !status) {
    drop(tracked);
    ++stats_.refused_stream_limit;
    refused(&route, &client, route::Kind::kTcp, port, "stream_limit");
    char buf[160];
    note_refusal(port, conn.app_name.c_str(), status.error().describe(buf, sizeof buf));
    return;
  }
  ++stats_.streams_opened;
}

void Routing::note_refusal(std::uint16_t port, const char* agent, const char* why) {
  ++refused_since_log_;
  if (loop_.now_ms() - refused_log_ms_ < 1000) return;
  LOG_WARN("port %u: %llu client(s) closed: cannot open a stream to agent '%s': %s", port,
           static_cast<unsigned long long>(refused_since_log_), agent, why);
  refused_log_ms_ = loop_.now_ms();
  refused_since_log_ = 0;
}

void Routing::park(route::SessionRef session, const route::RouteKey& key, int fd, const ring::net::Address& client,
                   AccessPass pass) {
  if (stopped_ || parked_.size() >= kMaxParked) {
    ++stats_.refused_no_tunnel;
    if (!stopped_) refused(table_->find(key), &client, key.kind, key.port, "no_tunnel");
    gate_.release(pass);
    ::close(fd);
    return;
  }
  parked_.push_back(Parked{fd, session, key, loop_.now_ms(), pass, client});
  ++stats_.parked;
  if (!sweep_timer_.armed()) loop_.timers().schedule(sweep_timer_, kParkSweepMs);
}

void Routing::release_parked(route::SessionRef session) {
  if (parked_.empty()) return;
  std::vector<Parked> ready;
  auto it = std::stable_partition(parked_.begin(), parked_.end(), [&](const Parked& p) { return !(p.session == session); });
  ready.assign(it, parked_.end());
  parked_.erase(it, parked_.end());
  for (const Parked& p : ready) {
    const route::Route* route = table_->find(p.key);
    if (route == nullptr) {
      ++stats_.refused_no_route;
      Parked gone = p;
      close_parked(gone);
      continue;
    }
    route_client(*route, p.key.port, p.fd, p.client, p.pass);
  }
}

void Routing::sweep_parked(bool all) {
  const std::uint64_t now = loop_.now_ms();
  std::size_t expired = 0;
  for (Parked& p : parked_) {
    if (all || now - p.since_ms >= kParkMs) {
      if (!all) refused_fd(table_->find(p.key), p.key.kind, p.key.port, p.fd, "no_tunnel");
      close_parked(p);
      ++expired;
    }
  }
  if (expired > 0) {
    parked_.erase(std::remove_if(parked_.begin(), parked_.end(), [](const Parked& p) { return p.fd < 0; }),
                  parked_.end());
    stats_.refused_no_tunnel += expired;
    if (!all) {
      LOG_WARN("%zu public client(s) closed: their agent had no tunnel connection on this core for %u ms", expired,
               kParkMs);
    }
  }
  if (!parked_.empty() && !stopped_) loop_.timers().schedule(sweep_timer_, kParkSweepMs);
}

void Routing::stop() {
  stopped_ = true;
  loop_.timers().cancel(sweep_timer_);
  sweep_parked(true);
}

}  // namespace ringtun::gateway
