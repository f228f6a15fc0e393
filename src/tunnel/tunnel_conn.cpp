// TunnelConn: the session over a tunnel socket. See tunnel_conn.hpp for the data paths and lifetimes.
#include "tunnel/tunnel_conn.hpp"

#include <algorithm>
#include <cstring>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "tunnel/upstream_pool.hpp"

namespace ringtun::tunnel {

namespace {

// A DATA payload queued from an edge buffer is named by a cookie that finds both the buffer (to recycle it) and the
// stream (to lift its back-pressure): [stream slot:20][generation:10][pool:2][length:16][buffer id:16].
// Copied bytes (queue_copy) carry kCopyPool in the pool field and the index of their block in the id field.
constexpr std::uint8_t kCopyPool = 3;
static_assert(kEdgePool < kCopyPool && kTunnelPool < kCopyPool, "receive pools 0..2 only: 3 marks copied bytes");
constexpr std::uint64_t make_cookie(std::uint32_t slot, std::uint32_t generation, std::uint8_t pool,
                                    std::size_t length, std::uint16_t id) {
  return (static_cast<std::uint64_t>(slot & 0xFFFFF) << 44) | (static_cast<std::uint64_t>(generation & 0x3FF) << 34) |
         (static_cast<std::uint64_t>(pool & 0x3) << 32) | (static_cast<std::uint64_t>(length & 0xFFFF) << 16) | id;
}
struct CookieParts {
  std::uint32_t slot, generation, length;
  ring::RecvBuffer buffer;
};
constexpr CookieParts split_cookie(std::uint64_t c) {
  CookieParts p{};
  p.slot = static_cast<std::uint32_t>(c >> 44) & 0xFFFFF;
  p.generation = static_cast<std::uint32_t>(c >> 34) & 0x3FF;
  p.buffer.pool = static_cast<std::uint8_t>((c >> 32) & 0x3);
  p.length = static_cast<std::uint32_t>(c >> 16) & 0xFFFF;
  p.buffer.id = static_cast<std::uint16_t>(c);
  return p;
}

}  // namespace

void TunnelEvents::on_stream_open(TunnelConn& conn, frame::StreamHandle stream, std::span<const std::byte>) {
  conn.refuse_stream(stream, frame::ErrorCode::kRefusedStream);
}
void TunnelEvents::on_first_byte(TunnelConn&, StreamEnd&, std::uint64_t) {}
void TunnelEvents::on_stream_finished(TunnelConn&, StreamEnd&) {}

// ---------------------------------------------------------------- set-up and teardown

TunnelConn::TunnelConn(TunnelCore& core, ring::SocketId socket, frame::Role role, const TunnelOptions& options,
                       TunnelEvents& events)
    : core_(core),
      loop_(core.loop),
      socket_(socket),
      role_(role),
      options_(options),
      events_(events),
      session_([&] {
        frame::SessionOptions s = options.session;
        s.role = role;
        return s;
      }(),
               *this) {
  heartbeat_.set_callback([](void* self) { static_cast<TunnelConn*>(self)->on_heartbeat(); }, this);
}

TunnelConn::~TunnelConn() { --core_.stats.tunnels_open; }

TunnelConn* TunnelConn::start(TunnelCore& core, ring::SocketId socket, frame::Role role, const TunnelOptions& options,
                              TunnelEvents& events, std::uint64_t app_tag, std::span<const std::byte> replay,
                              std::unique_ptr<tls::Session> tls) {
  auto* conn = new TunnelConn(core, socket, role, options, events);
  conn->app_tag = app_tag;
  conn->tls_ = std::move(tls);
  ++core.stats.tunnels_open;
  ring::Loop& loop = core.loop;
  (void)loop.set_handler(socket, conn);
  const int fd = loop.fd(socket);
  if (auto peer = ring::net::peer_address(fd)) conn->peer_ = *peer;
  (void)ring::net::set_nodelay(fd);
  conn->last_rx_ms_ = conn->last_tx_ms_ = conn->started_ms_ = loop.now_ms();
  if (conn->tls_ && !conn->tls_->open() && !conn->tls_->start()) conn->tls_failed("handshake");
  if (!replay.empty() && !conn->closing_) conn->feed(replay);
  if (!conn->closing_) {
    if (auto status = loop.recv_start(socket, kTunnelPool); !status) conn->close("could not start receiving");
  }
  loop.timers().schedule(conn->heartbeat_, conn->heartbeat_tick_ms());
  conn->schedule_flush();  // preface and SETTINGS go out at once
  return conn;
}

void TunnelConn::close(const char* reason) noexcept {
  if (closing_) return;
  closing_ = true;
  close_reason_ = reason;
  loop_.timers().cancel(heartbeat_);
  // Streams are torn down in on_close(), once the kernel no longer reads any buffer a batch points at.
  loop_.close(socket_);
}

void TunnelConn::close_after_flush(const char* reason) noexcept {
  if (closing_) return;
  flush_then_close_ = true;
  close_reason_ = reason;
  schedule_flush();
  maybe_finish_close();
}

void TunnelConn::maybe_finish_close() noexcept {
  if (closing_) return;
  // A failed TLS session gets here through tls_failed(), which asked for flush_then_close_.
  if ((flush_then_close_ || session_.failed()) && !send_busy_ && !wants_send()) close(close_reason_);
  else if (session_.drained() && !send_busy_) close("drained after GOAWAY");
}

void TunnelConn::on_close(ring::Loop&, ring::SocketId) {
  closing_ = true;
  // Every stream goes now: abort_all() fires on_closed for each (their edge sockets close) and hands back every
  // queued edge buffer through on_send_released.
  session_.abort_all();
  for (StreamEnd* stream : streams_) {
    RINGTUN_CHECK(stream == nullptr, "a stream outlived abort_all()");
  }
  events_.on_tunnel_closed(*this, close_reason_);
  delete this;
}

// ---------------------------------------------------------------- I/O

void TunnelConn::sync_time() noexcept { session_.set_time(loop_.now_ms() * 1000); }

// With TLS, frames wait until the handshake is done (and are dropped once TLS failed); TLS's own output (handshake
// messages, alerts) always goes.
bool TunnelConn::wants_send() const noexcept {
  if (!tls_) return session_.wants_write();
  return tls_->has_output() || (tls_->open() && session_.wants_write());
}

void TunnelConn::schedule_flush() noexcept {
  if (!closing_ && !send_busy_ && wants_send()) loop_.request_flush(socket_);
}

void TunnelConn::feed(std::span<const std::byte> bytes) noexcept {
  sync_time();
  Status status = session_.feed(bytes);
  if (!status) {
    char buf[160];
    LOG_WARN("tunnel %s: closing: %s (%s)", peer_.to_string().c_str(), status.error().describe(buf, sizeof buf),
             frame::error_code_name(session_.error_code()));
    close_after_flush("protocol error from the peer");
  }
}

void TunnelConn::on_recv(ring::Loop& loop, ring::SocketId, int res, const ring::RecvBuffer& buffer) {
  if (res <= 0) {
    if (closing_) return;
    if (flush_then_close_) {  // the peer left before our last bytes did: the cause is already known, and logged
      close(close_reason_);
      return;
    }
    if (session_.goaway_sent() || session_.goaway_received()) {
      close("peer closed the connection after GOAWAY");
    } else if (const char* why = tls_ ? tls_->cut_short_reason() : nullptr) {
      const bool handshake = !tls_->open();
      LOG_WARN("tunnel %s: %s%s", peer_.to_string().c_str(), why,
               handshake && role_ == frame::Role::kAgent ? " (does the gateway run with --insecure-plaintext?)" : "");
      close("TLS stream cut short");  // the cause is logged here, once; the owner logs the close with this
    } else {
      close(res == 0 ? "peer closed the connection" : "connection error");
    }
    return;
  }
  last_rx_ms_ = loop.now_ms();
  // Once a close is decided (a TLS failure, a protocol error, a refusal), what still arrives is dropped: fed to a
  // failed session it would only fail again, and log again.
  if (!closing_ && !flush_then_close_) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(buffer.data), buffer.size);
    if (tls_) receive_tls(bytes);
    else feed(bytes);
  }
  // DATA was copied into stream queues and control payloads into the session: the buffer is free at once.
  loop.recycle(buffer);
  schedule_flush();
  maybe_finish_close();
}

