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
// A decimal query value, capped at `max`; `fallback` when absent or not a number.
std::uint64_t query_number(std::string_view query, std::string_view name, std::uint64_t fallback, std::uint64_t max);

}  // namespace ringtun::ops
