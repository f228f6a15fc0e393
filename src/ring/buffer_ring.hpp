// ProvidedBufferRing: the per-core pool that multishot recv fills (an io_uring provided buffer ring).
//
// The kernel picks a free buffer for each received chunk, so a connection holds no receive memory while idle:
// memory is per core, not per connection. A completion names the buffer by id; whoever gets the bytes owns that
// buffer until it calls recycle(id), which hands it back to the kernel. When every buffer is held, multishot
// recv ends with -ENOBUFS; the Loop re-arms starved sockets once buffers come back.
// Sized to the load: the kernel takes buffers in ring order (FIFO), so every buffer it is given ends up written,
// hence resident, however little is received at once. The ring is therefore given only the first kInitialBuffers
// ids at first, and twice as many each time more than half of those given are lent out, up to `count`: the
// resident pool follows the most this core ever held at once, not its capacity.
// Ownership: the ring owns the buffer memory; ids are lent out and must be returned exactly once.
// Thread rules: the owning loop's thread only.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.hpp"

namespace ringtun::ring {

class ProvidedBufferRing {
 public:
  // `count` must be a power of two (kernel rule) and at most 32768; `buffer_size` is the largest single recv.
  static Result<ProvidedBufferRing*> create(io_uring* ring, std::uint16_t group_id, std::uint32_t count,
                                            std::uint32_t buffer_size);
  ~ProvidedBufferRing();
  ProvidedBufferRing(const ProvidedBufferRing&) = delete;
  ProvidedBufferRing& operator=(const ProvidedBufferRing&) = delete;

  std::uint16_t group_id() const noexcept { return group_id_; }
  std::uint32_t buffer_size() const noexcept { return buffer_size_; }
  std::uint32_t count() const noexcept { return count_; }
  std::uint8_t* data(std::uint16_t id) const noexcept { return memory_ + std::size_t{id} * buffer_size_; }

  // The kernel filled buffer `id` (a recv completion named it): it is now lent to the caller.
  void on_taken(std::uint16_t id) noexcept;
  // Returns buffer `id` to the kernel.
  void recycle(std::uint16_t id) noexcept;

  std::uint32_t in_use() const noexcept { return in_use_; }
  std::uint32_t high_water() const noexcept { return high_water_; }
  // Buffers given to the kernel so far (ids [0, given())): at most count().
  std::uint32_t given() const noexcept { return given_; }

  static constexpr std::uint32_t kInitialBuffers = 64;

 private:
  ProvidedBufferRing() = default;
  // Gives the kernel ids [given_, until).
  void give(std::uint32_t until) noexcept;

  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  std::uint8_t* memory_ = nullptr;
  std::size_t memory_size_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t buffer_size_ = 0;
  std::uint16_t group_id_ = 0;
  std::uint32_t in_use_ = 0;
  std::uint32_t high_water_ = 0;
  std::uint32_t given_ = 0;
#ifndef NDEBUG
  std::vector<bool> lent_;  // catches double recycle in debug builds
#endif
};

}  // namespace ringtun::ring
