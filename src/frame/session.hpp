// Session: the protocol state machine of one tunnel connection, with no I/O. The I/O layer feeds it received
// bytes, asks it for the next batch of frames to send, and tells it when bytes were sent and when received data
// reached its final socket. The session reports stream events through a SessionHandler.
//
// Ownership and the buffer-release contract:
//  * Received bytes: feed() never keeps a pointer into the caller's chunk once it returns. on_data views point into
//    the chunk given to feed() (DATA is never copied); if the handler keeps such a view past the callback (e.g. to
//    forward zero-copy), keeping the chunk alive is the handler's business.
//  * Sent bytes: queue_data() takes a reference to caller-owned bytes plus a 64-bit cookie. The bytes must stay valid
//    and unchanged until the cookie comes back through SessionHandler::on_send_released(cookie), which happens
//    exactly once per accepted queue_data() call: from sent() once the cookie's last byte has gone out, or - for
//    bytes that will never be sent because the stream was reset or abort_all() was called - from that call.
//    (Bytes already placed in a batch are still released only by sent(), since the batch may still reference them.)
//  * build_batch() fills a FrameBatch whose iovecs reference the session's internal control storage and the
//    caller's queued buffers. Batches must be sent in the order they were built; after any (partial) send call
//    sent(n) with the byte count the kernel accepted. Several batches may be in flight as long as sent() is called
//    in order. Control payload storage is reclaimed by sent() too.
//
// Reentrancy: handler callbacks run synchronously inside feed(), sent(), reset_stream(), goaway(), abort_all() and
// (on_closed only, after the batch is complete) build_batch(). From a callback the handler may call open_stream,
// queue_data, close_stream, reset_stream, consumed, flush_credit, ping, send_control and goaway; it must not call
// feed(), build_batch(), sent() or abort_all(). A handle passed to a callback may be stale by the time the callback
// returns (the handler itself may have reset the stream); the session re-checks, and so should the handler.
// Thread rules: one core's thread; no sharing. Time is injected with set_time().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/result.hpp"
#include "frame/decoder.hpp"
#include "frame/encoder.hpp"
#include "frame/flood_guard.hpp"
#include "frame/flow.hpp"
#include "frame/stream_table.hpp"
#include "frame/wire.hpp"

namespace ringtun::frame {

class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // The peer opened a stream. `metadata` (OPEN payload, <= 256 bytes) is valid during the call. A FIN on the OPEN
  // is reported by an on_fin right after.
  virtual void on_open(StreamHandle h, StreamId id, std::span<const std::byte> metadata) = 0;
  // Payload bytes for a stream; report them with consumed() once they reached their final socket.
  virtual void on_data(StreamHandle h, std::span<const std::byte> bytes) = 0;
  // The peer will send no more data on this stream.
  virtual void on_fin(StreamHandle h) = 0;
  // The stream died abnormally (peer RST, refused by GOAWAY, or a stream error we detected). Not called for the
  // I/O layer's own reset_stream(). on_closed follows.
  virtual void on_reset(StreamHandle h, ErrorCode code) = 0;
  // The stream's slot was freed; `h` is stale from now on. Called exactly once per stream the handler learnt of
  // (opened with open_stream or announced by on_open).
  virtual void on_closed(StreamHandle h) = 0;
  virtual void on_goaway(StreamId last_stream_id, ErrorCode code) = 0;
  // A CONTROL frame (JSON text, not validated here). Valid during the call.
  virtual void on_control(std::span<const std::byte> json) = 0;
  virtual void on_ping_ack(std::uint64_t rtt_us) { (void)rtt_us; }
  // Caller bytes queued with `cookie` are no longer referenced.
  virtual void on_send_released(std::uint64_t cookie) = 0;
};

struct SessionOptions {
  Role role = Role::kGateway;
  // Advertised to the peer in SETTINGS (what we accept).
  std::uint32_t max_frame_size = kDefaultMaxFrameSize;
  std::uint32_t initial_stream_window = kDefaultStreamWindow;
  std::uint32_t initial_connection_window = kDefaultConnectionWindow;
  std::uint32_t max_concurrent_streams = 256;  // peer-opened streams we allow at once
  // Local limits.
  std::uint32_t max_local_streams = 256;     // our streams with OPEN sent (also capped by the peer's limit)
  std::uint32_t max_pending_opens = 64;      // open_stream() calls waiting for SETTINGS or a concurrency slot
  std::uint32_t max_send_segments = 4096;    // queue_data() references held at once (queued + in flight)
  std::uint32_t max_control_frames = 256;    // control frames queued or in flight
  std::uint32_t control_buffer_bytes = 64 * 1024;  // their payload storage (CONTROL, GOAWAY, SETTINGS)
  std::uint32_t max_batch_bytes = 256 * 1024;      // bound on one batch (control frames always fit)
  // Receive-window auto-tuning (off: windows stay at their initial size).
  bool autotune = false;
  std::uint32_t max_stream_window = 8 * 1024 * 1024;
  std::uint32_t max_connection_window = 64 * 1024 * 1024;
  FloodLimits flood;
};

