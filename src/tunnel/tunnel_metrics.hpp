// The per-core tunnel families both programs export on /metrics (ringtun_tunnel_connections, ringtun_streams_open,
// ringtun_streams_opened_total, ringtun_streams_refused_total{core}), from each core's TunnelStats (Counters: read
// from the admin core with relaxed loads). Thread rules: any thread.
#pragma once

#include <span>

#include "ops/shared_metrics.hpp"
#include "ops/metrics_text.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::tunnel {

// stats[i] is core i's (null: that core has not started).
void write_tunnel_metrics(ops::MetricsWriter& writer, std::span<const TunnelStats* const> stats);

// Adds one core's StreamTraffic of a service to `sum`. `in` (from public clients) is bytes from the edge where the
// edge is the public client (the gateway), bytes to the edge where it is the local service (the agent).
enum class Edge : std::uint8_t { kPublicClient, kLocalService };
void add_traffic(ops::ServiceCounts& sum, const StreamTraffic& traffic, Edge edge) noexcept;

}  // namespace ringtun::tunnel
