// TunnelConn: one tunnel connection between the gateway and an agent: a frame::Session driven over a ring socket,
// plus the edge streams it carries (EdgeStream: a stream pumped to and from a public client on the gateway, or a
// local service on the agent). Both programs use it unchanged; they differ only in the TunnelEvents they implement
// (handshake and routing) and in who opens streams.
//
// Data paths and memory:
//  * edge -> tunnel: an edge socket's receive buffer (pool kEdgePool) is queued into the session as a DATA payload by
//    reference and recycled when the session reports it sent (zero copy). Each stream stops reading its socket once
//    `edge_ingress_limit` bytes wait, so one stream holds a bounded number of buffers.
//  * tunnel -> edge: the tunnel's receive buffer (pool kTunnelPool) is fed to the session and recycled at once;
//    DATA payloads are copied into the stream's ByteQueue (blocks from the core's BlockPool) and written to the edge
//    socket from there. Stream credit goes back to the peer only when bytes reached the edge socket, so a stream
//    holds at most its window. The tunnel socket therefore always has receive buffers for PINGs and window updates.
//  * Frames produced during a loop turn leave in one gathered send per tunnel connection (request_flush/on_flush).
//
// Lifetime: a TunnelConn owns itself. It ends by close() or by the peer; then every stream is torn down, the socket is
// closed and reaped, TunnelEvents::on_tunnel_closed() runs, and the object deletes itself. EdgeStreams likewise free
// themselves once both their socket and their session stream are gone.
// Thread rules: one core's loop thread; nothing here is shared across cores.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/counter.hpp"
#include "common/result.hpp"
#include "frame/session.hpp"
#include "ring/loop.hpp"
#include "ring/net.hpp"
#include "ring/timer_wheel.hpp"
#include "http/response_reader.hpp"
#include "tls/tls.hpp"
#include "tunnel/byte_queue.hpp"
#include "tunnel/cipher_send.hpp"

namespace ringtun::tunnel {

inline constexpr unsigned kTunnelPool = 0;  // receive pool of tunnel sockets
inline constexpr unsigned kEdgePool = 1;    // receive pool of public clients and local services

struct TunnelOptions {
  frame::SessionOptions session;
  std::uint32_t heartbeat_ms = 5'000;          // PING after this long without traffic
  std::uint32_t dead_peer_ms = 15'000;         // close after this long without receiving a byte
  std::uint32_t connect_timeout_ms = 5'000;    // agent: connecting to a local service
  std::uint32_t edge_ingress_limit = 256 * 1024;  // per stream: bytes read from the edge, not yet sent on the tunnel
  std::uint32_t tls_handshake_timeout_ms = 10'000; // agent: a TLS handshake that takes longer is abandoned
  // Ciphertext encrypted ahead of the socket, per connection. 1 MiB: 256 KiB measured ~0.58x plaintext throughput
  // on one stream, 1 MiB ~0.70x (fewer, larger sends), 2 MiB no better. Idle connections give it back (trim()).
  std::uint32_t tls_send_budget = 1024 * 1024;
};

// Per-core counters: written by the core, readable from any thread (common/counter.hpp: the admin endpoint).
struct TunnelStats {
  Counter streams_opened;
  Counter streams_refused;
  Counter bytes_to_tunnel;   // edge payload queued into sessions
  Counter bytes_from_tunnel; // payload delivered to edge sockets
  Counter tunnels_open;
  Counter streams_open;
};

// What the program counts for one service (or any group of streams) on one core: TunnelConn::track() files a stream
// under it, and the connection keeps it up to date while the stream lives, so the counters move while a long
// connection is still open (bytes towards the edge count when the tunnel hands them to the stream's end, bytes from
// the edge when they are queued on the tunnel). "Edge" is the stream's socket side: the public client on the
// gateway, the local service on the agent. Written by the core, readable from any thread.
struct StreamTraffic {
  Counter streams_opened;
  Counter streams_open;
  Counter bytes_from_edge;
  Counter bytes_to_edge;
  Counter resets;  // streams that ended with a reset (either side)
};

// How a stream is to be counted when it opens (see TunnelConn's "streams").
struct Tracking {
  StreamTraffic* traffic = nullptr;  // null: not counted, no events
  bool timed = false;                // report TunnelEvents::on_first_byte
  void* app_record = nullptr;
};

// What the streams and connections of one core share. The TLS scratch buffers are used synchronously inside one
// call (decrypting into, packing small frames for encryption), so one pair serves every connection of the core.
struct TunnelCore {
  TunnelCore(ring::Loop& l, std::uint64_t stream_buffer_budget)
      : loop(l), blocks(stream_buffer_budget), tls_plaintext(tls::Session::kScratchSize),
        tls_packing(tls::Session::kScratchSize) {}
  ring::Loop& loop;
  BlockPool blocks;
  TunnelStats stats;
  std::vector<std::byte> tls_plaintext;
  std::vector<std::byte> tls_packing;
};

class TunnelConn;
class EdgeStream;
class UpstreamPool;

// A stream's far end, as its TunnelConn sees it: an EdgeStream (a socket pumped both ways), or an object of the
// program's that reads and writes the stream itself (the gateway's HTTP exchanges). The connection files live ends
// by the session's stream index and calls them on the loop thread; an end must stay alive until stream_closed().
class StreamEnd {
 public:
  // Tunnel -> end: payload bytes (valid during the call); report them with TunnelConn::edge_delivered() once they
  // reached their destination, which returns stream credit.
  virtual void deliver(std::span<const std::byte> bytes) noexcept = 0;
  virtual void peer_fin() noexcept = 0;
  virtual void peer_reset(frame::ErrorCode code) noexcept = 0;
  // The session freed the stream (both sides finished, a reset, or the connection going away); the handle is stale.
  virtual void stream_closed() noexcept = 0;
  // End -> tunnel: bytes queued with queue_edge_data or queue_copy were sent (their memory is given back already).
  virtual void ingress_released(std::size_t bytes) noexcept = 0;

