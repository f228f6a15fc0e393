// Reloader: see reload.hpp.
#include "edge-agent/reload.hpp"

#include <utility>

#include "common/log.hpp"
#include "ring/post.hpp"

namespace ringtun::agent {

namespace {

// One core's share of a reload. The sets are shared by every core's message: the last one done frees `before`.
struct ServicesUpdate {
  Agent* agent = nullptr;
  std::shared_ptr<const ServiceSet> before;
  std::shared_ptr<const ServiceSet> next;
  std::shared_ptr<const ServiceDiff> diff;
};

const char* proxy_name(tunnel::ProxyProtocol protocol) {
  return protocol == tunnel::ProxyProtocol::kNone ? "none" : tunnel::proxy_protocol_name(protocol);
}

void log_changes(const ServiceSet& before, const ServiceSet& after, const ServiceDiff& diff) {
  LOG_INFO("reload: services +%zu -%zu ~%zu", diff.added.size(), diff.removed.size(),
           diff.reclaimed.size() + diff.changed.size());
  for (std::size_t i : diff.added) {
    LOG_INFO("reload: + '%s' (%s)", after[i].config.name.c_str(), public_to_local(after[i].config).c_str());
  }
  for (std::size_t i : diff.removed) {
    LOG_INFO("reload: - '%s' (%s)", before[i].config.name.c_str(), public_to_local(before[i].config).c_str());
  }
  for (std::size_t i : diff.reclaimed) {
    const AgentService& was = *before.find(after[i].config.name);
    LOG_INFO("reload: ~ '%s' (%s, was %s): released and claimed again", after[i].config.name.c_str(),
             public_to_local(after[i].config).c_str(), public_to_local(was.config).c_str());
  }
  for (std::size_t i : diff.changed) {
    const AgentService& was = *before.find(after[i].config.name);
    LOG_INFO("reload: ~ '%s' (%s, PROXY protocol %s; was %s, %s): new streams go there", after[i].config.name.c_str(),
             public_to_local(after[i].config).c_str(), proxy_name(after[i].config.proxy_protocol),
             was.config.local_text.c_str(), proxy_name(was.config.proxy_protocol));
  }
}

// Settings a reload does not apply: say so rather than let an operator believe they changed.
void warn_unapplied(const app::AgentConfig& running, const app::AgentConfig& read) {
  std::string names;
  auto check = [&names](bool same, const char* name) {
    if (!same) names += names.empty() ? name : std::string(", ") + name;
  };
  check(running.gateway_text == read.gateway_text, "--gateway");
  check(running.token == read.token, "the token");
  check(running.agent_id == read.agent_id, "--agent-id");
  check(running.common.threads == read.common.threads, "--threads");
  check(running.common.admin_listen_text == read.common.admin_listen_text, "--admin-listen");
  check(running.ca_file == read.ca_file && running.gateway_fingerprint == read.gateway_fingerprint &&
            running.server_name == read.server_name,
        "the gateway's verification (--ca, --gateway-fingerprint, --server-name)");
  check(running.health == read.health && running.health_interval_ms == read.health_interval_ms &&
            running.health_timeout_ms == read.health_timeout_ms && running.health_fails == read.health_fails,
        "the health checks (--health, --health-interval-ms, --health-timeout-ms, --health-fails)");
  check(running.common.cpus == read.common.cpus, "--cpus");
  check(running.common.busy_poll_us == read.common.busy_poll_us, "--busy-poll-us");
  if (!names.empty()) {
    LOG_WARN("reload: only the services are reloaded; %s changed and take(s) effect at the next start", names.c_str());
  }
}

}  // namespace

Result<std::shared_ptr<const ServiceSet>> Reloader::start(const std::vector<app::ServiceConfig>& services,
                                                          std::string* error) {
  auto set = slots_.build(services, agent_.config.group, nullptr, error);
  if (set) current_ = *set;
  return set;
}

void Reloader::reload() {
  if (agent_.cores_started.load(std::memory_order_acquire) != agent_.threads) {
    LOG_WARN("reload: the agent is still starting; nothing reloaded (send SIGHUP again)");
    return;
  }
  if (agent_.draining.load(std::memory_order_relaxed)) {
    LOG_WARN("reload: the agent is stopping; nothing reloaded");
    return;
  }
  std::string error;
  auto parsed = reparse_(&error);
  if (!parsed) {
    LOG_ERROR("reload failed: %s; the services stay as they were", error.c_str());
    return;
  }
  // parsed->warnings were logged at start-up; the same flags give the same ones (a --token secret), not repeated.
  auto next = slots_.build(parsed->config.services, parsed->config.group, current_.get(), &error);
  if (!next) {
    LOG_ERROR("reload failed: %s; the services stay as they were", error.c_str());
    return;
  }
  warn_unapplied(agent_.config, parsed->config);
  auto diff = std::make_shared<const ServiceDiff>(diff_services(*current_, **next));
  log_changes(*current_, **next, *diff);
  if (diff->empty()) return;
  std::shared_ptr<const ServiceSet> before = std::exchange(current_, *next);
  // Every core gets every set, in order (a loop runs the messages from one sender in order): a core's set is
  // always `before` of the next message.
  for (unsigned core = 0; core < agent_.threads; ++core) {
    auto update = std::make_unique<ServicesUpdate>(ServicesUpdate{&agent_, before, current_, diff});
    ring::deliver_owned<ServicesUpdate>(agent_.core(core).loop(), std::move(update),
                                        [](ring::Loop& loop, ServicesUpdate& m) {
                                          m.agent->core(loop.core()).set_services(m.next, *m.before, *m.diff);
                                        });
  }
}

}  // namespace ringtun::agent
