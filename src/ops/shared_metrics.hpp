// The metric families both programs export, written the same way by each: the per-core ringtun_loop_*{core} from
// each loop's LoopStats, and the ringtun_service_* families from each service's numbers summed over the cores (the
// programs sum them: they know their own types, ops does not).
// Thread rules: any thread (reads Counters only).
#pragma once

#include <cstdint>
#include <span>

#include "ring/loop.hpp"

namespace ringtun::ops {

class MetricsWriter;

// loops[i] is core i's stats (null: that core has not started).
void write_loop_metrics(MetricsWriter& writer, std::span<const ring::LoopStats* const> loops);

struct Label;

// One service's numbers, summed over the cores, and the labels that name it (agent/token/service/kind on the gateway,
// service/kind on the agent). `in` is from public clients towards the service, `out` back to them.
struct ServiceCounts {
  std::uint64_t streams_opened = 0;
  std::uint64_t streams_open = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t resets = 0;
  std::uint64_t refused = 0;  // the gateway's: public connections that got no stream

  ServiceCounts& operator+=(const ServiceCounts& other) noexcept {
    streams_opened += other.streams_opened;
    streams_open += other.streams_open;
    bytes_in += other.bytes_in;
    bytes_out += other.bytes_out;
    resets += other.resets;
    refused += other.refused;
    return *this;
  }
};
struct ServiceRow {
  std::span<const Label> labels;
  ServiceCounts counts;
};
// The ringtun_service_* families both programs export: streams opened, open, resets, (refused, with `refused`), and
// bytes by direction.
void write_service_metrics(MetricsWriter& writer, std::span<const ServiceRow> rows, bool refused);

}  // namespace ringtun::ops
