// Monotonic time in the units the loop and the protocol use. The loop reads the clock once per turn and passes
// times down, so components (timer wheel, flow-control growth, heartbeats) stay testable with injected time.
// Thread rules: stateless; any thread.
#pragma once

#include <cstdint>
#include <ctime>

namespace ringtun {

inline std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}
inline std::uint64_t monotonic_us() noexcept { return monotonic_ns() / 1000; }
inline std::uint64_t monotonic_ms() noexcept { return monotonic_ns() / 1'000'000; }
// Wall-clock time (ms since the epoch): for what people read (log lines, "connected since"), never for intervals.
inline std::uint64_t wall_clock_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

}  // namespace ringtun
