// Logger: levelled, timestamped lines on stderr, printf-style (g++ 12 has no <format>).
//
// Each line is formatted into a stack buffer and written with one write(2), so lines from different cores never
// interleave mid-line. A thread may set a tag (e.g. "core 1") that prefixes its lines. The level is global and
// read relaxed: set it at start-up. Logging is for events, never per frame: the data path logs only errors.
// Thread rules: any thread.
#pragma once

#include <cstdarg>
#include <cstdint>

namespace ringtun::log {

enum class Level : int { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

void set_level(Level level) noexcept;
Level level() noexcept;
// Parses "trace|debug|info|warn|error|off"; returns false for anything else.
bool parse_level(const char* text, Level* out) noexcept;
// Tags this thread's lines; `tag` must outlive the thread (a string literal or a thread-owned buffer).
void set_thread_tag(const char* tag) noexcept;

void write(Level level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));
void vwrite(Level level, const char* fmt, va_list args) noexcept;

inline bool enabled(Level l) noexcept { return static_cast<int>(l) >= static_cast<int>(level()); }

// At most `per_second` lines a second from one source (one core's HTTP port, say), so that a burst of bad clients is
// not a burst of log lines. Lines beyond are counted; the first line allowed in a later second learns how many were
// dropped, to say so. Thread rules: the source's thread.
class LineBudget {
 public:
  explicit LineBudget(unsigned per_second) noexcept : per_second_(per_second) {}
  // True if a line may be written at `now_ms`; then `*dropped` is the number of lines refused since the last one
  // written (report it), else it is left as it was.
  bool take(std::uint64_t now_ms, std::uint64_t* dropped) noexcept {
    const std::uint64_t second = now_ms / 1000;
    if (second != second_) {
      second_ = second;
      lines_ = 0;
    }
    if (lines_ >= per_second_) {
      ++dropped_;
      return false;
    }
    ++lines_;
    *dropped = dropped_;
    dropped_ = 0;
    return true;
  }

 private:
  unsigned per_second_;
  unsigned lines_ = 0;
  std::uint64_t second_ = UINT64_MAX;
  std::uint64_t dropped_ = 0;
};

}  // namespace ringtun::log

#define RINGTUN_LOG(lvl, ...)                                                   \
  do {                                                                          \
    if (::ringtun::log::enabled(lvl)) ::ringtun::log::write(lvl, __VA_ARGS__);  \
  } while (0)
#define LOG_TRACE(...) RINGTUN_LOG(::ringtun::log::Level::kTrace, __VA_ARGS__)
#define LOG_DEBUG(...) RINGTUN_LOG(::ringtun::log::Level::kDebug, __VA_ARGS__)
#define LOG_INFO(...) RINGTUN_LOG(::ringtun::log::Level::kInfo, __VA_ARGS__)
#define LOG_WARN(...) RINGTUN_LOG(::ringtun::log::Level::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) RINGTUN_LOG(::ringtun::log::Level::kError, __VA_ARGS__)
