// Public TCP listeners: one socket per core for each public port an agent's service holds, and the rules that keep
// a port from being stolen.
//
// A public port is opened (open_port_group, on the registry core) only if
//  * it is none of the gateway's own listeners (the tunnel port, and every listener added later: HTTP, TLS, admin):
//    those are SO_REUSEPORT groups too, so a public group on the same address would silently join them and take a
//    share of their connections;
//  * no other socket on the host holds it, even one with SO_REUSEPORT (nginx `reuseport`, a second gateway): a
//    probe binds the address without SO_REUSEPORT first, which any existing holder makes fail with EADDRINUSE. Only
//    then is the group created. (A program that joins our group later must run as our user: SO_REUSEPORT groups
//    are per user; see docs/operations.md.)
// Each core then adopts its socket (bind) and accepts on it; a core closes its socket when told (unbind) and reports
// once the socket is really closed, so that the registry does not probe a port its own listeners still hold.
// Thread rules: PublicListeners is one core's and used on its loop thread; open_port_group runs on the registry core.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "common/result.hpp"
#include "ring/loop.hpp"
#include "ring/net.hpp"

namespace ringtun::gateway {

// Why a public port cannot be opened.
enum class PortProblem : std::uint8_t {
  kNone,
  kReserved,     // one of the gateway's own listeners
  kUnavailable,  // held by another socket on the host, or bind/listen failed
};

struct PortGroup {
  PortProblem problem = PortProblem::kNone;
  std::vector<int> fds;  // one per core when problem == kNone
  int error = 0;         // errno of the failure (kUnavailable)
};

// Opens `cores` listeners on `bind` (host of --listen) with `port`, after the checks above. `reserved`: ports of
// the gateway's own listeners on the same host.
PortGroup open_port_group(const ring::net::Address& bind, std::uint16_t port, unsigned cores,
                          std::span<const std::uint16_t> reserved);

// Binds `address` without SO_REUSEPORT to learn whether any socket holds it; the probe socket is closed again.
// Ok when free; the errno (EADDRINUSE, EACCES...) otherwise.
Status probe_bindable(const ring::net::Address& address);

class PublicListeners final : public ring::SocketHandler {
 public:
  // A connection accepted on a public port; the callee owns `fd`.
  using OnClient = void (*)(void* context, std::uint16_t port, int fd);
  // The listener of an unbound port is closed (or there was none on this core).
  using OnClosed = void (*)(void* context, std::uint16_t port);

  PublicListeners(ring::Loop& loop, OnClient on_client, OnClosed on_closed, void* context);
  ~PublicListeners() override;

  // Adopts `fd` (a listener of the group for `port`) and starts accepting. Takes the fd in every case.
  void bind(std::uint16_t port, int fd);
  // Stops accepting on `port` and closes its socket here; `on_closed` follows once it is closed (at once for a port
  // this core does not hold).
  void unbind(std::uint16_t port);
  // Closes every listener (the gateway is stopping); nothing is reported.
  void close_all();
  std::size_t size() const noexcept { return by_port_.size(); }

 private:
  void on_accept(ring::Loop& loop, ring::SocketId listener, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;

  ring::Loop& loop_;
  OnClient on_client_;
  OnClosed on_closed_;
  void* context_;
  std::map<std::uint16_t, ring::SocketId> by_port_;
  std::map<std::uint32_t, std::uint16_t> port_by_slot_;  // listener slot index -> port
  std::map<std::uint32_t, std::uint16_t> unbinding_;     // slot index -> port, closing after unbind()
  bool closing_all_ = false;
};

}  // namespace ringtun::gateway
