// Messages between the gateway's cores. All travel on the control path (ring/post.hpp): never refused, in order per
// sender. Each carries the Gateway so that its handler finds the receiving core's GatewayCore by the loop it runs on
// (no globals). A message that owns an fd closes it if it is destroyed unhandled (its target loop stopped first).
//
//   intake core  --Arrival-------------> serving core (the hello's conn_index)
//   serving core --AttachRequest-------> registry core     --AttachReply--> serving core
//   serving core --ClaimRequestMsg-----> registry core     --ClaimReply---> serving core   (claims and releases)
//   serving core --DetachRequest-------> registry core
//   registry core --SetTable / BindPort / UnbindPort--> every core --PortClosed (after UnbindPort)--> registry core
//   reload (SIGHUP, the runtime's thread) --SetAccess--> every core; --TokensChanged--> registry core
//   registry core --RevokeLink / ServicesReleased--> the core of an agent's connection (after TokensChanged)
#pragma once

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "route/route.hpp"
#include "tunnel/handshake.hpp"

namespace ringtun::gateway {

struct Gateway;
struct AccessPolicies;
struct TokenTable;

// A tunnel connection of an agent asks to join (or begin) its session.
struct AttachRequest {
  Gateway* gateway = nullptr;
  unsigned core = 0;
  std::uint64_t tag = 0;  // the connection's link on `core`
  route::Owner owner;
  std::string instance;
  std::uint32_t conn_index = 0;
  std::string peer;
};

struct AttachReply {
  Gateway* gateway = nullptr;
  std::uint64_t tag = 0;
  route::SessionRef session;                 // when accepted
  std::optional<tunnel::Refusal> refusal;    // when refused
};

struct DetachRequest {
  Gateway* gateway = nullptr;
  route::SessionRef session;
  unsigned core = 0;
  std::uint64_t tag = 0;
};

struct ClaimRequestMsg {
  Gateway* gateway = nullptr;
  route::SessionRef session;
  unsigned core = 0;
  std::uint64_t tag = 0;
  std::vector<tunnel::ServiceDecl> services;
  std::vector<std::string> release;  // set: a release of these service names instead (services is empty)
};

// An agent's health checks changed (a "health" CONTROL message on one of its connections).
struct HealthReport {
  Gateway* gateway = nullptr;
  route::SessionRef session;
  std::vector<tunnel::ServiceHealth> services;
};

struct ClaimReply {
  Gateway* gateway = nullptr;
  std::uint64_t tag = 0;
  std::vector<tunnel::ServiceStatus> statuses;
  bool release = false;  // the answer to a release: nothing is sent to the agent, the next claim may go
};

struct SetTable {
  Gateway* gateway = nullptr;
  std::shared_ptr<const route::Table> table;
};

struct BindPort {
  BindPort() = default;
  BindPort(const BindPort&) = delete;
  BindPort& operator=(const BindPort&) = delete;
  ~BindPort() {
    if (fd >= 0) ::close(fd);
  }
  Gateway* gateway = nullptr;
  std::uint16_t port = 0;
  int fd = -1;  // the receiving core takes it (sets it to -1)
};

struct UnbindPort {
  Gateway* gateway = nullptr;
  std::uint16_t port = 0;
};

// A core's listener of an unbound port is closed: the port is free of our own sockets there.
struct PortClosed {
  Gateway* gateway = nullptr;
  std::uint16_t port = 0;
};

// A reload's access policies (null: no token has one); the core counts itself out of the generation it leaves.
struct SetAccess {
  Gateway* gateway = nullptr;
  const AccessPolicies* policies = nullptr;
};

// A reload published `table` (Gateway::tokens): the registry releases the sessions of `removed` tokens and, for
// tokens in `routes_narrowed`, the services their new port range or host patterns no longer allow.
struct TokensChanged {
  Gateway* gateway = nullptr;
  std::shared_ptr<const TokenTable> table;
  std::vector<std::uint32_t> removed;
  std::vector<std::uint32_t> routes_narrowed;
  std::string summary;  // "tokens +1 -1 ~1, policies changed 1": the registry adds what it released and logs it
};

// The registry tells an agent's connection why it is released (its token was revoked) and closes it.
struct RevokeLink {
  Gateway* gateway = nullptr;
  std::uint64_t tag = 0;
  tunnel::Refusal refusal;
};

// Services of an agent that a reload no longer allows, for its connection 0 (which reads claim answers): sent as
// an unsolicited "claimed" answer with one refused status each.
struct ServicesReleased {
  Gateway* gateway = nullptr;
  std::uint64_t tag = 0;
  std::vector<tunnel::ServiceStatus> statuses;
};

}  // namespace ringtun::gateway
