// metrics_bench: the admin core's cost of rendering GET /metrics for a large gateway, single core.
//
//   render          MetricsWriter over 10,000 services x 6 samples (3 counter families, direction in/out; labels
//                   agent/service/direction) + one latency histogram (16 bounds, +Inf, _sum, _count), into a string
//                   that keeps its capacity between runs (as the admin server reuses its answer buffer)
//   render, cold    the same into a fresh string: includes the string's growth (allocation and copying)
// Service and agent names are built before timing; the values vary per service so the integer formatting is real.
// Each figure is the median of 15 runs (5 with --quick), min and max shown. Usage: metrics_bench [--quick]
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "ops/histogram.hpp"
#include "ops/metrics_text.hpp"

namespace {

using ringtun::bench::Clock;
using ringtun::bench::seconds_since;
using ringtun::bench::Stats;
using ringtun::bench::summarize;
using ringtun::ops::HistogramSum;
using ringtun::ops::Label;
using ringtun::ops::LatencyHistogram;
using ringtun::ops::MetricsWriter;
using ringtun::ops::MetricType;

volatile std::uint64_t g_sink = 0;
constexpr int kServices = 10'000;

struct Service {
  std::string name;
  std::string agent;
  std::uint64_t values[6];
};

struct Family {
  const char* name;
  const char* help;
};
constexpr Family kFamilies[] = {
    {"ringtun_service_bytes_total", "Bytes relayed for the service, by direction."},
    {"ringtun_service_frames_total", "Tunnel frames carried for the service, by direction."},
    {"ringtun_service_stalls_total", "Times the service's streams waited for flow-control credit, by direction."},
};

void render(std::string& out, const std::vector<Service>& services, const HistogramSum& latency) {
  MetricsWriter w(out);
  int family_index = 0;
  for (const Family& family : kFamilies) {
    w.family(family.name, MetricType::kCounter, family.help);
    for (const Service& s : services) {
      for (int direction = 0; direction < 2; ++direction) {
        const Label labels[] = {{"agent", s.agent}, {"service", s.name}, {"direction", direction == 0 ? "in" : "out"}};
        w.sample(family.name, labels, s.values[family_index * 2 + direction]);
      }
    }
    ++family_index;
  }
  w.family("ringtun_connect_seconds", MetricType::kHistogram, "Time to open a stream to an agent.");
  w.histogram("ringtun_connect_seconds", std::span<const Label>{}, latency);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int runs = quick ? 5 : 15;

  std::vector<Service> services(kServices);
  std::uint64_t seed = 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < kServices; ++i) {
    Service& s = services[static_cast<std::size_t>(i)];
    s.name = "svc-" + std::to_string(i) + ".apps";
    s.agent = "agent-" + std::to_string(i % 250);
    for (auto& v : s.values) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      v = seed >> (seed % 40);  // 24..64-bit values: short and long integers
    }
  }
  LatencyHistogram histogram;
  for (std::uint64_t us = 10; us < 20'000'000; us = us * 3 / 2 + 7) histogram.observe_us(us);
  HistogramSum latency;
  histogram.add_to(latency);

  std::string warm;
  render(warm, services, latency);  // sizes the reused buffer, warms the caches
  const std::size_t bytes = warm.size();

  std::vector<double> warm_ns, cold_ns;
  for (int r = 0; r < runs; ++r) {
    warm.clear();
    auto t0 = Clock::now();
    render(warm, services, latency);
    warm_ns.push_back(seconds_since(t0) * 1e9);
    g_sink = g_sink + warm.size();

    std::string cold;
    t0 = Clock::now();
    render(cold, services, latency);
    cold_ns.push_back(seconds_since(t0) * 1e9);
    g_sink = g_sink + cold.size();
    if (cold != warm) {
      std::fprintf(stderr, "metrics_bench: two renders of the same figures differ\n");
      return 1;
    }
  }

  std::printf("metrics_bench: %d services x 6 samples + 1 histogram, %zu bytes per render, median of %d runs "
              "[min..max]\n\n",
              kServices, bytes, runs);
  std::printf("%-36s %14s %28s %10s\n", "case", "median", "range", "ns/sample");
  auto row = [&](const char* name, const std::vector<double>& v) {
    const Stats s = summarize(v);
    std::printf("%-36s %11.0f ns %12.0f..%-12.0f ns %10.1f\n", name, s.median, s.min, s.max,
                s.median / (kServices * 6 + 20));
  };
  row("render (reused buffer)", warm_ns);
  row("render, cold (fresh string)", cold_ns);
  return 0;
}
