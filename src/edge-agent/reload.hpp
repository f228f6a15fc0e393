// Reloader: the agent's SIGHUP. Parses the command line and --config again (what start-up parsed, the same way), builds
// the new ServiceSet, logs what changes ("reload: services +1 -1 ~1") and hands the set to every core by message; on
// the core of connection 0, the service book releases what is gone and claims what is new on the live tunnel
// (AgentCore::set_services). Only the services are reloaded: other settings take effect at the next start.
// A config that does not parse, or a set the slots cannot hold, is logged with its place and changes nothing.
// Thread rules: start() before the runtime runs; reload() on the runtime's thread (ring::RuntimeOptions::on_reload).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edge-agent/agent.hpp"
#include "edge-agent/service_set.hpp"

namespace ringtun::agent {

class Reloader {
 public:
  Reloader(Agent& agent, Reparse reparse) : agent_(agent), reparse_(reparse) {}

  // The first set (start-up). Errc::kInvalidArgument with *error if it cannot be built.
  Result<std::shared_ptr<const ServiceSet>> start(const std::vector<app::ServiceConfig>& services, std::string* error);
  void reload();

 private:
  Agent& agent_;
  Reparse reparse_;
  SlotBook slots_;
  std::shared_ptr<const ServiceSet> current_;  // the last set handed to the cores
};

}  // namespace ringtun::agent
