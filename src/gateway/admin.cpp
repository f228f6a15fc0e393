#include "gateway/admin.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>

#include "common/clock.hpp"
#include "common/json_writer.hpp"
#include "gateway/gateway.hpp"
#include "gateway/registry_room.hpp"
#include "ops/dashboard.hpp"
#include "ops/histogram.hpp"
#include "ops/shared_metrics.hpp"
#include "ops/metrics_text.hpp"
#include "ops/process_stats.hpp"
#include "tunnel/tunnel_metrics.hpp"

#ifndef RINGTUN_VERSION
#define RINGTUN_VERSION "unknown"
#endif

namespace ringtun::gateway {

namespace {

using ops::Label;
using ops::MetricType;

constexpr const char* kJson = "application/json";
constexpr const char* kStatusClass[6] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};  // by status / 100

// One service's numbers summed over every core.
struct ServiceSum {
  const TrafficEntry* entry = nullptr;  // labels (from the first core that has it)
  ops::ServiceCounts counts;
  std::uint64_t http[6] = {};
};

std::string service_key(std::uint32_t token, std::string_view agent, std::string_view service) {
  std::string key = std::to_string(token);
  key.push_back('\0');
  key.append(agent);
  key.push_back('\0');
  key.append(service);
  return key;
}

std::map<std::string, ServiceSum> sum_services(const Gateway& gateway) {
  std::map<std::string, ServiceSum> sums;
  for (unsigned core = 0; core < gateway.core_count; ++core) {
    const GatewayCore* c = gateway.started_core(core);
    if (c == nullptr) continue;
    const TrafficTable& table = c->routing().traffic();
    const std::size_t size = table.size();
    for (std::size_t i = 0; i < size; ++i) {
      const TrafficEntry& e = table.at(i);
      ServiceSum& sum = sums[service_key(e.token, e.agent, e.service)];
      if (sum.entry == nullptr) sum.entry = &e;
      tunnel::add_traffic(sum.counts, e.traffic, tunnel::Edge::kPublicClient);
      sum.counts.refused += e.refused.get();
      for (int k = 1; k <= 5; ++k) sum.http[k] += e.http_status[k].get();
    }
  }
  return sums;
}

void not_found(ops::AdminResponse& response) {
  response.status = 404;
  response.body = "not found\n";
}

void method_not_allowed(ops::AdminResponse& response, const char* allow) {
  response.status = 405;
  response.body = "method not allowed\n";
  response.extra_headers = std::string("Allow: ") + allow + "\r\n";
}

}  // namespace

std::string token_label(std::uint32_t token) { return "token" + std::to_string(token + 1); }

GatewayAdmin::GatewayAdmin(Gateway& gateway, RegistryRoom& registry)
    : gateway_(gateway), registry_(registry), started_ms_(wall_clock_ms()) {}

GatewayAdmin::~GatewayAdmin() = default;

void GatewayAdmin::note_refusal(Routing::RefusalEvent event) {
  refusals_.push_front(std::move(event));
  if (refusals_.size() > kRecentRefusals) refusals_.pop_back();
}

void GatewayAdmin::handle(const ops::AdminRequest& request, ops::AdminResponse& response) {
  const std::string_view path = request.path;
  const bool get = request.method == "GET" || request.method == "HEAD";
  constexpr std::string_view kAgents = "/api/v1/agents/";
  if (path.starts_with(kAgents) && path.ends_with("/disconnect")) {
    const std::string_view id = path.substr(kAgents.size(), path.size() - kAgents.size() - 11);
    if (request.method != "POST") return method_not_allowed(response, "POST");
    return disconnect(id, response);
  }
  if (path == "/metrics" || path == "/healthz" || path == "/ready" || path == "/" || path == "/api/v1/status" ||
      path == "/api/v1/agents" || path.starts_with(kAgents) || path == "/api/v1/services" ||
      path == "/api/v1/refusals") {
    if (!get) return method_not_allowed(response, "GET, HEAD");
  } else {
    return not_found(response);
  }
  if (path == "/metrics") {
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = render_metrics();
  } else if (path == "/healthz") {
    response.body = "ok\n";
  } else if (path == "/ready") {
    const bool started = gateway_.cores_started.load(std::memory_order_acquire) == gateway_.core_count;
    const bool draining = gateway_.draining.load(std::memory_order_relaxed);
    response.status = started && !draining ? 200 : 503;
    response.body = draining ? "draining\n" : started ? "ready\n" : "starting\n";
  } else if (path == "/") {
    response.content_type = "text/html; charset=utf-8";
    response.body.assign(ops::dashboard_html());
  } else if (path == "/api/v1/status") {
    status_json(response);
  } else if (path == "/api/v1/agents") {
    agents_json({}, response);
  } else if (path.starts_with(kAgents)) {
    agents_json(path.substr(kAgents.size()), response);
  } else if (path == "/api/v1/services") {
    services_json(request.query, response);
  } else {
    refusals_json(response);
  }
}

