#include "ops/process_stats.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "ops/metrics_text.hpp"

namespace ringtun::ops {

namespace {

// Reads a small /proc file whole into `buf`; returns its length (0 on failure). /proc files are generated on read,
// so a short read means the end, but read until EOF to be safe.
std::size_t read_small_file(const char* path, char* buf, std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t used = 0;
  while (used < size) {
    const ssize_t n = ::read(fd, buf + used, size - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return used;
}

// Splits off the next space-separated token of `text`.
std::string_view next_token(std::string_view& text) noexcept {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  const std::size_t end = std::min(text.find(' '), text.size());
  const std::string_view token = text.substr(0, end);
  text.remove_prefix(end);
  return token;
}

std::uint64_t to_u64(std::string_view token) noexcept {
  std::uint64_t value = 0;
  const auto r = std::from_chars(token.data(), token.data() + token.size(), value);
  return r.ec == std::errc() ? value : 0;
}

void read_statm(ProcessStats& stats) noexcept {
  char buf[256];
  const std::size_t len = read_small_file("/proc/self/statm", buf, sizeof buf);
  if (len == 0) return;
  std::string_view text(buf, len);
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) return;
  const std::uint64_t size_pages = to_u64(next_token(text));
  const std::uint64_t resident_pages = to_u64(next_token(text));
  stats.virtual_bytes = size_pages * static_cast<std::uint64_t>(page);
  stats.resident_bytes = resident_pages * static_cast<std::uint64_t>(page);
}

void count_fds(ProcessStats& stats) noexcept {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  // The directory's own descriptor is listed too; it is ours for this count only, so skip it.
  const int own = ::dirfd(dir);
  std::uint64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    int fd = -1;
    const char* end = entry->d_name + std::strlen(entry->d_name);
    if (std::from_chars(entry->d_name, end, fd).ec == std::errc() && fd == own) continue;
    ++count;
  }
  ::closedir(dir);
  stats.open_fds = count;
}

// "btime <seconds since the epoch>" from /proc/stat. The file can be long (an "intr" line with one number per
// interrupt), so it is scanned line by line through a small buffer; a fragment counts only at a line start.
std::uint64_t boot_time_seconds() noexcept {
  std::FILE* file = std::fopen("/proc/stat", "re");
  if (file == nullptr) return 0;
  char line[256];
  bool at_line_start = true;
  std::uint64_t btime = 0;
  while (std::fgets(line, sizeof line, file) != nullptr) {
    const std::size_t len = std::strlen(line);
    if (at_line_start && std::strncmp(line, "btime ", 6) == 0) {
      std::string_view rest(line + 6, len - 6);
      while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
      btime = to_u64(rest);
      break;
    }
    at_line_start = len > 0 && line[len - 1] == '\n';
  }
  std::fclose(file);
  return btime;
}

void read_stat(ProcessStats& stats) noexcept {
  char buf[2048];
  const std::size_t len = read_small_file("/proc/self/stat", buf, sizeof buf);
  if (len == 0) return;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted after the LAST ')'.
  std::string_view text(buf, len);
  const std::size_t paren = text.rfind(')');
  if (paren == std::string_view::npos) return;
  text.remove_prefix(paren + 1);
  // Tokens from here: 0 = field 3 (state); utime = field 14, stime = 15, starttime = 22 (proc(5)).
  std::uint64_t utime = 0, stime = 0, starttime = 0;
  for (int index = 0; index <= 19; ++index) {
    const std::string_view token = next_token(text);
    if (token.empty()) return;
    if (index == 11) utime = to_u64(token);
    if (index == 12) stime = to_u64(token);
    if (index == 19) starttime = to_u64(token);
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  if (ticks <= 0) return;
  stats.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
  const std::uint64_t btime = boot_time_seconds();
  if (btime != 0) {
    stats.start_time_seconds = static_cast<double>(btime) + static_cast<double>(starttime) / static_cast<double>(ticks);
  }
}

}  // namespace

ProcessStats read_process_stats() noexcept {
  ProcessStats stats;
  read_statm(stats);
  count_fds(stats);
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    stats.max_fds = limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(limit.rlim_cur);
  }
  read_stat(stats);
  return stats;
}

void write_process_metrics(MetricsWriter& writer, const char* version) {
  const ProcessStats stats = read_process_stats();
  writer.single("process_resident_memory_bytes", MetricType::kGauge, "Resident memory size in bytes.",
                stats.resident_bytes);
  writer.single("process_virtual_memory_bytes", MetricType::kGauge, "Virtual memory size in bytes.",
                stats.virtual_bytes);
  writer.single("process_open_fds", MetricType::kGauge, "Number of open file descriptors.", stats.open_fds);
  writer.single("process_max_fds", MetricType::kGauge, "Maximum number of open file descriptors.", stats.max_fds);
  writer.family("process_start_time_seconds", MetricType::kGauge,
                "Start time of the process since unix epoch in seconds.");
  writer.sample_double("process_start_time_seconds", {}, stats.start_time_seconds);
  writer.family("process_cpu_seconds_total", MetricType::kCounter, "Total user and system CPU time spent in seconds.");
  writer.sample_double("process_cpu_seconds_total", {}, stats.cpu_seconds);
  writer.family("ringtun_build_info", MetricType::kGauge, "The running ringtun version; the value is always 1.");
  writer.sample("ringtun_build_info", {{"version", version != nullptr ? version : ""}}, 1);
}

}  // namespace ringtun::ops
