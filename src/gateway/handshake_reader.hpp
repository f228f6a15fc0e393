// HandshakeReader: the first bytes of a tunnel connection, read on whichever core accepted it.
//
// With TLS (the default) it first completes the TLS handshake (the wolfSSL session is handed over with the socket,
// open, to the serving core); everything below is about the plaintext inside. It checks the preface, skips SETTINGS, and reads the hello only far enough to learn the connection index, which
// names the core that must serve the connection. Then it detaches the socket and hands it, with every byte read so
// far, to that core, where a TunnelConn replays the bytes and does the real handshake. Anything else (garbage, a
// wrong protocol version, an oversized or malformed frame, data before the hello, a stall) closes the connection
// with a logged reason. The bytes it holds are bounded (kMaxHandshakeBytes).
// Thread rules: the accepting core's loop thread. It deletes itself when its socket is closed or detached.
#pragma once

#include <memory>
#include <string>

#include "ring/loop.hpp"
#include "tls/tls.hpp"
#include "ring/timer_wheel.hpp"

namespace ringtun::gateway {

class GatewayCore;

class HandshakeReader final : public ring::SocketHandler {
 public:
  static constexpr std::size_t kMaxHandshakeBytes = 64 * 1024;

  HandshakeReader(GatewayCore& core, ring::SocketId socket, std::string peer, std::uint32_t timeout_ms,
                  const std::shared_ptr<const tls::Context>& tls);
  void abandon(const char* reason) noexcept;  // the gateway is stopping

 private:
  ~HandshakeReader() override = default;
  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_send(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;
  void receive_tls(std::span<const std::byte> ciphertext) noexcept;
  void flush_tls() noexcept;
  void parse() noexcept;
  void hand_off() noexcept;
  void fail(const char* reason) noexcept;

  GatewayCore& core_;
  ring::Loop& loop_;
  ring::SocketId socket_;
  std::string peer_;
  std::string bytes_;  // plaintext so far
  std::unique_ptr<tls::Session> tls_;
  std::string tls_failure_;  // set: close once the alert is sent
  iovec send_iov_{};
  ring::Timer timeout_;
  int fd_ = -1;
  unsigned target_ = 0;
  bool handed_off_ = false;
  bool hello_found_ = false;  // hand off as soon as no TLS send is in flight
  bool send_busy_ = false;
  bool closing_ = false;
};

}  // namespace ringtun::gateway
