// RegistryRoom: the registry's side of the gateway, on one core (core 0). Cores ask it, by message, to attach a
// tunnel connection to its agent's session, to claim services, and to detach a closed connection; it answers by
// message, and it tells every core the new route snapshot and which public ports to open or close.
//
// Sessions and connections: a session lives while at least one of its tunnel connections is attached; the last
// detach closes it (its claims are released, its public ports closed on every core). A connection of the same agent
// instance (same nonce) joins the session at once. A different instance of an id that is still connected waits up to
// kConflictGraceMs (the holder may be going away right now: its last connections' closes may still be on their way
// from other cores), then is refused with who holds the id, from where, since when; the agent exits on that refusal.
//
// Claims: each service is checked on its own (kind served, the token's port range, the gateway's own ports, the
// per-agent count), claimed in the registry, and, for a new TCP port, opened: a port another program holds is given
// back and refused as unavailable. One answer per claim message, one status per service.
// Releases: an agent that reloaded its services releases the ones it removed (or claims again under another key).
// Ports: a port served by a group opens with its first member and stays open while any member holds it. A port whose
// last session ended (or whose service was released) is closed on every core, and only once every core reports its
// listener closed is it free of our own sockets; a claim for it meanwhile (the agent back at once, or another agent)
// waits for that instead of finding the port "held by another program".
// Thread rules: the registry core's loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gateway/messages.hpp"
#include "gateway/registry.hpp"
#include "app/config.hpp"
#include "ring/loop.hpp"
#include "ring/timer_wheel.hpp"

namespace ringtun::gateway {

class RegistryRoom {
 public:
  static constexpr std::uint32_t kConflictGraceMs = 1'000;

  RegistryRoom(Gateway& gateway, ring::Loop& loop, std::unique_ptr<Registry> registry);
  ~RegistryRoom();
  RegistryRoom(const RegistryRoom&) = delete;
  RegistryRoom& operator=(const RegistryRoom&) = delete;

  // Starts publishing route snapshots to the cores.
  void start();
  void attach(const AttachRequest& request);
  void detach(const DetachRequest& request);
  // A claim, or a release (request.release set): the services of those names the session holds are released and
  // their public TCP ports closed, as when the agent leaves. Names it does not hold are ignored (refused before, or
  // released already).
  void claim(ClaimRequestMsg& request);
  // The agent's health checks changed: its services (by name, only those it was granted) go up or down.
  void health(const HealthReport& report);
  // A core closed its listener of a port that was unbound.
  void port_closed(std::uint16_t port);
  // A reload published a new token table: releases the sessions of removed tokens (each connection is told why,
  // token_revoked) and the services that narrowed tokens no longer allow (the agent is told which, in a "claimed"
  // answer); logs one summary line.
  void tokens_changed(const TokensChanged& message);

  const Registry& registry() const noexcept { return *registry_; }

  // ---- for the admin endpoint (same thread) ----
  struct AgentView {
    const SessionInfo* info = nullptr;
    std::vector<unsigned> connections_per_core;  // by core index
    std::vector<std::string> services;           // names granted, sorted
  };
  std::vector<AgentView> agents() const;
  // Closes every tunnel connection of the sessions whose agent id is `agent_id` (and whose token index is `token`,
  // unless negative). The agents reconnect by themselves. Returns the number of connections closed.
  std::size_t disconnect(std::string_view agent_id, long token, const char* reason);

 private:
  struct Conn {
    unsigned core = 0;
    std::uint64_t tag = 0;
    std::uint32_t conn_index = 0;  // the agent's index: connection 0 reads claim answers
  };
  struct Session {
    route::SessionRef ref;
    SessionInfo info;
    std::vector<Conn> conns;
    std::map<std::string, route::RouteKey> services;  // services granted (and, for tcp, opened): name -> key
    std::set<std::uint16_t> ports;    // public TCP ports opened for it
  };
  struct Waiting {
    AttachRequest request;
    std::uint64_t deadline_ms = 0;
  };
  struct PendingClaim {
    route::SessionRef session;
    unsigned core = 0;
    std::uint64_t tag = 0;
    std::vector<tunnel::ServiceDecl> services;
    std::vector<tunnel::ServiceStatus> statuses;  // one per service
    std::vector<std::size_t> claimed;              // services sent to the registry, in its result order
    std::size_t waiting_ports = 0;                 // ports still closing from their previous holder
  };
  struct PortOpen {
    std::shared_ptr<PendingClaim> claim;
    std::size_t index = 0;  // into claim->services
    bool dropped = false;   // released meanwhile (the agent's reload, or the gateway's): not opened
  };
  struct PortState {
    std::vector<route::SessionRef> holders;  // the sessions whose route the listeners serve (a group: several);
                                             // empty while closing
    unsigned closing = 0;           // cores yet to report their listener closed
    std::vector<PortOpen> waiting;  // claims granted meanwhile, opened once the port is free
  };

  void begin_session(const AttachRequest& request);
  void join(Session& session, const AttachRequest& request);
  void refuse_attach(const AttachRequest& request, tunnel::RefusalCode code, std::string message);
  void refuse_in_use(const AttachRequest& request, const SessionInfo& holder);
  void end_session(Session& session);
  // `session` no longer serves the public port `port` (its route is already gone from the registry); the port closes
  // on every core unless other members of a group still hold it. True if it closes.
  bool leave_port(std::uint16_t port, route::SessionRef session);
  // Releases the services of `session` that its token's (new) rule no longer allows; returns how many.
  std::size_t release_disallowed(Session& session, const app::TokenRule& rule);
  // The agent's reload removed services (request.release: their names).
  void release(ClaimRequestMsg& request);
  // Claims of `session` granted but waiting for their port to close (PortState::waiting), not dropped yet.
  std::vector<PortOpen*> waiting_opens(route::SessionRef session);
  void retry_waiting(const route::Owner& owner);
  void expire_waiting();
  Session* find(route::SessionRef ref);
  Session* find(const route::Owner& owner);
  // Checks one declared service before it reaches the registry; an empty message means it may be claimed. What the
  // token allows (its port range; for http and tls its host patterns, route::host_allowed), and that the gateway
  // serves the kind (http and tls need --http-listen / --tls-listen). `more`: services of this claim already passed,
  // counted against the per-agent cap.
  tunnel::ServiceStatus precheck(const Session& session, const tunnel::ServiceDecl& service, std::size_t more) const;
  // What `rule` says of one service: nothing (an empty status message) when it may be claimed.
  static tunnel::ServiceStatus token_allows(const app::TokenRule& rule, const tunnel::ServiceDecl& service);
  // Opens the port of pending->services[index] now, or once its previous listeners are closed.
  void open_port(const std::shared_ptr<PendingClaim>& pending, std::size_t index);
  void open_port_now(PendingClaim& pending, std::size_t index);
  void finish_claim(PendingClaim& pending);
  void broadcast_table(std::shared_ptr<const route::Table> table);

  Gateway& gateway_;
  ring::Loop& loop_;
  std::unique_ptr<Registry> registry_;
  std::map<std::uint32_t, Session> sessions_;  // by session slot
  std::map<std::pair<std::uint32_t, std::string>, route::SessionRef> by_owner_;  // (token, agent id) -> session
  std::map<std::uint16_t, PortState> ports_;   // public TCP ports with our listeners (open or closing)
  std::vector<Waiting> waiting_;
  ring::Timer waiting_timer_;
};

}  // namespace ringtun::gateway
