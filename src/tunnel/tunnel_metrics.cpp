#include "tunnel/tunnel_metrics.hpp"

#include <cstdio>
#include <string_view>

namespace ringtun::tunnel {

void write_tunnel_metrics(ops::MetricsWriter& writer, std::span<const TunnelStats* const> stats) {
  struct Family {
    const char* name;
    ops::MetricType type;
    const char* help;
    const Counter TunnelStats::*value;
  };
  static const Family kFamilies[] = {
      {"ringtun_tunnel_connections", ops::MetricType::kGauge, "Tunnel connections open on each core.",
       &TunnelStats::tunnels_open},
      {"ringtun_streams_open", ops::MetricType::kGauge, "Streams open on each core.", &TunnelStats::streams_open},
      {"ringtun_streams_opened_total", ops::MetricType::kCounter, "Streams opened on each core.",
       &TunnelStats::streams_opened},
      {"ringtun_streams_refused_total", ops::MetricType::kCounter,
       "Streams refused by the agent (a service it does not serve, or of another kind).",
       &TunnelStats::streams_refused},
  };
  for (const Family& family : kFamilies) {
    writer.family(family.name, family.type, family.help);
    for (std::size_t core = 0; core < stats.size(); ++core) {
      if (stats[core] == nullptr) continue;
      char text[16];
      const int n = std::snprintf(text, sizeof text, "%zu", core);
      writer.sample(family.name, {{"core", std::string_view(text, static_cast<std::size_t>(n))}},
                    (stats[core]->*family.value).get());
    }
  }
}

void add_traffic(ops::ServiceCounts& sum, const StreamTraffic& traffic, Edge edge) noexcept {
  const bool client_edge = edge == Edge::kPublicClient;
  sum.streams_opened += traffic.streams_opened.get();
  sum.streams_open += traffic.streams_open.get();
  sum.bytes_in += (client_edge ? traffic.bytes_from_edge : traffic.bytes_to_edge).get();
  sum.bytes_out += (client_edge ? traffic.bytes_to_edge : traffic.bytes_from_edge).get();
  sum.resets += traffic.resets.get();
}

}  // namespace ringtun::tunnel