  frame::StreamHandle handle() const noexcept { return handle_; }
  std::uint32_t slot = 0;        // the session's stream index
  std::uint32_t generation = 0;  // the session's generation of that index

  // Accounting (TunnelConn::track): the service's counters, this stream's own byte counts, when it opened (for the
  // first-byte latency; 0 = not timed), how it ended, and the program's own per-stream record (access log).
  StreamTraffic* traffic = nullptr;
  std::uint64_t bytes_from_edge = 0;
  std::uint64_t bytes_to_edge = 0;
  std::uint64_t opened_us = 0;
  void* app_record = nullptr;
  frame::ErrorCode reset_code = frame::ErrorCode::kNoError;  // the first reset of the stream, by either side

 protected:
  StreamEnd() = default;
  explicit StreamEnd(frame::StreamHandle handle) : handle_(handle) {}
  virtual ~StreamEnd() = default;

 private:
  friend class TunnelConn;
  frame::StreamHandle handle_;
};

class TunnelEvents {
 public:
  virtual ~TunnelEvents() = default;
  // A CONTROL frame arrived (the handshake). The JSON is valid during the call.
  virtual void on_control(TunnelConn& conn, std::span<const std::byte> json) = 0;
  // The peer opened a stream. Answer with conn.connect_stream() or conn.refuse_stream(), now or later.
  virtual void on_stream_open(TunnelConn& conn, frame::StreamHandle stream, std::span<const std::byte> metadata);
  // The connection is closed and every stream is gone; `conn` is deleted right after this returns.
  virtual void on_tunnel_closed(TunnelConn& conn, const char* reason) = 0;
  // A tracked stream (TunnelConn::track with a start time) received its first payload from the peer.
  virtual void on_first_byte(TunnelConn& conn, StreamEnd& end, std::uint64_t elapsed_us);
  // A tracked stream ended (its counts and reset_code are final); its app_record is the program's to free now.
  virtual void on_stream_finished(TunnelConn& conn, StreamEnd& end);
};

class TunnelConn final : public ring::SocketHandler, public frame::SessionHandler {
 public:
  // Takes over a connected socket (its handler becomes the TunnelConn) and starts the session. `app_tag` is set
  // before anything is processed, so every event (even one the replay triggers) names its connection. `replay` holds
  // plaintext already read from the socket by someone else (the gateway's handshake reader); it is processed first.
  // With `tls`, every byte on the socket is TLS: a session still handshaking (the agent's) finishes its handshake
  // before any frame leaves; an open one (handed over by the gateway's reader) carries frames at once.
  static TunnelConn* start(TunnelCore& core, ring::SocketId socket, frame::Role role, const TunnelOptions& options,
                           TunnelEvents& events, std::uint64_t app_tag, std::span<const std::byte> replay = {},
                           std::unique_ptr<tls::Session> tls = nullptr);

