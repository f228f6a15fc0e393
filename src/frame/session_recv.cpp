// Session receive path: preface, frame dispatch, per-type rules and the abuse defences (docs/protocol.md
// "Errors" and "Limits" list which violation gets which answer).
#include "frame/session.hpp"

namespace ringtun::frame {

namespace {
// Marks the session as inside feed() for the reentrancy check.
class FeedGuard {
 public:
  explicit FeedGuard(bool& flag) : flag_(flag) { flag_ = true; }
  ~FeedGuard() { flag_ = false; }
  FeedGuard(const FeedGuard&) = delete;
  FeedGuard& operator=(const FeedGuard&) = delete;

 private:
  bool& flag_;
};
}  // namespace

Status Session::feed(std::span<const std::byte> bytes) noexcept {
  RINGTUN_CHECK(!in_feed_, "Session::feed is not reentrant (called from a handler callback?)");
  if (aborted_) return fail(Errc::kClosed, "frame: feed after abort_all");
  if (failed_) return fail(errc_for(error_code_), "frame: connection already failed");
  FeedGuard guard(in_feed_);
  if (preface_have_ < kPrefaceSize) {
    RINGTUN_TRY(handle_preface(bytes));
  }
  DecodedFrame f;
  for (;;) {
    auto got = decoder_.next(bytes, f);
    if (!got) return connection_error(decoder_.error_code(), "frame: malformed frame header");
    if (!*got) return {};
    RINGTUN_TRY(handle_frame(f));
  }
}

Status Session::handle_preface(std::span<const std::byte>& bytes) noexcept {
  while (preface_have_ < kPrefaceSize && !bytes.empty()) {
    std::byte b = bytes.front();
    if (b != kPreface[preface_have_]) {
      // The version byte is last: a peer speaking another major version is told so in a v1 GOAWAY, whose format
      // is frozen across versions.
      return connection_error(preface_have_ == kPrefaceSize - 1 ? ErrorCode::kVersionMismatch
                                                                : ErrorCode::kProtocolError,
                              "frame: bad connection preface");
    }
    ++preface_have_;
    bytes = bytes.subspan(1);
  }
  return {};
}

Status Session::connection_error(ErrorCode code, const char* context) noexcept {
  if (!failed_) {
    failed_ = true;
    error_code_ = code;
    queue_goaway(code);
    // Nothing but the GOAWAY goes out now: RSTs still waiting are dropped (their streams' handlers heard on_closed
    // already), so the session can drain.
    while (!reset_queue_.empty()) release_reset(reset_queue_.front());
  }
  return fail(errc_for(code), context);
}

Status Session::flood(Flood kind) noexcept {
  if (!flood_.record(kind, now_us_)) return connection_error(ErrorCode::kEnhanceYourCalm, "frame: flood limit");
  return {};
}

bool Session::is_idle_id(StreamId id) const noexcept {
  return opened_by(options_.role, id) ? id > last_local_opened_ : id > last_peer_id_;
}

void Session::stream_error(std::uint32_t index, ErrorCode code) noexcept {
  // Only streams the peer knows get here (found by id, OPEN sent), and the RST waits in the slot, so this never
  // needs control-queue room: each such RST answers a stream the peer opened within our limits.
  free_stream(index, true, code, /*send_rst=*/!failed_ && !aborted_);
}

Status Session::handle_frame(const DecodedFrame& f) noexcept {
  const FrameHeader& h = f.header;
  if (!settings_received_ && h.type != FrameType::kSettings) {
    return connection_error(ErrorCode::kProtocolError, "frame: first frame is not SETTINGS");
  }
  switch (h.type) {
    case FrameType::kData: return handle_data(f);
    case FrameType::kOpen: return handle_open(f);
    case FrameType::kWindowUpdate: return handle_window_update(h);
    case FrameType::kRst: return handle_rst(h);
    case FrameType::kPing: return handle_ping(h);
    case FrameType::kGoaway: return handle_goaway(f);
    case FrameType::kSettings: return handle_settings(f);
    case FrameType::kControl: return handle_control(f);
  }
  return connection_error(ErrorCode::kUnknownFrameType, "frame: unknown frame type");  // decoder checked already
}

Status Session::handle_data(const DecodedFrame& f) noexcept {
  const FrameHeader& h = f.header;
  if (f.first) {
    rx_stream_ = StreamHandle{};  // until proven otherwise, the frame's fragments are discarded
    // Connection credit is charged for every DATA frame, even one we discard, so both sides' counts agree.
    if (!conn_recv_.on_receive(h.length)) {
      return connection_error(ErrorCode::kFlowControlError, "frame: DATA beyond the connection window");
    }
    std::uint32_t index = streams_.find(h.stream);
    if (index != kNoIndex && streams_.at(index).local && !streams_.at(index).open_sent) index = kNoIndex;
    if (index == kNoIndex) {
      if (is_idle_id(h.stream)) return connection_error(ErrorCode::kProtocolError, "frame: DATA on an idle stream");
      // Data racing with the stream's close is expected; anything else on a closed stream is counted and answered
      // once.
      if (!recently_reset(h.stream)) {
        RINGTUN_TRY(flood(Flood::kClosedStreamFrame));
        if (!queue_rst(h.stream, ErrorCode::kStreamClosed)) {
          return connection_error(ErrorCode::kEnhanceYourCalm, "frame: control queue full");
        }
        remember_reset(h.stream);
      }
    } else if (streams_.at(index).receiving_closed()) {
      stream_error(index, ErrorCode::kStreamClosed);  // DATA after the peer's own FIN
    } else if (!streams_.at(index).recv.on_receive(h.length)) {
      stream_error(index, ErrorCode::kFlowControlError);
    } else {
      if (h.length == 0 && !h.has(flags::kFin)) RINGTUN_TRY(flood(Flood::kEmptyFrame));
      rx_stream_ = streams_.handle(index);
    }
    if (failed_) return fail(errc_for(error_code_), "frame: connection failed");
  }

  auto n = static_cast<std::uint32_t>(f.payload.size());
  if (n > 0) {
    // Connection credit comes back as soon as bytes are handed to the stream (or dropped), so a stream whose
    // reader stalls holds only its own window, never the connection's.
    conn_recv_.on_released(n);
    if (Stream* s = streams_.get(rx_stream_)) {
      s->unconsumed += n;
      handler_.on_data(rx_stream_, f.payload);
    }
  }
  if (f.last) {
    if (h.has(flags::kFin)) {
      if (Stream* s = streams_.get(rx_stream_)) {
        StreamHandle handle = rx_stream_;
        bool both = s->fin_sent;
        s->state = both ? s->state : StreamState::kHalfClosedRemote;
        credit_due_.remove(streams_, handle.index);
        handler_.on_fin(handle);
        if (both && streams_.get(handle) != nullptr) free_stream(handle.index, false, ErrorCode::kNoError);
      }
    }
    rx_stream_ = StreamHandle{};
  }
  return {};
}

Status Session::handle_open(const DecodedFrame& f) noexcept {
  const FrameHeader& h = f.header;
  StreamId id = h.stream;
  if (opened_by(options_.role, id)) return connection_error(ErrorCode::kProtocolError, "frame: OPEN with our parity");
  if (id <= last_peer_id_) return connection_error(ErrorCode::kProtocolError, "frame: OPEN id not increasing");
  last_peer_id_ = id;

  std::uint32_t index = kNoIndex;
  if (!goaway_sent_ && peer_open_count_ < options_.max_concurrent_streams) index = streams_.allocate();
  if (index == kNoIndex) {
    // Over our limit (or going away): refuse the stream; the peer may retry it elsewhere. A peer that keeps
    // ignoring the limit is a flood.
    RINGTUN_TRY(flood(Flood::kRefusedStream));
    if (!queue_rst(id, ErrorCode::kRefusedStream)) {
      return connection_error(ErrorCode::kEnhanceYourCalm, "frame: control queue full");
    }
    remember_reset(id);
    return {};
  }
  Stream& s = streams_.at(index);
  s.id = id;
  s.local = false;
  s.open_sent = true;
  s.state = StreamState::kOpen;
  s.opened_us = now_us_;
  s.send = SendWindow(peer_stream_window_);
  s.recv = ReceiveWindow(options_.initial_stream_window,
                         options_.autotune ? options_.max_stream_window : options_.initial_stream_window);
  streams_.bind(id, index);
  ++peer_open_count_;
  StreamHandle handle = streams_.handle(index);
  handler_.on_open(handle, id, f.payload);
  if (h.has(flags::kFin)) {
    if (Stream* live = streams_.get(handle)) {
      bool both = live->fin_sent;
      if (!both) live->state = StreamState::kHalfClosedRemote;
      handler_.on_fin(handle);
      if (both && streams_.get(handle) != nullptr) free_stream(handle.index, false, ErrorCode::kNoError);
    }
  }
  return {};
}

Status Session::handle_window_update(const FrameHeader& h) noexcept {
  if (h.arg < kSmallWindowIncrement) RINGTUN_TRY(flood(Flood::kSmallWindowUpdate));
  if (h.stream == 0) {
    if (!conn_send_.grant(h.arg)) {
      return connection_error(ErrorCode::kFlowControlError, "frame: connection window overflow");
    }
    return {};
  }
  std::uint32_t index = streams_.find(h.stream);
  if (index != kNoIndex && streams_.at(index).local && !streams_.at(index).open_sent) index = kNoIndex;
  if (index == kNoIndex) {
    if (is_idle_id(h.stream)) {
      return connection_error(ErrorCode::kProtocolError, "frame: WINDOW_UPDATE on an idle stream");
    }
    // Credit racing with the stream's close is harmless; for a stream closed long ago it is counted.
    return recently_reset(h.stream) ? Status{} : flood(Flood::kClosedStreamFrame);
  }
  if (!streams_.at(index).send.grant(h.arg)) {
    stream_error(index, ErrorCode::kFlowControlError);
    if (failed_) return fail(errc_for(error_code_), "frame: connection failed");
    return {};
  }
  update_active(index);
  return {};
}

Status Session::handle_rst(const FrameHeader& h) noexcept {
  std::uint32_t index = streams_.find(h.stream);
  if (index != kNoIndex && streams_.at(index).local && !streams_.at(index).open_sent) index = kNoIndex;
  if (index == kNoIndex) {
    if (is_idle_id(h.stream)) return connection_error(ErrorCode::kProtocolError, "frame: RST on an idle stream");
    return recently_reset(h.stream) ? Status{} : flood(Flood::kClosedStreamFrame);
  }
  // Rapid reset (CVE-2023-44487): opening streams and cancelling them at once costs the peer two frames and us a
  // connect. Only that churn is counted: a stream that lived a whole flood window was no such cheap cycle, and a
  // peer can reset at most max_concurrent_streams of those per window, so a mass reset of long-lived streams (all
  // public clients of a tunnel gone at once) is free.
  const Stream& s = streams_.at(index);
  std::uint64_t age = now_us_ >= s.opened_us ? now_us_ - s.opened_us : 0;
  bool rapid = !s.local && age < options_.flood.window_us;
  free_stream(index, true, static_cast<ErrorCode>(h.arg));
  if (rapid) return flood(Flood::kPeerReset);
  return {};
}

Status Session::handle_ping(const FrameHeader& h) noexcept {
  if (h.has(flags::kAck)) {
    if (ping_outstanding_ && h.arg == ping_value_) {
      ping_outstanding_ = false;
      std::uint64_t sample = now_us_ > ping_sent_us_ ? now_us_ - ping_sent_us_ : 1;
      rtt_us_ = rtt_us_ == 0 ? sample : (rtt_us_ * 7 + sample) / 8;
      handler_.on_ping_ack(sample);
      return {};
    }
    return flood(Flood::kPing);  // an answer to nothing we asked
  }
  RINGTUN_TRY(flood(Flood::kPing));
  if (!queue_control(FrameHeader{FrameType::kPing, flags::kAck, 0, 0, 0, h.arg}, {})) {
    return connection_error(ErrorCode::kEnhanceYourCalm, "frame: control queue full");
  }
  return {};
}

Status Session::handle_goaway(const DecodedFrame& f) noexcept {
  const FrameHeader& h = f.header;
  StreamId last = h.stream;
  goaway_received_ = true;
  // Our streams above `last` were never processed by the peer: they are refused and safe to retry elsewhere.
  // Pending ones (OPEN not sent) are refused too: nothing more may be opened on this connection.
  for (std::uint32_t i = 0; i < streams_.created(); ++i) {
    Stream& s = streams_.at(i);
    if (!s.live() || !s.local) continue;  // a reset-pending stream is over already; its RST still goes
    if (!s.open_sent || s.id > last) free_stream(i, true, ErrorCode::kRefusedStream);
  }
  handler_.on_goaway(last, static_cast<ErrorCode>(h.arg));
  return {};
}

Status Session::handle_settings(const DecodedFrame& f) noexcept {
  // v1 fixes every setting for the connection's life, so SETTINGS is sent exactly once: a second one is a
  // protocol error rather than a flood to meter.
  if (settings_received_) return connection_error(ErrorCode::kProtocolError, "frame: second SETTINGS");
  std::uint32_t max_frame = kDefaultMaxFrameSize;
  std::uint32_t stream_window = kDefaultStreamWindow;
  std::uint32_t conn_window = kDefaultConnectionWindow;
  std::uint32_t max_concurrent = 256;
  for (std::size_t off = 0; off + kSettingsEntrySize <= f.payload.size(); off += kSettingsEntrySize) {
    auto id = static_cast<SettingId>(load_be32(f.payload.data() + off));
    std::uint32_t value = load_be32(f.payload.data() + off + 4);
    switch (id) {
      case SettingId::kMaxFrameSize:
        if (value < kMinMaxFrameSize || value > kMaxMaxFrameSize) {
          return connection_error(ErrorCode::kSettingsError, "frame: MAX_FRAME_SIZE out of range");
        }
        max_frame = value;
        break;
      case SettingId::kInitialStreamWindow:
      case SettingId::kInitialConnectionWindow:
        if (value < kMinInitialWindow || value > kMaxWindow) {
          return connection_error(ErrorCode::kSettingsError, "frame: initial window out of range");
        }
        (id == SettingId::kInitialStreamWindow ? stream_window : conn_window) = value;
        break;
      case SettingId::kMaxConcurrentStreams:
        max_concurrent = value;
        break;
      case SettingId::kFeatures:
        break;  // v1 defines no optional features; bits we do not know are ignored
      default:
        break;  // unknown settings are ignored so later versions can add them
    }
  }
  settings_received_ = true;
  peer_max_frame_ = max_frame;
  peer_stream_window_ = stream_window;
  peer_max_concurrent_ = max_concurrent;
  conn_send_ = SendWindow(conn_window);
  return {};
}

Status Session::handle_control(const DecodedFrame& f) noexcept {
  RINGTUN_TRY(flood(Flood::kControl));
  handler_.on_control(f.payload);
  return {};
}

}  // namespace ringtun::frame
