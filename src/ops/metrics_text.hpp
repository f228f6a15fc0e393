// MetricsWriter: renders the Prometheus text exposition format 0.0.4 into a string, for GET /metrics.
//
// Usage, per metric family: family() once (writes "# HELP" and "# TYPE"), then one sample() per label set. Names are
// checked in debug builds ([a-zA-Z_:][a-zA-Z0-9_:]*); label values are escaped as the format requires (backslash,
// double quote and newline), so a service name chosen by an agent can never break a line or forge a series. Values
// are unsigned integers or doubles (NaN/Inf written as the format spells them). A histogram family writes its
// cumulative _bucket{le=...} samples, _sum and _count from a LatencyHistogram sum (histogram.hpp).
// Pure: no I/O. Thread rules: one writer per string (the admin core's thread).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace ringtun::ops {

struct HistogramSum;

enum class MetricType : std::uint8_t { kCounter, kGauge, kHistogram };

struct Label {
  std::string_view name;
  std::string_view value;
};

class MetricsWriter {
 public:
  explicit MetricsWriter(std::string& out) noexcept : out_(out) {}

  // "# HELP name help\n# TYPE name type\n". `help` is escaped (backslash and newline).
  void family(std::string_view name, MetricType type, std::string_view help);
  // "name{l1="v1",...} value\n"; no braces without labels.
  void sample(std::string_view name, std::span<const Label> labels, std::uint64_t value);
  void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value) {
    sample(name, std::span<const Label>(labels.begin(), labels.size()), value);
  }
  void sample_double(std::string_view name, std::span<const Label> labels, double value);
  // A family with no labels and one value: family() + sample().
  void single(std::string_view name, MetricType type, std::string_view help, std::uint64_t value);
  // Histogram samples (after family(name, kHistogram, ...)): name_bucket{labels...,le="<bound in seconds>"} for each
  // bound (cumulative) and "+Inf" (= count), name_sum (seconds, written as the exact decimal of sum_us), name_count.
  void histogram(std::string_view name, std::span<const Label> labels, const HistogramSum& sum);

 private:
  // "name" + suffix + "{labels,extra} " (braces only when there is a label).
  void head(std::string_view name, std::string_view suffix, std::span<const Label> labels, const Label* extra);
  void labels(std::span<const Label> labels, const Label* extra);
  std::string& out_;
};

// Appends `value` escaped for a label value (without the quotes).
void append_label_value(std::string& out, std::string_view value);

}  // namespace ringtun::ops
