// The machine-readable (one JSON object per run, on stdout) and readable (one line, on stderr) results of each
// client mode. The JSON keys are what perf/lib/loopback.py reads.
// Thread rules: pure functions; any thread.
#pragma once

#include <string>

#include "common/result.hpp"
#include "load/clients.hpp"

namespace ringtun::bench {

Result<std::string> throughput_json(const ThroughputOptions& o, const ThroughputReport& r, const std::string& label);
Result<std::string> latency_json(const LatencyOptions& o, const LatencyReport& r, const std::string& label);
Result<std::string> connect_rate_json(const ConnectRateOptions& o, const ConnectRateReport& r,
                                      const std::string& label);
Result<std::string> hold_json(const HoldOptions& o, const HoldReport& r, const std::string& label);

}  // namespace ringtun::bench
