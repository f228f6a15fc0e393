#include "ring/net.hpp"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace ringtun::ring::net {

std::uint16_t Address::port() const noexcept {
  if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

void Address::set_port(std::uint16_t port) noexcept {
  if (storage.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (storage.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

bool Address::is_loopback() const noexcept {
  if (storage.ss_family == AF_INET) {
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr.s_addr) >> 24) == 127;
  }
  if (storage.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return false;
}

void Address::host_text(char* out, std::size_t size) const noexcept {
  if (size == 0) return;
  out[0] = '\0';
  const auto n = static_cast<socklen_t>(size);
  const char* written = nullptr;
  if (storage.ss_family == AF_INET) {
    written = inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, out, n);
  } else if (storage.ss_family == AF_INET6) {
    written = inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, out, n);
  }
  if (written == nullptr) out[0] = '\0';
}

std::string Address::to_string() const {
  char host[INET6_ADDRSTRLEN];
  host_text(host, sizeof host);
  if (storage.ss_family == AF_INET) return std::string(host) + ":" + std::to_string(port());
  if (storage.ss_family == AF_INET6) return "[" + std::string(host) + "]:" + std::to_string(port());
  return "?";
}

Result<Address> parse_address(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail(Errc::kParse, "address: expected [IPv6]:PORT");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      port_text = text;  // "PORT": all interfaces
    } else {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
      if (host.find(':') != std::string_view::npos) return fail(Errc::kParse, "address: IPv6 needs [brackets]");
    }
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return fail(Errc::kParse, "address: port must be a number 0..65535");
  }
  if (host.empty() || host == "*") {
    Address any;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&any.storage);
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    any.length = sizeof(sockaddr_in);
    any.set_port(static_cast<std::uint16_t>(port));
    return any;
  }
  auto address = numeric_address(host, static_cast<std::uint16_t>(port));
  if (!address) return fail(Errc::kParse, "address: host must be a numeric IPv4/IPv6 address or localhost");
  return *address;
}

std::optional<Address> numeric_address(std::string_view host, std::uint16_t port) {
  Address address;
  const std::string text(host == "localhost" ? std::string_view("127.0.0.1") : host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    address.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    address.length = sizeof(sockaddr_in6);
  } else {
    return std::nullopt;
  }
  address.set_port(port);
  return address;
}

namespace {
Status set_int_option(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) return fail_errno(errno, what);
  return {};
}
}  // namespace

Result<int> listen_tcp(const Address& address, bool reuse_port, int backlog) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return fail_errno(errno, "socket");
  auto fail_with = [fd](int err, const char* what) {
    ::close(fd);
    return fail_errno(err, what);
  };
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return fail_with(errno, "SO_REUSEADDR");
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return fail_with(errno, "SO_REUSEPORT");
  }
  // Accepted sockets inherit it: one system call per listener rather than one per connection.
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) return fail_with(errno, "TCP_NODELAY");
  if (::bind(fd, address.get(), address.length) != 0) return fail_with(errno, "bind");
  if (::listen(fd, backlog) != 0) return fail_with(errno, "listen");
  return fd;
}

Result<std::vector<int>> listen_tcp_group(const Address& address, unsigned count, int backlog) {
  std::vector<int> fds;
  Address bound = address;
  for (unsigned i = 0; i < count; ++i) {
    auto fd = listen_tcp(bound, true, backlog);
    if (!fd) {
      for (int f : fds) ::close(f);
      return Unexpected{fd.error()};
    }
    fds.push_back(*fd);
    if (i == 0 && address.port() == 0) {  // the others join the port the kernel chose
      auto local = local_address(*fd);
      if (!local) {
        for (int f : fds) ::close(f);
        return Unexpected{local.error()};
      }
      bound.set_port(local->port());
    }
  }
  return fds;
}

Result<Address> local_address(int fd) {
  Address address;
  address.length = sizeof address.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0) {
    return fail_errno(errno, "getsockname");
  }
  return address;
}

Result<Address> peer_address(int fd) {
  Address address;
  address.length = sizeof address.storage;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0) {
    return fail_errno(errno, "getpeername");
  }
  return address;
}

Status set_nodelay(int fd, bool on) { return set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY"); }

Status set_reset_on_close(int fd) {
  const linger lg{1, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0) return fail_errno(errno, "SO_LINGER");
  return {};
}

Result<std::uint64_t> raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return fail_errno(errno, "getrlimit");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return fail_errno(errno, "setrlimit");
  }
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

}  // namespace ringtun::ring::net
