// FrameBatch: one sendmsg worth of frames as an iovec array: headers encoded into the batch's own fixed arena,
// payloads referenced in place (never copied). Capacity is fixed (kMaxFrames headers, kMaxIov iovecs), so building
// a batch never allocates.
//
// Ownership: the batch owns the header bytes and the iovec array; payload bytes belong to whoever queued them (the
// Session keeps them alive until Session::sent() reports them sent). iovecs point into the batch itself, so a
// batch must not be moved or copied while its iovecs are in use (it is non-copyable; keep it in place).
// Partial sends: after sendmsg wrote n < bytes(), call advance(n); iov()/iov_count() then describe the rest.
// Thread rules: one core's thread; no sharing.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "frame/wire.hpp"

namespace ringtun::frame {

class FrameBatch {
 public:
  static constexpr std::size_t kMaxFrames = 128;
  static constexpr std::size_t kMaxIov = 256;  // well under IOV_MAX (1024)
  static constexpr std::size_t kCopyArenaSize = 4096;  // small payloads the batch copies (OPEN metadata)

  FrameBatch() = default;
  FrameBatch(const FrameBatch&) = delete;
  FrameBatch& operator=(const FrameBatch&) = delete;

  void clear() noexcept {
    frames_ = 0;
    iov_begin_ = 0;
    iov_end_ = 0;
    bytes_ = 0;
    copy_used_ = 0;
    tail_end_ = nullptr;
  }

  bool empty() const noexcept { return bytes_ == 0; }
  std::size_t frames() const noexcept { return frames_; }
  // Bytes still to send (all of them until advance() is called).
  std::size_t bytes() const noexcept { return bytes_; }
  iovec* iov() noexcept { return iov_.data() + iov_begin_; }
  const iovec* iov() const noexcept { return iov_.data() + iov_begin_; }
  std::size_t iov_count() const noexcept { return iov_end_ - iov_begin_; }

  // Room for one more frame whose payload needs `payload_iovs` iovecs.
  bool has_room(std::size_t payload_iovs) const noexcept {
    return frames_ < kMaxFrames && iov_end_ + 1 + payload_iovs <= kMaxIov;
  }
  std::size_t free_iovs() const noexcept { return kMaxIov - iov_end_; }

  // Appends a complete frame: header plus one payload slice (may be empty). Requires has_room(1).
  void add_frame(const FrameHeader& h, std::span<const std::byte> payload) noexcept;

  // Appends a frame whose small payload is copied into the batch (for payloads whose owner may not outlive the
  // send). False, with nothing added, if the copy arena or the frame/iovec capacity is full.
  [[nodiscard]] bool add_frame_copy(const FrameHeader& h, std::span<const std::byte> payload) noexcept;

  // Two-step form for frames whose length is only known after gathering payload slices: reserve_header() adds the
  // header's iovec and returns its slot, add_payload() appends slices, finish_header() writes the header bytes.
  std::byte* reserve_header() noexcept;
  void add_payload(std::span<const std::byte> bytes) noexcept;
  static void finish_header(std::byte* slot, const FrameHeader& h) noexcept { encode_header(h, slot); }

  // Raw bytes that are not a frame (the connection preface). Counts as one iovec, no frame slot.
  void add_raw(std::span<const std::byte> bytes) noexcept { add_payload(bytes); }

  // Drops the first n bytes (already sent). n <= bytes().
  void advance(std::size_t n) noexcept;

 private:
  void append_iov(const std::byte* base, std::size_t len) noexcept;

  alignas(16) std::array<std::array<std::byte, kHeaderSize>, kMaxFrames> headers_;
  std::array<iovec, kMaxIov> iov_;
  alignas(16) std::array<std::byte, kCopyArenaSize> copy_arena_;
  std::size_t copy_used_ = 0;
  std::size_t frames_ = 0;
  std::size_t iov_begin_ = 0;
  std::size_t iov_end_ = 0;
  std::size_t bytes_ = 0;
  const std::byte* tail_end_ = nullptr;
};

}  // namespace ringtun::frame
