// LatencyHistogram: a fixed-bucket histogram of durations that one core writes and the admin core reads.
//
// Buckets are fixed at compile time (kBoundsUs, in microseconds, from 50 us to 10 s, roughly 1-2.5-5 steps), so
// observing is a short scan and two Counter adds: no allocation, no lock, no atomic read-modify-write. The admin
// side adds every core's histogram into a HistogramSum (plain integers) and renders it (metrics_text.hpp).
// Thread rules: observe() on the owning core's thread only; add_to() from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/counter.hpp"

namespace ringtun::ops {

inline constexpr std::array<std::uint64_t, 16> kBoundsUs = {
    50, 100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000,
    1'000'000, 2'500'000, 10'000'000};

// Non-cumulative bucket counts (index kBoundsUs.size() = above the last bound), total count and sum.
struct HistogramSum {
  std::array<std::uint64_t, kBoundsUs.size() + 1> buckets{};
  std::uint64_t count = 0;
  std::uint64_t sum_us = 0;
};

class LatencyHistogram {
 public:
  void observe_us(std::uint64_t us) noexcept;
  // Adds this histogram's current values into `sum` (relaxed reads; a concurrent observe may be seen in part).
  void add_to(HistogramSum& sum) const noexcept;

 private:
  std::array<Counter, kBoundsUs.size() + 1> buckets_{};
  Counter count_;
  Counter sum_us_;
};

}  // namespace ringtun::ops
