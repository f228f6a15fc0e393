// LatencyHistogram: see histogram.hpp for the bucket layout.
#include "load/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ringtun::bench {

namespace {
constexpr std::uint64_t kSubBuckets = 1ULL << LatencyHistogram::kSubBucketBits;  // 1024
constexpr unsigned kFirstLogExponent = LatencyHistogram::kSubBucketBits + 1;    // 2^11 = kLinearLimit
}  // namespace

std::size_t LatencyHistogram::bucket_index(std::uint64_t value_ns) noexcept {
  const std::uint64_t v = std::clamp(value_ns, kLowestNs, kHighestNs);
  if (v < kLinearLimit) return static_cast<std::size_t>(v);
  const unsigned exponent = static_cast<unsigned>(std::bit_width(v)) - 1;  // >= kFirstLogExponent
  const std::uint64_t sub = v >> (exponent - kSubBucketBits);               // in [1024, 2048)
  return static_cast<std::size_t>(kLinearLimit + (exponent - kFirstLogExponent) * kSubBuckets + (sub - kSubBuckets));
}

std::uint64_t LatencyHistogram::bucket_lowest(std::size_t index) noexcept {
  if (index < kLinearLimit) return index;
  const std::uint64_t k = index - kLinearLimit;
  const unsigned exponent = kFirstLogExponent + static_cast<unsigned>(k / kSubBuckets);
  const std::uint64_t sub = kSubBuckets + k % kSubBuckets;
  return sub << (exponent - kSubBucketBits);
}

std::uint64_t LatencyHistogram::bucket_highest(std::size_t index) noexcept {
  if (index < kLinearLimit) return index;
  const std::uint64_t k = index - kLinearLimit;
  const unsigned exponent = kFirstLogExponent + static_cast<unsigned>(k / kSubBuckets);
  return bucket_lowest(index) + (1ULL << (exponent - kSubBucketBits)) - 1;
}

std::size_t LatencyHistogram::bucket_count() noexcept { return bucket_index(kHighestNs) + 1; }

LatencyHistogram::LatencyHistogram() : counts_(bucket_count(), 0) {}

void LatencyHistogram::record(std::uint64_t value_ns) noexcept {
  ++counts_[bucket_index(value_ns)];
  ++count_;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
  sum_ += static_cast<long double>(value_ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean_ns() const noexcept {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

std::uint64_t LatencyHistogram::percentile_ns(double p) const noexcept {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(p, 0.0, 100.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucket_highest(i), max_);
  }
  return max_;
}

}  // namespace ringtun::bench
