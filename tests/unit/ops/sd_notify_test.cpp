#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ops/sd_notify.hpp"

namespace {

// Receives one datagram within 2 s; empty string when none came.
std::string receive(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return {};
  char buf[512];
  const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// Restores the environment variables a test changes, whatever it asserts.
struct EnvGuard {
  ~EnvGuard() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
};

}  // namespace

TEST_CASE("notify_systemd sends the state as one datagram to a socket path") {
  EnvGuard env;
  char dir[] = "/tmp/ringtun_sd_XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/notify";
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);

  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  CHECK(ringtun::ops::notify_systemd("READY=1"));
  CHECK(receive(fd) == "READY=1");
  CHECK(ringtun::ops::notify_systemd("STOPPING=1\nSTATUS=draining"));
  CHECK(receive(fd) == "STOPPING=1\nSTATUS=draining");

  ::close(fd);
  ::unlink(path.c_str());
  // Nobody listening any more: the send fails and says so.
  errno = 0;
  CHECK_FALSE(ringtun::ops::notify_systemd("WATCHDOG=1"));
  CHECK(errno != 0);
  ::rmdir(dir);
}

TEST_CASE("notify_systemd reaches an abstract socket named with a leading '@'") {
  EnvGuard env;
  char name[64];
  std::snprintf(name, sizeof name, "ringtun-sd-test-%d", static_cast<int>(::getpid()));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  addr.sun_path[0] = '\0';
  const std::size_t len = std::strlen(name);
  std::memcpy(addr.sun_path + 1, name, len);
  // The length ends the name: no terminating NUL is part of it.
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + len)) == 0);
  ::setenv("NOTIFY_SOCKET", (std::string("@") + name).c_str(), 1);
  CHECK(ringtun::ops::notify_systemd("READY=1"));
  CHECK(receive(fd) == "READY=1");
  ::close(fd);
}

TEST_CASE("notify_systemd without NOTIFY_SOCKET, or with an address it cannot use, is false") {
  EnvGuard env;
  ::unsetenv("NOTIFY_SOCKET");
  CHECK_FALSE(ringtun::ops::notify_systemd("READY=1"));
  ::setenv("NOTIFY_SOCKET", "", 1);
  CHECK_FALSE(ringtun::ops::notify_systemd("READY=1"));
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  CHECK_FALSE(ringtun::ops::notify_systemd("READY=1"));
  ::setenv("NOTIFY_SOCKET", ("/" + std::string(200, 'x')).c_str(), 1);  // longer than sun_path
  CHECK_FALSE(ringtun::ops::notify_systemd("READY=1"));
}

TEST_CASE("watchdog_interval_us honours WATCHDOG_PID") {
  EnvGuard env;
  CHECK(ringtun::ops::watchdog_interval_us() == 0);
  ::setenv("WATCHDOG_USEC", "30000000", 1);
  CHECK(ringtun::ops::watchdog_interval_us() == 30'000'000);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  CHECK(ringtun::ops::watchdog_interval_us() == 30'000'000);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);  // meant for another process
  CHECK(ringtun::ops::watchdog_interval_us() == 0);
  ::setenv("WATCHDOG_PID", "garbage", 1);
  CHECK(ringtun::ops::watchdog_interval_us() == 0);
  ::unsetenv("WATCHDOG_PID");
  ::setenv("WATCHDOG_USEC", "12abc", 1);
  CHECK(ringtun::ops::watchdog_interval_us() == 0);
  ::setenv("WATCHDOG_USEC", "-5", 1);
  CHECK(ringtun::ops::watchdog_interval_us() == 0);
}
