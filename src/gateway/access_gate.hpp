// AccessGate: one core's check of a public client against the access policy of the token whose route it reached
// (route/access_policy.hpp), at accept for raw TCP ports, once the name is known for the shared HTTP and TLS ports.
//
// The policies and the concurrent-connection counts are the gateway's (AccessPolicies, built from the config at start
// and again by each reload, shared by every core: immutable rules; AccessCounts, atomic counts that outlive every
// generation of the rules, so that a connection admitted under one policy gives its counts back to the same counters
// after a reload). Each core keeps its own rate buckets and gives each client
// address its share of a token's --conn-rate (rate / cores), so that the cores together allow about the rate
// without talking to each other. A route whose token has no policy costs one branch: no address lookup, no count.
// What an admitted connection holds (a per-client and a per-service count) is an AccessPass; whoever ends the
// connection releases it, exactly once.
// Thread rules: AccessPolicies is read by every core (its counts are atomics); an AccessGate is one core's.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/counter.hpp"
#include "ring/net.hpp"
#include "route/access_policy.hpp"
#include "route/route.hpp"

namespace ringtun::gateway {

// The concurrent-connection counters, for the life of the gateway. Made only once some token needs them; never
// replaced (a reload that first asks for a --max-conns makes them then). Thread rules: provide() on the thread that
// builds a policy generation, before it is published; the counts are atomics any core may use.
struct AccessCounts {
  AccessCounts();
  void provide(const std::vector<route::AccessRules>& rules);

  std::uint64_t seed = 0;  // random per process: hash slots a client cannot predict
  std::unique_ptr<route::ClientCounts> clients;
  std::unique_ptr<route::ServiceCounts> services;
};

struct AccessPolicies {
  // `rules` by token index (TokenTable's stable indices); the counts some rule needs are made in `counts`.
  AccessPolicies(std::vector<route::AccessRules> rules, AccessCounts& counts, unsigned cores);

  const route::AccessRules* rules_of(std::uint32_t token) const noexcept {
    return token < rules.size() && !rules[token].empty() ? &rules[token] : nullptr;
  }

  std::vector<route::AccessRules> rules;
  unsigned cores = 1;
  std::uint64_t seed = 0;  // AccessCounts::seed
  route::ClientCounts* clients = nullptr;    // AccessCounts's, null when no rule has --max-conns-per-client
  route::ServiceCounts* services = nullptr;  // AccessCounts's, null when no rule has --max-conns
  // Cores that still check with this generation: each core that moves to a newer one counts itself out, and the
  // reload frees a generation no core uses any more.
  mutable std::atomic<unsigned> users{0};
};

// What an admitted connection holds; release it once when the connection ends.
struct AccessPass {
  static constexpr std::uint32_t kNone = UINT32_MAX;
  std::uint32_t client_slot = kNone;
  std::uint32_t service_slot = kNone;
  bool holds() const noexcept { return client_slot != kNone || service_slot != kNone; }
};

// The client's address in the policy's form; false for a family the policy does not know (AF_UNSPEC, AF_UNIX).
bool policy_address(const ring::net::Address& address, route::IpAddress* out) noexcept;

class AccessGate {
 public:
  static constexpr std::size_t kRateSlots = 16'384;  // per core: 384 KiB, only with a --conn-rate

  explicit AccessGate(const AccessPolicies* policies);

  // A reload's policies (null: no token has one). Passes already given keep their slots: release() gives them back
  // to the same counters. Control path: may allocate this core's rate table.
  void set_policies(const AccessPolicies* policies);
  const AccessPolicies* policies() const noexcept { return policies_; }

  // Whether `route`'s clients are checked at all: its token has a policy, or its service lists of its own. When
  // not, admit() is not needed (and the client's address need not be read).
  bool applies(const route::Route& route) const noexcept {
    return route.service_rules != nullptr || (policies_ != nullptr && policies_->rules_of(route.owner.token));
  }
  // Checks `client` against the policy of `route`'s token and the service's own lists, in the order: the token's
  // deny and allow lists, the service's deny and allow lists, rate, per-client count, per-service count. kAllowed:
  // *pass holds the counts taken. Otherwise nothing is held, and the refusal is counted here by verdict.
  route::Verdict admit(const route::Route& route, const ring::net::Address& client, std::uint64_t now_ms,
                       AccessPass* pass) noexcept;
  // Gives back what `pass` holds, and empties it.
  void release(AccessPass& pass) noexcept;

  struct Stats {
    Counter denied;        // deny list, or not in the allow list
    Counter rate_limited;
    Counter service_full;  // --max-conns
    Counter client_full;   // --max-conns-per-client
  };
  const Stats& stats() const noexcept { return stats_; }

 private:
  const AccessPolicies* policies_ = nullptr;
  // The counters passes were taken from: they outlive every policy generation (AccessCounts), so a pass is given
  // back here even when the policies it was admitted under are gone.
  route::ClientCounts* clients_ = nullptr;
  route::ServiceCounts* services_ = nullptr;
  std::unique_ptr<route::RateTable> rates_;  // with a --conn-rate on some token
  Stats stats_;
};

}  // namespace ringtun::gateway
