// EdgeStream: one stream's edge socket (a public client on the gateway, a local service on the agent).
//
// States, per direction:
//   edge -> tunnel: reading; paused while `ingress_limit_` bytes wait to be sent on the tunnel; EOF from the edge
//                   becomes the stream's FIN (edge_eof_).
//   tunnel -> edge: bytes wait in out_ and are written one gathered send at a time; credit goes back per send;
//                   the stream's FIN becomes shutdown(SHUT_WR) once out_ is empty (peer_fin_ -> shutdown_done_).
// The socket closes gracefully when both directions are finished, abortively (RST) when the stream is reset or the
// tunnel dies.
// HTTP upstream mode (agent, http services): the stream carries one request. Its FIN means the request is complete
// and is not passed on (the connection stays open for the next request); the service's bytes are read as one
// response, passed on up to its last byte, and the stream's FIN follows that byte. Once both are done and every
// request byte is written, the connection goes back to the upstream pool instead of closing. A 101 response turns
// the stream into a plain byte pipe from there on. The object frees itself once its socket is closed and its session stream is gone; `depth_` keeps it
// alive while one of its own calls is on the stack (session callbacks can re-enter it synchronously).
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/depth_guard.hpp"
#include "common/log.hpp"
#include "tunnel/tunnel_conn.hpp"
#include "tunnel/upstream_pool.hpp"