void GatewayAdmin::status_json(ops::AdminResponse& response) const {
  response.content_type = kJson;
  JsonWriter json(response.body);
  json.begin_object()
      .field("role", "gateway")
      .field("version", RINGTUN_VERSION)
      .field("started_ms", started_ms_)
      .field("now_ms", wall_clock_ms())
      .field("cores", std::uint64_t{gateway_.core_count})
      .field("ready", gateway_.cores_started.load(std::memory_order_acquire) == gateway_.core_count &&
                          !gateway_.draining.load(std::memory_order_relaxed))
      .field("draining", gateway_.draining.load(std::memory_order_relaxed))
      .end_object();
}

void GatewayAdmin::agents_json(std::string_view id, ops::AdminResponse& response) const {
  const auto sums = sum_services(gateway_);
  const auto agents = registry_.agents();
  response.content_type = kJson;
  JsonWriter json(response.body);
  bool found = false;
  if (id.empty()) json.begin_object().key("agents").begin_array();
  for (const RegistryRoom::AgentView& agent : agents) {
    const SessionInfo& info = *agent.info;
    if (!id.empty() && info.owner.agent_id != id) continue;
    if (!id.empty() && found) break;  // the same id under two tokens: the first (ask by token with the list)
    found = true;
    ops::ServiceCounts total;
    const std::string prefix = service_key(info.owner.token, info.owner.agent_id, {});
    for (auto it = sums.lower_bound(prefix); it != sums.end() && it->first.starts_with(prefix); ++it) {
      total += it->second.counts;
    }
    json.begin_object()
        .field("id", info.owner.agent_id)
        .field("token", token_label(info.owner.token))
        .field("instance", info.instance)
        .field("remote", info.peer)
        .field("connected_since_ms", info.since_ms)
        .key("connections_per_core")
        .begin_array();
    for (unsigned n : agent.connections_per_core) json.number(n);
    json.end_array().key("services").begin_array();
    for (const std::string& name : agent.services) json.string(name);
    json.end_array()
        .field("streams_open", total.streams_open)
        .field("streams_total", total.streams_opened)
        .field("bytes_in", total.bytes_in)
        .field("bytes_out", total.bytes_out)
        .end_object();
  }
  if (id.empty()) {
    json.end_array().end_object();
  } else if (!found) {
    response.body.clear();
    response.status = 404;
    JsonWriter error(response.body);
    error.begin_object().field("error", "no connected agent with this id").end_object();
  }
}

void GatewayAdmin::services_json(std::string_view query, ops::AdminResponse& response) const {
  const auto sums = sum_services(gateway_);
  const std::string filter = ops::query_value(query, "filter");
  const std::uint64_t offset = ops::query_number(query, "offset", 0, UINT32_MAX);
  const std::uint64_t limit = ops::query_number(query, "limit", 100, 1000);
  // Every service in the route table (even one that never had a connection), with its counters when it has some.
  const auto table = registry_.registry().table();
  struct Row {
    const route::Route* route;
    const ServiceSum* sum;
  };
  std::vector<Row> rows;
  for (const route::Route& route : table->routes()) {
    const std::string port = route.key.kind == route::Kind::kTcp ? std::to_string(route.key.port) : std::string();
    if (!filter.empty() && !ops::contains_folded(route.service, filter) &&
        !ops::contains_folded(route.key.host, filter) && !ops::contains_folded(route.owner.agent_id, filter) &&
        port != filter) {
      continue;
    }
    auto it = sums.find(service_key(route.owner.token, route.owner.agent_id, route.service));
    rows.push_back({&route, it == sums.end() ? nullptr : &it->second});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.route->service, a.route->owner.agent_id) < std::tie(b.route->service, b.route->owner.agent_id);
  });
  response.content_type = kJson;
  JsonWriter json(response.body);
  json.begin_object().field("total", std::uint64_t{rows.size()}).field("offset", offset).key("services").begin_array();
  const ops::ServiceCounts none;
  for (std::size_t i = offset; i < rows.size() && i < offset + limit; ++i) {
    const route::Route& route = *rows[i].route;
    const ops::ServiceCounts& sum = rows[i].sum != nullptr ? rows[i].sum->counts : none;
    json.begin_object()
        .field("name", route.service)
        .field("kind", route::kind_name(route.key.kind))
        .field("port", std::uint64_t{route.key.port})
        .field("host", route.key.host)
        .field("agent", route.owner.agent_id)
        .field("token", token_label(route.owner.token))
        .field("group", route.group)
        .field("members", std::uint64_t{route.members})
        .field("members_up", std::uint64_t{route.members_up})
        .field("streams_open", sum.streams_open)
        .field("streams_total", sum.streams_opened)
        .field("bytes_in", sum.bytes_in)
        .field("bytes_out", sum.bytes_out)
        .field("refused_total", sum.refused)
        .end_object();
  }
  json.end_array().end_object();
}

