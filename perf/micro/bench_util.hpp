// What the micro-benchmarks share: a wall clock, and the median/min/max of repeated runs.
// Thread rules: stateless; any thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace ringtun::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Stats {
  double median, min, max;
};

inline Stats summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

}  // namespace ringtun::bench