class Session {
 public:
  Session(const SessionOptions& options, SessionHandler& handler);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // Current time (microseconds, monotonic); call once per loop turn before the other calls.
  void set_time(std::uint64_t now_us) noexcept { now_us_ = now_us; }

  // ---- Receive path. ----
  // Processes received bytes. On a connection error returns it (kProtocol, kFlowControl, kLimit...; error_code()
  // holds the wire code), queues GOAWAY with that code and ignores further input: send the remaining batches, then
  // abort_all() and close the socket.
  [[nodiscard]] Status feed(std::span<const std::byte> bytes) noexcept;

  // ---- Send path. ----
  // Clears `batch` and fills it with what is ready: preface and SETTINGS first, then control frames, the RSTs of
  // streams reset since the last batch, WINDOW_UPDATEs, OPENs, then DATA by deficit round-robin among streams with
  // data and credit, up to max_batch_bytes (control frames always go; RSTs and the rest wait for the next batch).
  void build_batch(FrameBatch& batch) noexcept;
  // True if build_batch() would produce something.
  bool wants_write() const noexcept;
  // `bytes` more bytes of the built batches were written to the socket; releases cookies (on_send_released).
  void sent(std::size_t bytes) noexcept;

  // ---- Streams. ----
  // Allocates the next local id; OPEN goes out when the peer's SETTINGS arrived and its concurrency limit allows.
  // kLimit when max_pending_opens streams are already waiting; kClosed after GOAWAY; kExhausted when ids run out.
  [[nodiscard]] Result<StreamHandle> open_stream(std::span<const std::byte> metadata, bool fin = false) noexcept;
  // Queues caller-owned bytes (see the release contract above). fin = this is the last data on the stream.
  // Empty bytes with fin = true closes the sending side. On error the cookie was not taken.
  [[nodiscard]] Status queue_data(StreamHandle h, std::span<const std::byte> bytes, std::uint64_t cookie,
                                  bool fin = false) noexcept;
  [[nodiscard]] Status close_stream(StreamHandle h) noexcept;  // FIN after queued data
  // Abandons the stream: queued bytes are released, on_closed follows (the handle is stale from then on), and
  // RST(code) goes out with the next batch - unless the OPEN never went out, then the stream just disappears.
  // The RST is kept with the stream slot, not in the control queue, so this never fails for a live stream however
  // many are reset at once; the slot is freed once the RST is in a batch. kNotFound for a stale handle.
  [[nodiscard]] Status reset_stream(StreamHandle h, ErrorCode code) noexcept;
  // n bytes delivered by on_data reached their final socket: returns stream credit (coalesced).
  [[nodiscard]] Status consumed(StreamHandle h, std::size_t n) noexcept;
  // Makes every pending credit due now, below the half-window threshold (use when the loop goes idle).
  void flush_credit() noexcept;
  void set_user(StreamHandle h, std::uint64_t user) noexcept;

  // ---- Connection. ----
  // Sends a PING; the answer's RTT feeds auto-tuning and on_ping_ack. kExhausted if one is already outstanding.
  [[nodiscard]] Status ping() noexcept;
  // Sends a CONTROL frame with the given JSON (copied). kLimit if larger than the peer's max frame size.
  [[nodiscard]] Status send_control(std::span<const std::byte> json) noexcept;
  // Sends GOAWAY: existing streams finish, peer streams opened after it are refused, open_stream() fails.
  [[nodiscard]] Status goaway(ErrorCode code) noexcept;
  // The connection is gone: releases every cookie and fires on_closed for every stream. The session is dead after.
  void abort_all() noexcept;

