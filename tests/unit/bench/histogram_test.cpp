// LatencyHistogram: bucket math (continuity, resolution, range) and the statistics it reports.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "load/histogram.hpp"

using ringtun::bench::LatencyHistogram;

TEST_CASE("buckets tile the range without gaps and every value lies in its bucket") {
  const std::size_t n = LatencyHistogram::bucket_count();
  for (std::size_t i = LatencyHistogram::kLowestNs; i + 1 < n; ++i) {
    REQUIRE(LatencyHistogram::bucket_highest(i) + 1 == LatencyHistogram::bucket_lowest(i + 1));
  }
  std::mt19937_64 rng(42);
  for (int k = 0; k < 200000; ++k) {
    const std::uint64_t v = LatencyHistogram::kLowestNs + rng() % (LatencyHistogram::kHighestNs - 1000);
    const std::size_t i = LatencyHistogram::bucket_index(v);
    REQUIRE(LatencyHistogram::bucket_lowest(i) <= v);
    REQUIRE(v <= LatencyHistogram::bucket_highest(i));
  }
  CHECK(LatencyHistogram::bucket_index(LatencyHistogram::kHighestNs) == n - 1);
}

TEST_CASE("three significant digits: no bucket is wider than 1/1000 of its values") {
  for (std::size_t i = LatencyHistogram::kLowestNs; i < LatencyHistogram::bucket_count(); ++i) {
    const double width = static_cast<double>(LatencyHistogram::bucket_highest(i) - LatencyHistogram::bucket_lowest(i) + 1);
    REQUIRE(width / static_cast<double>(LatencyHistogram::bucket_lowest(i)) <= 1.0 / 1000.0);
  }
}

TEST_CASE("values outside 1 us .. 60 s are clamped into the end buckets, exact min/max kept") {
  LatencyHistogram h;
  h.record(10);                    // 10 ns
  h.record(120'000'000'000ULL);    // 120 s
  CHECK(LatencyHistogram::bucket_index(10) == LatencyHistogram::bucket_index(LatencyHistogram::kLowestNs));
  CHECK(LatencyHistogram::bucket_index(120'000'000'000ULL) == LatencyHistogram::bucket_count() - 1);
  CHECK(h.min_ns() == 10);
  CHECK(h.max_ns() == 120'000'000'000ULL);
  CHECK(h.percentile_ns(50) == LatencyHistogram::kLowestNs);
}

TEST_CASE("percentiles of a uniform distribution are exact to the resolution") {
  LatencyHistogram h;
  for (std::uint64_t us = 1; us <= 10000; ++us) h.record(us * 1000);  // 1 us .. 10 ms, one each
  auto near = [](std::uint64_t got, double want) {
    return static_cast<double>(got) >= want && static_cast<double>(got) <= want * 1.001 + 1;
  };
  CHECK(near(h.percentile_ns(50), 5'000'000));
  CHECK(near(h.percentile_ns(90), 9'000'000));
  CHECK(near(h.percentile_ns(99), 9'900'000));
  CHECK(near(h.percentile_ns(99.9), 9'990'000));
  CHECK(h.percentile_ns(100) == 10'000'000);
  CHECK(h.max_ns() == 10'000'000);
  CHECK(h.mean_ns() == doctest::Approx(5'000'500.0));
  CHECK(h.count() == 10000);
}

TEST_CASE("percentiles agree with nearest-rank on the exact samples, within 0.1%") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(11.0, 1.5);  // ~60 us median, long tail
  LatencyHistogram h;
  std::vector<std::uint64_t> samples;
  for (int i = 0; i < 50000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng)) + 1000;
    samples.push_back(v);
    h.record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    const double exact = static_cast<double>(samples[rank - 1]);
    const double got = static_cast<double>(h.percentile_ns(p));
    CHECK(got >= exact);
    CHECK(got <= exact * 1.001);
  }
}

TEST_CASE("a single sample is every percentile; empty reports zero") {
  LatencyHistogram h;
  CHECK(h.percentile_ns(99) == 0);
  CHECK(h.mean_ns() == 0);
  h.record(123'456);
  for (double p : {0.1, 50.0, 99.9, 100.0}) CHECK(h.percentile_ns(p) == 123'456);
}

TEST_CASE("merge equals recording everything in one histogram; reset empties") {
  LatencyHistogram a, b, all;
  for (std::uint64_t v = 1000; v < 2'000'000; v += 997) {
    ((v / 997) % 2 == 0 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  CHECK(a.count() == all.count());
  CHECK(a.min_ns() == all.min_ns());
  CHECK(a.max_ns() == all.max_ns());
  CHECK(a.mean_ns() == doctest::Approx(all.mean_ns()));
  for (double p : {50.0, 90.0, 99.0, 99.9}) CHECK(a.percentile_ns(p) == all.percentile_ns(p));
  a.reset();
  CHECK(a.count() == 0);
  CHECK(a.percentile_ns(50) == 0);
  CHECK(a.max_ns() == 0);
}
