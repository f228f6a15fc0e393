#include "gateway/public_listeners.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.hpp"

namespace ringtun::gateway {

Status probe_bindable(const ring::net::Address& address) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return fail_errno(errno, "socket");
  // SO_REUSEADDR, as the real listeners have: a port whose old connections linger in TIME_WAIT is free. It does not
  // let us share a port that another socket listens on; only SO_REUSEPORT would, and that is what is left out.
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const int rc = ::bind(fd, address.get(), address.length);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return fail_errno(err, "bind");
  return {};
}

PortGroup open_port_group(const ring::net::Address& bind, std::uint16_t port, unsigned cores,
                          std::span<const std::uint16_t> reserved) {
  PortGroup group;
  if (std::find(reserved.begin(), reserved.end(), port) != reserved.end()) {
    group.problem = PortProblem::kReserved;
    return group;
  }
  ring::net::Address address = bind;
  address.set_port(port);
  if (auto probe = probe_bindable(address); !probe) {
    group.problem = PortProblem::kUnavailable;
    group.error = probe.error().sys_errno();
    return group;
  }
  auto fds = ring::net::listen_tcp_group(address, cores);
  if (!fds) {
    group.problem = PortProblem::kUnavailable;
    group.error = fds.error().sys_errno();
    return group;
  }
  group.fds = std::move(*fds);
  return group;
}

PublicListeners::PublicListeners(ring::Loop& loop, OnClient on_client, OnClosed on_closed, void* context)
    : loop_(loop), on_client_(on_client), on_closed_(on_closed), context_(context) {}

PublicListeners::~PublicListeners() = default;

void PublicListeners::bind(std::uint16_t port, int fd) {
  if (by_port_.count(port) != 0) {
    // The registry unbinds a port before it can be bound again; a second bind would be a bug upstream. Keep the
    // listener that serves and drop the newcomer rather than leak it.
    LOG_ERROR("port %u is already bound on this core: closing the new listener", port);
    ::close(fd);
    return;
  }
  auto socket = loop_.adopt_listener(fd, this);
  if (!socket) {
    char buf[160];
    LOG_ERROR("port %u: cannot accept on its listener: %s", port, socket.error().describe(buf, sizeof buf));
    return;
  }
  by_port_[port] = *socket;
  port_by_slot_[socket->index] = port;
}

void PublicListeners::unbind(std::uint16_t port) {
  auto it = by_port_.find(port);
  if (it == by_port_.end()) {
    on_closed_(context_, port);
    return;
  }
  port_by_slot_.erase(it->second.index);
  unbinding_[it->second.index] = port;
  loop_.close(it->second);
  by_port_.erase(it);
}

void PublicListeners::close_all() {
  closing_all_ = true;
  for (auto& [port, socket] : by_port_) loop_.close(socket);
  by_port_.clear();
  port_by_slot_.clear();
}

void PublicListeners::on_close(ring::Loop&, ring::SocketId socket) {
  auto it = unbinding_.find(socket.index);
  if (it == unbinding_.end()) return;
  const std::uint16_t port = it->second;
  unbinding_.erase(it);
  if (!closing_all_) on_closed_(context_, port);
}

void PublicListeners::on_accept(ring::Loop&, ring::SocketId listener, int res) {
  if (res < 0) {
    LOG_WARN("accept on a public port: %s", std::strerror(-res));
    return;
  }
  auto it = port_by_slot_.find(listener.index);
  if (it == port_by_slot_.end()) {  // accepted just as the port was unbound
    ::close(res);
    return;
  }
  on_client_(context_, it->second, res);
}

}  // namespace ringtun::gateway
