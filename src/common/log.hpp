// Logger: levelled, timestamped lines on stderr, printf-style (g++ 12 has no <format>).
//
// Each line is formatted into a stack buffer and written with one write(2), so lines from different cores never
// interleave mid-line. A thread may set a tag (e.g. "core 1") that prefixes its lines. The level is global and
// read relaxed: set it at start-up. Logging is for events, never per frame: the data path logs only errors.
// Thread rules: any thread.
#pragma once

#include <cstdarg>

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
