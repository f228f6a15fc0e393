// Payload generation, the chunking-independent stream hash, and the sink protocol's fixed-size messages.
#include "load/payload.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace ringtun::bench {

namespace {

std::uint64_t stream_word(std::uint64_t stream, std::uint64_t word_index) noexcept {
  return mix64((stream * 0x100000001B3ULL) ^ (word_index * 0x9E3779B97F4A7C15ULL));
}

void put64(std::uint8_t* out, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put32(std::uint8_t* out, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get64(const std::uint8_t* in) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}
std::uint32_t get32(const std::uint8_t* in) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}

}  // namespace

void fill_stream(std::uint8_t* out, std::size_t size, std::uint64_t stream, std::uint64_t offset) noexcept {
  std::size_t i = 0;
  // Unaligned head, byte by byte, then whole words (the common case: offsets are multiples of the chunk size).
  while (i < size && ((offset + i) & 7) != 0) {
    const std::uint64_t o = offset + i;
    out[i++] = static_cast<std::uint8_t>(stream_word(stream, o >> 3) >> ((o & 7) * 8));
  }
  for (; i + 8 <= size; i += 8) put64(out + i, stream_word(stream, (offset + i) >> 3));
  if (i < size) {
    const std::uint64_t word = stream_word(stream, (offset + i) >> 3);
    for (unsigned b = 0; i < size; ++i, ++b) out[i] = static_cast<std::uint8_t>(word >> (8 * b));
  }
}

void StreamHasher::fold(std::uint64_t word) noexcept {
  // (state ^ word) is a bijection of word; multiplying by an odd constant and rotating are bijections of the state.
  state_ = std::rotl((state_ ^ word) * 0xFF51AFD7ED558CCDULL, 31);
}

void StreamHasher::update(const std::uint8_t* data, std::size_t size) noexcept {
  bytes_ += size;
  std::size_t i = 0;
  while (i < size && pending_bytes_ != 0) {
    pending_ |= static_cast<std::uint64_t>(data[i++]) << (8 * pending_bytes_);
    if (++pending_bytes_ == 8) {
      fold(pending_);
      pending_ = 0;
      pending_bytes_ = 0;
    }
  }
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, data + i, 8);
    if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
    fold(word);
  }
  for (; i < size; ++i) pending_ |= static_cast<std::uint64_t>(data[i]) << (8 * pending_bytes_++);
}

std::uint64_t StreamHasher::digest() const noexcept {
  std::uint64_t h = state_;
  if (pending_bytes_ != 0) h = std::rotl((h ^ pending_) * 0xFF51AFD7ED558CCDULL, 31);
  return mix64(h ^ bytes_);
}

std::uint64_t expected_stream_hash(std::uint64_t stream, std::uint64_t length) noexcept {
  StreamHasher hasher;
  std::uint8_t block[16384];
  for (std::uint64_t offset = 0; offset < length;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof block, length - offset));
    fill_stream(block, n, stream, offset);
    hasher.update(block, n);
    offset += n;
  }
  return hasher.digest();
}

void encode_request(const SinkRequest& request, std::uint8_t out[kSinkRequestSize]) noexcept {
  put32(out, kSinkRequestMagic);
  put32(out + 4, request.flags);
  put64(out + 8, request.length);
}

std::optional<SinkRequest> decode_request(const std::uint8_t in[kSinkRequestSize]) noexcept {
  if (get32(in) != kSinkRequestMagic) return std::nullopt;
  return SinkRequest{get32(in + 4), get64(in + 8)};
}

void encode_reply(const SinkReply& reply, std::uint8_t out[kSinkReplySize]) noexcept {
  put32(out, kSinkReplyMagic);
  put32(out + 4, 0);
  put64(out + 8, reply.received);
  put64(out + 16, reply.hash);
}

std::optional<SinkReply> decode_reply(const std::uint8_t in[kSinkReplySize]) noexcept {
  if (get32(in) != kSinkReplyMagic) return std::nullopt;
  return SinkReply{get64(in + 8), get64(in + 16)};
}

}  // namespace ringtun::bench
