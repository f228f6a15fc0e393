// JSON and readable lines for each client mode. Strings are escaped; numbers are plain.
#include "load/report.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace ringtun::bench {
namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return std::string(buf, static_cast<std::size_t>(std::max(0, std::min<int>(n, sizeof buf - 1))));
}

// The fields every record shares: label, target, client CPU, first error.
std::string common(const char* scenario, const CommonOptions& c, const std::string& label, const std::string& error) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double user = static_cast<double>(usage.ru_utime.tv_sec) + static_cast<double>(usage.ru_utime.tv_usec) / 1e6;
  const double sys = static_cast<double>(usage.ru_stime.tv_sec) + static_cast<double>(usage.ru_stime.tv_usec) / 1e6;
  return format("{\"scenario\":\"%s\",\"label\":\"%s\",\"target\":\"%s\",\"threads\":%u,"
                "\"client_cpu_user_s\":%.3f,\"client_cpu_sys_s\":%.3f,\"first_error\":\"%s\"",
                scenario, escape(label).c_str(), c.target.to_string().c_str(), c.threads, user, sys,
                escape(error).c_str());
}

std::string percentiles(const LatencyHistogram& h) {
  auto us = [&](double p) { return static_cast<double>(h.percentile_ns(p)) / 1e3; };
  return format(",\"count\":%llu,\"min_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
                "\"max_us\":%.1f,\"mean_us\":%.1f",
                static_cast<unsigned long long>(h.count()), static_cast<double>(h.min_ns()) / 1e3, us(50), us(90),
                us(99), us(99.9), static_cast<double>(h.max_ns()) / 1e3, h.mean_ns() / 1e3);
}

}  // namespace

Result<std::string> throughput_json(const ThroughputOptions& o, const ThroughputReport& r, const std::string& label) {
  std::fprintf(stderr, "throughput %s: %u stream(s) x %llu B%s: %.1f MB/s (%.3f s), %u error(s)%s%s\n",
               label.c_str(), o.streams, static_cast<unsigned long long>(o.bytes), o.verify ? " verified" : "",
               r.mb_per_s, r.seconds, r.errors, r.first_error.empty() ? "" : ": ", r.first_error.c_str());
  return common("throughput", o.common, label, r.first_error) +
         format(",\"streams\":%u,\"bytes_per_stream\":%llu,\"verify\":%s,\"bytes\":%llu,\"streams_ok\":%u,"
                "\"seconds\":%.6f,\"mb_per_s\":%.2f,\"errors\":%u,\"verify_failures\":%u}",
                o.streams, static_cast<unsigned long long>(o.bytes), o.verify ? "true" : "false",
                static_cast<unsigned long long>(r.bytes), r.streams_ok, r.seconds, r.mb_per_s, r.errors,
                r.verify_failures);
}

Result<std::string> latency_json(const LatencyOptions& o, const LatencyReport& r, const std::string& label) {
  const auto& h = r.histogram;
  std::fprintf(stderr,
               "latency %s: %u B x %llu: p50 %.1f us, p90 %.1f, p99 %.1f, p99.9 %.1f, max %.1f, mean %.1f; "
               "%u error(s)%s%s\n",
               label.c_str(), o.size, static_cast<unsigned long long>(h.count()),
               static_cast<double>(h.percentile_ns(50)) / 1e3, static_cast<double>(h.percentile_ns(90)) / 1e3,
               static_cast<double>(h.percentile_ns(99)) / 1e3, static_cast<double>(h.percentile_ns(99.9)) / 1e3,
               static_cast<double>(h.max_ns()) / 1e3, h.mean_ns() / 1e3, r.errors,
               r.first_error.empty() ? "" : ": ", r.first_error.c_str());
  return common("latency", o.common, label, r.first_error) +
         format(",\"size\":%u,\"requests\":%u,\"warmup\":%u,\"connections\":%u,\"seconds\":%.3f,\"errors\":%u,"
                "\"mismatches\":%u",
                o.size, o.requests, o.warmup, o.connections, r.seconds, r.errors, r.mismatches) +
         percentiles(h) + "}";
}

Result<std::string> connect_rate_json(const ConnectRateOptions& o, const ConnectRateReport& r,
                                      const std::string& label) {
  std::fprintf(stderr, "connect-rate %s: %.0f connections/s (%llu in %.2f s, concurrency %u), %llu error(s)%s%s\n",
               label.c_str(), r.per_second, static_cast<unsigned long long>(r.completed), r.seconds, o.concurrency,
               static_cast<unsigned long long>(r.errors), r.first_error.empty() ? "" : ": ", r.first_error.c_str());
  return common("connect_rate", o.common, label, r.first_error) +
         format(",\"concurrency\":%u,\"completed\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"per_second\":%.1f",
                o.concurrency, static_cast<unsigned long long>(r.completed),
                static_cast<unsigned long long>(r.errors), r.seconds, r.per_second) +
         percentiles(r.histogram) + "}";
}

Result<std::string> hold_json(const HoldOptions& o, const HoldReport& r, const std::string& label) {
  std::fprintf(stderr,
               "hold %s: %u/%u connections verified in %.2f s, held %.1f s, %u error(s), %u dropped, %u pending%s%s\n",
               label.c_str(), r.opened, o.connections, r.open_seconds, r.held_seconds, r.errors, r.dropped, r.pending,
               r.first_error.empty() ? "" : ": ", r.first_error.c_str());
  return common("hold", o.common, label, r.first_error) +
         format(",\"connections\":%u,\"opened\":%u,\"errors\":%u,\"dropped\":%u,\"pending\":%u,"
                "\"open_seconds\":%.3f,\"held_seconds\":%.3f}",
                o.connections, r.opened, r.errors, r.dropped, r.pending, r.open_seconds, r.held_seconds);
}

}  // namespace ringtun::bench
