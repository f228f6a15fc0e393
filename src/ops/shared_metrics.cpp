#include "ops/shared_metrics.hpp"

#include <cstdio>
#include <string_view>
#include <vector>

#include "ops/metrics_text.hpp"

namespace ringtun::ops {

void write_loop_metrics(MetricsWriter& writer, std::span<const ring::LoopStats* const> loops) {
  struct Family {
    const char* name;
    MetricType type;
    const char* help;
    const Counter ring::LoopStats::*value;
  };
  static const Family kFamilies[] = {
      {"ringtun_loop_turns_total", MetricType::kCounter, "Event loop turns.", &ring::LoopStats::turns},
      {"ringtun_loop_cqes_total", MetricType::kCounter, "io_uring completions handled.", &ring::LoopStats::cqes},
      {"ringtun_loop_submits_total", MetricType::kCounter, "io_uring_enter calls (submit and wait).",
       &ring::LoopStats::submits},
      {"ringtun_loop_buffer_exhaustions_total", MetricType::kCounter,
       "Multishot receives stopped by an empty provided-buffer ring.", &ring::LoopStats::enobufs},
      {"ringtun_loop_mailbox_depth", MetricType::kGauge,
       "Cross-core messages drained in the core's last turn that had any.", &ring::LoopStats::mailbox_depth},
      {"ringtun_loop_busy_poll_hits_total", MetricType::kCounter,
       "Sleeps avoided by --busy-poll-us: work arrived while the loop polled.", &ring::LoopStats::busy_poll_hits},
      {"ringtun_loop_sockets_open", MetricType::kGauge, "Sockets open on the core.", &ring::LoopStats::sockets_open},
  };
  for (const Family& family : kFamilies) {
    writer.family(family.name, family.type, family.help);
    for (std::size_t core = 0; core < loops.size(); ++core) {
      if (loops[core] == nullptr) continue;
      char text[16];
      const int n = std::snprintf(text, sizeof text, "%zu", core);
      writer.sample(family.name, {{"core", std::string_view(text, static_cast<std::size_t>(n))}},
                    (loops[core]->*family.value).get());
    }
  }
}

void write_service_metrics(MetricsWriter& writer, std::span<const ServiceRow> rows, bool refused) {
  struct Family {
    const char* name;
    MetricType type;
    const char* help;
    std::uint64_t ServiceCounts::*value;
  };
  static const Family kFamilies[] = {
      {"ringtun_service_streams_opened_total", MetricType::kCounter, "Streams opened for a service.",
       &ServiceCounts::streams_opened},
      {"ringtun_service_streams_open", MetricType::kGauge, "Streams open now for a service.",
       &ServiceCounts::streams_open},
      {"ringtun_service_resets_total", MetricType::kCounter,
       "Streams of a service that ended with a reset (a failed local connect among them).", &ServiceCounts::resets},
      {"ringtun_service_refused_total", MetricType::kCounter, "Public connections for a service that got no stream.",
       &ServiceCounts::refused},
  };
  for (const Family& family : kFamilies) {
    if (family.value == &ServiceCounts::refused && !refused) continue;
    writer.family(family.name, family.type, family.help);
    for (const ServiceRow& row : rows) writer.sample(family.name, row.labels, row.counts.*family.value);
  }
  writer.family("ringtun_service_bytes_total", MetricType::kCounter,
                "Bytes through a service: in = from public clients towards the service, out = back to them.");
  std::vector<Label> labels;
  for (const ServiceRow& row : rows) {
    labels.assign(row.labels.begin(), row.labels.end());
    labels.push_back({"direction", "in"});
    writer.sample("ringtun_service_bytes_total", labels, row.counts.bytes_in);
    labels.back().value = "out";
    writer.sample("ringtun_service_bytes_total", labels, row.counts.bytes_out);
  }
}

}  // namespace ringtun::ops
