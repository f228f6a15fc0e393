// EdgeStream: one stream's edge socket (a public client on the gateway, a local service on the agent).
//
// States, per direction:
//   edge -> tunnel: reading; paused while `ingress_limit_` bytes wait to be sent on the tunnel; EOF from the edge
//                   becomes the stream's FIN (edge_eof_).
//   tunnel -> edge: bytes wait in out_ and are written one gathered send at a time; credit goes back per send;
//                   the stream's FIN becomes shutdown(SHUT_WR) once out_ is empty (peer_fin_ -> shutdown_done_).
// The socket closes gracefully when both directions are finished, abortively (RST) when the stream is reset or the
// tunnel dies. The object frees itself once its socket is closed and its session stream is gone; `depth_` keeps it
// alive while one of its own calls is on the stack (session callbacks can re-enter it synchronously).
#include <sys/socket.h>

#include <cstring>

#include "common/log.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::tunnel {

namespace {
constexpr std::size_t kMaxSendBytes = 256 * 1024;
}  // namespace

// Holds the stream alive for the duration of an entry point; frees it on the way out if it is done.
class EdgeStreamGuard {
 public:
  explicit EdgeStreamGuard(int& depth) : depth_(depth) { ++depth_; }
  ~EdgeStreamGuard() { --depth_; }
  EdgeStreamGuard(const EdgeStreamGuard&) = delete;
  EdgeStreamGuard& operator=(const EdgeStreamGuard&) = delete;

 private:
  int& depth_;
};

EdgeStream::EdgeStream(TunnelConn& conn, frame::StreamHandle handle)
    : conn_(&conn),
      loop_(conn.core().loop),
      handle_(handle),
      out_(conn.core().blocks),
      ingress_limit_(conn.options().edge_ingress_limit) {}

void EdgeStream::attach_socket(ring::SocketId socket, bool connecting) noexcept {
  socket_ = socket;
  socket_closed_ = false;
  connecting_ = connecting;
}

void EdgeStream::start_reading() noexcept {
  if (socket_closed_ || socket_closing_ || reading_ || edge_eof_) return;
  reading_ = true;
  if (!loop_.recv_start(socket_, kEdgePool)) reading_ = false;
}

// ---------------------------------------------------------------- tunnel -> edge

void EdgeStream::deliver(std::span<const std::byte> bytes) noexcept {
  {
    EdgeStreamGuard guard(depth_);
    if (socket_closed_ || socket_closing_) return;  // the stream is being torn down; credit no longer matters
    if (!out_.append(bytes)) {
      LOG_WARN("stream buffer budget exhausted: resetting the stream");
      fail(frame::ErrorCode::kEnhanceYourCalm);
    } else {
      send_more();
    }
  }
  maybe_free();
}

void EdgeStream::send_more() noexcept {
  if (connecting_ || in_flight_ > 0 || socket_closed_ || socket_closing_ || out_.empty()) return;
  const std::size_t count = out_.gather(iov_, kMaxIov, kMaxSendBytes);
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < count; ++i) bytes += iov_[i].iov_len;
  if (!loop_.send(socket_, iov_, static_cast<unsigned>(count))) {
    fail(frame::ErrorCode::kCancel);
    return;
  }
  in_flight_ = bytes;
}

void EdgeStream::on_send(ring::Loop&, ring::SocketId, int res) {
  {
    EdgeStreamGuard guard(depth_);
    if (res < 0) {
      LOG_DEBUG("edge write failed: %s", std::strerror(-res));
      in_flight_ = 0;
      fail(frame::ErrorCode::kCancel);
    } else {
      const std::size_t sent = in_flight_;
      in_flight_ = 0;
      out_.consume(sent);
      if (conn_ != nullptr) conn_->edge_delivered(*this, sent);
      if (!out_.empty()) {
        send_more();
      } else if (peer_fin_ && !shutdown_sent_) {
        shutdown_sent_ = true;
        (void)loop_.shutdown_write(socket_);
      }
    }
  }
  maybe_free();
}

void EdgeStream::peer_fin() noexcept {
  {
    EdgeStreamGuard guard(depth_);
    peer_fin_ = true;
    if (!connecting_ && out_.empty() && in_flight_ == 0 && !shutdown_sent_ && !socket_closed_ && !socket_closing_) {
      shutdown_sent_ = true;
      (void)loop_.shutdown_write(socket_);
    }
  }
  maybe_free();
}

