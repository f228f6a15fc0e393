#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <string>

#include "ops/histogram.hpp"
#include "ops/metrics_text.hpp"
#include "ops/process_stats.hpp"

using ringtun::ops::HistogramSum;
using ringtun::ops::kBoundsUs;
using ringtun::ops::Label;
using ringtun::ops::LatencyHistogram;
using ringtun::ops::MetricsWriter;
using ringtun::ops::MetricType;

TEST_CASE("families and samples are written exactly as the 0.0.4 text format spells them") {
  std::string out;
  MetricsWriter w(out);
  w.family("ringtun_bytes_total", MetricType::kCounter, "Bytes relayed.");
  w.sample("ringtun_bytes_total", {{"agent", "a1"}, {"service", "web"}, {"direction", "in"}}, 18446744073709551615ULL);
  w.sample("ringtun_bytes_total", {{"agent", "a1"}, {"service", "web"}, {"direction", "out"}}, 0);
  w.single("ringtun_agents", MetricType::kGauge, "Agents connected.", 3);
  w.family("ringtun_ratio", MetricType::kGauge, "A double.");
  w.sample_double("ringtun_ratio", std::span<const Label>{}, 0.1);
  const Label x[] = {{"k", "v"}};
  w.sample_double("ringtun_ratio", x, 1e300);
  w.sample_double("ringtun_ratio", x, -2.5);
  w.sample_double("ringtun_ratio", x, std::numeric_limits<double>::quiet_NaN());
  w.sample_double("ringtun_ratio", x, std::numeric_limits<double>::infinity());
  w.sample_double("ringtun_ratio", x, -std::numeric_limits<double>::infinity());
  CHECK(out ==
        "# HELP ringtun_bytes_total Bytes relayed.\n"
        "# TYPE ringtun_bytes_total counter\n"
        "ringtun_bytes_total{agent=\"a1\",service=\"web\",direction=\"in\"} 18446744073709551615\n"
        "ringtun_bytes_total{agent=\"a1\",service=\"web\",direction=\"out\"} 0\n"
        "# HELP ringtun_agents Agents connected.\n"
        "# TYPE ringtun_agents gauge\n"
        "ringtun_agents 3\n"
        "# HELP ringtun_ratio A double.\n"
        "# TYPE ringtun_ratio gauge\n"
        "ringtun_ratio 0.1\n"
        "ringtun_ratio{k=\"v\"} 1e+300\n"
        "ringtun_ratio{k=\"v\"} -2.5\n"
        "ringtun_ratio{k=\"v\"} NaN\n"
        "ringtun_ratio{k=\"v\"} +Inf\n"
        "ringtun_ratio{k=\"v\"} -Inf\n");
}

TEST_CASE("doubles are written in a form that reads back to the same value") {
  for (const double v : {0.1 + 0.2, 1.0 / 3.0, 5e-324, 1.7976931348623157e308, 123456789.125}) {
    std::string out;
    MetricsWriter(out).sample_double("m", std::span<const Label>{}, v);
    REQUIRE(out.rfind("m ", 0) == 0);
    REQUIRE(out.back() == '\n');
    CHECK(std::strtod(out.c_str() + 2, nullptr) == v);
  }
}

TEST_CASE("hostile label values and help text cannot break a line or forge a series") {
  std::string out;
  MetricsWriter w(out);
  w.family("m", MetricType::kGauge, "line one\nline two \\ \"quoted\"");
  w.sample("m", {{"service", "a\"b\\c\nd"}}, 1);
  w.sample("m", {{"service", "x\"} 99\nm{service=\"y"}}, 2);
  CHECK(out ==
        "# HELP m line one\\nline two \\\\ \"quoted\"\n"
        "# TYPE m gauge\n"
        "m{service=\"a\\\"b\\\\c\\nd\"} 1\n"
        "m{service=\"x\\\"} 99\\nm{service=\\\"y\"} 2\n");
  // Exactly four lines: nothing a label value held added one.
  CHECK(std::count(out.begin(), out.end(), '\n') == 4);

  std::string value;
  ringtun::ops::append_label_value(value, "\\\"\n");
  CHECK(value == "\\\\\\\"\\n");
}

