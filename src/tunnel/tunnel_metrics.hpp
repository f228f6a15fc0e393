// The per-core tunnel families both programs export on /metrics (ringtun_tunnel_connections, ringtun_streams_open,
// ringtun_streams_opened_total, ringtun_streams_refused_total{core}), from each core's TunnelStats (Counters: read
// from the admin core with relaxed loads). Thread rules: any thread.
#pragma once

#include <span>

#include "ops/metrics_text.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::tunnel {

// stats[i] is core i's (null: that core has not started).
void write_tunnel_metrics(ops::MetricsWriter& writer, std::span<const TunnelStats* const> stats);

}  // namespace ringtun::tunnel
