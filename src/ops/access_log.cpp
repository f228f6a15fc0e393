#include "ops/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/decimal.hpp"
#include "common/json_writer.hpp"

namespace ringtun::ops {

namespace {

constexpr std::size_t kMaxTarget = 256;
constexpr int kOpenFlags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
constexpr mode_t kOpenMode = 0640;

bool is_stdout_path(std::string_view path) noexcept { return path == "-"; }

void append_2(char* p, unsigned v) noexcept {
  p[0] = static_cast<char>('0' + v / 10 % 10);
  p[1] = static_cast<char>('0' + v % 10);
}

// RFC 3339, UTC, milliseconds: 2026-12-02T14:55:01.123Z.
void append_time(std::string& out, std::uint64_t end_ms) {
  const auto seconds = static_cast<time_t>(end_ms / 1000);
  tm parts{};
  gmtime_r(&seconds, &parts);
  char buf[24];
  const auto year = static_cast<unsigned>(parts.tm_year + 1900);
  append_2(buf, year / 100);
  append_2(buf + 2, year % 100);
  buf[4] = '-';
  append_2(buf + 5, static_cast<unsigned>(parts.tm_mon + 1));
  buf[7] = '-';
  append_2(buf + 8, static_cast<unsigned>(parts.tm_mday));
  buf[10] = 'T';
  append_2(buf + 11, static_cast<unsigned>(parts.tm_hour));
  buf[13] = ':';
  append_2(buf + 14, static_cast<unsigned>(parts.tm_min));
  buf[16] = ':';
  append_2(buf + 17, static_cast<unsigned>(parts.tm_sec));
  buf[19] = '.';
  const auto ms = static_cast<unsigned>(end_ms % 1000);
  buf[20] = static_cast<char>('0' + ms / 100);
  append_2(buf + 21, ms % 100);
  buf[23] = 'Z';
  out.append(buf, sizeof buf);
}

bool is_control(unsigned char c) noexcept { return c < 0x20 || c == 0x7f; }

// ---- text format ----
// Fields are separated by one space and most come from peers (Host, SNI, service names agents choose), so every
// byte that could end the line, shift the fields or start a quoted field becomes '?'.
void append_text_token(std::string& out, std::string_view value) {
  if (value.empty()) {
    out += '-';
    return;
  }
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    out += (is_control(c) || c == ' ' || c == '"') ? '?' : ch;
  }
}

// The inside of a quoted free-text field: spaces stay, '"' and '\' are escaped so the closing quote is unambiguous,
// control characters (newlines, escape sequences) become '?'.
void append_text_quoted_body(std::string& out, std::string_view value) {
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_control(c)) {
      out += '?';
    } else if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else {
      out += ch;
    }
  }
}

void format_text(const AccessRecord& r, std::string& out) {
  append_time(out, r.end_ms);
  out += ' ';
  append_text_token(out, r.client);
  out += ' ';
  append_text_token(out, r.listener);
  out += ' ';
  append_text_token(out, r.service);
  out += ' ';
  append_text_token(out, r.host);
  out += ' ';
  append_text_token(out, r.agent);
  out += " \"";
  if (r.method.empty() && r.target.empty()) {
    out += '-';
  } else {
    append_text_quoted_body(out, r.method.empty() ? std::string_view("-") : r.method);
    out += ' ';
    append_text_quoted_body(out, r.target.empty() ? std::string_view("-") : r.target.substr(0, kMaxTarget));
  }
  out += "\" ";
  if (r.status > 0) {
    append_decimal(out, static_cast<std::uint64_t>(r.status));
  } else {
    out += '-';
  }
  out += ' ';
  append_decimal(out, r.bytes_in);
  out += ' ';
  append_decimal(out, r.bytes_out);
  out += ' ';
  append_decimal(out, r.duration_ms);
  out += "ms ";
  append_text_token(out, r.outcome);
  if (!r.reason.empty()) {
    out += " \"";
    append_text_quoted_body(out, r.reason);
    out += '"';
  }
}

// ---- JSON format ----
// Strings through common/json_writer's escaper, DEL included: every line parses whatever a peer sent, and no control
// byte reaches a terminal reading the log.
void append_json_text(std::string& out, std::string_view value) { append_json_string(out, value, true); }