TEST_CASE("latency histogram: a value equal to a bound falls in that bound's bucket") {
  LatencyHistogram h;
  h.observe_us(0);           // <= 50
  h.observe_us(50);          // <= 50
  h.observe_us(51);          // <= 100
  h.observe_us(100);         // <= 100
  h.observe_us(10'000'000);  // last bound
  h.observe_us(10'000'001);  // above every bound
  HistogramSum sum;
  h.add_to(sum);
  CHECK(sum.buckets[0] == 2);
  CHECK(sum.buckets[1] == 2);
  CHECK(sum.buckets[kBoundsUs.size() - 1] == 1);
  CHECK(sum.buckets[kBoundsUs.size()] == 1);
  CHECK(sum.count == 6);
  CHECK(sum.sum_us == 0 + 50 + 51 + 100 + 10'000'000 + 10'000'001);
  std::uint64_t total = 0;
  for (auto b : sum.buckets) total += b;
  CHECK(total == sum.count);

  // add_to() sums: a second core's histogram adds to the same HistogramSum.
  LatencyHistogram other;
  other.observe_us(300);
  other.add_to(sum);
  CHECK(sum.buckets[3] == 1);  // 250 < 300 <= 500
  CHECK(sum.count == 7);
}

TEST_CASE("histogram samples: cumulative buckets in seconds, +Inf = count, _sum in seconds, _count") {
  LatencyHistogram h;
  h.observe_us(40);         // bucket 0.00005
  h.observe_us(700);        // bucket 0.001
  h.observe_us(700);        // bucket 0.001
  h.observe_us(2'000'000);  // bucket 2.5
  h.observe_us(20'000'000); // above 10
  HistogramSum sum;
  h.add_to(sum);
  std::string out;
  MetricsWriter w(out);
  w.family("ringtun_connect_seconds", MetricType::kHistogram, "Connect latency.");
  const Label labels[] = {{"service", "web"}};
  w.histogram("ringtun_connect_seconds", labels, sum);
  const char* expected =
      "# HELP ringtun_connect_seconds Connect latency.\n"
      "# TYPE ringtun_connect_seconds histogram\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.00005\"} 1\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.0001\"} 1\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.00025\"} 1\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.0005\"} 1\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.001\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.0025\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.005\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.01\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.025\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.05\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.1\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.25\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"0.5\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"1\"} 3\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"2.5\"} 4\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"10\"} 4\n"
      "ringtun_connect_seconds_bucket{service=\"web\",le=\"+Inf\"} 5\n"
      "ringtun_connect_seconds_sum{service=\"web\"} 22.00144\n"
      "ringtun_connect_seconds_count{service=\"web\"} 5\n";
  CHECK(out == expected);
}

TEST_CASE("histogram without labels: le is the only label; _sum and _count carry none") {
  HistogramSum sum;
  std::string out;
  MetricsWriter(out).histogram("h", std::span<const Label>{}, sum);
  CHECK(out.rfind("h_bucket{le=\"0.00005\"} 0\n", 0) == 0);
  CHECK(out.find("h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n") != std::string::npos);
}

TEST_CASE("process stats are plausible and rendered as the client libraries name them") {
  const auto stats = ringtun::ops::read_process_stats();
  CHECK(stats.resident_bytes > 0);
  CHECK(stats.virtual_bytes >= stats.resident_bytes);
  CHECK(stats.open_fds >= 3);
  CHECK(stats.max_fds >= stats.open_fds);
  const double now = static_cast<double>(std::time(nullptr));
  CHECK(stats.start_time_seconds <= now + 1);
  CHECK(stats.start_time_seconds > now - 3600);
  CHECK(stats.cpu_seconds >= 0);

  // A descriptor opened now is counted (the listing's own descriptor is not).
  const int extra = ::dup(0);
  REQUIRE(extra >= 0);
  const auto with_extra = ringtun::ops::read_process_stats();
  ::close(extra);
  CHECK(with_extra.open_fds == ringtun::ops::read_process_stats().open_fds + 1);

  std::string out;
  MetricsWriter w(out);
  ringtun::ops::write_process_metrics(w, "1.2.3");
  for (const char* family : {"process_resident_memory_bytes gauge", "process_virtual_memory_bytes gauge",
                             "process_open_fds gauge", "process_max_fds gauge", "process_start_time_seconds gauge",
                             "process_cpu_seconds_total counter", "ringtun_build_info gauge"}) {
    CAPTURE(family);
    CHECK(out.find(std::string("# TYPE ") + family + "\n") != std::string::npos);
  }
  CHECK(out.find("\nringtun_build_info{version=\"1.2.3\"} 1\n") != std::string::npos);
}