  // ---- control messages ----
  // Queues a CONTROL frame. When the session's control queue is full (a burst of answers: claims for many services),
  // the message waits here, in order, and follows as sends complete; kExhausted only past kMaxControlBacklog bytes
  // waiting (a peer that does not read), kLimit for one message over the peer's frame size.
  Status send_control(std::string_view json) noexcept;
  static constexpr std::size_t kMaxControlBacklog = 1024 * 1024;
  // A thread with no TLS handshake for this long frees its ECC tables (tls::release_idle_thread_state).
  static constexpr std::uint64_t kEccCacheIdleMs = 5000;

  // ---- streams ----
  // Every way of opening a stream takes the program's accounting for it (StreamEnd's accounting members): filed
  // only when the open succeeds, so on failure `app_record` is still the caller's.
  // Gateway: opens a stream for an accepted public connection. Takes `edge_fd` (closed on failure).
  Status open_stream(int edge_fd, std::span<const std::byte> metadata, const Tracking& tracking = {}) noexcept;
  // Gateway: opens a stream for a client socket already in this loop, its recv armed on kEdgePool (a TLS client
  // whose ClientHello was read to route it): `prefix`, the bytes read so far, goes first. The socket's handler
  // becomes the stream's. On failure the socket is still the caller's.
  Status open_stream(ring::SocketId socket, std::span<const std::byte> metadata, std::span<const std::byte> prefix,
                     const Tracking& tracking = {}) noexcept;
  // Gateway: opens a stream whose far end is `end` (it writes with queue_copy/queue_edge_data/edge_fin and reads
  // through StreamEnd::deliver). Nothing is registered on failure.
  Status open_stream(StreamEnd& end, std::span<const std::byte> metadata, const Tracking& tracking = {}) noexcept;
  // Agent: answers on_stream_open by connecting to `target` and pumping the stream through it.
  // `local_prefix` (a PROXY protocol header) is written to the service before the stream's bytes.
  void connect_stream(frame::StreamHandle stream, const ring::net::Address& target, const Tracking& tracking = {},
                      std::span<const std::byte> local_prefix = {}) noexcept;
  // Agent: the same for one HTTP request: an idle connection to `target` from `pool` (filed under `key`) serves it
  // when there is one; the response is read so that the connection goes back to the pool once it is complete (and
  // the stream ends there), or becomes a byte pipe after 101. `head_request`: the request is HEAD.
  // With a `local_prefix` the request gets a connection of its own (the prefix names one client), which is closed
  // after the response instead of pooled.
  void connect_http_stream(frame::StreamHandle stream, const ring::net::Address& target, UpstreamPool& pool,
                           std::uint32_t key, bool head_request, const Tracking& tracking = {},
                           std::span<const std::byte> local_prefix = {}) noexcept;
  void refuse_stream(frame::StreamHandle stream, frame::ErrorCode code) noexcept;

  // ---- connection ----
  // Graceful: GOAWAY, existing streams finish, then the connection closes by itself.
  void goaway() noexcept;
  // Abortive: every stream is reset and the socket closed. `reason` must be a static string (it is logged later).
  void close(const char* reason) noexcept;
  // Sends what is queued (e.g. a refusal), then closes.
  void close_after_flush(const char* reason) noexcept;

  bool closing() const noexcept { return closing_; }
  std::uint32_t live_streams() const noexcept { return session_.live_streams(); }
  const frame::Session& session() const noexcept { return session_; }
  const ring::net::Address& peer() const noexcept { return peer_; }
  const tls::Session* tls() const noexcept { return tls_.get(); }
  TunnelCore& core() noexcept { return core_; }
  const TunnelOptions& options() const noexcept { return options_; }