// Optional strings are written as null when empty, so every line has the same keys (easier for log pipelines).
void append_json_optional(std::string& out, std::string_view value) {
  if (value.empty()) {
    out += "null";
  } else {
    append_json_text(out, value);
  }
}

void format_json(const AccessRecord& r, std::string& out) {
  out += "{\"time\":\"";
  append_time(out, r.end_ms);
  out += "\",\"client\":";
  append_json_text(out, r.client);
  out += ",\"listener\":";
  append_json_text(out, r.listener);
  out += ",\"service\":";
  append_json_optional(out, r.service);
  out += ",\"host\":";
  append_json_optional(out, r.host);
  out += ",\"agent\":";
  append_json_optional(out, r.agent);
  out += ",\"method\":";
  append_json_optional(out, r.method);
  out += ",\"target\":";
  append_json_optional(out, r.target.substr(0, kMaxTarget));
  out += ",\"status\":";
  if (r.status > 0) {
    append_decimal(out, static_cast<std::uint64_t>(r.status));
  } else {
    out += "null";
  }
  out += ",\"bytes_in\":";
  append_decimal(out, r.bytes_in);
  out += ",\"bytes_out\":";
  append_decimal(out, r.bytes_out);
  out += ",\"duration_ms\":";
  append_decimal(out, r.duration_ms);
  out += ",\"outcome\":";
  append_json_text(out, r.outcome);
  out += ",\"reason\":";
  append_json_optional(out, r.reason);
  out += '}';
}

int open_path(const std::string& path) noexcept {
  if (is_stdout_path(path)) return ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
  int fd = -1;
  do {
    fd = ::open(path.c_str(), kOpenFlags, kOpenMode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

Result<std::shared_ptr<AccessLogSink>> AccessLogSink::open(std::string path, LogFormat format, std::string* error) {
  const int fd = open_path(path);
  if (fd < 0) {
    const int err = errno;
    if (error != nullptr) {
      *error = "--access-log: cannot open '";
      *error += path;
      *error += "': ";
      *error += std::strerror(err);
    }
    return fail_errno(err, "access log open");
  }
  // Only a check that the path is writable now: each core opens its own descriptor when it first writes.
  ::close(fd);
  return std::make_shared<AccessLogSink>(std::move(path), format);
}

AccessLog::AccessLog(ring::Loop& loop, std::shared_ptr<AccessLogSink> sink) : loop_(loop), sink_(std::move(sink)) {
  timer_.set_callback([](void* self) { static_cast<AccessLog*>(self)->on_timer(); }, this);
  // One allocation up front: the buffer is flushed at kFlushBytes, so it rarely grows past this.
  buffer_.reserve(kFlushBytes + 4096);
}

AccessLog::~AccessLog() {
  flush();
  loop_.timers().cancel(timer_);
  if (fd_ >= 0) ::close(fd_);
}

void AccessLog::write(const AccessRecord& record) noexcept {
  if (buffer_.empty() && !timer_.armed()) loop_.timers().schedule(timer_, kFlushMs);
  format(record, sink_->format(), buffer_);
  buffer_ += '\n';
  if (buffer_.size() >= kFlushBytes) flush();
}

void AccessLog::flush() noexcept {
  loop_.timers().cancel(timer_);
  if (buffer_.empty()) return;
  if (!ensure_open()) {
    ++write_errors_;
    buffer_.clear();
    return;
  }
  // One write(2) for the whole buffer: with O_APPEND each write lands at the end of the file as a unit, so cores
  // sharing the file never split each other's lines. A short write (disk full) is continued; an error drops the
  // rest rather than block the core or grow without bound.
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++write_errors_;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

void AccessLog::format(const AccessRecord& record, LogFormat format, std::string& out) {
  if (format == LogFormat::kJson) {
    format_json(record, out);
  } else {
    format_text(record, out);
  }
}

void AccessLog::on_timer() { flush(); }

bool AccessLog::ensure_open() noexcept {
  const bool to_stdout = is_stdout_path(sink_->path());
  const std::uint64_t generation = sink_->generation();
  // stdout is never reopened: there is no path that logrotate could have moved.
  if (fd_ >= 0 && (to_stdout || generation == generation_)) return true;
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  // The generation is taken before opening: a reopen() that races with this open causes one more reopen later,
  // never a missed one. A failed open is retried at the next flush.
  generation_ = generation;
  fd_ = open_path(sink_->path());
  return fd_ >= 0;
}

}  // namespace ringtun::ops
