// HealthChecks: the agent's checks of its local services (--health tcp | http:/PATH), run on the core of connection 0.
//
// Every --health-interval-ms each service gets one probe, within --health-timeout-ms: a TCP connect to its local
// address (tcp), or a connect, "GET PATH" and a final answer of 2xx (http, read by http::ResponseReader).
// --health-fails failures in a row mark the service down; one success marks it up again. Each change is logged and told to the gateway in a "health" CONTROL
// message on connection 0: a member of a load-balancing group that is down gets no new traffic while another member
// is up. A service starts up (the gateway also starts every claim up), so the checks report only what is down: on
// a change, and again after every claim answer (a reconnect, or a service granted later, is up on the gateway).
// A service that expects the PROXY protocol gets a header saying "no client" (v1 UNKNOWN, v2 LOCAL) first.
// A reload (SIGHUP) hands the new service set to set_services(): added services get probes, removed ones lose theirs,
// and a service whose local side changed is probed there from now on, keeping its up/down state until the checks
// there say otherwise (the gateway's view of it does not change by itself).
// Thread rules: the loop thread of the core that owns it (core 0) only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "app/config.hpp"
#include "edge-agent/service_set.hpp"
#include "ring/loop.hpp"
#include "tunnel/handshake.hpp"

namespace ringtun::agent {

class AgentCore;

class HealthChecks {
 public:
  HealthChecks(AgentCore& core, app::HealthSpec spec);
  ~HealthChecks();
  HealthChecks(const HealthChecks&) = delete;
  HealthChecks& operator=(const HealthChecks&) = delete;

  // The services to check from now on: at start, then after each reload. Probes follow the services by name; new
  // ones have their first check spread over one interval.
  void set_services(const ServiceSet& services);
  // No new probes; the ones in flight are closed.
  void stop();
  // Connection 0 got a claim answer: tell the gateway again which services are down.
  void report_down();

 private:
  class Probe;
  friend class Probe;
  // A probe ended: `why` is null on success, else what failed (for the log line).
  void finished(Probe& probe, const char* why);
  void send(const std::vector<tunnel::ServiceHealth>& changes);
  // A probe no longer wanted: freed once the loop has reaped its socket (it may still call back until then).
  void retire(std::unique_ptr<Probe> probe);
  void reap(Probe& probe);

  AgentCore& core_;
  app::HealthSpec spec_;
  std::vector<std::unique_ptr<Probe>> probes_;   // one per service of the current set, in its order
  std::vector<std::unique_ptr<Probe>> retired_;  // removed by a reload, their last socket not yet reaped
  bool stopped_ = false;
};

}  // namespace ringtun::agent
