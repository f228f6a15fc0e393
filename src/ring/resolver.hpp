// Resolution of host names off the event loop.
//
// getaddrinfo blocks (DNS, /etc/hosts, NSS modules), so it never runs on a loop: each lookup gets a short-lived
// thread, which writes the answer into one end of a socketpair and exits. The loop reads the other end like any
// socket (its own recv path), so no thread ever touches the loop or its memory, and a lookup the loop gave up on
// (timeout, cancel) costs the thread nothing but a failed write. Callers answer numeric addresses and "localhost"
// themselves with net::numeric_address(), without a thread.
// Ownership: a Resolve deletes itself after reporting (or after cancel() once its socket is reaped).
// Thread rules: start() and cancel() on the loop's thread; `done` runs there, once, unless cancelled first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "ring/loop.hpp"
#include "ring/net.hpp"
#include "ring/timer_wheel.hpp"

namespace ringtun::ring {

class Resolve final : public SocketHandler {
 public:
  struct Answer {
    std::vector<net::Address> addresses;  // in getaddrinfo's order (RFC 6724), each with `port` set
    std::string error;                    // when empty of addresses: why ("Name or service not known", timed out)
  };
  using Done = void (*)(void* context, Answer&& answer);

  // Resolves `host` (a name, a numeric address, or localhost) for TCP to `port`. `receive_pool` is the loop's
  // receive pool the answer is read with. Null if the lookup could not even start (no thread, no socketpair): the
  // reason is logged and `done` is not called.
  static Resolve* start(Loop& loop, const std::string& host, std::uint16_t port, std::uint32_t timeout_ms,
                        unsigned receive_pool, Done done, void* context);
  // The caller no longer wants the answer.
  void cancel() noexcept;

 private:
  Resolve(Loop& loop, Done done, void* context);
  ~Resolve() override = default;
  void on_recv(Loop& loop, SocketId socket, int res, const RecvBuffer& buffer) override;
  void on_close(Loop& loop, SocketId socket) override;
  void finish(Answer&& answer) noexcept;
  static void run_lookup(int fd, std::string host, std::uint16_t port) noexcept;

  Loop& loop_;
  Done done_;
  void* context_;
  SocketId socket_;
  Timer timeout_;
  std::string bytes_;
  bool finished_ = false;
  bool socket_open_ = false;
};

}  // namespace ringtun::ring
