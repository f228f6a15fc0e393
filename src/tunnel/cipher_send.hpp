// CipherSend: the one send in flight of a TLS socket's ciphertext. Both users of a TLS session on the ring (the
// gateway's handshake reader and TunnelConn) hand everything the session has pending to one ring send, and tell the
// session when it completed; this is that loop, once.
// Thread rules: the socket's loop thread.
#pragma once

#include <sys/uio.h>

#include "ring/loop.hpp"
#include "tls/tls.hpp"

namespace ringtun::tunnel {

class CipherSend {
 public:
  enum class Started { kNothing, kSending, kFailed };

  // Sends what `tls` has pending, unless a send is in flight (then kNothing: done() will be called first).
  // kFailed: the ring refused the send; nothing is in flight.
  Started start(ring::Loop& loop, ring::SocketId socket, tls::Session& tls) noexcept {
    if (busy_) return Started::kNothing;
    const std::span<const std::byte> out = tls.begin_send();
    if (out.empty()) return Started::kNothing;
    iov_ = {const_cast<std::byte*>(out.data()), out.size()};
    if (!loop.send(socket, &iov_, 1)) {
      tls.send_done();
      return Started::kFailed;
    }
    busy_ = true;
    return Started::kSending;
  }

  // The send completed (the socket's on_send): its buffer goes back to the session. Only after kSending.
  void done(tls::Session& tls) noexcept {
    if (!busy_) return;
    busy_ = false;
    tls.send_done();
  }

  bool busy() const noexcept { return busy_; }

 private:
  iovec iov_{};
  bool busy_ = false;
};

}  // namespace ringtun::tunnel