  // Free for the application (e.g. which agent this connection belongs to).
  std::uint64_t app_tag = 0;
  std::string app_name;

  // ---- for stream ends ----
  // Queues `length` bytes at `offset` of a receive buffer the end holds; the connection recycles the buffer once
  // they are sent (so a buffer is queued at most once) and tells the end (ingress_released).
  Status queue_edge_data(StreamEnd& end, const ring::RecvBuffer& buffer) noexcept;
  Status queue_edge_data(StreamEnd& end, const ring::RecvBuffer& buffer, std::size_t offset,
                         std::size_t length) noexcept;
  // Copies `bytes` into blocks of the core's BlockPool (given back once sent, whatever happens to the stream) and
  // queues them. kExhausted when the pool's budget is spent or too many copies wait on this connection.
  Status queue_copy(StreamEnd& end, std::span<const std::byte> bytes) noexcept;
  void edge_fin(StreamEnd& end) noexcept;
  void edge_delivered(StreamEnd& end, std::size_t bytes) noexcept;
  // Resets the stream with `code`; stream_closed() follows.
  void edge_failed(StreamEnd& end, frame::ErrorCode code) noexcept;
  void schedule_flush() noexcept;

 private:
  TunnelConn(TunnelCore& core, ring::SocketId socket, frame::Role role, const TunnelOptions& options,
             TunnelEvents& events);
  ~TunnelConn() override;

  // ring::SocketHandler (the tunnel socket)
  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_send(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_flush(ring::Loop& loop, ring::SocketId socket) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;

  // frame::SessionHandler
  void on_open(frame::StreamHandle h, frame::StreamId id, std::span<const std::byte> metadata) override;
  void on_data(frame::StreamHandle h, std::span<const std::byte> bytes) override;
  void on_fin(frame::StreamHandle h) override;
  void on_reset(frame::StreamHandle h, frame::ErrorCode code) override;
  void on_closed(frame::StreamHandle h) override;
  void on_goaway(frame::StreamId last_stream_id, frame::ErrorCode code) override;
  void on_control(std::span<const std::byte> json) override;
  void on_send_released(std::uint64_t cookie) override;

  void feed(std::span<const std::byte> bytes) noexcept;
  void drain_control_backlog() noexcept;
  void receive_tls(std::span<const std::byte> ciphertext) noexcept;
  void flush_tls(ring::Loop& loop, ring::SocketId socket) noexcept;
  // Hands one turn's bytes (frames, or ciphertext) to the ring: the one send in flight.
  void send(ring::Loop& loop, ring::SocketId socket, iovec* iov, unsigned count) noexcept;
  void tls_failed(const char* what) noexcept;
  bool wants_send() const noexcept;
  void on_heartbeat() noexcept;
  std::uint32_t heartbeat_tick_ms() const noexcept;
  void sync_time() noexcept;
  StreamEnd* stream_of(frame::StreamHandle h) noexcept;
  void register_stream(StreamEnd* stream, frame::StreamHandle handle) noexcept;
  void track(StreamEnd& stream, const Tracking& tracking) noexcept;
  static void count_from_edge(StreamEnd& stream, std::size_t bytes) noexcept {
    if (StreamTraffic* traffic = stream.traffic) {
      stream.bytes_from_edge += bytes;
      traffic->bytes_from_edge += bytes;
    }
  }
  void unregister_stream(StreamEnd& stream) noexcept;
  void maybe_finish_close() noexcept;

  TunnelCore& core_;
  ring::Loop& loop_;
  ring::SocketId socket_;
  ring::net::Address peer_;
  frame::Role role_;
  TunnelOptions options_;
  TunnelEvents& events_;
  frame::Session session_;
  frame::FrameBatch batch_;
  std::unique_ptr<tls::Session> tls_;  // null: plaintext (--insecure-plaintext)
  CipherSend cipher_send_;             // the ciphertext send in flight
  ring::Timer heartbeat_;
  std::uint64_t last_rx_ms_ = 0;
  std::uint64_t last_tx_ms_ = 0;
  std::uint64_t started_ms_ = 0;
  bool send_busy_ = false;
  bool closing_ = false;         // close() called: the socket is being closed
  bool flush_then_close_ = false;
  const char* close_reason_ = "closed";

  std::deque<std::string> control_backlog_;  // CONTROL messages the session had no room for yet
  std::size_t control_backlog_bytes_ = 0;

  // Blocks holding queue_copy() bytes until sent, by the id their cookie carries; free ids are reused.
  std::vector<std::byte*> copies_;
  std::vector<std::uint16_t> free_copy_ids_;

  // Streams by the session's stream index; cookies name (index, generation) so that a release arriving after its
  // stream was freed (and the index reused) is recognised.
  std::vector<StreamEnd*> streams_;
};

// One stream's edge side: a socket pumped both ways. Created and owned through TunnelConn; see edge_stream.cpp for
// its state machine.
class EdgeStream final : public StreamEnd, public ring::SocketHandler {
 public:
  EdgeStream(TunnelConn& conn, frame::StreamHandle handle);

