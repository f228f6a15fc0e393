// Access log: one line per public connection (and per HTTP request) when it ends, to a file or stdout.
//
// `AccessLogSink` is the process's one destination (--access-log FILE|-, --log-format text|json). Each core writes
// through its own `AccessLog`, which keeps its own file descriptor (opened with O_APPEND, so lines from different
// cores never interleave mid-line: each flush is whole lines in one write(2)) and buffers lines in memory: a flush
// happens when the buffer passes kFlushBytes or kFlushMs after the first buffered line (a timer on the core's loop),
// so a busy core pays one write per many connections. SIGHUP (logrotate) calls AccessLogSink::reopen(): each core
// notices before its next flush and opens the path again. "-" writes to stdout (a dup of fd 1) and never reopens.
// No colour codes are written.
//
// Text format, one line:  <RFC 3339 time UTC with ms> <client> <listener> <service|-> <host|-> <agent|-> "<request|->"
//   <status|-> <bytes_in> <bytes_out> <duration_ms>ms <outcome> ["reason"]
//   e.g. 2026-12-02T14:55:01.123Z 192.0.2.1:5555 http web app.example.com agent-7 "GET /x" 200 512 10240 42ms ok
// Many fields come from peers (Host, SNI, target, service names agents choose), so none can forge a line or shift
// the fields: in the space-separated fields, control characters, spaces and '"' become '?'; request ("METHOD
// target", "-" when not HTTP) and reason are quoted, with '"' and '\' escaped by a backslash and control characters
// as '?'. The reason is appended only when non-empty. The target is cut at 256 bytes (both formats).
// JSON format: one object per line with the same fields, named as in AccessRecord:
//   {"time":"...","client":"...","listener":"...","service":..,"host":..,"agent":..,"method":..,"target":..,
//    "status":200,"bytes_in":0,"bytes_out":0,"duration_ms":0,"outcome":"...","reason":..}
//   Every key is always present: an empty optional string (service, host, agent, method, target, reason) and
//   status 0 are null. Strings are escaped per RFC 8259; bytes that are not well-formed UTF-8 become U+FFFD.
// Ownership: an AccessLog must be destroyed before its Loop (its destructor flushes and cancels its timer).
// Thread rules: AccessLogSink::reopen() from any thread; an AccessLog only on its core's loop thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "ring/loop.hpp"
#include "ring/timer_wheel.hpp"

namespace ringtun::ops {

enum class LogFormat : std::uint8_t { kText, kJson };

struct AccessRecord {
  std::uint64_t end_ms = 0;         // wall clock, ms since the epoch
  std::uint64_t duration_ms = 0;
  std::string_view client;          // "192.0.2.1:5555" (the L4 peer)
  std::string_view listener;        // "tcp:8080", "http", "tls"
  std::string_view service;         // empty: none found
  std::string_view host;            // http Host / tls SNI, or empty
  std::string_view agent;           // agent id, or empty
  std::string_view method;          // HTTP requests only
  std::string_view target;          // HTTP requests only (cut at 256 bytes)
  int status = 0;                   // HTTP status, 0 for connections
  std::uint64_t bytes_in = 0;       // from the client
  std::uint64_t bytes_out = 0;      // to the client
  std::string_view outcome;         // "ok", "reset", "refused", "timeout", "error"
  std::string_view reason;          // why, for anything but ok (may be empty)
};

class AccessLogSink {
 public:
  // Opens (creates, appends) `path`, or stdout for "-", to check it is writable now. Errors name the path.
  static Result<std::shared_ptr<AccessLogSink>> open(std::string path, LogFormat format, std::string* error);

  // Any thread (the SIGHUP handler thread): every core reopens the path before its next write.
  void reopen() noexcept { generation_.fetch_add(1, std::memory_order_relaxed); }

  const std::string& path() const noexcept { return path_; }
  LogFormat format() const noexcept { return format_; }
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_relaxed); }

  AccessLogSink(std::string path, LogFormat format) : path_(std::move(path)), format_(format) {}

 private:
  std::string path_;
  LogFormat format_;
  std::atomic<std::uint64_t> generation_{0};
};

class AccessLog {
 public:
  static constexpr std::size_t kFlushBytes = 32 * 1024;
  static constexpr std::uint32_t kFlushMs = 200;

  AccessLog(ring::Loop& loop, std::shared_ptr<AccessLogSink> sink);
  ~AccessLog();  // flushes
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void write(const AccessRecord& record) noexcept;
  void flush() noexcept;
  // Formats one record as the sink's format would, without the newline (for tests).
  static void format(const AccessRecord& record, LogFormat format, std::string& out);

 private:
  void on_timer();
  bool ensure_open() noexcept;
  ring::Loop& loop_;
  std::shared_ptr<AccessLogSink> sink_;
  std::string buffer_;
  int fd_ = -1;
  std::uint64_t generation_ = UINT64_MAX;
  std::uint64_t write_errors_ = 0;
  ring::Timer timer_;
};

}  // namespace ringtun::ops
