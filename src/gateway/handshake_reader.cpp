#include "gateway/handshake_reader.hpp"

#include <cstring>

#include "common/log.hpp"
#include "frame/decoder.hpp"
#include "gateway/intake.hpp"
#include "tunnel/handshake.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::gateway {

HandshakeReader::HandshakeReader(Intake& intake, ring::Loop& loop, ring::SocketId socket,
                                 const ring::net::Address& peer, std::shared_ptr<const tls::Context> tls,
                                 std::uint64_t now_ms)
    : intake_(intake),
      loop_(loop),
      socket_(socket),
      peer_(peer),
      peer_text_(peer.to_string()),
      tls_context_(std::move(tls)),
      started_ms_(now_ms),
      last_progress_ms_(now_ms) {
  if (!loop_.recv_start(socket_, tunnel::kTunnelPool)) abandon("could not start receiving");
}

void HandshakeReader::abandon(const char* reason) noexcept {
  if (closing_) return;
  closing_ = true;
  if (reason != nullptr) {
    intake_.count_failure(classify_handshake_failure(reason, tls_ != nullptr));
    LOG_WARN("tunnel connection from %s closed: %s", peer_text_.c_str(), reason);
  }
  loop_.close(socket_);
}

void HandshakeReader::progress(Stage stage) noexcept {
  last_progress_ms_ = loop_.now_ms();
  if (stage > stage_) stage_ = stage;
}

void HandshakeReader::on_recv(ring::Loop& loop, ring::SocketId, int res, const ring::RecvBuffer& buffer) {
  if (res <= 0) {
    if (closing_) return;
    if (const char* why = tls_ ? tls_->cut_short_reason() : nullptr) abandon(why);
    else abandon(res == 0 ? "peer closed the connection during the handshake" : "read error during the handshake");
    return;
  }
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(buffer.data), buffer.size);
  if (handed_off_) {
    // The socket is being detached, and what its receive had already taken from the kernel is delivered here
    // (ring::Loop::detach): it belongs to the serving core as much as what is still in the socket.
    if (tls_) {
      (void)tls_->receive(bytes, intake_.tls_scratch(),
                          [&](std::span<const std::byte> plain) { keep_after_hello(plain); });
    } else {
      keep_after_hello(bytes);
    }
    loop.recycle(buffer);
    return;
  }
  if (closing_ || !tls_failure_.empty()) {
    loop.recycle(buffer);
    return;
  }
  if (tls_context_) {
    // The session (tens of KB) is made for a connection that speaks, not for every idle one the door accepts.
    if (!tls_) {
      auto session = tls::Session::create(tls_context_);
      if (!session) {
        loop.recycle(buffer);
        abandon("cannot create a TLS session");
        return;
      }
      tls_ = std::move(*session);
    }
    progress(Stage::kTlsStarted);
    receive_tls(bytes);
    loop.recycle(buffer);
    return;
  }
  if (bytes_.size() + bytes.size() > kMaxHandshakeBytes) {
    loop.recycle(buffer);
    abandon("handshake larger than 64 KiB");
    return;
  }
  bytes_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  loop.recycle(buffer);
  progress(Stage::kSilent);
  parse();
}

