#include "gateway/access_gate.hpp"

#include <netinet/in.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace ringtun::gateway {

namespace {

constexpr std::size_t kClientCountSlots = 65'536;  // 256 KiB, shared, only with a --max-conns-per-client
constexpr std::size_t kServiceCountSlots = 65'536;  // 1 MiB, shared, only with a --max-conns

std::uint64_t random_seed() noexcept {
  std::uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
    // Without entropy the slots are still correct, only predictable: mix in what differs per process.
    seed = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&seed)) ^ static_cast<std::uint64_t>(::getpid());
  }
  return seed;
}

}  // namespace

AccessCounts::AccessCounts() : seed(random_seed()) {}

void AccessCounts::provide(const std::vector<route::AccessRules>& rules) {
  for (const route::AccessRules& r : rules) {
    if (r.max_conns_per_client > 0 && !clients) {
      clients = std::make_unique<route::ClientCounts>(kClientCountSlots, seed);
    }
    if (r.max_conns > 0 && !services) services = std::make_unique<route::ServiceCounts>(kServiceCountSlots);
  }
}

AccessPolicies::AccessPolicies(std::vector<route::AccessRules> rules_by_token, AccessCounts& counts,
                               unsigned core_count)
    : rules(std::move(rules_by_token)), cores(core_count == 0 ? 1 : core_count), seed(counts.seed) {
  for (route::AccessRules& r : rules) r.compile();
  counts.provide(rules);
  clients = counts.clients.get();
  services = counts.services.get();
}

bool policy_address(const ring::net::Address& address, route::IpAddress* out) noexcept {
  if (address.family() == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(address.storage);
    std::uint8_t bytes[4];
    std::memcpy(bytes, &in.sin_addr, sizeof bytes);
    *out = route::IpAddress::from_v4(bytes);
    return true;
  }
  if (address.family() == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address.storage);
    std::uint8_t bytes[16];
    std::memcpy(bytes, &in6.sin6_addr, sizeof bytes);
    *out = route::IpAddress::from_v6(bytes);
    return true;
  }
  return false;
}

AccessGate::AccessGate(const AccessPolicies* policies) { set_policies(policies); }

void AccessGate::set_policies(const AccessPolicies* policies) {
  policies_ = policies;
  if (policies_ == nullptr) return;
  // Counters only appear (AccessCounts never replaces one): a pass taken before keeps pointing at the same one.
  if (policies_->clients != nullptr) clients_ = policies_->clients;
  if (policies_->services != nullptr) services_ = policies_->services;
  if (rates_) return;  // kept across reloads: a client's bucket does not refill because the operator edited a file
  for (const route::AccessRules& r : policies_->rules) {
    if (r.conn_rate > 0) {
      rates_ = std::make_unique<route::RateTable>(kRateSlots, policies_->seed ^ 0x5EEDu);
      break;
    }
  }
}

route::Verdict AccessGate::admit(const route::Route& route, const ring::net::Address& client, std::uint64_t now_ms,
                                 AccessPass* pass) noexcept {
  *pass = AccessPass{};
  static const route::AccessRules kNone;
  const route::AccessRules* token_rules = policies_ != nullptr ? policies_->rules_of(route.owner.token) : nullptr;
  const route::AccessRules& rules = token_rules != nullptr ? *token_rules : kNone;
  const route::AccessRules* service_rules = route.service_rules.get();
  const bool lists = !rules.allow.empty() || !rules.deny.empty() || service_rules != nullptr;
  route::IpAddress address;
  if (!policy_address(client, &address)) {
    // An address we cannot read (the client already left): lists cannot vouch for it.
    if (lists) {
      ++stats_.denied;
      return route::Verdict::kNotAllowed;
    }
    return route::Verdict::kAllowed;
  }
  // The token's lists first (the operator's), then the service's (its agent's): both must let the client in, so a
  // service can narrow what its token allows but never widen it.
  route::Verdict listed = route::check_lists(rules, address);
  if (listed == route::Verdict::kAllowed && service_rules != nullptr) listed = route::check_lists(*service_rules, address);
  if (listed != route::Verdict::kAllowed) {
    ++stats_.denied;
    return listed;
  }
  const std::uint32_t token = route.owner.token;
  if (rules.conn_rate > 0 && rates_) {
    // This core's share: the cores together allow about the rate (reuseport spreads a client's connections).
    const std::uint64_t share = std::max<std::uint64_t>(1, std::uint64_t{rules.conn_rate} * 1000 / policies_->cores);
    if (!rates_->take(address, token, share, std::max<std::uint64_t>(share, 1000), now_ms)) {
      ++stats_.rate_limited;
      return route::Verdict::kRateLimited;
    }
  }
  if (rules.max_conns_per_client > 0 && policies_->clients) {
    const std::uint32_t slot = policies_->clients->slot_of(address, token);
    if (!policies_->clients->try_acquire(slot, rules.max_conns_per_client)) {
      ++stats_.client_full;
      return route::Verdict::kClientFull;
    }
    pass->client_slot = slot;
  }
  if (rules.max_conns > 0 && policies_->services) {
    const std::uint32_t slot = policies_->services->slot_of(route::service_key(
        token, static_cast<std::uint8_t>(route.key.kind), route.key.port, route.key.host));
    if (!policies_->services->try_acquire(slot, rules.max_conns)) {
      release(*pass);
      ++stats_.service_full;
      return route::Verdict::kServiceFull;
    }
    if (slot != route::ServiceCounts::kNoSlot) pass->service_slot = slot;
  }
  return route::Verdict::kAllowed;
}

void AccessGate::release(AccessPass& pass) noexcept {
  if (pass.client_slot != AccessPass::kNone) clients_->release(pass.client_slot);
  if (pass.service_slot != AccessPass::kNone) services_->release(pass.service_slot);
  pass = AccessPass{};
}

}  // namespace ringtun::gateway
