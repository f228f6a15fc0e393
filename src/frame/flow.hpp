// Credit-based flow control, one instance per stream and per connection, per direction.
//
// SendWindow: credit the peer granted us; we may send that many DATA payload bytes. It only shrinks when we send
// and grows with the peer's WINDOW_UPDATEs.
//
// ReceiveWindow: credit we granted the peer, with the invariant
//     window == available (peer may still send) + held (received, not yet released by the reader) + pending
//     (released, not yet returned to the peer).
// Credit is returned in coalesced WINDOW_UPDATEs: one is due once pending reaches half the window (or when the
// caller flushes), never one per frame. Optional auto-tuning: if an update becomes due less than two RTTs after the
// previous one, the window limited throughput (it drained faster than credit could come back), so it doubles, up to
// max_window. Time and RTT are supplied by the caller, which keeps this deterministic under test.
//
// Which bytes count as "released" is the Session's policy (stream credit: when the reader says the bytes reached
// their final socket; connection credit: when bytes are handed to the stream), not this class's.
// Thread rules: plain values owned by one Session; one core's thread.
#pragma once

#include <cstdint>

#include "common/assert.hpp"
#include "frame/wire.hpp"

namespace ringtun::frame {

class SendWindow {
 public:
  SendWindow() = default;
  explicit SendWindow(std::uint32_t initial) noexcept : available_(initial) {}

  std::uint32_t available() const noexcept { return available_; }

  // Adds peer credit. Returns false (and changes nothing) if the window would exceed kMaxWindow: the peer granted
  // more than it can have outstanding, a FLOW_CONTROL_ERROR.
  [[nodiscard]] bool grant(std::uint32_t increment) noexcept {
    if (static_cast<std::uint64_t>(available_) + increment > kMaxWindow) return false;
    available_ += increment;
    return true;
  }

  void consume(std::uint32_t n) noexcept {
    RINGTUN_CHECK(n <= available_, "SendWindow: sending beyond the window");
    available_ -= n;
  }

 private:
  std::uint32_t available_ = 0;
};

class ReceiveWindow {
 public:
  ReceiveWindow() = default;
  // `max_window` == `initial` disables growth.
  ReceiveWindow(std::uint32_t initial, std::uint32_t max_window) noexcept
      : window_(initial), max_window_(max_window < initial ? initial : max_window), available_(initial) {}

  std::uint32_t window() const noexcept { return window_; }
  std::uint32_t available() const noexcept { return available_; }
  std::uint32_t pending() const noexcept { return pending_; }
  // Bytes the peer sent that the reader has not released yet.
  std::uint32_t held() const noexcept { return window_ - available_ - pending_; }

  // The peer sent n bytes. False (nothing changed) if n exceeds the credit it had: a FLOW_CONTROL_ERROR.
  [[nodiscard]] bool on_receive(std::uint32_t n) noexcept {
    if (n > available_) return false;
    available_ -= n;
    return true;
  }

  // n received bytes are no longer held; their credit may go back to the peer.
  void on_released(std::uint32_t n) noexcept {
    RINGTUN_CHECK(n <= held(), "ReceiveWindow: releasing more than was received");
    pending_ += n;
  }

  bool update_due() const noexcept { return pending_ > 0 && pending_ >= window_ / 2; }

  // Takes the credit to send in a WINDOW_UPDATE (pending plus any growth); 0 if none. `rtt_us` 0 = unknown (no
  // growth).
  std::uint32_t take_update(std::uint64_t now_us, std::uint64_t rtt_us) noexcept {
    if (pending_ == 0) return 0;
    std::uint32_t increment = pending_;
    if (window_ < max_window_ && rtt_us > 0 && have_epoch_ && now_us - epoch_us_ < 2 * rtt_us &&
        pending_ >= window_ / 2) {
      std::uint32_t growth = window_ <= max_window_ - window_ ? window_ : max_window_ - window_;
      window_ += growth;
      increment += growth;
    }
    have_epoch_ = true;
    epoch_us_ = now_us;
    available_ += increment;
    pending_ = 0;
    return increment;
  }

 private:
  std::uint32_t window_ = 0;
  std::uint32_t max_window_ = 0;
  std::uint32_t available_ = 0;
  std::uint32_t pending_ = 0;
  bool have_epoch_ = false;
  std::uint64_t epoch_us_ = 0;
};

}  // namespace ringtun::frame
