// Helpers shared by the ring tests: loop creation that skips (exit 77) when the kernel lacks a feature, a
// bounded "run until" driver, a checksum, and plain-syscall socket pairs over 127.0.0.1.
#pragma once

#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <utility>

#include "common/clock.hpp"
#include "ring/loop.hpp"

namespace ringtun::test {

inline std::unique_ptr<ring::Loop> make_loop(ring::LoopOptions options = {}) {
  auto loop = ring::Loop::create(options);
  if (!loop) {
    char buf[256];
    if (loop.error().code() == Errc::kUnsupported) {
      std::printf("SKIP: this kernel cannot run the ring: %s\n", loop.error().describe(buf, sizeof buf));
      std::exit(77);
    }
    FAIL("Loop::create: " << loop.error().describe(buf, sizeof buf));
  }
  return std::move(*loop);
}

// A runtime that could not start because the kernel lacks io_uring skips the test binary (exit 77).
inline void skip_if_unsupported(const Result<int>& r) {
  if (!r && r.error().code() == Errc::kUnsupported) {
    std::printf("SKIP: io_uring unavailable\n");
    std::exit(77);
  }
}

// Turns the loop until `done()` or the deadline; returns whether done() became true.
inline bool run_until(ring::Loop& loop, const std::function<bool()>& done, std::uint64_t timeout_ms = 10'000) {
  const std::uint64_t deadline = monotonic_ms() + timeout_ms;
  while (!done()) {
    if (monotonic_ms() > deadline) return false;
    loop.run_once(10);
  }
  return true;
}

// FNV-1a, 64-bit: order-sensitive, so reordered or corrupted bytes change it.
struct Checksum {
  std::uint64_t value = 1469598103934665603ULL;
  std::uint64_t bytes = 0;
  void add(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i < size; ++i) value = (value ^ p[i]) * 1099511628211ULL;
    bytes += size;
  }
};

struct Xorshift {
  std::uint64_t state;
  explicit Xorshift(std::uint64_t seed) : state(seed) {}
  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }
};

// A listening socket on 127.0.0.1 with a kernel-chosen port.
inline int listen_loopback(int backlog = 128, std::uint16_t* port = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, backlog) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  if (port != nullptr) *port = ntohs(addr.sin_port);
  return fd;
}

inline sockaddr_in loopback_addr(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

// A connected TCP pair over loopback made with plain syscalls: {client, server}, both blocking.
inline std::pair<int, int> tcp_pair() {
  std::uint16_t port = 0;
  int listener = listen_loopback(8, &port);
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback_addr(port);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(server >= 0);
  ::close(listener);
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return {client, server};
}

inline void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace ringtun::test
