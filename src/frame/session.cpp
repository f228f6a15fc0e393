// Session: construction, the calls the I/O layer makes on streams and the connection, and stream teardown.
// The receive path is in session_recv.cpp, the send path (scheduler, batches, release) in session_send.cpp.
#include <algorithm>
#include <cstring>

#include "frame/session.hpp"

namespace ringtun::frame {

Session::Session(const SessionOptions& options, SessionHandler& handler)
    : options_(options),
      handler_(handler),
      decoder_(options.max_frame_size),
      streams_(options.max_concurrent_streams + options.max_local_streams + options.max_pending_opens),
      conn_recv_(options.initial_connection_window,
                 options.autotune ? options.max_connection_window : options.initial_connection_window),
      next_local_id_(options.role == Role::kGateway ? 1 : 2),
      flood_(options.flood) {
  // Options come from validated configuration; a bad one here is a programming error.
  RINGTUN_CHECK(options.max_frame_size >= kMinMaxFrameSize && options.max_frame_size <= kMaxMaxFrameSize,
                "SessionOptions.max_frame_size out of range");
  RINGTUN_CHECK(options.initial_stream_window >= kMinInitialWindow && options.initial_stream_window <= kMaxWindow,
                "SessionOptions.initial_stream_window out of range");
  RINGTUN_CHECK(options.initial_connection_window >= kMinInitialWindow &&
                    options.initial_connection_window <= kMaxWindow,
                "SessionOptions.initial_connection_window out of range");
  RINGTUN_CHECK(options.max_stream_window <= kMaxWindow && options.max_connection_window <= kMaxWindow,
                "SessionOptions: max windows must be 31-bit");
  RINGTUN_CHECK(options.max_control_frames >= 4, "SessionOptions.max_control_frames too small");
  RINGTUN_CHECK(options.control_buffer_bytes >= 1024, "SessionOptions.control_buffer_bytes too small");
  RINGTUN_CHECK(options.max_batch_bytes >= 2 * kHeaderSize, "SessionOptions.max_batch_bytes too small");

  // Capacity for every segment, reserved (not touched: resident as the connection's high-water mark of queued sends
  // reaches it) and never reallocated, so alloc_segment() allocates nothing.
  segments_.reserve(options.max_send_segments);
  control_.resize(options.max_control_frames);
  // Raw bytes: resident as control frames use them (a tunnel connection sends few), not zero-filled up front.
  ctrl_bytes_.reset(new std::byte[options.control_buffer_bytes]);
  append_settings();
}

Session::~Session() = default;

void Session::append_settings() noexcept {
  const std::pair<SettingId, std::uint32_t> entries[] = {
      {SettingId::kMaxFrameSize, options_.max_frame_size},
      {SettingId::kInitialStreamWindow, options_.initial_stream_window},
      {SettingId::kInitialConnectionWindow, options_.initial_connection_window},
      {SettingId::kMaxConcurrentStreams, options_.max_concurrent_streams},
  };
  std::byte payload[std::size(entries) * kSettingsEntrySize];
  std::byte* p = payload;
  for (const auto& [id, value] : entries) {
    store_be32(p, static_cast<std::uint32_t>(id));
    store_be32(p + 4, value);
    p += kSettingsEntrySize;
  }
  FrameHeader h{FrameType::kSettings, 0, 0, 0, 0, 0};
  bool queued = queue_control(h, payload);
  RINGTUN_CHECK(queued, "Session: no room for SETTINGS");
}

// ---- Control queue. ----

bool Session::queue_control(const FrameHeader& header, std::span<const std::byte> payload,
                            bool reserve_last) noexcept {
  if (aborted_) return false;
  // The last slot is kept for GOAWAY, so a connection error can always be reported.
  std::uint64_t limit = control_.size() - (reserve_last ? 0 : 1);
  if (ctrl_end_ - ctrl_release_ >= limit) return false;
  ControlEntry e;
  e.header = header;
  e.header.length = static_cast<std::uint32_t>(payload.size());
  if (!payload.empty()) {
    std::uint64_t cap = options_.control_buffer_bytes;
    std::uint64_t pos = ctrl_bytes_head_ % cap;
    std::uint64_t pad = pos + payload.size() > cap ? cap - pos : 0;  // never split a payload across the wrap
    if (ctrl_bytes_used_ + pad + payload.size() > cap) return false;
    e.payload_off = static_cast<std::uint32_t>(pad != 0 ? 0 : pos);
    e.ring_bytes = static_cast<std::uint32_t>(pad + payload.size());
    std::memcpy(ctrl_bytes_.get() + e.payload_off, payload.data(), payload.size());
    ctrl_bytes_head_ += e.ring_bytes;
    ctrl_bytes_used_ += e.ring_bytes;
  }
  control_[ctrl_end_ % control_.size()] = e;
  ++ctrl_end_;
  return true;
}

bool Session::queue_rst(StreamId id, ErrorCode code) noexcept {
  return queue_control(FrameHeader{FrameType::kRst, 0, 0, id, 0, static_cast<std::uint32_t>(code)}, {});
}

void Session::queue_goaway(ErrorCode code) noexcept {
  (void)queue_control(FrameHeader{FrameType::kGoaway, 0, 0, last_peer_id_, 0, static_cast<std::uint32_t>(code)},
                      {}, /*reserve_last=*/true);
}

// ---- Segments. ----

std::uint32_t Session::alloc_segment() noexcept {
  std::uint32_t i = seg_free_;
  if (i != kNoIndex) {
    seg_free_ = segments_[i].next;
  } else if (segments_.size() < options_.max_send_segments) {
    i = static_cast<std::uint32_t>(segments_.size());
    segments_.emplace_back();  // within the reserved capacity
  }
  return i;
}

void Session::push_inflight(std::uint32_t seg) noexcept {
  segments_[seg].next = kNoIndex;
  if (inflight_tail_ != kNoIndex) segments_[inflight_tail_].next = seg; else inflight_head_ = seg;
  inflight_tail_ = seg;
}

// ---- Stream teardown. ----

void Session::free_stream(std::uint32_t index, bool notify_reset, ErrorCode reset_code, bool send_rst) noexcept {
  Stream& s = streams_.at(index);
  RINGTUN_ASSERT(s.live(), "Session::free_stream: not a live stream");
  StreamHandle h = streams_.handle(index);
  active_.remove(streams_, index);
  credit_due_.remove(streams_, index);
  if (s.queue_kind == StreamQueue::kOpen) open_queue_.remove(streams_, index);
  if (s.queue_kind == StreamQueue::kClosing) closing_.remove(streams_, index);
  s.queue_kind = StreamQueue::kNone;
  if (s.id != 0) {
    // Unbound even while its RST waits: the peer's frames for it are then those of a closed stream.
    streams_.unbind(s.id);
    // A stream that closed normally, or that we reset, may still see the peer's in-flight frames (a WINDOW_UPDATE
    // crossing our FIN, DATA crossing our RST): a race, not a flood. After the peer's own RST, its further frames
    // are its fault and stay counted. (Ids are never reused and only closed streams are remembered, so this one is
    // not in the ring yet: no search, which cost a scan of the ring per closed stream.)
    if (send_rst || !notify_reset) remember_reset(s.id);
  }
  std::uint32_t seg = s.seg_head;
  s.seg_head = s.seg_tail = kNoIndex;
  s.queued_bytes = 0;
  if (send_rst) {
    // The slot (and its place in the concurrency counts: the peer still sees the stream open) is kept until the RST
    // is in a batch; no handle reaches it any more.
    s.state = StreamState::kResetPending;
    s.rst_code = reset_code;
    reset_queue_.push_back(streams_, index);
    s.queue_kind = StreamQueue::kReset;
  } else {
    if (s.local) {
      if (s.open_sent) --local_open_count_;
    } else {
      --peer_open_count_;
    }
    streams_.release(index);  // from here on `s` and `h` are stale; callbacks below may reuse the slot
  }

  // Unsent bytes are handed back now. A segment partly placed in a batch is still referenced by that batch, so it
  // waits for sent() like any in-flight segment (its wire_end is the current end, so ordering is preserved).
  while (seg != kNoIndex) {
    Segment& g = segments_[seg];
    std::uint32_t next = g.next;
    if (g.offset > 0 && sent_total_ < encoded_total_) {
      g.wire_end = encoded_total_;
      push_inflight(seg);
    } else {
      std::uint64_t cookie = g.cookie;
      g.next = seg_free_;
      seg_free_ = seg;
      handler_.on_send_released(cookie);
    }
    seg = next;
  }
  if (notify_reset) handler_.on_reset(h, reset_code);
  handler_.on_closed(h);
}

void Session::release_reset(std::uint32_t index) noexcept {
  Stream& s = streams_.at(index);
  RINGTUN_ASSERT(s.state == StreamState::kResetPending, "Session::release_reset: not reset-pending");
  reset_queue_.remove(streams_, index);
  s.queue_kind = StreamQueue::kNone;
  // Only streams the peer knew of wait for an RST: local ones had their OPEN sent.
  if (s.local) --local_open_count_; else --peer_open_count_;
  streams_.release(index);
}

void Session::fire_closed_queue() noexcept {
  while (!closing_.empty()) {
    std::uint32_t index = closing_.pop_front(streams_);
    streams_.at(index).queue_kind = StreamQueue::kNone;
    free_stream(index, false, ErrorCode::kNoError);
  }
}

void Session::note_credit(std::uint32_t index) noexcept {
  Stream& s = streams_.at(index);
  if (s.recv.update_due() && !StreamList<&Stream::credit_link>::contains(s)) credit_due_.push_back(streams_, index);
}

void Session::remember_reset(StreamId id) noexcept {
  recent_resets_[recent_reset_pos_] = id;
  recent_reset_pos_ = (recent_reset_pos_ + 1) % kRecentlyClosed;
}

bool Session::recently_reset(StreamId id) const noexcept {
  return std::find(std::begin(recent_resets_), std::end(recent_resets_), id) != std::end(recent_resets_);
}

// ---- Stream calls. ----

Result<StreamHandle> Session::open_stream(std::span<const std::byte> metadata, bool fin) noexcept {
  if (aborted_ || failed_ || goaway_received_ || goaway_sent_) return fail(Errc::kClosed, "frame: open_stream");
  if (metadata.size() > kMaxOpenPayload) return fail(Errc::kInvalidArgument, "frame: OPEN metadata too large");
  // Streams that will get their OPEN out in the next batch are not "pending"; only those beyond the peer's
  // concurrency limit (or all of them before its SETTINGS) count against max_pending_opens.
  std::uint32_t limit = std::min(peer_max_concurrent_, options_.max_local_streams);
  std::uint32_t free_slots = settings_received_ && local_open_count_ < limit ? limit - local_open_count_ : 0;
  if (open_queue_.size() >= options_.max_pending_opens + free_slots) {
    return fail(Errc::kLimit, "frame: too many pending opens");
  }
  if (next_local_id_ > kMaxStreamId) return fail(Errc::kExhausted, "frame: stream ids exhausted");
  std::uint32_t index = streams_.allocate();
  if (index == kNoIndex) return fail(Errc::kExhausted, "frame: stream table full");
  Stream& s = streams_.at(index);
  s.id = static_cast<StreamId>(next_local_id_);
  next_local_id_ += 2;
  s.local = true;
  s.state = StreamState::kPending;
  s.fin_queued = fin;
  s.recv = ReceiveWindow(options_.initial_stream_window,
                         options_.autotune ? options_.max_stream_window : options_.initial_stream_window);
  s.open_len = static_cast<std::uint16_t>(metadata.size());
  if (!metadata.empty()) std::memcpy(s.open_payload.data(), metadata.data(), metadata.size());
  streams_.bind(s.id, index);
  open_queue_.push_back(streams_, index);
  s.queue_kind = StreamQueue::kOpen;
  return streams_.handle(index);
}

Status Session::queue_data(StreamHandle h, std::span<const std::byte> bytes, std::uint64_t cookie,
                           bool fin) noexcept {
  if (aborted_ || failed_) return fail(Errc::kClosed, "frame: queue_data on a dead session");
  Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: queue_data");
  if (s->sending_closed()) return fail(Errc::kClosed, "frame: queue_data after FIN");
  if (bytes.empty() && !fin) return fail(Errc::kInvalidArgument, "frame: queue_data with nothing");
  if (bytes.size() > 0xffffffffU) return fail(Errc::kInvalidArgument, "frame: queue_data larger than 4 GiB");
  if (!bytes.empty()) {
    std::uint32_t seg = alloc_segment();
    if (seg == kNoIndex) return fail(Errc::kExhausted, "frame: send segments exhausted");
    segments_[seg] = Segment{bytes.data(), static_cast<std::uint32_t>(bytes.size()), 0, cookie, 0, kNoIndex};
    if (s->seg_tail != kNoIndex) segments_[s->seg_tail].next = seg; else s->seg_head = seg;
    s->seg_tail = seg;
    s->queued_bytes += bytes.size();
  }
  if (fin) s->fin_queued = true;
  update_active(h.index);
  return {};
}

Status Session::close_stream(StreamHandle h) noexcept { return queue_data(h, {}, 0, true); }

Status Session::reset_stream(StreamHandle h, ErrorCode code) noexcept {
  Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: reset_stream");
  // A stream whose OPEN never went out is unknown to the peer: it just disappears. Otherwise the RST waits in the
  // stream slot, not the control queue: a burst of resets (every public client of a tunnel gone at once) must never
  // fail or leave a stream the peer still believes open.
  free_stream(h.index, false, code, /*send_rst=*/s->open_sent && !failed_ && !aborted_);
  return {};
}

Status Session::consumed(StreamHandle h, std::size_t n) noexcept {
  Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: consumed");
  if (n > s->unconsumed) return fail(Errc::kInvalidArgument, "frame: consumed more than was delivered");
  s->unconsumed -= static_cast<std::uint32_t>(n);
  // After the peer's FIN no more data comes, so its credit is not worth a frame.
  if (!s->receiving_closed()) {
    s->recv.on_released(static_cast<std::uint32_t>(n));
    note_credit(h.index);
  }
  return {};
}

void Session::flush_credit() noexcept {
  conn_credit_flush_ = true;
  for (std::uint32_t i = 0; i < streams_.created(); ++i) {
    Stream& s = streams_.at(i);
    if (!s.live() || s.receiving_closed() || s.recv.pending() == 0) continue;
    if (!StreamList<&Stream::credit_link>::contains(s)) credit_due_.push_back(streams_, i);
  }
}

void Session::set_user(StreamHandle h, std::uint64_t value) noexcept {
  if (Stream* s = streams_.get(h)) s->user = value;
}

// ---- Connection calls. ----

Status Session::ping() noexcept {
  if (aborted_ || failed_) return fail(Errc::kClosed, "frame: ping");
  if (ping_outstanding_) return fail(Errc::kExhausted, "frame: a ping is already outstanding");
  std::uint32_t value = ping_value_ + 1;
  if (!queue_control(FrameHeader{FrameType::kPing, 0, 0, 0, 0, value}, {})) {
    return fail(Errc::kExhausted, "frame: control queue full");
  }
  ping_value_ = value;
  ping_outstanding_ = true;
  ping_sent_us_ = now_us_;
  return {};
}

Status Session::send_control(std::span<const std::byte> json) noexcept {
  if (aborted_ || failed_) return fail(Errc::kClosed, "frame: send_control");
  if (json.size() > peer_max_frame_) return fail(Errc::kLimit, "frame: CONTROL larger than the peer's frame size");
  if (!queue_control(FrameHeader{FrameType::kControl, 0, 0, 0, 0, 0}, json)) {
    return fail(Errc::kExhausted, "frame: control queue full");
  }
  return {};
}

Status Session::goaway(ErrorCode code) noexcept {
  if (aborted_ || failed_) return fail(Errc::kClosed, "frame: goaway");
  if (goaway_sent_) return {};
  goaway_sent_ = true;
  queue_goaway(code);
  // Our own streams that never got their OPEN out will not now.
  while (!open_queue_.empty()) {
    std::uint32_t index = open_queue_.front();
    free_stream(index, true, ErrorCode::kRefusedStream);
  }
  return {};
}

void Session::abort_all() noexcept {
  if (aborted_) return;
  aborted_ = true;
  for (std::uint32_t i = 0; i < streams_.created(); ++i) {
    const Stream& s = streams_.at(i);
    if (s.state == StreamState::kResetPending) release_reset(i);  // its RST will never go out
    else if (s.live()) free_stream(i, false, ErrorCode::kCancel);
  }
  // Nothing will be sent any more: every reference goes back.
  sent_total_ = encoded_total_;
  while (inflight_head_ != kNoIndex) {
    std::uint32_t seg = inflight_head_;
    inflight_head_ = segments_[seg].next;
    std::uint64_t cookie = segments_[seg].cookie;
    segments_[seg].next = seg_free_;
    seg_free_ = seg;
    handler_.on_send_released(cookie);
  }
  inflight_tail_ = kNoIndex;
  ctrl_release_ = ctrl_encode_ = ctrl_end_;
  ctrl_bytes_used_ = 0;
}

bool Session::drained() const noexcept {
  return (goaway_sent_ || goaway_received_ || failed_) && streams_.live() == 0 && !wants_write() &&
         sent_total_ == encoded_total_;
}

// ---- Queries. ----

Result<StreamId> Session::stream_id(StreamHandle h) const noexcept {
  const Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: stream_id");
  return s->id;
}

Result<std::uint64_t> Session::user(StreamHandle h) const noexcept {
  const Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: user");
  return s->user;
}

Result<std::uint64_t> Session::queued_bytes(StreamHandle h) const noexcept {
  const Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: queued_bytes");
  return s->queued_bytes;
}

Result<std::uint32_t> Session::send_window(StreamHandle h) const noexcept {
  const Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: send_window");
  return s->send.available();
}

Result<std::uint32_t> Session::unconsumed(StreamHandle h) const noexcept {
  const Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: unconsumed");
  return s->unconsumed;
}

Result<std::uint32_t> Session::receive_window(StreamHandle h) const noexcept {
  const Stream* s = streams_.get(h);
  if (s == nullptr) return fail(Errc::kNotFound, "frame: receive_window");
  return s->recv.window();
}

}  // namespace ringtun::frame