void TunnelConn::receive_tls(std::span<const std::byte> ciphertext) noexcept {
  const bool was_open = tls_->open();
  Status status = tls_->receive(ciphertext, core_.tls_plaintext, [this](std::span<const std::byte> plaintext) {
    if (!closing_ && !flush_then_close_) feed(plaintext);
  });
  if (!status) {
    tls_failed(was_open ? "record" : "handshake");
    return;
  }
  if (!was_open && tls_->open()) {
    if (role_ == frame::Role::kAgent) {
      LOG_INFO("tunnel %s: %s, gateway certificate %s", peer_.to_string().c_str(), tls_->description().c_str(),
               tls_->peer_fingerprint().c_str());
    } else {
      LOG_DEBUG("tunnel %s: %s", peer_.to_string().c_str(), tls_->description().c_str());
    }
  }
}

void TunnelConn::tls_failed(const char* what) noexcept {
  LOG_WARN("tunnel %s: TLS %s failed: %s", peer_.to_string().c_str(), what, tls_->failure().c_str());
  // An alert wolfSSL queued goes out first; frames no longer can. The cause is logged here, once (as for protocol
  // errors); the owner logs the close with this short reason.
  close_after_flush("TLS failure");
}

void TunnelConn::flush_tls(ring::Loop& loop, ring::SocketId socket) noexcept {
  // Back-pressure before encryption: frames stay in the session (where flow control bounds them) while the
  // ciphertext ahead of the socket is at its budget.
  while (tls_->open() && session_.wants_write() && tls_->pending_output() < options_.tls_send_budget) {
    batch_.clear();
    session_.build_batch(batch_);
    if (batch_.empty()) break;
    if (!tls_->write({batch_.iov(), batch_.iov_count()}, core_.tls_packing)) {
      tls_failed("encryption");
      return;
    }
    // The plaintext is encrypted: its buffers (edge receive buffers among them) are free now.
    session_.sent(batch_.bytes());
    drain_control_backlog();
  }
  switch (cipher_send_.start(loop, socket, *tls_)) {
    case CipherSend::Started::kNothing:
      maybe_finish_close();
      return;
    case CipherSend::Started::kFailed:
      close("send failed");
      return;
    case CipherSend::Started::kSending:
      send_busy_ = true;
      last_tx_ms_ = loop.now_ms();
      return;
  }
}

