// Registry: who is connected (agent sessions) and who holds which route (claims), behind a small interface.
//
// A session is one running agent instance (its random instance nonce) under one owner (token, agent id). Within one
// owner at most one session exists: a second instance is refused while the first is connected (it learns who holds
// the id, from where, since when). Claims belong to the owner and are served by its session (with other owners'
// sessions, for a load-balancing group); when the session closes, its claims are released. Every change produces a new route snapshot for the cores (watch()).
//
// Today's implementation, LocalRegistry, keeps all of it in this process. The interface answers through callbacks
// so that a registry shared by several gateways (etcd: a lease per agent session, a key per route claimed in a
// transaction, a watch that feeds snapshots) can take its place without touching intake or routing: only the
// registry room (registry_room.hpp) calls it.
// Thread rules: every call on the registry core's thread; callbacks run on it too (LocalRegistry: synchronously,
// before the call returns).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "route/route.hpp"

namespace ringtun::gateway {

struct SessionInfo {
  route::Owner owner;
  std::string instance;     // the agent instance's nonce
  std::string peer;         // where its first connection came from, for messages
  std::uint64_t since_ms = 0;  // wall clock (ms since the epoch) when the session began
};

struct OpenResult {
  bool ok = false;
  route::SessionRef session;  // when ok
  SessionInfo holder;         // when !ok: the session that holds the owner's id
};

struct ClaimRequest {
  route::RouteKey key;
  std::string service;
  std::shared_ptr<const route::AccessRules> service_rules;  // the service's own address lists, or null
  std::string group;  // the load-balancing group, or empty
};

struct HealthChange {
  route::RouteKey key;
  bool up = true;
};

class Registry {
 public:
  virtual ~Registry() = default;

  // Begins a session for `info.owner`, unless another instance of that owner holds one.
  virtual void open_session(const SessionInfo& info, std::function<void(const OpenResult&)> done) = 0;
  // Ends a session: its claims are released.
  virtual void close_session(route::SessionRef session) = 0;
  // Claims each key for the session's owner; one result per request, in order. Published as one change.
  virtual void claim(route::SessionRef session, std::vector<ClaimRequest> requests,
                     std::function<void(std::vector<route::ClaimResult>)> done) = 0;
  // Releases keys the session's owner holds (e.g. a port that could not be opened after all).
  virtual void release(route::SessionRef session, const std::vector<route::RouteKey>& keys) = 0;
  // The session's health checks changed: its memberships of these keys go up or down. Published as one change.
  virtual void set_health(route::SessionRef session, const std::vector<HealthChange>& changes) = 0;

  // The current state, for listings (admin API, logs).
  virtual std::vector<SessionInfo> sessions() const = 0;
  virtual std::shared_ptr<const route::Table> table() const = 0;
  // Called after every change with the new snapshot (and once at once with the current one).
  virtual void watch(std::function<void(std::shared_ptr<const route::Table>)> on_change) = 0;
};

// Everything in this process.
class LocalRegistry final : public Registry {
 public:
  LocalRegistry();
  ~LocalRegistry() override;

  void open_session(const SessionInfo& info, std::function<void(const OpenResult&)> done) override;
  void close_session(route::SessionRef session) override;
  void claim(route::SessionRef session, std::vector<ClaimRequest> requests,
             std::function<void(std::vector<route::ClaimResult>)> done) override;
  void release(route::SessionRef session, const std::vector<route::RouteKey>& keys) override;
  void set_health(route::SessionRef session, const std::vector<HealthChange>& changes) override;
  std::vector<SessionInfo> sessions() const override;
  std::shared_ptr<const route::Table> table() const override;
  void watch(std::function<void(std::shared_ptr<const route::Table>)> on_change) override;

 private:
  struct Slot {
    std::uint32_t generation = 0;
    bool in_use = false;
    SessionInfo info;
  };
  const Slot* live(route::SessionRef session) const noexcept;
  void publish();

  route::Claims claims_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::map<std::pair<std::uint32_t, std::string>, std::uint32_t> by_owner_;  // (token, agent id) -> slot
  std::shared_ptr<const route::Table> table_;
  std::vector<std::function<void(std::shared_ptr<const route::Table>)>> watchers_;
};

}  // namespace ringtun::gateway
