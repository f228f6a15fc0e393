// Session send path: batch building (control first, then pending RSTs, credit, OPENs, and DATA by deficit
// round-robin) and the release of control storage and caller buffers once sent() reports their bytes written.
#include <algorithm>

#include "frame/session.hpp"

namespace ringtun::frame {

bool Session::sendable(const Stream& s) const noexcept {
  if (!s.open_sent || s.fin_sent) return false;
  if (s.queued_bytes > 0) return s.send.available() > 0;
  return s.fin_queued;  // a bare FIN needs no credit
}

void Session::update_active(std::uint32_t index) noexcept {
  Stream& s = streams_.at(index);
  if (!failed_ && !aborted_ && sendable(s) && !StreamList<&Stream::active_link>::contains(s)) {
    active_.push_back(streams_, index);
  }
}

bool Session::can_open_now() const noexcept {
  return settings_received_ && !goaway_received_ && !failed_ && !aborted_ &&
         local_open_count_ < std::min(peer_max_concurrent_, options_.max_local_streams);
}

bool Session::wants_write() const noexcept {
  if (aborted_) return false;
  if (!preface_sent_ || ctrl_encode_ < ctrl_end_) return true;
  if (failed_) return false;
  if (!reset_queue_.empty()) return true;
  if (conn_recv_.update_due() || (conn_credit_flush_ && conn_recv_.pending() > 0)) return true;
  if (!credit_due_.empty()) return true;
  if (!open_queue_.empty() && can_open_now()) return true;
  return !active_.empty() && conn_send_.available() > 0;
}

void Session::build_batch(FrameBatch& batch) noexcept {
  batch.clear();
  if (aborted_) return;
  if (!preface_sent_) {
    batch.add_raw(kPreface);
    preface_sent_ = true;
  }
  encode_control(batch);
  if (!failed_) {
    encode_resets(batch);
    encode_credit(batch);
    encode_opens(batch);
    encode_data(batch);
  }
  encoded_total_ += batch.bytes();
  fire_closed_queue();  // streams whose FIN just went out after the peer's: freed once no longer iterated
}

void Session::encode_control(FrameBatch& batch) noexcept {
  while (ctrl_encode_ < ctrl_end_) {
    ControlEntry& e = control_[ctrl_encode_ % control_.size()];
    if (!batch.has_room(1)) return;
    batch.add_frame(e.header, std::span<const std::byte>(ctrl_bytes_.get() + e.payload_off, e.header.length));
    e.wire_end = encoded_total_ + batch.bytes();
    ++ctrl_encode_;
  }
}

void Session::encode_resets(FrameBatch& batch) noexcept {
  // The header is encoded into the batch's own arena, so nothing of the slot is referenced after this: it is freed
  // at once (and with it a concurrency slot, so an OPEN later in this same batch may use it).
  while (!reset_queue_.empty() && batch.has_room(0) && batch.bytes() + kHeaderSize <= options_.max_batch_bytes) {
    std::uint32_t index = reset_queue_.front();
    const Stream& s = streams_.at(index);
    batch.add_frame(FrameHeader{FrameType::kRst, 0, 0, s.id, 0, static_cast<std::uint32_t>(s.rst_code)}, {});
    release_reset(index);
  }
}

void Session::encode_credit(FrameBatch& batch) noexcept {
  if ((conn_recv_.update_due() || conn_credit_flush_) && conn_recv_.pending() > 0 && batch.has_room(0)) {
    std::uint32_t increment = conn_recv_.take_update(now_us_, rtt_us_);
    batch.add_frame(FrameHeader{FrameType::kWindowUpdate, 0, 0, 0, 0, increment}, {});
  }
  if (batch.has_room(0)) conn_credit_flush_ = false;
  while (!credit_due_.empty() && batch.has_room(0)) {
    std::uint32_t index = credit_due_.pop_front(streams_);
    Stream& s = streams_.at(index);
    if (s.receiving_closed()) continue;
    std::uint32_t increment = s.recv.take_update(now_us_, rtt_us_);
    if (increment == 0) continue;
    batch.add_frame(FrameHeader{FrameType::kWindowUpdate, 0, 0, s.id, 0, increment}, {});
  }
}

void Session::encode_opens(FrameBatch& batch) noexcept {
  while (!open_queue_.empty() && can_open_now()) {
    std::uint32_t index = open_queue_.front();
    Stream& s = streams_.at(index);
    bool fin = s.fin_queued && s.seg_head == kNoIndex;
    FrameHeader h{FrameType::kOpen, fin ? flags::kFin : std::uint8_t{0}, 0, s.id, 0, 0};
    h.length = s.open_len;
    // The metadata lives in the stream slot, which may be reused before the batch is sent: the batch copies it.
    if (!batch.add_frame_copy(h, std::span<const std::byte>(s.open_payload.data(), s.open_len))) return;
    open_queue_.remove(streams_, index);
    s.queue_kind = StreamQueue::kNone;
    s.open_sent = true;
    s.sent_anything = true;
    s.state = fin ? StreamState::kHalfClosedLocal : StreamState::kOpen;
    s.send = SendWindow(peer_stream_window_);
    s.fin_sent = fin;
    last_local_opened_ = s.id;
    ++local_open_count_;
    update_active(index);
  }
}

void Session::encode_data(FrameBatch& batch) noexcept {
  const std::uint32_t quantum = peer_max_frame_;
  while (!active_.empty() && conn_send_.available() > 0) {
    std::size_t used = batch.bytes();
    if (used + kHeaderSize >= options_.max_batch_bytes || !batch.has_room(1)) return;
    std::uint32_t index = active_.front();
    Stream& s = streams_.at(index);
    if (!sendable(s)) {
      active_.remove(streams_, index);
      s.deficit = 0;
      s.has_quantum = false;
      continue;
    }
    // Deficit round-robin: each turn a stream earns one quantum (a max-size frame) and spends it on payload; a
    // turn cut short by the batch bound resumes with what is left, so batch boundaries do not skew the shares.
    if (!s.has_quantum) {
      s.deficit += quantum;
      s.has_quantum = true;
    }
    std::uint64_t budget = options_.max_batch_bytes - used - kHeaderSize;
    auto limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(s.deficit), budget));
    std::uint32_t n = encode_data_frame(batch, index, limit);
    s.deficit -= n;
    if (!sendable(s)) {
      active_.remove(streams_, index);
      s.deficit = 0;
      s.has_quantum = false;
    } else if (s.deficit <= 0) {
      s.has_quantum = false;
      active_.rotate(streams_);
    } else if (n == 0) {
      return;  // no room left for payload in this batch
    }
  }
}