void TunnelConn::send(ring::Loop& loop, ring::SocketId socket, iovec* iov, unsigned count) noexcept {
  if (!loop.send(socket, iov, count)) {
    close("send failed");
    return;
  }
  send_busy_ = true;
  last_tx_ms_ = loop.now_ms();
}

void TunnelConn::on_flush(ring::Loop& loop, ring::SocketId socket) {
  if (closing_ || send_busy_) return;
  sync_time();
  if (tls_) {
    flush_tls(loop, socket);
    return;
  }
  batch_.clear();
  session_.build_batch(batch_);
  if (batch_.empty()) {
    maybe_finish_close();
    return;
  }
  send(loop, socket, batch_.iov(), static_cast<unsigned>(batch_.iov_count()));
}

void TunnelConn::on_send(ring::Loop&, ring::SocketId, int res) {
  send_busy_ = false;
  if (closing_) return;
  if (res < 0) {
    close("send error");
    return;
  }
  sync_time();
  if (tls_) cipher_send_.done(*tls_);
  else session_.sent(static_cast<std::size_t>(res));
  drain_control_backlog();  // sent() gave control queue room back
  schedule_flush();
  maybe_finish_close();
}

// Often enough to notice a dead peer (and a stuck TLS handshake) within a third of the deadline.
std::uint32_t TunnelConn::heartbeat_tick_ms() const noexcept {
  return std::max<std::uint32_t>(50, std::min(options_.heartbeat_ms, options_.dead_peer_ms / 3));
}

