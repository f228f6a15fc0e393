// TokenTable: the tokens the gateway accepts, by a stable index, and what a configuration reload changes in them.
//
// A token's index is who owns routes and sessions (route::Owner::token), indexes the access policies, and keys the
// policy counters. So a reload must not renumber anything: a token kept (same secret) keeps its index; a removed
// token's slot stays, revoked (no hello matches it, its sessions are released); a new token takes a new index at the
// end. Slots of revoked tokens are not reused: a late message of a released session (a detach, a connection's last
// stream) could otherwise be taken for the new token's. A table grows by the tokens added over the process's life,
// which an operator's edits bound.
// plan_token_reload is pure: it compares and counts; the gateway applies the result (gateway_reload.cpp).
// Thread rules: a TokenTable is immutable once published (Gateway::tokens, an atomic shared pointer); any thread
// may read one it loaded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/config.hpp"

namespace ringtun::gateway {

struct TokenSlot {
  app::TokenRule rule;  // secret empty once revoked
  bool revoked = false;
};

struct TokenTable {
  std::vector<TokenSlot> slots;  // by token index

  // The token at `index`, or null when there is none or it was revoked.
  const app::TokenRule* live(std::uint32_t index) const noexcept {
    return index < slots.size() && !slots[index].revoked ? &slots[index].rule : nullptr;
  }
  std::size_t live_count() const noexcept;
};

// The start-up table: the config's tokens in their order.
TokenTable make_token_table(const std::vector<app::TokenRule>& tokens);

struct TokenReload {
  TokenTable table;                            // the table to publish
  std::vector<std::uint32_t> added;            // new indices
  std::vector<std::uint32_t> removed;          // revoked indices
  std::vector<std::uint32_t> changed;          // kept, with other ports, hosts or policy
  std::vector<std::uint32_t> routes_narrowed;  // of `changed`: the port range or host patterns differ
  std::size_t policies_changed = 0;            // of `changed`: the access policy differs
  bool any_policy = false;                     // some live token has an access policy in `table`
};

// What `next` (a freshly parsed config's tokens) makes of `current`.
TokenReload plan_token_reload(const TokenTable& current, const std::vector<app::TokenRule>& next);

// The settings a reload cannot change in a running gateway: each one that differs between `running` and `next`,
// by its flag ("--http-listen", "--threads"...). The caller logs "X changed: takes effect after a restart".
std::vector<std::string> restart_only_changes(const app::GatewayConfig& running, const app::GatewayConfig& next);

}  // namespace ringtun::gateway