  // ---- Queries. ----
  bool failed() const noexcept { return failed_; }
  ErrorCode error_code() const noexcept { return error_code_; }  // the GOAWAY code we sent for a connection error
  bool settings_received() const noexcept { return settings_received_; }
  bool goaway_received() const noexcept { return goaway_received_; }
  bool goaway_sent() const noexcept { return goaway_sent_; }
  // GOAWAY exchanged or failed, no live streams, everything built was sent: the socket may be closed.
  bool drained() const noexcept;
  // Stream slots in use, including reset streams whose RST has not been placed in a batch yet.
  std::uint32_t live_streams() const noexcept { return streams_.live(); }
  std::uint64_t rtt_us() const noexcept { return rtt_us_; }
  std::uint32_t connection_send_window() const noexcept { return conn_send_.available(); }
  const ReceiveWindow& connection_receive_window() const noexcept { return conn_recv_; }
  std::uint32_t peer_max_frame_size() const noexcept { return peer_max_frame_; }

  Result<StreamId> stream_id(StreamHandle h) const noexcept;
  Result<std::uint64_t> user(StreamHandle h) const noexcept;
  Result<std::uint64_t> queued_bytes(StreamHandle h) const noexcept;
  Result<std::uint32_t> send_window(StreamHandle h) const noexcept;
  // Bytes delivered by on_data and not yet reported consumed.
  Result<std::uint32_t> unconsumed(StreamHandle h) const noexcept;
  Result<std::uint32_t> receive_window(StreamHandle h) const noexcept;  // current window size (grows if tuned)

 private:
  struct Segment {
    const std::byte* data = nullptr;
    std::uint32_t len = 0;
    std::uint32_t offset = 0;   // bytes already placed in a batch
    std::uint64_t cookie = 0;
    std::uint64_t wire_end = 0; // once fully encoded: wire offset after which all its bytes were sent
    std::uint32_t next = kNoIndex;
  };
  struct ControlEntry {
    FrameHeader header;
    std::uint32_t payload_off = 0;
    std::uint32_t ring_bytes = 0;  // payload ring bytes to give back when sent (payload + wrap padding)
    std::uint64_t wire_end = 0;
  };

  // session_recv.cpp
  Status handle_frame(const DecodedFrame& f) noexcept;
  Status handle_data(const DecodedFrame& f) noexcept;
  Status handle_open(const DecodedFrame& f) noexcept;
  Status handle_window_update(const FrameHeader& h) noexcept;
  Status handle_rst(const FrameHeader& h) noexcept;
  Status handle_ping(const FrameHeader& h) noexcept;
  Status handle_goaway(const DecodedFrame& f) noexcept;
  Status handle_settings(const DecodedFrame& f) noexcept;
  Status handle_control(const DecodedFrame& f) noexcept;
  Status handle_preface(std::span<const std::byte>& bytes) noexcept;
  Status connection_error(ErrorCode code, const char* context) noexcept;
  Status flood(Flood kind) noexcept;
  // A stream id that names no live stream: idle (never opened: connection error) or closed (answer per frame).
  bool is_idle_id(StreamId id) const noexcept;
  // A stream error we detected: RST(code) to the peer, on_reset and on_closed to the handler.
  void stream_error(std::uint32_t index, ErrorCode code) noexcept;
  void remember_reset(StreamId id) noexcept;
  bool recently_reset(StreamId id) const noexcept;

  // session_send.cpp
  void encode_control(FrameBatch& batch) noexcept;
  // RSTs of reset-pending streams, within max_batch_bytes; frees each slot as its RST is placed.
  void encode_resets(FrameBatch& batch) noexcept;
  void encode_credit(FrameBatch& batch) noexcept;
  void encode_opens(FrameBatch& batch) noexcept;
  void encode_data(FrameBatch& batch) noexcept;
  // One DATA frame for stream `index` of at most `limit` payload bytes; returns payload bytes encoded.
  std::uint32_t encode_data_frame(FrameBatch& batch, std::uint32_t index, std::uint32_t limit) noexcept;
  bool sendable(const Stream& s) const noexcept;
  void update_active(std::uint32_t index) noexcept;
  bool can_open_now() const noexcept;
  void release_control(std::uint64_t upto) noexcept;
  void release_segments(std::uint64_t upto) noexcept;

