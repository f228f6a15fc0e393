#include "ops/metrics_text.hpp"

#include <charconv>
#include <cmath>

#include "common/assert.hpp"
#include "common/decimal.hpp"
#include "ops/histogram.hpp"

namespace ringtun::ops {

namespace {

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names the same without ':'. Checked in debug builds only.
[[maybe_unused]] bool valid_name(std::string_view name, bool allow_colon) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

// Shortest text that parses back to the same double (Go's ParseFloat, which Prometheus uses, reads it exactly).
void append_double(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, r.ptr);
  }
}

// Microseconds as exact decimal seconds ("0.00005", "2.5", "10") into `buf` (at least 28 bytes); returns the length.
// No binary rounding in bucket bounds or sums, and a form every Prometheus parser reads as a float.
std::size_t format_us_as_seconds(char* buf, std::uint64_t us) noexcept {
  char* p = std::to_chars(buf, buf + 20, us / 1'000'000).ptr;
  std::uint64_t frac = us % 1'000'000;
  if (frac == 0) return static_cast<std::size_t>(p - buf);
  *p++ = '.';
  char digits[6];
  for (int i = 5; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  int len = 6;
  while (digits[len - 1] == '0') --len;
  for (int i = 0; i < len; ++i) *p++ = digits[i];
  return static_cast<std::size_t>(p - buf);
}

void append_help(std::string& out, std::string_view help) {
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

const char* type_name(MetricType type) noexcept {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

void append_label_value(std::string& out, std::string_view value) {
  // Runs without a special byte are appended whole: label values are almost always plain, and a byte-at-a-time
  // append dominated the render of a 10,000-service scrape (perf/micro/metrics_bench).
  std::size_t start = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value.data() + start, i - start);
    out += c == '\n' ? "\\n" : c == '"' ? "\\\"" : "\\\\";
    start = i + 1;
  }
  out.append(value.data() + start, value.size() - start);
}

void MetricsWriter::family(std::string_view name, MetricType type, std::string_view help) {
  RINGTUN_ASSERT(valid_name(name, true), "metric family name");
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_help(out_, help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type_name(type);
  out_ += '\n';
}

void MetricsWriter::sample(std::string_view name, std::span<const Label> labels, std::uint64_t value) {
  head(name, {}, labels, nullptr);
  append_decimal(out_, value);
  out_ += '\n';
}

void MetricsWriter::sample_double(std::string_view name, std::span<const Label> labels, double value) {
  head(name, {}, labels, nullptr);
  append_double(out_, value);
  out_ += '\n';
}

void MetricsWriter::single(std::string_view name, MetricType type, std::string_view help, std::uint64_t value) {
  family(name, type, help);
  sample(name, std::span<const Label>{}, value);
}

void MetricsWriter::histogram(std::string_view name, std::span<const Label> labels, const HistogramSum& sum) {
  // The format wants cumulative counts; HistogramSum keeps them per bucket. le="+Inf" carries the total count,
  // which Prometheus' histogram_quantile() expects to equal _count.
  char le_text[32];
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBoundsUs.size(); ++i) {
    cumulative += sum.buckets[i];
    const Label le{"le", std::string_view(le_text, format_us_as_seconds(le_text, kBoundsUs[i]))};
    head(name, "_bucket", labels, &le);
    append_decimal(out_, cumulative);
    out_ += '\n';
  }
  const Label inf{"le", "+Inf"};
  head(name, "_bucket", labels, &inf);
  append_decimal(out_, sum.count);
  out_ += '\n';
  head(name, "_sum", labels, nullptr);
  out_.append(le_text, format_us_as_seconds(le_text, sum.sum_us));
  out_ += '\n';
  head(name, "_count", labels, nullptr);
  append_decimal(out_, sum.count);
  out_ += '\n';
}

void MetricsWriter::head(std::string_view name, std::string_view suffix, std::span<const Label> labels,
                         const Label* extra) {
  RINGTUN_ASSERT(valid_name(name, true), "metric name");
  out_ += name;
  out_ += suffix;
  this->labels(labels, extra);
  out_ += ' ';
}

void MetricsWriter::labels(std::span<const Label> labels, const Label* extra) {
  if (labels.empty() && extra == nullptr) return;
  out_ += '{';
  bool first = true;
  auto one = [&](const Label& label) {
    RINGTUN_ASSERT(valid_name(label.name, false), "label name");
    if (!first) out_ += ',';
    first = false;
    out_ += label.name;
    out_ += "=\"";
    append_label_value(out_, label.value);
    out_ += '"';
  };
  for (const Label& label : labels) one(label);
  if (extra != nullptr) one(*extra);
  out_ += '}';
}

}  // namespace ringtun::ops
