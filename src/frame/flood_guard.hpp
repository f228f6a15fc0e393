// FloodGuard: counts cheap-to-send, costly-to-handle peer frames per fixed time window and says when a count
// crosses its limit (the Session then sends GOAWAY ENHANCE_YOUR_CALM). These are the HTTP/2 abuse classes: PING
// floods, empty DATA frames, rapid open-then-reset (CVE-2023-44487), frames aimed at closed streams, refused-stream
// storms, CONTROL floods and tiny WINDOW_UPDATE dribble. Each legitimate use is far below its default limit.
//
// Windows are fixed (all counters reset when `window_us` has passed since the window began), which is cruder than
// a sliding window but deterministic, O(1) and allocation-free. Time comes from the caller.
// Thread rules: a plain value owned by one Session; one core's thread.
#pragma once

#include <array>
#include <cstdint>

namespace ringtun::frame {

enum class Flood : std::uint8_t {
  kPing,
  kEmptyFrame,
  // RST on a stream the peer itself opened less than window_us after its OPEN arrived (rapid reset: open-then-cancel
  // churn). Older streams' RSTs are free: each held a concurrency slot for a whole window, which bounds their rate.
  kPeerReset,
  kClosedStreamFrame,  // DATA/WINDOW_UPDATE/RST for a stream that is already gone
  kRefusedStream,      // OPEN beyond our concurrency limit
  kControl,
  kSmallWindowUpdate,  // increment below kSmallWindowIncrement
  kCount,
};

inline constexpr std::uint32_t kSmallWindowIncrement = 1024;

struct FloodLimits {
  std::uint64_t window_us = 1'000'000;
  std::uint32_t max_pings = 100;
  std::uint32_t max_empty_frames = 200;
  std::uint32_t max_peer_resets = 1000;
  std::uint32_t max_closed_stream_frames = 1000;
  std::uint32_t max_refused_streams = 200;
  std::uint32_t max_control_frames = 100;
  std::uint32_t max_small_window_updates = 1000;
};

class FloodGuard {
 public:
  FloodGuard() : FloodGuard(FloodLimits{}) {}
  explicit FloodGuard(const FloodLimits& limits) noexcept
      : window_us_(limits.window_us),
        max_{limits.max_pings, limits.max_empty_frames, limits.max_peer_resets, limits.max_closed_stream_frames,
             limits.max_refused_streams, limits.max_control_frames, limits.max_small_window_updates} {}

  // Counts one event at `now_us`; false once the count within the current window exceeds its limit.
  [[nodiscard]] bool record(Flood kind, std::uint64_t now_us) noexcept {
    if (now_us - window_start_us_ >= window_us_) {
      window_start_us_ = now_us;
      counts_ = {};
    }
    auto k = static_cast<std::size_t>(kind);
    return ++counts_[k] <= max_[k];
  }

  std::uint32_t count(Flood kind) const noexcept { return counts_[static_cast<std::size_t>(kind)]; }

 private:
  static constexpr std::size_t kKinds = static_cast<std::size_t>(Flood::kCount);
  std::uint64_t window_us_;
  std::uint64_t window_start_us_ = 0;
  std::array<std::uint32_t, kKinds> max_;
  std::array<std::uint32_t, kKinds> counts_{};
};

}  // namespace ringtun::frame
