// HandshakeReader: the first bytes of a tunnel connection, read on whichever core accepted it.
//
// It checks the preface, skips SETTINGS, and reads the hello only far enough to learn the connection index, which
// names the core that must serve the connection. Then it detaches the socket and hands it, with every byte read so
// far, to that core, where a TunnelConn replays the bytes and does the real handshake. Anything else (garbage, a
// wrong protocol version, an oversized or malformed frame, data before the hello, a stall) closes the connection
// with a logged reason. The bytes it holds are bounded (kMaxHandshakeBytes).
// Thread rules: the accepting core's loop thread. It deletes itself when its socket is closed or detached.
#pragma once

#include <string>

#include "ring/loop.hpp"
#include "ring/timer_wheel.hpp"

namespace ringtun::gateway {

class GatewayCore;

class HandshakeReader final : public ring::SocketHandler {
 public:
  static constexpr std::size_t kMaxHandshakeBytes = 64 * 1024;

  HandshakeReader(GatewayCore& core, ring::SocketId socket, std::string peer, std::uint32_t timeout_ms);
  void abandon(const char* reason) noexcept;  // the gateway is stopping

 private:
  ~HandshakeReader() override = default;
  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;
  void parse() noexcept;
  void fail(const char* reason) noexcept;

  GatewayCore& core_;
  ring::Loop& loop_;
  ring::SocketId socket_;
  std::string peer_;
  std::string bytes_;
  ring::Timer timeout_;
  int fd_ = -1;
  unsigned target_ = 0;
  bool handed_off_ = false;
  bool closing_ = false;
};

}  // namespace ringtun::gateway
