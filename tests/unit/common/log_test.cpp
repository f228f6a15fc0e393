#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/log.hpp"

namespace {
// Captures what the logger writes to fd 2 while `fn` runs.
template <typename Fn>
std::string capture_stderr(Fn fn) {
  std::fflush(stderr);
  int saved = dup(2);
  char path[] = "/tmp/ringtun_log_test_XXXXXX";
  int fd = mkstemp(path);
  dup2(fd, 2);
  fn();
  dup2(saved, 2);
  close(saved);
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  unlink(path);
  return out;
}
}  // namespace

TEST_CASE("log levels filter and lines carry level, tag and a newline") {
  using ringtun::log::Level;
  ringtun::log::set_level(Level::kInfo);
  std::string out = capture_stderr([] {
    LOG_DEBUG("hidden %d", 1);
    ringtun::log::set_thread_tag("core 3");
    LOG_WARN("visible %d", 2);
    ringtun::log::set_thread_tag(nullptr);
  });
  CHECK(out.find("hidden") == std::string::npos);
  CHECK(out.find("WARN  core 3: visible 2\n") != std::string::npos);
  CHECK(out[4] == '-');  // starts with an ISO-8601 date
}

TEST_CASE("a line longer than the buffer is truncated, not overflowed") {
  std::string big(5000, 'a');
  std::string out = capture_stderr([&] { LOG_ERROR("%s", big.c_str()); });
  CHECK(out.size() < 1100);
  CHECK(out.back() == '\n');
}

TEST_CASE("parse_level") {
  ringtun::log::Level l{};
  CHECK(ringtun::log::parse_level("debug", &l));
  CHECK(l == ringtun::log::Level::kDebug);
  CHECK_FALSE(ringtun::log::parse_level("loud", &l));
}
