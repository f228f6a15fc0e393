// Incremental decoder (see decoder.hpp).
#include "frame/decoder.hpp"

#include <algorithm>
#include <cstring>

namespace ringtun::frame {

Decoder::Decoder(std::uint32_t max_payload)
    // Not value-initialised: the storage is always written before it is read.
    : max_payload_(max_payload), stage_(new std::byte[max_payload > 0 ? max_payload : 1]) {}

bool Decoder::start_frame(DecodedFrame& out) noexcept {
  remaining_ = current_.length;
  started_ = false;
  stage_have_ = 0;
  if (remaining_ == 0) {
    emit(out, {}, true, true);
    return true;
  }
  in_payload_ = true;
  return false;
}

Result<bool> Decoder::next(std::span<const std::byte>& input, DecodedFrame& out) noexcept {
  if (error_ != ErrorCode::kNoError) return fail(errc_for(error_), "frame: decoder failed earlier");
  for (;;) {
    if (!in_payload_) {
      if (header_have_ == 0 && input.size() >= kHeaderSize) {
        current_ = decode_header(input.data());  // common case: the whole header is in this chunk
        input = input.subspan(kHeaderSize);
      } else {
        std::size_t n = std::min(kHeaderSize - header_have_, input.size());
        if (n == 0) return false;
        std::memcpy(header_buf_ + header_have_, input.data(), n);
        header_have_ += n;
        input = input.subspan(n);
        if (header_have_ < kHeaderSize) return false;
        header_have_ = 0;
        current_ = decode_header(header_buf_);
      }
      ErrorCode code = check_header(current_, max_payload_);
      if (code != ErrorCode::kNoError) [[unlikely]] {
        error_ = code;
        return fail(errc_for(code), "frame: malformed header");
      }
      if (start_frame(out)) return true;
      continue;  // payload follows
    }

    if (input.empty()) return false;
    if (current_.type == FrameType::kData) {
      std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(remaining_, input.size()));
      remaining_ -= n;
      emit(out, input.first(n), !started_, remaining_ == 0);
      started_ = true;
      input = input.subspan(n);
      if (remaining_ == 0) in_payload_ = false;
      return true;
    }
    if (stage_have_ == 0 && input.size() >= remaining_) {
      emit(out, input.first(remaining_), true, true);  // whole payload in this chunk: a view
      input = input.subspan(remaining_);
      in_payload_ = false;
      return true;
    }
    // The frame straddles chunks: gather it in our own storage (bounded by max_payload_).
    std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(remaining_ - stage_have_, input.size()));
    std::memcpy(stage_.get() + stage_have_, input.data(), n);
    stage_have_ += n;
    input = input.subspan(n);
    if (stage_have_ < remaining_) return false;
    emit(out, std::span<const std::byte>(stage_.get(), remaining_), true, true);
    in_payload_ = false;
    return true;
  }
}

}  // namespace ringtun::frame
