#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/assert.hpp"
#include "common/log.hpp"
#include "common/result.hpp"

namespace ringtun {

const char* errc_message(Errc code) noexcept {
  switch (code) {
    case Errc::kOk: return "ok";
    case Errc::kSystem: return "system call failed";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kUnsupported: return "not supported by this kernel or library";
    case Errc::kExhausted: return "resource exhausted";
    case Errc::kNotFound: return "no such object";
    case Errc::kClosed: return "closed";
    case Errc::kTimedOut: return "timed out";
    case Errc::kProtocol: return "protocol error";
    case Errc::kFlowControl: return "flow-control violation";
    case Errc::kLimit: return "limit exceeded";
    case Errc::kRefused: return "refused";
    case Errc::kParse: return "parse error";
  }
  return "unknown error";
}

const char* Error::describe(char* buf, std::size_t size) const noexcept {
  if (size == 0) return buf;
  const char* ctx = (context_ != nullptr && context_[0] != '\0') ? context_ : errc_message(code_);
  if (code_ == Errc::kSystem && sys_errno_ != 0) {
    char errbuf[96];
    const char* msg = strerror_r(sys_errno_, errbuf, sizeof errbuf);  // GNU variant returns the message
    std::snprintf(buf, size, "%s: %s", ctx, msg);
  } else if (ctx != errc_message(code_)) {
    std::snprintf(buf, size, "%s: %s", ctx, errc_message(code_));
  } else {
    std::snprintf(buf, size, "%s", ctx);
  }
  return buf;
}

namespace detail {
void check_failed(const char* expr, const char* msg, const char* file, int line) noexcept {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "FATAL %s:%d: check failed: %s (%s)\n", file, line, expr, msg);
  if (n > 0) (void)!::write(2, buf, static_cast<std::size_t>(n) < sizeof buf ? n : sizeof buf - 1);
  std::abort();
}
}  // namespace detail

namespace log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
thread_local const char* t_tag = nullptr;
const char* const kLevelNames[] = {"TRACE", "DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};
}  // namespace

void set_level(Level l) noexcept { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
Level level() noexcept { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }
void set_thread_tag(const char* tag) noexcept { t_tag = tag; }

bool parse_level(const char* text, Level* out) noexcept {
  static const struct { const char* name; Level level; } kNames[] = {
      {"trace", Level::kTrace}, {"debug", Level::kDebug}, {"info", Level::kInfo},
      {"warn", Level::kWarn},   {"error", Level::kError}, {"off", Level::kOff},
  };
  for (const auto& entry : kNames) {
    if (std::strcmp(text, entry.name) == 0) {
      *out = entry.level;
      return true;
    }
  }
  return false;
}

void vwrite(Level l, const char* fmt, va_list args) noexcept {
  char buf[1024];
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  int idx = static_cast<int>(l);
  if (idx < 0 || idx > 5) idx = 5;
  int k = std::snprintf(buf + n, sizeof buf - n, ".%06ldZ %s %s%s", ts.tv_nsec / 1000, kLevelNames[idx],
                        t_tag != nullptr ? t_tag : "", t_tag != nullptr ? ": " : "");
  if (k > 0) n += static_cast<std::size_t>(k);
  if (n < sizeof buf - 1) {
    k = std::vsnprintf(buf + n, sizeof buf - n, fmt, args);
    if (k > 0) n += static_cast<std::size_t>(k);
  }
  if (n >= sizeof buf - 1) n = sizeof buf - 2;  // truncated: keep the newline
  buf[n++] = '\n';
  (void)!::write(2, buf, n);
}

void write(Level l, const char* fmt, ...) noexcept {
  va_list args;
  va_start(args, fmt);
  vwrite(l, fmt, args);
  va_end(args);
}
}  // namespace log

}  // namespace ringtun
