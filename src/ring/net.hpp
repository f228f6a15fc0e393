// Socket helpers: address parsing, listeners (one per core with SO_REUSEPORT), and socket options.
//
// Plain blocking syscalls used at set-up time (binding, options); the data path never calls them.
// Thread rules: stateless; any thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace ringtun::ring::net {

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const noexcept { return storage.ss_family; }
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  bool is_loopback() const noexcept;
  // The address without port or brackets ("192.0.2.1", "2001:db8::1") into `out` (INET6_ADDRSTRLEN is enough);
  // empty for an unknown family. Allocates nothing: the data path writes it into forwarded headers.
  void host_text(char* out, std::size_t size) const noexcept;
  std::string to_string() const;
};

// "HOST:PORT", "[V6]:PORT" or ":PORT"/"PORT" (all interfaces). HOST is a numeric address or "localhost";
// names are not resolved here (no blocking DNS on a loop). Port 0 asks the kernel for one.
Result<Address> parse_address(std::string_view text);
// A bare host (no brackets, no port) that is a numeric IPv4/IPv6 address or "localhost" (127.0.0.1), with `port`.
std::optional<Address> numeric_address(std::string_view host, std::uint16_t port);

// A non-blocking, close-on-exec TCP listener with TCP_NODELAY (which the sockets it accepts inherit). With
// reuse_port, several sockets may bind the same address and the kernel spreads connections across them (one per
// core).
Result<int> listen_tcp(const Address& address, bool reuse_port, int backlog = 4096);
// `count` listeners on the same address with SO_REUSEPORT; when the port is 0 the first one picks it and the
// others join it. On failure every socket made so far is closed.
Result<std::vector<int>> listen_tcp_group(const Address& address, unsigned count, int backlog = 4096);

Result<Address> local_address(int fd);
Result<Address> peer_address(int fd);
Status set_nodelay(int fd, bool on = true);
// SO_LINGER {1, 0}: closing the socket sends RST instead of FIN, so that a peer can tell a cut stream from a
// complete one. (Used on the data path, like set_nodelay.)
Status set_reset_on_close(int fd);

// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit.
Result<std::uint64_t> raise_fd_limit();

}  // namespace ringtun::ring::net