  // session.cpp
  bool queue_control(const FrameHeader& h, std::span<const std::byte> payload, bool reserve_last = false) noexcept;
  // An RST answering a frame for a stream we hold no slot for (closed long ago, refused); a full queue is the
  // caller's connection error. RSTs for streams we reset wait in their slot instead (free_stream).
  bool queue_rst(StreamId id, ErrorCode code) noexcept;
  void queue_goaway(ErrorCode code) noexcept;
  // Ends a stream: unlinks it, hands back its queued bytes, fires on_reset (if `notify_reset`) and on_closed. With
  // `send_rst` (the peer knows the stream and must be told) the slot stays allocated as reset-pending until
  // encode_resets() places RST(reset_code); otherwise it is freed now.
  void free_stream(std::uint32_t index, bool notify_reset, ErrorCode reset_code, bool send_rst = false) noexcept;
  // Frees a reset-pending slot (its RST was encoded, or will never be sent). No callbacks: on_closed fired already.
  void release_reset(std::uint32_t index) noexcept;
  void maybe_close(std::uint32_t index) noexcept;
  void fire_closed_queue() noexcept;
  std::uint32_t alloc_segment() noexcept;
  void push_inflight(std::uint32_t seg) noexcept;
  void note_credit(std::uint32_t index) noexcept;
  void append_settings() noexcept;

  SessionOptions options_;
  SessionHandler& handler_;
  Decoder decoder_;
  StreamTable streams_;
  StreamList<&Stream::active_link> active_;
  StreamList<&Stream::credit_link> credit_due_;
  StreamList<&Stream::queue_link> open_queue_;
  StreamList<&Stream::queue_link> closing_;
  StreamList<&Stream::queue_link> reset_queue_;  // reset-pending streams, in reset order

  std::vector<Segment> segments_;
  std::uint32_t seg_free_ = kNoIndex;
  std::uint32_t inflight_head_ = kNoIndex;
  std::uint32_t inflight_tail_ = kNoIndex;

  std::vector<ControlEntry> control_;   // ring
  std::uint64_t ctrl_release_ = 0;      // oldest entry not yet sent
  std::uint64_t ctrl_encode_ = 0;       // next entry to encode
  std::uint64_t ctrl_end_ = 0;          // next free entry
  std::unique_ptr<std::byte[]> ctrl_bytes_;  // payload ring of options_.control_buffer_bytes
  std::uint64_t ctrl_bytes_head_ = 0;
  std::uint64_t ctrl_bytes_used_ = 0;

  SendWindow conn_send_;
  ReceiveWindow conn_recv_;
  bool conn_credit_flush_ = false;

  std::uint32_t peer_max_frame_ = kDefaultMaxFrameSize;
  std::uint32_t peer_stream_window_ = kDefaultStreamWindow;
  std::uint32_t peer_max_concurrent_ = 0;  // 0 until SETTINGS: nothing may be opened before
  std::uint32_t preface_have_ = 0;
  bool preface_sent_ = false;
  bool settings_received_ = false;

  StreamId next_local_id_;
  StreamId last_local_opened_ = 0;  // highest local id whose OPEN was encoded
  StreamId last_peer_id_ = 0;       // highest peer id seen in an OPEN
  std::uint32_t local_open_count_ = 0;
  std::uint32_t peer_open_count_ = 0;

  bool goaway_sent_ = false;
  bool goaway_received_ = false;
  bool failed_ = false;
  bool aborted_ = false;
  bool in_feed_ = false;
  ErrorCode error_code_ = ErrorCode::kNoError;

  // Frames for a stream that closed or was reset recently are a normal race (they were in flight), even in bursts
  // when hundreds of streams end at once: they are dropped silently and not counted as a flood. Frames for other
  // closed streams are answered with RST STREAM_CLOSED (once) and counted. The memory is a ring of the last
  // kRecentlyClosed ids (16 KiB per connection).
  static constexpr std::size_t kRecentlyClosed = 4096;
  StreamId recent_resets_[kRecentlyClosed] = {};
  std::size_t recent_reset_pos_ = 0;

  // The DATA frame being received: its stream (kNoIndex/stale = discard the remaining fragments).
  StreamHandle rx_stream_;

  std::uint64_t now_us_ = 0;
  std::uint64_t rtt_us_ = 0;
  bool ping_outstanding_ = false;
  std::uint32_t ping_value_ = 0;
  std::uint64_t ping_sent_us_ = 0;

  std::uint64_t encoded_total_ = 0;  // wire bytes placed in batches
  std::uint64_t sent_total_ = 0;     // wire bytes reported by sent()
  FloodGuard flood_;
};

}  // namespace ringtun::frame
