// GatewayAdmin: the gateway's side of the admin endpoint (--admin-listen): the routes of ops::AdminServer, on the
// registry core.
//
//   GET  /metrics                            Prometheus text: agents, tunnel connections, services, streams, bytes and
//                                            refusals by service and agent, handshake failures, HTTP responses by host,
//                                            the first-byte latency histogram, per-core loop counters, the process
//   GET  /healthz                            200 while the process runs
//   GET  /ready                              200 once every core started (listeners bound, route table loaded); 503
//                                            before that and while draining
//   GET  /api/v1/status                      role, version, start time, cores, ready, draining
//   GET  /api/v1/agents, /api/v1/agents/ID   connected agents: id, token name (never the secret), remote address,
//                                            since,
//                                            connections per core, services, live streams and bytes
//   POST /api/v1/agents/ID/disconnect        closes the agent's tunnel connections (it reconnects by itself)
//   GET  /api/v1/services?filter=&offset=&limit=   services with their live counters, sorted by name, paged
//   GET  /api/v1/refusals                    the last kRecentRefusals refused public connections, newest first
//   GET  /                                   the dashboard page
// Other cores' numbers are read from their Counters (relaxed loads: common/counter.hpp) and their traffic tables
// (traffic_table.hpp); registry state is read directly (same thread). Label values are service names and agent ids
// (bounded by the registry), never client addresses.
// Thread rules: the registry core's loop thread only, except note_refusal's posting side (see GatewayCore).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "gateway/routing.hpp"
#include "ops/admin_server.hpp"

namespace ringtun::gateway {

struct Gateway;
class RegistryRoom;

class GatewayAdmin final : public ops::AdminRoutes {
 public:
  static constexpr std::size_t kRecentRefusals = 64;

  GatewayAdmin(Gateway& gateway, RegistryRoom& registry);
  ~GatewayAdmin() override;

  void handle(const ops::AdminRequest& request, ops::AdminResponse& response) override;
  void note_refusal(Routing::RefusalEvent event);

  // For tests and benchmarks: the /metrics text.
  std::string render_metrics() const;

 private:
  void agents_json(std::string_view id, ops::AdminResponse& response) const;
  void services_json(std::string_view query, ops::AdminResponse& response) const;
  void refusals_json(ops::AdminResponse& response) const;
  void status_json(ops::AdminResponse& response) const;
  void disconnect(std::string_view id, ops::AdminResponse& response);

  Gateway& gateway_;
  RegistryRoom& registry_;
  std::deque<Routing::RefusalEvent> refusals_;  // newest first
  std::uint64_t started_ms_ = 0;
};

// "token1", "token2", ...: how the admin endpoint names a token (its place in the config), never by its secret.
std::string token_label(std::uint32_t token);

}  // namespace ringtun::gateway