void TunnelConn::on_heartbeat() noexcept {
  if (closing_) return;
  const std::uint64_t now = loop_.now_ms();
  if (tls_ && !tls_->open() && !tls_->failed() && now - started_ms_ >= options_.tls_handshake_timeout_ms) {
    LOG_WARN("tunnel %s: TLS handshake not done after %u ms", peer_.to_string().c_str(),
             options_.tls_handshake_timeout_ms);
    close("TLS handshake timed out");
    return;
  }
  if (now - last_rx_ms_ >= options_.dead_peer_ms) {
    LOG_WARN("tunnel %s: no bytes for %u ms: peer presumed dead", peer_.to_string().c_str(), options_.dead_peer_ms);
    close("dead peer (heartbeat timeout)");
    return;
  }
  if (flush_then_close_ && now - last_tx_ms_ >= options_.heartbeat_ms) {
    close(close_reason_);  // the peer stopped reading our last words
    return;
  }
  sync_time();
  if (now - std::max(last_rx_ms_, last_tx_ms_) >= options_.heartbeat_ms || now - last_rx_ms_ >= options_.heartbeat_ms) {
    (void)session_.ping();  // kExhausted if one is outstanding: fine
  }
  session_.flush_credit();
  // The ciphertext buffers grow to the send budget under load; an idle connection gives that memory back.
  if (tls_ && !send_busy_ && now - last_tx_ms_ >= options_.heartbeat_ms / 2) tls_->trim();
  if (tls_) tls::release_idle_thread_state(monotonic_ms(), kEccCacheIdleMs);
  schedule_flush();
  loop_.timers().schedule(heartbeat_, heartbeat_tick_ms());
}

Status TunnelConn::send_control(std::string_view json) noexcept {
  if (closing_) return ringtun::fail(Errc::kClosed, "tunnel closing");
  sync_time();
  if (control_backlog_.empty()) {
    Status status = session_.send_control({reinterpret_cast<const std::byte*>(json.data()), json.size()});
    if (status) {
      schedule_flush();
      return {};
    }
    if (status.error().code() != Errc::kExhausted) return status;
  }
  if (control_backlog_bytes_ + json.size() > kMaxControlBacklog) {
    return ringtun::fail(Errc::kExhausted, "control messages: the peer does not read them");
  }
  control_backlog_.emplace_back(json);
  control_backlog_bytes_ += json.size();
  return {};
}

void TunnelConn::drain_control_backlog() noexcept {
  while (!control_backlog_.empty()) {
    const std::string& json = control_backlog_.front();
    if (!session_.send_control({reinterpret_cast<const std::byte*>(json.data()), json.size()})) return;
    control_backlog_bytes_ -= json.size();
    control_backlog_.pop_front();
  }
}

void TunnelConn::goaway() noexcept {
  if (closing_ || session_.goaway_sent()) return;
  sync_time();
  (void)session_.goaway(frame::ErrorCode::kNoError);
  schedule_flush();
  maybe_finish_close();
}

// ---------------------------------------------------------------- streams

// Streams are filed under the session's own stream index: unique among live streams, and the handle's generation
// tells a stale handle (on_closed() runs after the session freed the slot) from the current one.
void TunnelConn::register_stream(StreamEnd* stream, frame::StreamHandle h) noexcept {
  stream->handle_ = h;
  if (h.index >= streams_.size()) streams_.resize(h.index + 1, nullptr);
  RINGTUN_CHECK(streams_[h.index] == nullptr, "two live streams in one session slot");
  streams_[h.index] = stream;
  stream->slot = h.index;
  stream->generation = h.generation;
  ++core_.stats.streams_open;
}

void TunnelConn::unregister_stream(StreamEnd& stream) noexcept {
  streams_[stream.slot] = nullptr;
  --core_.stats.streams_open;
  if (StreamTraffic* traffic = stream.traffic) {
    --traffic->streams_open;
    if (stream.reset_code != frame::ErrorCode::kNoError) ++traffic->resets;
    events_.on_stream_finished(*this, stream);
    stream.traffic = nullptr;
    stream.app_record = nullptr;
  }
}

