// FrameBatch (see encoder.hpp).
#include "frame/encoder.hpp"

#include <cstring>

#include "common/assert.hpp"

namespace ringtun::frame {

void FrameBatch::append_iov(const std::byte* base, std::size_t len) noexcept {
  if (len == 0) return;
  bytes_ += len;
  // Adjacent slices merge into one iovec: consecutive header-only frames (headers are contiguous in the arena) and
  // consecutive pieces of one caller buffer cost a single iovec. tail_end_ caches where the last iovec ends.
  if (base == tail_end_ && iov_end_ > iov_begin_) {
    iov_[iov_end_ - 1].iov_len += len;
    tail_end_ += len;
    return;
  }
  RINGTUN_CHECK(iov_end_ < kMaxIov, "FrameBatch: iovec array full");
  // sendmsg takes a non-const iovec; the kernel only reads it.
  iov_[iov_end_].iov_base = const_cast<std::byte*>(base);  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  iov_[iov_end_].iov_len = len;
  ++iov_end_;
  tail_end_ = base + len;
}

void FrameBatch::add_frame(const FrameHeader& h, std::span<const std::byte> payload) noexcept {
  std::byte* slot = reserve_header();
  encode_header(h, slot);
  add_payload(payload);
}

bool FrameBatch::add_frame_copy(const FrameHeader& h, std::span<const std::byte> payload) noexcept {
  if (!has_room(1) || payload.size() > kCopyArenaSize - copy_used_) return false;
  std::byte* dst = copy_arena_.data() + copy_used_;
  if (!payload.empty()) std::memcpy(dst, payload.data(), payload.size());
  copy_used_ += payload.size();
  add_frame(h, std::span<const std::byte>(dst, payload.size()));
  return true;
}

std::byte* FrameBatch::reserve_header() noexcept {
  RINGTUN_CHECK(frames_ < kMaxFrames, "FrameBatch: header arena full");
  std::byte* slot = headers_[frames_++].data();
  append_iov(slot, kHeaderSize);
  return slot;
}

void FrameBatch::add_payload(std::span<const std::byte> bytes) noexcept { append_iov(bytes.data(), bytes.size()); }

void FrameBatch::advance(std::size_t n) noexcept {
  RINGTUN_CHECK(n <= bytes_, "FrameBatch::advance past the end");
  bytes_ -= n;
  while (n > 0) {
    iovec& v = iov_[iov_begin_];
    if (n >= v.iov_len) {
      n -= v.iov_len;
      ++iov_begin_;
    } else {
      v.iov_base = static_cast<std::byte*>(v.iov_base) + n;
      v.iov_len -= n;
      n = 0;
    }
  }
}

}  // namespace ringtun::frame
