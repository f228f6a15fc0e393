#include "ops/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace ringtun::ops {

namespace {

// Strict decimal: the whole string, no sign, no spaces. False for anything else.
bool parse_u64(const char* text, std::uint64_t* out) noexcept {
  if (text == nullptr || *text == '\0') return false;
  const char* end = text + std::strlen(text);
  const auto r = std::from_chars(text, end, *out);
  return r.ec == std::errc() && r.ptr == end;
}

}  // namespace

bool notify_systemd(std::string_view state) noexcept {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return false;
  const std::size_t len = std::strlen(path);
  // Only AF_UNIX addresses: a file path or "@name" (abstract namespace). systemd's "vsock:" form is not used by any
  // service manager we run under; refuse it rather than guess.
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const bool abstract = path[0] == '@';
  // A path needs room for its terminating NUL; an abstract name does not have one.
  const std::size_t room = abstract ? sizeof addr.sun_path : sizeof addr.sun_path - 1;
  if ((path[0] != '/' && !abstract) || len > room) {
    errno = EAFNOSUPPORT;
    return false;
  }
  std::memcpy(addr.sun_path, path, len);
  // The abstract name is the bytes after a leading NUL, with the length saying where it ends (no terminator).
  if (abstract) addr.sun_path[0] = '\0';
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t sent = -1;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), addr_len);
  } while (sent < 0 && errno == EINTR);
  const int saved = errno;
  ::close(fd);
  if (sent < 0) {
    errno = saved;
    return false;
  }
  return static_cast<std::size_t>(sent) == state.size();
}

std::uint64_t watchdog_interval_us() noexcept {
  std::uint64_t usec = 0;
  if (!parse_u64(std::getenv("WATCHDOG_USEC"), &usec)) return 0;
  // WATCHDOG_PID names the process the watchdog is meant for; a child that inherited the environment must not ping.
  if (const char* pid_text = std::getenv("WATCHDOG_PID"); pid_text != nullptr) {
    std::uint64_t pid = 0;
    if (!parse_u64(pid_text, &pid) || pid != static_cast<std::uint64_t>(::getpid())) return 0;
  }
  return usec;
}

}  // namespace ringtun::ops
