// The process's own figures for /metrics: resident memory, open file descriptors, start time, CPU seconds.
// Read from /proc/self on each call (a scrape, never the data path). Thread rules: any thread.
#pragma once

#include <cstdint>

namespace ringtun::ops {

class MetricsWriter;

struct ProcessStats {
  std::uint64_t resident_bytes = 0;     // /proc/self/statm resident pages x page size
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;           // entries of /proc/self/fd
  std::uint64_t max_fds = 0;            // RLIMIT_NOFILE soft limit
  double start_time_seconds = 0;        // since the epoch (boot time + starttime of /proc/self/stat)
  double cpu_seconds = 0;               // user + system
};

ProcessStats read_process_stats() noexcept;

// Writes the process_* families Prometheus' client libraries use (process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds,
// process_cpu_seconds_total), so standard dashboards work, plus ringtun_build_info{version}.
void write_process_metrics(MetricsWriter& writer, const char* version);

}  // namespace ringtun::ops
