// The per-core families both programs export about their event loops (ringtun_loop_*{core}), from each loop's
// LoopStats (Counters: read from the admin core with relaxed loads), and the query-string helpers of the admin API.
// Thread rules: any thread (reads Counters only).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ring/loop.hpp"

namespace ringtun::ops {

class MetricsWriter;

// loops[i] is core i's stats (null: that core has not started).
void write_loop_metrics(MetricsWriter& writer, std::span<const ring::LoopStats* const> loops);

// The value of `name` in a query string ("a=1&b=2"), percent-decoded ('+' is a space); empty when absent.
std::string query_value(std::string_view query, std::string_view name);
// Whether `needle` occurs in `haystack`, ASCII case folded (the API's ?filter=); an empty needle always does.
bool contains_folded(std::string_view haystack, std::string_view needle) noexcept;
// A decimal query value, capped at `max`; `fallback` when absent or not a number.
std::uint64_t query_number(std::string_view query, std::string_view name, std::uint64_t fallback, std::uint64_t max);

}  // namespace ringtun::ops

namespace ringtun::ops {

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
