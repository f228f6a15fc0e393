#include "edge-agent/admin.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "common/clock.hpp"
#include "common/json_writer.hpp"
#include "edge-agent/agent.hpp"
#include "ops/dashboard.hpp"
#include "ops/shared_metrics.hpp"
#include "ops/metrics_text.hpp"
#include "ops/process_stats.hpp"
#include "tunnel/tunnel_metrics.hpp"

#ifndef RINGTUN_VERSION
#define RINGTUN_VERSION "unknown"
#endif

namespace ringtun::agent {

namespace {

using ops::MetricType;

// Each service's numbers (by index into `set`) summed over the cores, whose counters are by slot.
std::vector<ops::ServiceCounts> sum_services(const Agent& agent, const ServiceSet& set) {
  std::vector<ops::ServiceCounts> sums(set.size());
  for (unsigned index = 0; index < agent.threads; ++index) {
    const AgentCore* core = agent.started_core(index);
    if (core == nullptr) continue;
    for (std::size_t i = 0; i < sums.size(); ++i) {
      if (const tunnel::StreamTraffic* traffic = core->traffic().find(set[i].slot)) {
        tunnel::add_traffic(sums[i], *traffic, tunnel::Edge::kLocalService);
      }
    }
  }
  return sums;
}

}  // namespace

AgentAdmin::AgentAdmin(Agent& agent, const ServiceBook& book)
    : agent_(agent), book_(book), started_ms_(wall_clock_ms()) {}

bool AgentAdmin::ready() const noexcept {
  return agent_.connections_ready.load(std::memory_order_relaxed) >=
             agent_.gateway_cores.load(std::memory_order_relaxed) &&
         !agent_.draining.load(std::memory_order_relaxed);
}

void AgentAdmin::handle(const ops::AdminRequest& request, ops::AdminResponse& response) {
  const std::string_view path = request.path;
  if (path != "/metrics" && path != "/healthz" && path != "/ready" && path != "/" && path != "/api/v1/status" &&
      path != "/api/v1/services") {
    response.status = 404;
    response.body = "not found\n";
    return;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.body = "method not allowed\n";
    response.extra_headers = "Allow: GET, HEAD\r\n";
    return;
  }
  if (path == "/metrics") {
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = render_metrics();
  } else if (path == "/healthz") {
    response.body = "ok\n";
  } else if (path == "/ready") {
    const bool is_ready = ready();
    response.status = is_ready ? 200 : 503;
    response.body = agent_.draining.load(std::memory_order_relaxed) ? "draining\n"
                    : is_ready                                       ? "ready\n"
                                                                     : "not connected to the gateway\n";
  } else if (path == "/") {
    response.content_type = "text/html; charset=utf-8";
    response.body.assign(ops::dashboard_html());
  } else if (path == "/api/v1/status") {
    status_json(response);
  } else {
    services_json(request.query, response);
  }
}

void AgentAdmin::status_json(ops::AdminResponse& response) const {
  response.content_type = "application/json";
  JsonWriter json(response.body);
  json.begin_object()
      .field("role", "agent")
      .field("version", RINGTUN_VERSION)
      .field("id", agent_.config.agent_id)
      .field("started_ms", started_ms_)
      .field("now_ms", wall_clock_ms())
      .field("cores", std::uint64_t{agent_.threads})
      .field("ready", ready())
      .field("draining", agent_.draining.load(std::memory_order_relaxed))
      .field("gateway", agent_.config.gateway_text)
      .field("connected", agent_.connections_ready.load(std::memory_order_relaxed) > 0)
      .field("connections", std::uint64_t{agent_.connections_ready.load(std::memory_order_relaxed)})
      .field("gateway_cores", std::uint64_t{agent_.gateway_cores.load(std::memory_order_relaxed)})
      .end_object();
}

void AgentAdmin::services_json(std::string_view query, ops::AdminResponse& response) const {
  const ServiceSet& set = book_.service_set();
  const auto sums = sum_services(agent_, set);
  const std::string filter = ops::query_value(query, "filter");
  const std::uint64_t offset = ops::query_number(query, "offset", 0, UINT32_MAX);
  const std::uint64_t limit = ops::query_number(query, "limit", 100, 1000);
  std::vector<std::size_t> rows;
  for (const auto& [name, index] : set.by_name()) {
    const app::ServiceConfig& service = set[index].config;
    if (!ops::contains_folded(name, filter) && !ops::contains_folded(service.host, filter) &&
        std::to_string(service.public_port) != filter) {
      continue;
    }
    rows.push_back(index);
  }
  response.content_type = "application/json";
  JsonWriter json(response.body);
  json.begin_object().field("total", std::uint64_t{rows.size()}).field("offset", offset).key("services").begin_array();
  for (std::size_t r = offset; r < rows.size() && r < offset + limit; ++r) {
    const std::size_t i = rows[r];
    const app::ServiceConfig& service = set[i].config;
    json.begin_object()
        .field("name", service.name)
        .field("kind", route::kind_name(service.kind))
        .field("port", std::uint64_t{service.public_port})
        .field("host", service.host)
        .field("local", service.local_text)
        .field("state", book_.state_name(i))
        .field("message", book_.message(i))
        .field("streams_open", sums[i].streams_open)
        .field("streams_total", sums[i].streams_opened)
        .field("bytes_in", sums[i].bytes_in)
        .field("bytes_out", sums[i].bytes_out)
        .end_object();
  }
  json.end_array().end_object();
}

std::string AgentAdmin::render_metrics() const {
  std::string out;
  ops::MetricsWriter m(out);
  m.single("ringtun_agent_ready", MetricType::kGauge, "1 while every tunnel connection to the gateway is up.",
           ready() ? 1 : 0);
  std::vector<const tunnel::TunnelStats*> tunnels(agent_.threads, nullptr);
  for (unsigned core = 0; core < agent_.threads; ++core) {
    if (const AgentCore* c = agent_.started_core(core)) tunnels[core] = &c->tunnel_stats();
  }
  tunnel::write_tunnel_metrics(m, tunnels);
  const ServiceSet& set = book_.service_set();
  const auto sums = sum_services(agent_, set);
  std::vector<std::array<ops::Label, 2>> labels(sums.size());
  std::vector<ops::ServiceRow> rows;
  rows.reserve(sums.size());
  for (std::size_t i = 0; i < sums.size(); ++i) {
    const app::ServiceConfig& service = set[i].config;
    labels[i] = {ops::Label{"service", service.name}, ops::Label{"kind", route::kind_name(service.kind)}};
    rows.push_back({labels[i], sums[i]});
  }
  ops::write_service_metrics(m, rows, false);
  std::vector<const ring::LoopStats*> loops;
  for (unsigned core = 0; core < agent_.threads; ++core) {
    const AgentCore* c = agent_.started_core(core);
    loops.push_back(c != nullptr ? &c->loop_stats() : nullptr);
  }
  ops::write_loop_metrics(m, loops);
  ops::write_process_metrics(m, RINGTUN_VERSION);
  return out;
}

}  // namespace ringtun::agent
