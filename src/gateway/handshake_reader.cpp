#include "gateway/handshake_reader.hpp"

#include <cstring>

#include "common/log.hpp"
#include "frame/decoder.hpp"
#include "gateway/gateway.hpp"
#include "tunnel/handshake.hpp"

namespace ringtun::gateway {

HandshakeReader::HandshakeReader(GatewayCore& core, ring::SocketId socket, std::string peer, std::uint32_t timeout_ms,
                                 const std::shared_ptr<const tls::Context>& tls)
    : core_(core), loop_(core.loop()), socket_(socket), peer_(std::move(peer)) {
  timeout_.set_callback(
      [](void* self) {
        auto* reader = static_cast<HandshakeReader*>(self);
        reader->fail(reader->tls_ && !reader->tls_->open() ? "TLS handshake timed out" : "handshake timed out");
      },
      this);
  loop_.timers().schedule(timeout_, timeout_ms);
  if (tls) {
    auto session = tls::Session::create(tls);
    if (!session) {
      fail("cannot create a TLS session");
      return;
    }
    tls_ = std::move(*session);
  }
  if (!loop_.recv_start(socket_, tunnel::kTunnelPool)) fail("could not start receiving");
}

void HandshakeReader::abandon(const char* reason) noexcept { fail(reason); }

void HandshakeReader::fail(const char* reason) noexcept {
  if (closing_) return;
  closing_ = true;
  loop_.timers().cancel(timeout_);
  LOG_WARN("tunnel connection from %s closed: %s", peer_.c_str(), reason);
  loop_.close(socket_);
}

void HandshakeReader::on_recv(ring::Loop& loop, ring::SocketId, int res, const ring::RecvBuffer& buffer) {
  if (res <= 0) {
    if (closing_) return;
    if (const char* why = tls_ ? tls_->cut_short_reason() : nullptr) fail(why);
    else fail(res == 0 ? "peer closed the connection during the handshake" : "read error during the handshake");
    return;
  }
  if (tls_) {
    if (!closing_ && tls_failure_.empty() && !hello_found_) {
      receive_tls({reinterpret_cast<const std::byte*>(buffer.data), buffer.size});
    }
    loop.recycle(buffer);
    return;
  }
  if (!closing_) {
    if (bytes_.size() + buffer.size > kMaxHandshakeBytes) {
      loop.recycle(buffer);
      fail("handshake larger than 64 KiB");
      return;
    }
    bytes_.append(reinterpret_cast<const char*>(buffer.data), buffer.size);
  }
  loop.recycle(buffer);
  if (!closing_) parse();
}

void HandshakeReader::receive_tls(std::span<const std::byte> ciphertext) noexcept {
  bool too_big = false;
  Status status = tls_->receive(ciphertext, core_.tunnel_core().tls_plaintext, [&](std::span<const std::byte> plain) {
    if (bytes_.size() + plain.size() > kMaxHandshakeBytes) too_big = true;
    else bytes_.append(reinterpret_cast<const char*>(plain.data()), plain.size());
  });
  if (!status) {
    tls_failure_ = "TLS: " + tls_->failure();
    flush_tls();  // the alert wolfSSL queued, if any
    if (!send_busy_) fail(tls_failure_.c_str());
    return;
  }
  flush_tls();
  if (too_big) {
    fail("handshake larger than 64 KiB");
    return;
  }
  if (tls_->open() && !bytes_.empty()) parse();
}

void HandshakeReader::flush_tls() noexcept {
  if (send_busy_ || closing_) return;
  const std::span<const std::byte> out = tls_->begin_send();
  if (out.empty()) return;
  send_iov_ = {const_cast<std::byte*>(out.data()), out.size()};
  if (!loop_.send(socket_, &send_iov_, 1)) {
    tls_->send_done();
    fail("send failed during the TLS handshake");
    return;
  }
  send_busy_ = true;
}

void HandshakeReader::on_send(ring::Loop&, ring::SocketId, int res) {
  send_busy_ = false;
  if (closing_) return;
  tls_->send_done();
  if (res < 0) {
    fail("send error during the TLS handshake");
    return;
  }
  if (!tls_failure_.empty()) {
    fail(tls_failure_.c_str());
    return;
  }
  flush_tls();
  if (hello_found_ && !send_busy_) hand_off();
}

void HandshakeReader::parse() noexcept {
  const auto* data = reinterpret_cast<const std::byte*>(bytes_.data());
  const std::size_t have = std::min(bytes_.size(), frame::kPrefaceSize);
  // The magic first, so that a stray HTTP request or TLS hello is named as such at its first bytes.
  if (!tls_ && have >= 2 && data[0] == std::byte{0x16} && data[1] == std::byte{0x03}) {
    fail("the agent speaks TLS but this gateway runs with --insecure-plaintext (both sides must agree)");
    return;
  }
  if (std::memcmp(data, frame::kPreface.data(), std::min<std::size_t>(have, frame::kPrefaceSize - 1)) != 0) {
    fail("not a ringtun agent (bad preface)");
    return;
  }
  if (have < frame::kPrefaceSize) return;
  if (data[frame::kPrefaceSize - 1] != frame::kPreface[frame::kPrefaceSize - 1]) {
    fail("unsupported protocol version in the preface");
    return;
  }
  std::span<const std::byte> rest(data + frame::kPrefaceSize, bytes_.size() - frame::kPrefaceSize);
  frame::Decoder decoder(frame::kDefaultMaxFrameSize);
  frame::DecodedFrame f;
  while (true) {
    auto next = decoder.next(rest, f);
    if (!next) {
      fail("malformed frame in the handshake");
      return;
    }
    if (!*next) return;  // need more bytes
    switch (f.header.type) {
      case frame::FrameType::kSettings:
      case frame::FrameType::kPing:
      case frame::FrameType::kWindowUpdate:
        continue;
      case frame::FrameType::kControl:
        break;
      default:
        fail("stream frames before the hello");
        return;
    }
    // A hello we cannot parse is still handed over (to this core), so the agent hears why it was refused.
    std::string error;
    auto message = tunnel::parse_control(f.payload, &error);
    target_ = loop_.core();
    if (message && message->type == tunnel::ControlMessage::Type::kHello &&
        message->hello.conn_index < loop_.core_count()) {
      target_ = message->hello.conn_index;
    }
    hello_found_ = true;
    if (!send_busy_) hand_off();
    return;
  }
}

void HandshakeReader::hand_off() noexcept {
  handed_off_ = true;
  closing_ = true;
  loop_.timers().cancel(timeout_);
  fd_ = loop_.fd(socket_);
  loop_.detach(socket_);
}

void HandshakeReader::on_close(ring::Loop&, ring::SocketId) {
  if (handed_off_) {
    core_.handshake_done(*this, fd_, target_, std::move(bytes_), std::move(tls_));
  } else {
    core_.handshake_gone(*this);
  }
  delete this;
}

}  // namespace ringtun::gateway
