// reload_gateway_config: SIGHUP's configuration reload. See gateway.hpp and token_table.hpp.
//
// Runs on the runtime's thread (the signal loop), while the cores serve. It only builds new immutable values and
// hands them over: the token table through an atomic shared pointer (read once per hello or claim), the access
// policies by a SetAccess message to each core (read per new public connection through a core-local pointer, so
// the data path pays nothing for reloads), and what must be released by a TokensChanged message to the registry
// core, which owns sessions and routes.
#include <algorithm>

#include "common/log.hpp"
#include "gateway/gateway.hpp"
#include "ring/post.hpp"

namespace ringtun::gateway {

namespace {

std::unique_ptr<AccessPolicies> make_policies(Gateway& gateway, const TokenTable& table) {
  std::vector<route::AccessRules> rules(table.slots.size());
  for (std::size_t i = 0; i < table.slots.size(); ++i) {
    if (!table.slots[i].revoked) rules[i] = table.slots[i].rule.access;
  }
  auto policies = std::make_unique<AccessPolicies>(std::move(rules), gateway.access_counts, gateway.core_count);
  policies->users.store(gateway.core_count, std::memory_order_relaxed);
  return policies;
}

// Gives each core the new policies, then frees the generations no core checks with any more (each core counts
// itself out of the one it leaves; the newest is always kept).
void publish_policies(Gateway& gateway, std::unique_ptr<AccessPolicies> policies) {
  const AccessPolicies* next = policies.get();
  if (policies) gateway.access_generations.push_back(std::move(policies));
  for (unsigned core = 0; core < gateway.core_count; ++core) {
    auto message = std::make_unique<SetAccess>(SetAccess{&gateway, next});
    ring::deliver_owned<SetAccess>(gateway.core(core).loop(), std::move(message),
                                   [](ring::Loop& loop, SetAccess& m) { m.gateway->core(loop.core()).set_access(m); });
  }
  auto& generations = gateway.access_generations;
  generations.erase(std::remove_if(generations.begin(), generations.end(),
                                   [next](const std::unique_ptr<AccessPolicies>& g) {
                                     return g.get() != next && g->users.load(std::memory_order_acquire) == 0;
                                   }),
                    generations.end());
}

}  // namespace

void reload_gateway_config(Gateway& gateway) {
  if (gateway.started_core(0) == nullptr) {
    LOG_WARN("reload: the gateway is still starting; the configuration was not read again (send SIGHUP again)");
    return;
  }
  std::string error;
  auto parsed = app::parse_gateway_args(gateway.source.argc, gateway.source.argv, &error);
  if (!parsed) {
    // The parser's message names the place: the file and key path ("gateway.json: tokens[1].allow_ports: ..."), or
    // the line and column of a syntax error.
    LOG_ERROR("reload: %s; nothing changed, the running configuration is kept whole", error.c_str());
    return;
  }
  for (const std::string& warning : parsed->warnings) LOG_WARN("reload: %s", warning.c_str());
  const app::GatewayConfig& next = parsed->config;
  for (const std::string& flag : restart_only_changes(gateway.config, next)) {
    LOG_WARN("reload: %s changed: takes effect after a restart", flag.c_str());
  }

  const std::shared_ptr<const TokenTable> current = gateway.tokens.load(std::memory_order_acquire);
  TokenReload plan = plan_token_reload(*current, next.tokens);
  bool policies_differ = plan.policies_changed > 0;
  for (std::uint32_t index : plan.added)
    policies_differ = policies_differ || !plan.table.slots[index].rule.access.empty();
  for (std::uint32_t index : plan.removed) {
    policies_differ = policies_differ || !current->slots[index].rule.access.empty();
  }
  auto table = std::make_shared<const TokenTable>(std::move(plan.table));

  for (std::uint32_t index : plan.added) LOG_INFO("reload: token%u added", index + 1);
  for (std::uint32_t index : plan.removed) LOG_INFO("reload: token%u removed: its agents are released", index + 1);
  for (std::uint32_t index : plan.changed) {
    const app::TokenRule& rule = table->slots[index].rule;
    LOG_INFO("reload: token%u changed: ports %u-%u, %zu host pattern(s)", index + 1, rule.port_low, rule.port_high,
             rule.hosts.size());
    log_access_policy(index, rule.access);
  }

  // The table first: a hello or claim that reads it from now on sees the new tokens; then the registry, whose
  // message arrives after any attach that read the old table, releases what the new one no longer allows.
  gateway.tokens.store(table, std::memory_order_release);
  if (policies_differ) {
    std::unique_ptr<AccessPolicies> policies = plan.any_policy ? make_policies(gateway, *table) : nullptr;
    gateway.access = policies.get();
    publish_policies(gateway, std::move(policies));
  }
  auto changed = std::make_unique<TokensChanged>();
  changed->gateway = &gateway;
  changed->table = table;
  changed->removed = std::move(plan.removed);
  changed->routes_narrowed = std::move(plan.routes_narrowed);
  changed->summary = "tokens +" + std::to_string(plan.added.size()) + " -" + std::to_string(changed->removed.size()) +
                     " ~" + std::to_string(plan.changed.size()) + ", policies changed " +
                     std::to_string(plan.policies_changed);
  ring::deliver_owned<TokensChanged>(
      gateway.core(gateway.registry_core).loop(), std::move(changed),
      [](ring::Loop&, TokensChanged& m) { m.gateway->core(m.gateway->registry_core).registry().tokens_changed(m); });
}

}  // namespace ringtun::gateway