void TunnelConn::track(StreamEnd& stream, const Tracking& tracking) noexcept {
#ifdef RINGTUN_NO_COUNTERS
  // -Dcounters=false: streams are not counted per service (for perf/ to measure what counting costs). A record the
  // program made for the stream is freed by the same event that would have consumed it.
  if (tracking.app_record != nullptr) {
    stream.app_record = tracking.app_record;
    events_.on_stream_finished(*this, stream);
    stream.app_record = nullptr;
  }
  return;
#endif
  if (tracking.traffic == nullptr) return;
  stream.traffic = tracking.traffic;
  stream.app_record = tracking.app_record;
  stream.opened_us = tracking.timed ? monotonic_us() : 0;
  stream.bytes_from_edge = 0;
  stream.bytes_to_edge = 0;
  stream.reset_code = frame::ErrorCode::kNoError;
  ++tracking.traffic->streams_opened;
  ++tracking.traffic->streams_open;
}

StreamEnd* TunnelConn::stream_of(frame::StreamHandle h) noexcept {
  if (h.index >= streams_.size()) return nullptr;
  StreamEnd* stream = streams_[h.index];
  return stream != nullptr && stream->handle() == h ? stream : nullptr;
}

Status TunnelConn::open_stream(int edge_fd, std::span<const std::byte> metadata, const Tracking& tracking) noexcept {
  if (closing_ || session_.goaway_sent() || session_.goaway_received()) {
    ::close(edge_fd);
    return ringtun::fail(Errc::kClosed, "tunnel closing");
  }
  sync_time();
  auto handle = session_.open_stream(metadata);
  if (!handle) {
    ::close(edge_fd);
    return Unexpected{handle.error()};
  }
  auto* stream = new EdgeStream(*this, *handle);
  register_stream(stream, *handle);
  ++core_.stats.streams_opened;
  auto socket = loop_.adopt(edge_fd, stream);
  if (!socket) {
    edge_failed(*stream, frame::ErrorCode::kInternalError);
    return Unexpected{socket.error()};
  }
  stream->attach_socket(*socket, false);  // TCP_NODELAY: inherited from our listener
  track(*stream, tracking);
  stream->start_reading();
  schedule_flush();
  return {};
}

Status TunnelConn::open_stream(ring::SocketId socket, std::span<const std::byte> metadata,
                               std::span<const std::byte> prefix, const Tracking& tracking) noexcept {
  if (closing_ || session_.goaway_sent() || session_.goaway_received()) {
    return ringtun::fail(Errc::kClosed, "tunnel closing");
  }
  sync_time();
  auto handle = session_.open_stream(metadata);
  if (!handle) return Unexpected{handle.error()};
  auto* stream = new EdgeStream(*this, *handle);
  register_stream(stream, *handle);
  ++core_.stats.streams_opened;
  if (!prefix.empty()) {
    if (auto queued = queue_copy(*stream, prefix); !queued) {
      edge_failed(*stream, frame::ErrorCode::kInternalError);  // frees the stream; the socket stays the caller's
      return queued;
    }
  }
  (void)loop_.set_handler(socket, stream);
  stream->attach_socket(socket, false);
  stream->reading_already();  // TCP_NODELAY: inherited from our listener
  track(*stream, tracking);
  schedule_flush();
  return {};
}

Status TunnelConn::open_stream(StreamEnd& end, std::span<const std::byte> metadata,
                               const Tracking& tracking) noexcept {
  if (closing_ || session_.goaway_sent() || session_.goaway_received()) {
    return ringtun::fail(Errc::kClosed, "tunnel closing");
  }
  sync_time();
  auto handle = session_.open_stream(metadata);
  if (!handle) return Unexpected{handle.error()};
  register_stream(&end, *handle);
  ++core_.stats.streams_opened;
  track(end, tracking);
  schedule_flush();
  return {};
}