void GatewayAdmin::refusals_json(ops::AdminResponse& response) const {
  response.content_type = kJson;
  JsonWriter json(response.body);
  json.begin_object().key("refusals").begin_array();
  for (const Routing::RefusalEvent& event : refusals_) {
    json.begin_object()
        .field("time_ms", event.time_ms)
        .field("listener", event.listener)
        .field("client", event.client)
        .field("service", event.service)
        .field("reason", event.reason)
        .end_object();
  }
  json.end_array().end_object();
}

void GatewayAdmin::disconnect(std::string_view id, ops::AdminResponse& response) {
  response.content_type = kJson;
  const std::size_t closed = registry_.disconnect(id, -1, "disconnected by the operator (admin API)");
  JsonWriter json(response.body);
  if (closed == 0) {
    response.status = 404;
    json.begin_object().field("error", "no connected agent with this id").end_object();
    return;
  }
  json.begin_object().field("disconnected", id).field("connections", std::uint64_t{closed}).end_object();
}

std::string GatewayAdmin::render_metrics() const {
  std::string out;
  out.reserve(16 * 1024);
  ops::MetricsWriter m(out);
  const auto agents = registry_.agents();
  const auto table = registry_.registry().table();

  m.single("ringtun_agents_connected", MetricType::kGauge, "Agent sessions connected now.", agents.size());
  std::uint64_t by_kind[3] = {};
  for (const route::Route& route : table->routes()) ++by_kind[static_cast<int>(route.key.kind)];
  m.family("ringtun_services", MetricType::kGauge, "Services routed now, by kind.");
  for (int kind = 0; kind < 3; ++kind) {
    m.sample("ringtun_services", {{"kind", route::kind_name(static_cast<route::Kind>(kind))}}, by_kind[kind]);
  }

  // Per core.
  std::vector<const tunnel::TunnelStats*> tunnels(gateway_.core_count, nullptr);
  for (unsigned core = 0; core < gateway_.core_count; ++core) {
    if (const GatewayCore* c = gateway_.started_core(core)) tunnels[core] = &c->tunnel_stats();
  }
  tunnel::write_tunnel_metrics(m, tunnels);
  std::vector<const ring::LoopStats*> loops(gateway_.core_count, nullptr);
  for (unsigned core = 0; core < gateway_.core_count; ++core) {
    if (const GatewayCore* c = gateway_.started_core(core)) loops[core] = &c->loop_stats();
  }
  ops::write_loop_metrics(m, loops);

  // Refusals and handshake failures, summed over cores.
  std::uint64_t no_route = 0, no_tunnel = 0, stream_limit = 0, tls_unknown = 0, tls_malformed = 0, tls_timeout = 0,
                tls_over = 0, tls_no_tunnel = 0, http_errors = 0, denied = 0, rate_limited = 0, max_conns = 0,
                max_conns_per_client = 0;
  std::uint64_t http_class[6] = {};
  std::uint64_t failures[static_cast<int>(HandshakeFailure::kCount)] = {};
  ops::HistogramSum first_byte;
  for (unsigned core = 0; core < gateway_.core_count; ++core) {
    const GatewayCore* c = gateway_.started_core(core);
    if (c == nullptr) continue;
    const Routing::Stats& r = c->routing().stats();
    no_route += r.refused_no_route.get();
    no_tunnel += r.refused_no_tunnel.get();
    stream_limit += r.refused_stream_limit.get();
    const AccessGate::Stats& g = c->routing().gate().stats();
    denied += g.denied.get();
    rate_limited += g.rate_limited.get();
    max_conns += g.service_full.get();
    max_conns_per_client += g.client_full.get();
    if (const TlsStats* t = c->tls_stats()) {
      tls_unknown += t->unknown_name.get();
      tls_malformed += t->malformed.get();
      tls_timeout += t->timed_out.get();
      tls_over += t->over_limit.get();
      tls_no_tunnel += t->no_tunnel.get();
    }
    if (const HttpStats* h = c->http_stats()) {
      http_errors += h->gateway_errors.get();
      for (int k = 1; k <= 5; ++k) http_class[k] += h->responses[k].get();
    }
    for (int f = 0; f < static_cast<int>(HandshakeFailure::kCount); ++f) {
      failures[f] += c->intake().failures(static_cast<HandshakeFailure>(f)).get();
    }
    c->routing().first_byte().add_to(first_byte);
  }
  m.family("ringtun_public_connections_refused_total", MetricType::kCounter,
           "Public connections closed without a stream, by reason.");
  const std::pair<const char*, std::uint64_t> refused[] = {
      {"no_route", no_route},          {"no_tunnel", no_tunnel},       {"stream_limit", stream_limit},
      {"tls_unknown_name", tls_unknown}, {"tls_malformed", tls_malformed}, {"tls_timeout", tls_timeout},
      {"tls_over_limit", tls_over},    {"tls_no_tunnel", tls_no_tunnel}, {"denied", denied},
      {"rate_limited", rate_limited},  {"max_conns", max_conns},       {"max_conns_per_client", max_conns_per_client}};
  for (const auto& [reason, value] : refused) {
    m.sample("ringtun_public_connections_refused_total", {{"reason", reason}}, value);
  }
  m.family("ringtun_handshake_failures_total", MetricType::kCounter,
           "Tunnel connections that never became an agent's, by reason.");
  for (int f = 0; f < static_cast<int>(HandshakeFailure::kCount); ++f) {
    m.sample("ringtun_handshake_failures_total", {{"reason", handshake_failure_name(static_cast<HandshakeFailure>(f))}},
             failures[f]);
  }
  if (!gateway_.config.http_listen_text.empty()) {
    m.family("ringtun_http_responses_total", MetricType::kCounter,
             "Responses on the shared HTTP port by status class (services' and the gateway's own).");
    for (int k = 1; k <= 5; ++k) m.sample("ringtun_http_responses_total", {{"code", kStatusClass[k]}}, http_class[k]);
    m.single("ringtun_http_gateway_errors_total", MetricType::kCounter,
             "Error responses the gateway wrote itself (404, 502, 503...).", http_errors);
  }
  m.family("ringtun_stream_first_byte_seconds", MetricType::kHistogram,
           "Time from a public connection's stream open to the first byte from its service.");
  m.histogram("ringtun_stream_first_byte_seconds", {}, first_byte);

  // By service and by agent.
  const auto sums = sum_services(gateway_);
  std::vector<std::string> tokens;
  std::vector<std::array<Label, 4>> labels;
  std::vector<ops::ServiceRow> rows;
  tokens.reserve(sums.size());
  labels.reserve(sums.size());
  rows.reserve(sums.size());
  std::map<std::pair<std::uint32_t, std::string>, ops::ServiceCounts> by_agent;  // (token, agent id) -> totals
  for (const auto& [key, sum] : sums) {
    tokens.push_back(token_label(sum.entry->token));
    labels.push_back({Label{"agent", sum.entry->agent}, Label{"token", tokens.back()},
                      Label{"service", sum.entry->service}, Label{"kind", route::kind_name(sum.entry->kind)}});
    rows.push_back({labels.back(), sum.counts});
    by_agent[{sum.entry->token, sum.entry->agent}] += sum.counts;
  }
  ops::write_service_metrics(m, rows, true);
  m.family("ringtun_agent_bytes_total", MetricType::kCounter,
           "Bytes through all of an agent's services: in = from public clients, out = to them.");
  for (const auto& [owner, totals] : by_agent) {
    const std::string token = token_label(owner.first);
    m.sample("ringtun_agent_bytes_total", {{"agent", owner.second}, {"token", token}, {"direction", "in"}},
             totals.bytes_in);
    m.sample("ringtun_agent_bytes_total", {{"agent", owner.second}, {"token", token}, {"direction", "out"}},
             totals.bytes_out);
  }
  if (!gateway_.config.http_listen_text.empty()) {
    m.family("ringtun_http_requests_total", MetricType::kCounter,
             "Requests answered for an http service, by its host name and status class.");
    for (const auto& [key, sum] : sums) {
      if (sum.entry->kind != route::Kind::kHttp) continue;
      for (int k = 1; k <= 5; ++k) {
        if (sum.http[k] == 0) continue;
        m.sample("ringtun_http_requests_total",
                 {{"host", sum.entry->host}, {"service", sum.entry->service}, {"code", kStatusClass[k]}}, sum.http[k]);
      }
    }
  }
  ops::write_process_metrics(m, RINGTUN_VERSION);
  return out;
}

}  // namespace ringtun::gateway
