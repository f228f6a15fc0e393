// LatencyHistogram: a log-bucketed histogram of durations (nanoseconds) from 1 us to 60 s with 3 significant digits,
// the HDR-histogram scheme reduced to what the load generator needs.
//
// Layout: values below 2048 ns have one bucket per nanosecond. Above that, each power of two [2^e, 2^(e+1)) is split
// into 1024 equal buckets of width 2^(e-10), so a bucket is never wider than 1/1024 of the values it holds
// (< 0.1 %: three significant digits). Recorded values are clamped into [kLowestNs, kHighestNs] for bucketing;
// min, max and the mean use the exact values. Percentiles report a bucket's highest equivalent value (as HDR
// does), capped at the exact maximum, so a reported p99 is never below the true one by more than the resolution.
// Ownership: a plain value (about 220 KB of counts, allocated once at construction; record() never allocates).
// Thread rules: one thread at a time; merge() combines per-thread histograms after the threads are joined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringtun::bench {

class LatencyHistogram {
 public:
  static constexpr std::uint64_t kLowestNs = 1'000;             // 1 us
  static constexpr std::uint64_t kHighestNs = 60'000'000'000;   // 60 s
  static constexpr unsigned kSubBucketBits = 10;                // 1024 buckets per power of two
  static constexpr std::uint64_t kLinearLimit = 2ULL << kSubBucketBits;  // 2048: exact below this

  LatencyHistogram();

  void record(std::uint64_t value_ns) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  void reset() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min_ns() const noexcept { return count_ == 0 ? 0 : min_; }
  std::uint64_t max_ns() const noexcept { return max_; }
  double mean_ns() const noexcept;
  // The value at percentile `p` (0 < p <= 100): the highest value equivalent to the bucket holding the sample of
  // nearest rank ceil(p/100 * count), capped at max. 0 when empty.
  std::uint64_t percentile_ns(double p) const noexcept;

  // Bucket math, public for the tests.
  static std::size_t bucket_index(std::uint64_t value_ns) noexcept;
  static std::uint64_t bucket_lowest(std::size_t index) noexcept;
  static std::uint64_t bucket_highest(std::size_t index) noexcept;
  static std::size_t bucket_count() noexcept;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  long double sum_ = 0;  // exact enough for 10^9 samples of up to 60 s
};

}  // namespace ringtun::bench