void TunnelConn::connect_http_stream(frame::StreamHandle h, const ring::net::Address& target, UpstreamPool& pool,
                                     std::uint32_t key, bool head_request, const Tracking& tracking,
                                     std::span<const std::byte> local_prefix) noexcept {
  if (closing_) return;
  if (!local_prefix.empty()) {
    connect_stream(h, target, tracking, local_prefix);
    if (StreamEnd* end = stream_of(h)) {
      auto* stream = static_cast<EdgeStream*>(end);
      stream->serve_http(pool, key, head_request);
      stream->no_reuse();
    }
    return;
  }
  if (auto idle = pool.take(key)) {
    auto* stream = new EdgeStream(*this, h);
    register_stream(stream, h);
    ++core_.stats.streams_opened;
    stream->serve_http(pool, key, head_request);
    (void)loop_.set_handler(*idle, stream);
    stream->attach_socket(*idle, false);
    stream->reading_already();
    track(*stream, tracking);
    return;
  }
  connect_stream(h, target, tracking);
  if (StreamEnd* end = stream_of(h)) static_cast<EdgeStream*>(end)->serve_http(pool, key, head_request);
}

void TunnelConn::connect_stream(frame::StreamHandle h, const ring::net::Address& target, const Tracking& tracking,
                                std::span<const std::byte> local_prefix) noexcept {
  if (closing_) return;
  auto* stream = new EdgeStream(*this, h);
  register_stream(stream, h);
  ++core_.stats.streams_opened;
  auto socket = loop_.connect(target.get(), target.length, options_.connect_timeout_ms, stream);
  if (!socket) {
    char buf[160];
    LOG_WARN("stream to %s: %s", target.to_string().c_str(), socket.error().describe(buf, sizeof buf));
    edge_failed(*stream, frame::ErrorCode::kConnectFailed);
    return;
  }
  stream->attach_socket(*socket, true);
  track(*stream, tracking);
  if (!local_prefix.empty() && !stream->queue_local_prefix(local_prefix)) {
    edge_failed(*stream, frame::ErrorCode::kEnhanceYourCalm);
  }
}

void TunnelConn::refuse_stream(frame::StreamHandle h, frame::ErrorCode code) noexcept {
  ++core_.stats.streams_refused;
  sync_time();
  (void)session_.reset_stream(h, code);
  schedule_flush();
}

Status TunnelConn::queue_edge_data(StreamEnd& stream, const ring::RecvBuffer& buffer) noexcept {
  return queue_edge_data(stream, buffer, 0, buffer.size);
}

Status TunnelConn::queue_edge_data(StreamEnd& stream, const ring::RecvBuffer& buffer, std::size_t offset,
                                   std::size_t length) noexcept {
  if (closing_) return ringtun::fail(Errc::kClosed, "tunnel closing");
  RINGTUN_ASSERT(offset + length <= buffer.size && length > 0 && length <= 0xFFFF, "queue_edge_data: bad slice");
  sync_time();
  const std::uint64_t cookie = make_cookie(stream.slot, stream.generation, buffer.pool, length, buffer.id);
  RINGTUN_TRY(session_.queue_data(stream.handle(), {reinterpret_cast<const std::byte*>(buffer.data) + offset, length},
                                  cookie));
  core_.stats.bytes_to_tunnel += length;
  count_from_edge(stream, length);
  schedule_flush();
  return {};
}

Status TunnelConn::queue_copy(StreamEnd& stream, std::span<const std::byte> bytes) noexcept {
  if (closing_) return ringtun::fail(Errc::kClosed, "tunnel closing");
  sync_time();
  while (!bytes.empty()) {
    const std::size_t n = std::min<std::size_t>(bytes.size(), BlockPool::kBlockSize);
    if (free_copy_ids_.empty() && copies_.size() > 0xFFFF) return ringtun::fail(Errc::kExhausted, "copies waiting");
    std::byte* block = core_.blocks.acquire();
    if (block == nullptr) return ringtun::fail(Errc::kExhausted, "stream buffer budget");
    std::memcpy(block, bytes.data(), n);
    std::uint16_t id;
    if (!free_copy_ids_.empty()) {
      id = free_copy_ids_.back();
      free_copy_ids_.pop_back();
      copies_[id] = block;
    } else {
      id = static_cast<std::uint16_t>(copies_.size());
      copies_.push_back(block);
    }
    const std::uint64_t cookie = make_cookie(stream.slot, stream.generation, kCopyPool, n, id);
    if (auto queued = session_.queue_data(stream.handle(), {block, n}, cookie); !queued) {
      core_.blocks.release(block);
      copies_[id] = nullptr;
      free_copy_ids_.push_back(id);
      return queued;
    }
    core_.stats.bytes_to_tunnel += n;
    count_from_edge(stream, n);
    bytes = bytes.subspan(n);
  }
  schedule_flush();
  return {};
}