std::uint32_t Session::encode_data_frame(FrameBatch& batch, std::uint32_t index, std::uint32_t limit) noexcept {
  Stream& s = streams_.at(index);
  bool fin = false;
  std::uint32_t len = 0;
  if (s.queued_bytes == 0) {
    // A bare FIN.
    fin = true;
    batch.add_frame(FrameHeader{FrameType::kData, flags::kFin, 0, s.id, 0, 0}, {});
  } else {
    std::uint32_t max = std::min({limit, peer_max_frame_, s.send.available(), conn_send_.available()});
    if (max == 0) return 0;
    std::byte* slot = batch.reserve_header();
    std::uint32_t done_head = kNoIndex;  // segments completed by this frame, released once it is sent
    std::uint32_t done_tail = kNoIndex;
    while (len < max && s.seg_head != kNoIndex && batch.free_iovs() > 0) {
      std::uint32_t seg = s.seg_head;
      Segment& g = segments_[seg];
      std::uint32_t piece = std::min(g.len - g.offset, max - len);
      batch.add_payload(std::span<const std::byte>(g.data + g.offset, piece));
      g.offset += piece;
      len += piece;
      if (g.offset == g.len) {
        s.seg_head = g.next;
        if (s.seg_head == kNoIndex) s.seg_tail = kNoIndex;
        g.next = kNoIndex;
        if (done_tail != kNoIndex) segments_[done_tail].next = seg; else done_head = seg;
        done_tail = seg;
      }
    }
    s.queued_bytes -= len;
    s.send.consume(len);
    conn_send_.consume(len);
    fin = s.fin_queued && s.queued_bytes == 0;
    FrameBatch::finish_header(slot, FrameHeader{FrameType::kData, fin ? flags::kFin : std::uint8_t{0}, 0, s.id,
                                                len, 0});
    std::uint64_t wire_end = encoded_total_ + batch.bytes();
    while (done_head != kNoIndex) {
      std::uint32_t next = segments_[done_head].next;
      segments_[done_head].wire_end = wire_end;
      push_inflight(done_head);
      done_head = next;
    }
  }
  s.sent_anything = true;
  if (fin) {
    s.fin_sent = true;
    if (s.state == StreamState::kHalfClosedRemote) {
      closing_.push_back(streams_, index);  // both sides done: free at the end of build_batch
      s.queue_kind = StreamQueue::kClosing;
    } else {
      s.state = StreamState::kHalfClosedLocal;
    }
  }
  return len;
}

void Session::release_control(std::uint64_t upto) noexcept {
  while (ctrl_release_ < ctrl_encode_) {
    const ControlEntry& e = control_[ctrl_release_ % control_.size()];
    if (e.wire_end > upto) return;
    ctrl_bytes_used_ -= e.ring_bytes;
    ++ctrl_release_;
  }
}

void Session::release_segments(std::uint64_t upto) noexcept {
  // Pop before calling out: the handler may queue new data (reusing the slot) from on_send_released.
  while (inflight_head_ != kNoIndex && segments_[inflight_head_].wire_end <= upto) {
    std::uint32_t seg = inflight_head_;
    inflight_head_ = segments_[seg].next;
    if (inflight_head_ == kNoIndex) inflight_tail_ = kNoIndex;
    std::uint64_t cookie = segments_[seg].cookie;
    segments_[seg].next = seg_free_;
    seg_free_ = seg;
    handler_.on_send_released(cookie);
  }
}

void Session::sent(std::size_t bytes) noexcept {
  RINGTUN_CHECK(sent_total_ + bytes <= encoded_total_, "Session::sent: more bytes than were built");
  sent_total_ += bytes;
  release_control(sent_total_);
  release_segments(sent_total_);
}

}  // namespace ringtun::frame