void EdgeStream::on_shutdown(ring::Loop&, ring::SocketId, int) {
  {
    EdgeStreamGuard guard(depth_);
    shutdown_done_ = true;
    maybe_done();
  }
  maybe_free();
}

void EdgeStream::peer_reset() noexcept {
  {
    EdgeStreamGuard guard(depth_);
    close_socket(true);
  }
  maybe_free();
}

// ---------------------------------------------------------------- edge -> tunnel

void EdgeStream::on_connect(ring::Loop& loop, ring::SocketId socket, int res) {
  {
    EdgeStreamGuard guard(depth_);
    connecting_ = false;
    if (res < 0) {
      LOG_WARN("local service connect failed: %s", std::strerror(-res));
      fail(frame::ErrorCode::kConnectFailed);
    } else {
      (void)ring::net::set_nodelay(loop.fd(socket));
      start_reading();
      send_more();
      if (peer_fin_ && out_.empty() && in_flight_ == 0 && !shutdown_sent_) {
        shutdown_sent_ = true;
        (void)loop.shutdown_write(socket);
      }
    }
  }
  maybe_free();
}

void EdgeStream::on_recv(ring::Loop& loop, ring::SocketId, int res, const ring::RecvBuffer& buffer) {
  {
    EdgeStreamGuard guard(depth_);
    if (res > 0) {
      if (conn_ == nullptr || !conn_->queue_edge_data(*this, buffer)) {
        loop.recycle(buffer);  // the stream is gone: nobody will send these bytes
      } else {
        ingress_pending_ += buffer.size;
        if (ingress_pending_ >= ingress_limit_ && !read_paused_) {
          read_paused_ = true;
          (void)loop.recv_stop(socket_);
        }
      }
    } else if (res == 0) {
      reading_ = false;
      edge_eof_ = true;
      if (conn_ != nullptr) conn_->edge_fin(*this);
      maybe_done();
    } else {
      reading_ = false;
      LOG_DEBUG("edge read failed: %s", std::strerror(-res));
      fail(frame::ErrorCode::kCancel);
    }
  }
  maybe_free();
}

void EdgeStream::ingress_released(std::size_t bytes) noexcept {
  {
    EdgeStreamGuard guard(depth_);
    ingress_pending_ = bytes > ingress_pending_ ? 0 : ingress_pending_ - bytes;
    if (read_paused_ && ingress_pending_ <= ingress_limit_ / 2 && !socket_closed_ && !socket_closing_) {
      read_paused_ = false;
      (void)loop_.recv_start(socket_, kEdgePool);
    }
  }
  maybe_free();
}

// ---------------------------------------------------------------- endings

void EdgeStream::maybe_done() noexcept {
  // Both directions finished: the edge sent its FIN and got ours after all the data.
  if (edge_eof_ && shutdown_done_) close_socket(false);
}

void EdgeStream::fail(frame::ErrorCode code) noexcept {
  close_socket(true);
  if (conn_ != nullptr) conn_->edge_failed(*this, code);  // resets the stream; stream_closed() follows
}

void EdgeStream::stream_closed() noexcept {
  {
    EdgeStreamGuard guard(depth_);
    stream_gone_ = true;
    conn_ = nullptr;
    // A stream closed after FIN both ways may still have bytes for the edge: let them drain, then shut down.
    const bool graceful = peer_fin_ && edge_eof_;
    if (!graceful) close_socket(true);
  }
  maybe_free();
}

void EdgeStream::close_socket(bool abortive) noexcept {
  if (socket_closed_ || socket_closing_) return;
  socket_closing_ = true;
  if (abortive) {
    // RST rather than FIN: the client must not take a truncated reply for a complete one.
    linger lg{1, 0};
    (void)setsockopt(loop_.fd(socket_), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  loop_.close(socket_);
}

void EdgeStream::on_close(ring::Loop&, ring::SocketId) {
  {
    EdgeStreamGuard guard(depth_);
    socket_closed_ = true;
    socket_closing_ = false;
    out_.clear();  // no send references these blocks any more
    if (conn_ != nullptr && !stream_gone_ && !(edge_eof_ && peer_fin_)) {
      conn_->edge_failed(*this, frame::ErrorCode::kCancel);
    }
  }
  maybe_free();
}

void EdgeStream::maybe_free() noexcept {
  if (depth_ == 0 && socket_closed_ && stream_gone_) delete this;
}

}  // namespace ringtun::tunnel