void TunnelConn::edge_fin(StreamEnd& stream) noexcept {
  if (closing_) return;
  sync_time();
  (void)session_.close_stream(stream.handle());
  schedule_flush();
}

void TunnelConn::edge_delivered(StreamEnd& stream, std::size_t bytes) noexcept {
  core_.stats.bytes_from_tunnel += bytes;
  if (closing_) return;
  sync_time();
  (void)session_.consumed(stream.handle(), bytes);
  schedule_flush();
}

void TunnelConn::edge_failed(StreamEnd& stream, frame::ErrorCode code) noexcept {
  if (closing_) {
    stream.stream_closed();  // abort_all() will not know it: the handle may already be stale
    return;
  }
  sync_time();
  // reset_stream() fires on_closed() synchronously, which detaches the stream.
  if (stream.reset_code == frame::ErrorCode::kNoError) stream.reset_code = code;
  if (!session_.reset_stream(stream.handle(), code)) stream.stream_closed();
  schedule_flush();
}

// ---------------------------------------------------------------- session events

void TunnelConn::on_open(frame::StreamHandle h, frame::StreamId, std::span<const std::byte> metadata) {
  events_.on_stream_open(*this, h, metadata);
}

void TunnelConn::on_data(frame::StreamHandle h, std::span<const std::byte> bytes) {
  StreamEnd* stream = stream_of(h);
  if (stream == nullptr) return;
  if (stream->opened_us != 0 && stream->traffic != nullptr) {
    const std::uint64_t now = monotonic_us();
    const std::uint64_t elapsed = now > stream->opened_us ? now - stream->opened_us : 0;
    stream->opened_us = 0;
    events_.on_first_byte(*this, *stream, elapsed);
  }
  // Counted as handed to the end, not as written to its socket: the stream may close (and its access line be
  // written) while its last bytes are still on their way out, after which the end reports nothing more.
  if (StreamTraffic* traffic = stream->traffic) {
    stream->bytes_to_edge += bytes.size();
    traffic->bytes_to_edge += bytes.size();
  }
  stream->deliver(bytes);
}

void TunnelConn::on_fin(frame::StreamHandle h) {
  if (StreamEnd* stream = stream_of(h)) stream->peer_fin();
}

void TunnelConn::on_reset(frame::StreamHandle h, frame::ErrorCode code) {
  if (StreamEnd* stream = stream_of(h)) {
    LOG_DEBUG("stream reset by the peer: %s", frame::error_code_name(code));
    if (stream->reset_code == frame::ErrorCode::kNoError) stream->reset_code = code;
    stream->peer_reset(code);
  }
}

void TunnelConn::on_closed(frame::StreamHandle h) {
  if (StreamEnd* stream = stream_of(h)) {
    unregister_stream(*stream);
    stream->stream_closed();
  }
}

void TunnelConn::on_goaway(frame::StreamId, frame::ErrorCode code) {
  LOG_INFO("tunnel %s: peer sent GOAWAY (%s)", peer_.to_string().c_str(), frame::error_code_name(code));
}

void TunnelConn::on_control(std::span<const std::byte> json) { events_.on_control(*this, json); }

void TunnelConn::on_send_released(std::uint64_t cookie) {
  const CookieParts parts = split_cookie(cookie);
  if (parts.buffer.pool == kCopyPool) {
    core_.blocks.release(copies_[parts.buffer.id]);
    copies_[parts.buffer.id] = nullptr;
    free_copy_ids_.push_back(parts.buffer.id);
  } else {
    loop_.recycle(parts.buffer);
  }
  if (parts.slot < streams_.size() && streams_[parts.slot] != nullptr &&
      (streams_[parts.slot]->generation & 0x3FF) == parts.generation) {
    streams_[parts.slot]->ingress_released(parts.length);
  }
}

}  // namespace ringtun::tunnel
