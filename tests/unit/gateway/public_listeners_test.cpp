// Opening public ports: the gateway's own ports and ports held by another socket (even an SO_REUSEPORT group) are
// refused; a free port gives one listener per core in one group.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "gateway/public_listeners.hpp"

using namespace ringtun;
using namespace ringtun::gateway;

namespace {
ring::net::Address loopback(std::uint16_t port) { return *ring::net::parse_address("127.0.0.1:" + std::to_string(port)); }

std::uint16_t port_of(int fd) { return ring::net::local_address(fd)->port(); }
}  // namespace

TEST_CASE("public ports: a port held by an SO_REUSEPORT group of another program is refused, not joined") {
  auto group = ring::net::listen_tcp_group(loopback(0), 2);  // stands for nginx `reuseport`, or a gateway's tunnel
  REQUIRE(group);
  const std::uint16_t port = port_of((*group)[0]);
  auto probe = probe_bindable(loopback(port));
  REQUIRE_FALSE(probe);
  CHECK(probe.error().sys_errno() == EADDRINUSE);
  PortGroup result = open_port_group(loopback(0), port, 2, {});
  CHECK(result.problem == PortProblem::kUnavailable);
  CHECK(result.error == EADDRINUSE);
  CHECK(result.fds.empty());
  for (int fd : *group) ::close(fd);
}

TEST_CASE("public ports: a plain listener of another program is refused too") {
  auto fd = ring::net::listen_tcp(loopback(0), false);
  REQUIRE(fd);
  PortGroup result = open_port_group(loopback(0), port_of(*fd), 2, {});
  CHECK(result.problem == PortProblem::kUnavailable);
  ::close(*fd);
}

TEST_CASE("public ports: the gateway's own listeners are reserved") {
  const std::uint16_t reserved[] = {7000, 7443};
  PortGroup result = open_port_group(loopback(0), 7443, 2, reserved);
  CHECK(result.problem == PortProblem::kReserved);
  CHECK(result.fds.empty());
}

TEST_CASE("public ports: a free port gives one listener per core, all on that port") {
  auto probe_fd = ring::net::listen_tcp(loopback(0), false);
  REQUIRE(probe_fd);
  const std::uint16_t port = port_of(*probe_fd);
  ::close(*probe_fd);  // free again (nothing connected: no TIME_WAIT)
  PortGroup result = open_port_group(loopback(0), port, 3, {});
  REQUIRE(result.problem == PortProblem::kNone);
  REQUIRE(result.fds.size() == 3);
  for (int fd : result.fds) CHECK(port_of(fd) == port);
  // And now the port is held: a second group (a second agent's claim, or a second gateway) cannot join it.
  PortGroup second = open_port_group(loopback(0), port, 1, {});
  CHECK(second.problem == PortProblem::kUnavailable);
  for (int fd : result.fds) ::close(fd);
}
