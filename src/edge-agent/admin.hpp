// AgentAdmin: the agent's side of the admin endpoint (--admin-listen), the routes of ops::AdminServer on core 0 (the
// core of connection 0, where the service book lives).
//
//   GET /metrics          Prometheus text: tunnel connections and streams per core, streams and bytes per service
//                         (in = towards the local service, from public clients; out = back to them), loops, process
//   GET /healthz          200 while the process runs
//   GET /ready            200 while every tunnel connection to the gateway is up; 503 otherwise or while draining
//   GET /api/v1/status    role "agent", version, start time, cores, ready, draining, gateway, connected
//   GET /api/v1/services  the configured services: state the gateway gave them, live counters (?filter=&offset=&limit=)
//   GET /                 the dashboard page
// Other cores' numbers are Counters (relaxed loads), found by slot; the services listed are core 0's set (a reload
// swaps it on this core, between two requests), with the statuses of the service book on the same core.
// Thread rules: core 0's loop thread.
#pragma once

#include <cstdint>
#include <string>

#include "ops/admin_server.hpp"

namespace ringtun::agent {

struct Agent;
class ServiceBook;

class AgentAdmin final : public ops::AdminRoutes {
 public:
  AgentAdmin(Agent& agent, const ServiceBook& book);
  void handle(const ops::AdminRequest& request, ops::AdminResponse& response) override;
  std::string render_metrics() const;

 private:
  bool ready() const noexcept;
  void status_json(ops::AdminResponse& response) const;
  void services_json(std::string_view query, ops::AdminResponse& response) const;

  Agent& agent_;
  const ServiceBook& book_;
  std::uint64_t started_ms_ = 0;
};

}  // namespace ringtun::agent