namespace ringtun::tunnel {

namespace {
constexpr std::size_t kMaxSendBytes = 256 * 1024;
}  // namespace

EdgeStream::EdgeStream(TunnelConn& conn, frame::StreamHandle handle)
    : StreamEnd(handle),
      conn_(&conn),
      loop_(conn.core().loop),
      out_(conn.core().blocks),
      ingress_limit_(conn.options().edge_ingress_limit) {}

void EdgeStream::attach_socket(ring::SocketId socket, bool connecting) noexcept {
  socket_ = socket;
  socket_closed_ = false;
  connecting_ = connecting;
}

void EdgeStream::serve_http(UpstreamPool& pool, std::uint32_t key, bool head_request) {
  http_ = std::make_unique<HttpUpstream>();
  http_->pool = &pool;
  http_->key = key;
  http_->reader.start(head_request);
}

bool EdgeStream::both_finished() const noexcept {
  if (http_mode()) return http_->request_done && http_->response_done;
  return edge_eof_ && peer_fin_;
}

void EdgeStream::start_reading() noexcept {
  if (socket_closed_ || socket_closing_ || reading_ || edge_eof_) return;
  reading_ = true;
  if (!loop_.recv_start(socket_, kEdgePool)) reading_ = false;
}

// ---------------------------------------------------------------- tunnel -> edge

bool EdgeStream::queue_local_prefix(std::span<const std::byte> bytes) noexcept {
  if (!out_.append(bytes)) return false;
  local_prefix_ += bytes.size();
  return true;
}

void EdgeStream::deliver(std::span<const std::byte> bytes) noexcept {
  {
    DepthGuard guard(depth_);
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
    DepthGuard guard(depth_);
    if (res < 0) {
      LOG_DEBUG("edge write failed: %s", std::strerror(-res));
      in_flight_ = 0;
      fail(frame::ErrorCode::kCancel);
    } else {
      const std::size_t sent = in_flight_;
      in_flight_ = 0;
      out_.consume(sent);
      // Our own prefix went first: only the peer's bytes after it give credit back.
      const std::size_t ours = std::min(sent, local_prefix_);
      local_prefix_ -= ours;
      if (conn_ != nullptr && sent > ours) conn_->edge_delivered(*this, sent - ours);
      if (!out_.empty()) {
        send_more();
      } else if (http_mode()) {
        maybe_release_upstream();
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
    DepthGuard guard(depth_);
    peer_fin_ = true;
    if (http_mode()) {
      http_->request_done = true;
      maybe_release_upstream();
      return;
    }
    if (!connecting_ && out_.empty() && in_flight_ == 0 && !shutdown_sent_ && !socket_closed_ && !socket_closing_) {
      shutdown_sent_ = true;
      (void)loop_.shutdown_write(socket_);
    }
  }
  maybe_free();
}

void EdgeStream::on_shutdown(ring::Loop&, ring::SocketId, int) {
  {
    DepthGuard guard(depth_);
    shutdown_done_ = true;
    maybe_done();
  }
  maybe_free();
}

void EdgeStream::peer_reset(frame::ErrorCode) noexcept {
  {
    DepthGuard guard(depth_);
    close_socket(true);
  }
  maybe_free();
}

// ---------------------------------------------------------------- edge -> tunnel

void EdgeStream::on_connect(ring::Loop& loop, ring::SocketId socket, int res) {
  {
    DepthGuard guard(depth_);
    connecting_ = false;
    if (res < 0) {
      LOG_WARN("local service connect failed: %s", std::strerror(-res));
      fail(res == -ETIMEDOUT ? frame::ErrorCode::kConnectTimeout : frame::ErrorCode::kConnectFailed);
    } else {
      (void)ring::net::set_nodelay(loop.fd(socket));
      start_reading();
      send_more();
      if (!http_mode() && peer_fin_ && out_.empty() && in_flight_ == 0 && !shutdown_sent_) {
        shutdown_sent_ = true;
        (void)loop.shutdown_write(socket);
      }
    }
  }
  maybe_free();
}

void EdgeStream::on_recv(ring::Loop& loop, ring::SocketId, int res, const ring::RecvBuffer& buffer) {
  {
    DepthGuard guard(depth_);
    if (res > 0 && http_mode()) {
      recv_http(buffer);
    } else if (res > 0) {
      if (conn_ == nullptr || !conn_->queue_edge_data(*this, buffer)) {
        loop.recycle(buffer);  // the stream is gone: nobody will send these bytes
      } else {
        ingress_pending_ += buffer.size;
        if (ingress_pending_ >= ingress_limit_ && !read_paused_) {
          read_paused_ = true;
          (void)loop.recv_stop(socket_);
        }
      }
    } else if (res == 0 && http_mode()) {
      reading_ = false;
      http_eof();
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
    DepthGuard guard(depth_);
    ingress_pending_ = bytes > ingress_pending_ ? 0 : ingress_pending_ - bytes;
    if (read_paused_ && ingress_pending_ <= ingress_limit_ / 2 && !socket_closed_ && !socket_closing_) {
      read_paused_ = false;
      (void)loop_.recv_start(socket_, kEdgePool);
    }
  }
  maybe_free();
}

// ---------------------------------------------------------------- HTTP upstream

void EdgeStream::recv_http(const ring::RecvBuffer& buffer) noexcept {
  HttpUpstream& h = *http_;
  if (h.response_done || conn_ == nullptr) {
    // Bytes after the response (or for a stream that is gone): this connection cannot serve another request.
    loop_.recycle(buffer);
    h.reusable = false;
    if (h.response_done) maybe_release_upstream();
    return;
  }
  const std::string_view bytes(reinterpret_cast<const char*>(buffer.data), buffer.size);
  std::size_t pass = 0;  // bytes of this buffer that belong to the response (passed on as they are)
  bool ended = false;
  while (!ended && (pass < bytes.size() || !h.reader.wants_input())) {
    const auto step = h.reader.feed(bytes.substr(pass));
    using Event = http::ResponseReader::Event;
    if (step.event == Event::kError) {
      LOG_WARN("local service sent a response that cannot be framed: %s", h.reader.problem().reason);
      loop_.recycle(buffer);
      fail(frame::ErrorCode::kProtocolError);
      return;
    }
    pass += step.used;
    if (step.event == Event::kEnd) ended = true;
    if (step.event == Event::kUpgraded) {
      pass = bytes.size();  // from here on a byte pipe: the rest is the new protocol's
      break;
    }
  }
  if (pass == 0) {
    loop_.recycle(buffer);
  } else if (!conn_->queue_edge_data(*this, buffer, 0, pass)) {
    loop_.recycle(buffer);
    fail(frame::ErrorCode::kCancel);
    return;
  } else {
    ingress_pending_ += pass;
    if (ingress_pending_ >= ingress_limit_ && !read_paused_) {
      read_paused_ = true;
      (void)loop_.recv_stop(socket_);
    }
  }
  if (!ended) return;
  if (pass < bytes.size()) h.reusable = false;  // the service sent more than its response
  h.reusable = h.reusable && h.reader.keep_alive();
  h.response_done = true;
  if (conn_ != nullptr) conn_->edge_fin(*this);
  maybe_release_upstream();
}

void EdgeStream::http_eof() noexcept {
  HttpUpstream& h = *http_;
  h.reusable = false;
  if (h.response_done) {
    maybe_release_upstream();
    return;
  }
  if (h.reader.end_of_input()) {
    // A close-delimited body ends here.
    h.response_done = true;
    if (conn_ != nullptr) conn_->edge_fin(*this);
    maybe_release_upstream();
    return;
  }
  LOG_DEBUG("local service closed before its response was complete");
  fail(frame::ErrorCode::kCancel);
}

// Once the response is out and the whole request went in, the connection goes back to the pool (or closes).
void EdgeStream::maybe_release_upstream() noexcept {
  HttpUpstream& h = *http_;
  if (!h.response_done || socket_closed_ || socket_closing_ || connecting_) return;
  if (!h.reusable) {
    // No need to wait for the rest of the request: the connection will not serve another one.
    close_socket(false);
    return;
  }
  if (!h.request_done || !out_.empty() || in_flight_ > 0) return;
  if (h.pool->put(h.key, socket_)) {
    // The pool owns the socket now; this stream waits only for its session stream to go.
    socket_closed_ = true;
    reading_ = false;
    return;
  }
  close_socket(false);
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
    DepthGuard guard(depth_);
    stream_gone_ = true;
    conn_ = nullptr;
    // A stream closed after FIN both ways may still have bytes for the edge: let them drain, then shut down.
    if (!both_finished()) close_socket(true);
  }
  maybe_free();
}

void EdgeStream::close_socket(bool abortive) noexcept {
  if (socket_closed_ || socket_closing_) return;
  socket_closing_ = true;
  if (abortive) {
    // RST rather than FIN: the client must not take a truncated reply for a complete one.
    (void)ring::net::set_reset_on_close(loop_.fd(socket_));
  }
  loop_.close(socket_);
}

void EdgeStream::on_close(ring::Loop&, ring::SocketId) {
  {
    DepthGuard guard(depth_);
    socket_closed_ = true;
    socket_closing_ = false;
    out_.clear();  // no send references these blocks any more
    if (conn_ != nullptr && !stream_gone_ && !both_finished()) {
      conn_->edge_failed(*this, frame::ErrorCode::kCancel);
    }
  }
  maybe_free();
}

void EdgeStream::maybe_free() noexcept {
  if (depth_ == 0 && socket_closed_ && stream_gone_) delete this;
}

}  // namespace ringtun::tunnel
