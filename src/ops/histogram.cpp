#include "ops/histogram.hpp"

namespace ringtun::ops {

void LatencyHistogram::observe_us(std::uint64_t us) noexcept {
  // 16 bounds: a linear scan is a few compares on one cache line, cheaper than a branchy binary search.
  std::size_t i = 0;
  while (i < kBoundsUs.size() && us > kBoundsUs[i]) ++i;
  buckets_[i].add();
  count_.add();
  sum_us_.add(us);
}

void LatencyHistogram::add_to(HistogramSum& sum) const noexcept {
  for (std::size_t i = 0; i < buckets_.size(); ++i) sum.buckets[i] += buckets_[i].get();
  sum.count += count_.get();
  sum.sum_us += sum_us_.get();
}

}  // namespace ringtun::ops