  // StreamEnd
  void deliver(std::span<const std::byte> bytes) noexcept override;
  void peer_fin() noexcept override;
  void peer_reset(frame::ErrorCode code) noexcept override;
  void stream_closed() noexcept override;
  void ingress_released(std::size_t bytes) noexcept override;

  void attach_socket(ring::SocketId socket, bool connecting) noexcept;
  void start_reading() noexcept;
  // The socket came with its recv armed (from the TLS reader or the upstream pool).
  void reading_already() noexcept { reading_ = true; }
  // HTTP upstream mode (agent): see TunnelConn::connect_http_stream.
  void serve_http(UpstreamPool& pool, std::uint32_t key, bool head_request);
  // Bytes of the agent's own (a PROXY protocol header) that go to the edge before the stream's: not the peer's, so
  // writing them returns no credit. Before any data; false when the stream buffer budget is out.
  bool queue_local_prefix(std::span<const std::byte> bytes) noexcept;
  // HTTP upstream mode: the connection closes after this response instead of going back to the pool.
  void no_reuse() noexcept {
    if (http_) http_->reusable = false;
  }
  ring::SocketId socket() const noexcept { return socket_; }

 private:
  struct HttpUpstream {
    http::ResponseReader reader;
    UpstreamPool* pool = nullptr;
    std::uint32_t key = 0;
    bool request_done = false;   // the stream's FIN: the whole request reached us
    bool response_done = false;  // the response is complete and the stream's FIN sent
    bool reusable = true;        // nothing the service sent says the connection cannot take another request
  };

  ~EdgeStream() override = default;
  void on_connect(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_send(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_shutdown(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;

  void send_more() noexcept;
  void close_socket(bool abortive) noexcept;
  void fail(frame::ErrorCode code) noexcept;
  void maybe_done() noexcept;
  void maybe_free() noexcept;
  bool http_mode() const noexcept { return http_ != nullptr && !http_->reader.upgraded(); }
  bool both_finished() const noexcept;
  void recv_http(const ring::RecvBuffer& buffer) noexcept;
  void http_eof() noexcept;
  void maybe_release_upstream() noexcept;

  static constexpr std::size_t kMaxIov = 16;

  TunnelConn* conn_;           // null once the session stream is gone
  ring::Loop& loop_;
  ring::SocketId socket_;
  ByteQueue out_;              // tunnel -> edge bytes not yet written
  iovec iov_[kMaxIov];
  std::size_t in_flight_ = 0;  // bytes of the send in flight
  std::size_t local_prefix_ = 0;  // bytes at the front of out_ that are ours, not the peer's (no credit for them)
  std::size_t ingress_pending_ = 0;
  std::uint32_t ingress_limit_;
  std::unique_ptr<HttpUpstream> http_;
  bool connecting_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool edge_eof_ = false;       // the edge sent FIN (passed on as FIN on the stream)
  bool peer_fin_ = false;       // the stream's FIN arrived from the tunnel
  bool shutdown_sent_ = false;  // FIN passed on to the edge
  bool shutdown_done_ = false;
  bool socket_closing_ = false;
  bool socket_closed_ = true;   // until a socket is attached; also once it went back to the upstream pool
  bool stream_gone_ = false;
  int depth_ = 0;               // entry points on the stack (see DepthGuard)
};

}  // namespace ringtun::tunnel
