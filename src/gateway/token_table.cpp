#include "gateway/token_table.hpp"

#include <algorithm>

namespace ringtun::gateway {

namespace {

bool same_policy(const route::AccessRules& a, const route::AccessRules& b) {
  return a.allow == b.allow && a.deny == b.deny && a.conn_rate == b.conn_rate && a.max_conns == b.max_conns &&
         a.max_conns_per_client == b.max_conns_per_client;
}

bool same_routes(const app::TokenRule& a, const app::TokenRule& b) {
  return a.port_low == b.port_low && a.port_high == b.port_high && a.hosts == b.hosts;
}

}  // namespace

std::size_t TokenTable::live_count() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(slots.begin(), slots.end(), [](const TokenSlot& s) { return !s.revoked; }));
}

TokenTable make_token_table(const std::vector<app::TokenRule>& tokens) {
  TokenTable table;
  table.slots.reserve(tokens.size());
  for (const app::TokenRule& rule : tokens) table.slots.push_back(TokenSlot{rule, false});
  return table;
}

TokenReload plan_token_reload(const TokenTable& current, const std::vector<app::TokenRule>& next) {
  TokenReload plan;
  plan.table = current;
  // The parser refuses a secret given twice, so each secret of `next` names at most one rule. Quadratic in the number
  // of tokens, once per reload: an operator's list, not a data path.
  std::vector<bool> taken(next.size(), false);
  for (std::uint32_t index = 0; index < plan.table.slots.size(); ++index) {
    TokenSlot& slot = plan.table.slots[index];
    if (slot.revoked) continue;
    auto it = std::find_if(next.begin(), next.end(),
                           [&](const app::TokenRule& rule) { return rule.secret == slot.rule.secret; });
    if (it == next.end()) {
      slot.rule = app::TokenRule{};  // the secret must not linger in memory, nor match a hello
      slot.revoked = true;
      plan.removed.push_back(index);
      continue;
    }
    taken[static_cast<std::size_t>(it - next.begin())] = true;
    const bool routes = !same_routes(slot.rule, *it);
    const bool policy = !same_policy(slot.rule.access, it->access);
    if (routes || policy) {
      plan.changed.push_back(index);
      if (routes) plan.routes_narrowed.push_back(index);
      if (policy) ++plan.policies_changed;
      slot.rule = *it;
    }
  }
  for (std::size_t i = 0; i < next.size(); ++i) {
    if (taken[i]) continue;
    plan.added.push_back(static_cast<std::uint32_t>(plan.table.slots.size()));
    plan.table.slots.push_back(TokenSlot{next[i], false});
  }
  plan.any_policy = std::any_of(plan.table.slots.begin(), plan.table.slots.end(),
                                [](const TokenSlot& s) { return !s.revoked && !s.rule.access.empty(); });
  return plan;
}

std::vector<std::string> restart_only_changes(const app::GatewayConfig& running, const app::GatewayConfig& next) {
  std::vector<std::string> changed;
  auto check = [&changed](bool differs, const char* flag) {
    if (differs) changed.emplace_back(flag);
  };
  const app::CommonConfig& a = running.common;
  const app::CommonConfig& b = next.common;
  // Listeners are opened once, before the cores start, and handed to them as descriptors; the timeouts and limits
  // are copied into each core's rooms at start.
  check(running.listen_text != next.listen_text, "--listen");
  check(running.http_listen_text != next.http_listen_text, "--http-listen");
  check(running.tls_listen_text != next.tls_listen_text, "--tls-listen");
  check(a.admin_listen_text != b.admin_listen_text, "--admin-listen");
  check(a.admin_token != b.admin_token, "--admin-token");
  check(a.threads != b.threads, "--threads");
  check(a.cpus != b.cpus, "--cpus");
  check(a.busy_poll_us != b.busy_poll_us, "--busy-poll-us");
  check(a.log_level != b.log_level, "--log-level");
  check(a.heartbeat_ms != b.heartbeat_ms, "--heartbeat-ms");
  check(a.dead_peer_ms != b.dead_peer_ms, "--dead-peer-ms");
  check(a.drain_timeout_ms != b.drain_timeout_ms, "--drain-timeout-ms");
  check(a.insecure_plaintext != b.insecure_plaintext, "--insecure-plaintext");
  check(a.cert_file != b.cert_file, "--cert");
  check(a.key_file != b.key_file, "--key");
  check(running.client_ca_file != next.client_ca_file, "--client-ca");
  check(running.state_dir != next.state_dir, "--state-dir");
  check(running.max_streams_per_connection != next.max_streams_per_connection, "--max-streams");
  check(running.http_head_timeout_ms != next.http_head_timeout_ms, "--http-head-timeout-ms");
  check(running.http_idle_timeout_ms != next.http_idle_timeout_ms, "--http-idle-timeout-ms");
  check(running.tls_hello_timeout_ms != next.tls_hello_timeout_ms, "--tls-hello-timeout-ms");
  check(running.access_log != next.access_log, "--access-log");
  check(running.access_log_json != next.access_log_json, "--log-format");
  return changed;
}

}  // namespace ringtun::gateway
