// ServiceSet: the agent's services as one immutable snapshot, and what a reload (SIGHUP) changes between two of them.
//
// Every agent core reads the services without locks (a stream's OPEN names its service). So a reload never changes a
// set in place: it builds a new one and hands each core a pointer to it by message (edge-agent/reload.hpp); a core
// drops the old set when it takes the new one, and whichever core drops it last frees it.
// Slots: what is kept per service on each core (traffic counters, the http upstream pool) is indexed by the service's
// slot, which its name keeps for the agent's whole life: indexes into a set change with every reload, slots do not,
// and a service removed then added back continues its counters (as Prometheus expects of the same labels). A
// SlotBook hands slots out, at most kMaxServiceSlots distinct names over the agent's life.
// Upstream keys: the key of a service's pooled http connections is its slot plus a generation, which changes when the
// service is added, or its local address or PROXY protocol changes: a connection made for the old address is never
// used for a new request (tunnel/upstream_pool.hpp).
// Thread rules: a ServiceSet is immutable once built, any thread may read it. A SlotBook is used by one thread at a
// time (start-up, then the runtime's thread, which handles SIGHUP). TrafficSlots: see below.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "app/config.hpp"
#include "common/result.hpp"
#include "tunnel/handshake.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::agent {

inline constexpr std::uint32_t kMaxServiceSlots = 1U << 16;

struct AgentService {
  app::ServiceConfig config;
  tunnel::ServiceDecl decl;        // what connection 0 claims for it
  std::uint32_t slot = 0;          // < kMaxServiceSlots
  std::uint32_t upstream_key = 0;  // slot | generation << 16 (tunnel::UpstreamPool::kKeyIndexBits)
};

class ServiceSet {
 public:
  const std::vector<AgentService>& services() const noexcept { return services_; }
  std::size_t size() const noexcept { return services_.size(); }
  const AgentService& operator[](std::size_t index) const noexcept { return services_[index]; }
  // The service called `name`, or null.
  const AgentService* find(std::string_view name) const noexcept;
  std::size_t index_of(const AgentService& service) const noexcept {
    return static_cast<std::size_t>(&service - services_.data());
  }
  // (name, index), sorted by name: for listings.
  const std::vector<std::pair<std::string, std::size_t>>& by_name() const noexcept { return by_name_; }

 private:
  friend class SlotBook;
  std::vector<AgentService> services_;  // in the order of the config
  std::vector<std::pair<std::string, std::size_t>> by_name_;
};

// What a reload changes, by service name.
struct ServiceDiff {
  std::vector<std::size_t> added;      // indexes into the new set: claimed on the live connection 0
  std::vector<std::size_t> removed;    // indexes into the old set: released
  std::vector<std::size_t> reclaimed;  // into the new set: another claim (kind, port, host, address lists) under the
                                       // same name: released, then claimed again
  std::vector<std::size_t> changed;    // into the new set: the same claim, another local address or PROXY protocol:
                                       // new streams go to the new one, nothing to tell the gateway
  bool empty() const noexcept { return added.empty() && removed.empty() && reclaimed.empty() && changed.empty(); }
};
ServiceDiff diff_services(const ServiceSet& before, const ServiceSet& after);

class SlotBook {
 public:
  // A set of `services` (names are unique: the parser checks), each with the slot of its name, claimed in the
  // load-balancing group `group` (--group; empty: none). `previous` (null at start-up) is the set this one replaces:
  // a service whose local side is not the same gets a new upstream generation. Errc::kInvalidArgument with *error
  // when the slots are out (kMaxServiceSlots names seen).
  Result<std::shared_ptr<const ServiceSet>> build(const std::vector<app::ServiceConfig>& services,
                                                  std::string_view group, const ServiceSet* previous,
                                                  std::string* error);

 private:
  std::map<std::string, std::uint32_t, std::less<>> slots_;
  std::vector<std::uint16_t> generations_;  // by slot
};

// The same local side (address and PROXY protocol): streams of the new set may use what streams of the old one left
// (pooled connections), and a health check keeps checking it.
bool same_local(const app::ServiceConfig& a, const app::ServiceConfig& b);
// The declaration connection 0 claims for `config`, in `group` (empty: none).
tunnel::ServiceDecl declare(const app::ServiceConfig& config, std::string_view group);
// "gateway port 8080 -> 127.0.0.1:80", "http app.example.com -> 127.0.0.1:8080": what a service serves.
std::string public_to_local(const app::ServiceConfig& config);

// One core's traffic counters by slot, at addresses that never move: an open stream keeps a pointer to its service's
// counters across reloads, and the admin core reads other cores' counters while a reload adds slots. Chunks of
// counters are allocated by the owning core when a set that uses them arrives (control path) and published with a
// release store; readers load the chunk pointer with acquire.
// Thread rules: at()/ensure() on the owning core's thread; find() from any thread.
class TrafficSlots {
 public:
  TrafficSlots();
  ~TrafficSlots();
  TrafficSlots(const TrafficSlots&) = delete;
  TrafficSlots& operator=(const TrafficSlots&) = delete;

  // Owner: makes sure the counters of `slot` exist.
  void ensure(std::uint32_t slot);
  // Owner: the counters of `slot` (ensured first if they are not yet: a set always ensures its slots on arrival).
  tunnel::StreamTraffic& at(std::uint32_t slot);
  // Any thread: the counters of `slot`, or null if this core never had that slot.
  const tunnel::StreamTraffic* find(std::uint32_t slot) const noexcept;

 private:
  static constexpr std::uint32_t kChunk = 64;
  static constexpr std::uint32_t kChunks = kMaxServiceSlots / kChunk;
  std::unique_ptr<std::atomic<tunnel::StreamTraffic*>[]> chunks_;
};

}  // namespace ringtun::agent