void HandshakeReader::keep_after_hello(std::span<const std::byte> bytes) noexcept {
  if (overflow_ || bytes_.size() + bytes.size() > kMaxBytesWithClaims) {  // never a replay with a hole
    overflow_ = true;
    return;
  }
  bytes_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void HandshakeReader::receive_tls(std::span<const std::byte> ciphertext) noexcept {
  bool too_big = false;
  Status status = tls_->receive(ciphertext, intake_.tls_scratch(), [&](std::span<const std::byte> plain) {
    if (hello_found_) keep_after_hello(plain);  // the rest of a chunk whose start held the hello
    else if (bytes_.size() + plain.size() > kMaxHandshakeBytes) too_big = true;
    else bytes_.append(reinterpret_cast<const char*>(plain.data()), plain.size());
  });
  if (!status) {
    tls_failure_ = "TLS: " + tls_->failure();
    flush_tls();  // the alert wolfSSL queued, if any
    if (!cipher_send_.busy()) abandon(tls_failure_.c_str());
    return;
  }
  if (tls_->open()) progress(Stage::kTlsOpen);
  flush_tls();
  if (too_big) {
    abandon("handshake larger than 64 KiB");
    return;
  }
  if (tls_->open() && !bytes_.empty() && !hello_found_) parse();
}

void HandshakeReader::flush_tls() noexcept {
  if (closing_) return;
  if (cipher_send_.start(loop_, socket_, *tls_) == tunnel::CipherSend::Started::kFailed) {
    abandon("send failed during the TLS handshake");
  }
}

void HandshakeReader::on_send(ring::Loop&, ring::SocketId, int res) {
  if (!tls_) return;  // only TLS output is ever sent from here
  cipher_send_.done(*tls_);
  if (closing_) return;
  if (res < 0) {
    abandon("send error during the TLS handshake");
    return;
  }
  if (!tls_failure_.empty()) {
    abandon(tls_failure_.c_str());
    return;
  }
  flush_tls();
  if (hello_found_ && !closing_ && !cipher_send_.busy()) hand_off();
}

void HandshakeReader::parse() noexcept {
  const auto* data = reinterpret_cast<const std::byte*>(bytes_.data());
  const std::size_t have = std::min(bytes_.size(), frame::kPrefaceSize);
  // The magic first, so that a stray HTTP request or TLS hello is named as such at its first bytes.
  if (!tls_ && have >= 2 && data[0] == std::byte{0x16} && data[1] == std::byte{0x03}) {
    abandon("the agent speaks TLS but this gateway runs with --insecure-plaintext (both sides must agree)");
    return;
  }
  if (std::memcmp(data, frame::kPreface.data(), std::min<std::size_t>(have, frame::kPrefaceSize - 1)) != 0) {
    abandon("not a ringtun agent (bad preface)");
    return;
  }
  if (have < frame::kPrefaceSize) return;
  if (data[frame::kPrefaceSize - 1] != frame::kPreface[frame::kPrefaceSize - 1]) {
    abandon("unsupported protocol version in the preface");
    return;
  }
  progress(Stage::kPreface);
  // Frames before the hello that were decoded by an earlier call are not decoded again (no quadratic work for a
  // peer that trickles SETTINGS and PINGs).
  if (decoded_upto_ < frame::kPrefaceSize) decoded_upto_ = frame::kPrefaceSize;
  std::span<const std::byte> rest(data + decoded_upto_, bytes_.size() - decoded_upto_);
  frame::Decoder decoder(frame::kDefaultMaxFrameSize);
  frame::DecodedFrame f;
  while (true) {
    const std::byte* frame_start = rest.data();
    auto next = decoder.next(rest, f);
    if (!next) {
      abandon("malformed frame in the handshake");
      return;
    }
    if (!*next) return;  // need more bytes
    switch (f.header.type) {
      case frame::FrameType::kSettings:
      case frame::FrameType::kPing:
      case frame::FrameType::kWindowUpdate:
        decoded_upto_ = static_cast<std::size_t>(rest.data() - data);
        continue;
      case frame::FrameType::kControl:
        break;
      default:
        abandon("stream frames before the hello");
        return;
    }
    auto arrival = std::make_unique<Arrival>();
    std::string error;
    auto message = tunnel::parse_control(f.payload, &error);
    if (!message) {
      arrival->refusal = tunnel::Refusal{tunnel::RefusalCode::kBadRequest, error};
      LOG_WARN("agent at %s: bad hello: %s", peer_text_.c_str(), error.c_str());
    } else if (message->type != tunnel::ControlMessage::Type::kHello) {
      arrival->refusal = tunnel::Refusal{tunnel::RefusalCode::kBadRequest, "the first control message must be a hello"};
    } else {
      arrival->hello = std::move(message->hello);
    }
    // The hello is read once, here: the serving core replays everything else (preface, SETTINGS, and whatever
    // the agent sent behind its hello, including what still arrives until the hand-off).
    hello_begin_ = static_cast<std::size_t>(frame_start - data);
    hello_end_ = static_cast<std::size_t>(rest.data() - data);
    arrival_ = std::move(arrival);
    hello_found_ = true;
    if (!cipher_send_.busy()) hand_off();
    return;
  }
}

void HandshakeReader::hand_off() noexcept {
  handed_off_ = true;
  closing_ = true;
  fd_ = loop_.fd(socket_);
  loop_.detach(socket_);
}

void HandshakeReader::on_close(ring::Loop&, ring::SocketId) {
  if (handed_off_) {
    arrival_->replay = bytes_.substr(0, hello_begin_) + bytes_.substr(hello_end_);
    if (overflow_ && !arrival_->refusal) {
      arrival_->refusal = tunnel::Refusal{tunnel::RefusalCode::kBadRequest, "too much sent behind the hello"};
    }
    arrival_->fd = fd_;
    arrival_->peer = peer_;
    arrival_->tls = std::move(tls_);
    intake_.hello_read(*this, std::move(arrival_));
  } else {
    intake_.reader_gone(*this);
  }
  delete this;
}

}  // namespace ringtun::gateway
