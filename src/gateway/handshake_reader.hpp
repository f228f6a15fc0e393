// HandshakeReader: the first bytes of one tunnel connection, read on whichever core accepted it (see intake.hpp).
//
// With TLS (the default) it first completes the TLS handshake; the session is made when the first byte arrives, and
// it is handed over, open, with the socket. Inside, it checks the preface, skips SETTINGS (and PINGs or window
// updates), and reads the first CONTROL frame: the hello, parsed here once. The hello frame is cut out of the bytes
// read so far; the serving core's TunnelConn replays the rest: preface, SETTINGS, and the claims an agent sends right
// behind its hello, including what of them still arrives until the socket is detached (nothing is lost). Anything
// else (garbage, a wrong protocol version, an oversized or malformed frame, data before the hello, a stall) closes the
// connection with a logged reason. The bytes it holds are bounded (kMaxHandshakeBytes, kMaxBytesWithClaims).
// Progress (bytes and stage) is what the intake's eviction reads.
// Thread rules: the accepting core's loop thread. It deletes itself when its socket is closed or detached.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ring/loop.hpp"
#include "ring/net.hpp"
#include "tls/tls.hpp"
#include "tunnel/cipher_send.hpp"

namespace ringtun::gateway {

class Intake;
struct Arrival;

class HandshakeReader final : public ring::SocketHandler {
 public:
  static constexpr std::size_t kMaxHandshakeBytes = 64 * 1024;        // up to and with the hello
  static constexpr std::size_t kMaxBytesWithClaims = 256 * 1024;      // plus what follows it until the hand-off

  // How far a handshake got: what eviction compares first (then the time of the last progress).
  enum class Stage : std::uint8_t { kSilent = 0, kTlsStarted = 1, kTlsOpen = 2, kPreface = 3 };

  HandshakeReader(Intake& intake, ring::Loop& loop, ring::SocketId socket, const ring::net::Address& peer,
                  std::shared_ptr<const tls::Context> tls, std::uint64_t now_ms);
  // Closes the connection with `reason` logged (null: quietly, the caller counts it), at most once.
  void abandon(const char* reason) noexcept;

  Stage stage() const noexcept { return stage_; }
  std::uint64_t started_ms() const noexcept { return started_ms_; }
  std::uint64_t last_progress_ms() const noexcept { return last_progress_ms_; }
  const ring::net::Address& peer() const noexcept { return peer_; }
  bool closing() const noexcept { return closing_; }

 private:
  ~HandshakeReader() override = default;
  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_send(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;
  void receive_tls(std::span<const std::byte> ciphertext) noexcept;
  void flush_tls() noexcept;
  void parse() noexcept;
  void hand_off() noexcept;
  void progress(Stage stage) noexcept;
  void keep_after_hello(std::span<const std::byte> bytes) noexcept;

  Intake& intake_;
  ring::Loop& loop_;
  ring::SocketId socket_;
  ring::net::Address peer_;
  std::string peer_text_;
  std::shared_ptr<const tls::Context> tls_context_;
  std::unique_ptr<tls::Session> tls_;
  tunnel::CipherSend cipher_send_;
  std::string bytes_;          // plaintext so far
  std::string tls_failure_;    // set: close once the alert is sent
  std::unique_ptr<Arrival> arrival_;  // set once the hello is read; handed over when the socket is detached
  std::size_t hello_begin_ = 0;  // the hello frame's bytes in bytes_, cut out of the replay
  std::size_t hello_end_ = 0;
  bool overflow_ = false;
  std::size_t decoded_upto_ = 0;  // bytes_ offset after the last whole frame decoded before the hello        // more than kMaxBytesWithClaims: the connection is refused
  std::uint64_t started_ms_;
  std::uint64_t last_progress_ms_;
  Stage stage_ = Stage::kSilent;
  int fd_ = -1;
  bool hello_found_ = false;  // hand off as soon as no TLS send is in flight
  bool handed_off_ = false;
  bool closing_ = false;
};

}  // namespace ringtun::gateway
