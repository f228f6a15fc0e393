// FixedBufferPool: a per-core slab of equal-size buffers registered with the ring as fixed buffers.
//
// Registration pins the pages once, so sends from these buffers (send_zc with a fixed buffer) skip the per-call
// page pinning and reference counting. Acquire and release are O(1) from a free list; counters say how many are in
// use and the high-water mark, for budgets and metrics. A buffer is returned explicitly to the pool it came from.
// Ownership: the pool owns the memory; acquire() lends a buffer until release(). Thread rules: the owning loop's
// thread only.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.hpp"

namespace ringtun::ring {

struct FixedBuffer {
  std::uint8_t* data = nullptr;
  std::uint32_t size = 0;   // capacity
  std::uint16_t index = 0;  // the registered buffer index (buf_index in SQEs)
};

class FixedBufferPool {
 public:
  // Registers `count` buffers of `buffer_size` bytes with `ring` (io_uring_register_buffers). With ring == nullptr
  // the pool is plain memory (for tests of the bookkeeping).
  static Result<FixedBufferPool*> create(io_uring* ring, std::uint32_t count, std::uint32_t buffer_size);
  ~FixedBufferPool();
  FixedBufferPool(const FixedBufferPool&) = delete;
  FixedBufferPool& operator=(const FixedBufferPool&) = delete;

  // Err(kExhausted) when every buffer is lent out.
  Result<FixedBuffer> acquire() noexcept;
  void release(const FixedBuffer& buffer) noexcept;

  std::uint32_t count() const noexcept { return count_; }
  std::uint32_t buffer_size() const noexcept { return buffer_size_; }
  std::uint32_t in_use() const noexcept { return count_ - static_cast<std::uint32_t>(free_.size()); }
  std::uint32_t high_water() const noexcept { return high_water_; }
  bool registered() const noexcept { return ring_ != nullptr; }

 private:
  FixedBufferPool() = default;

  io_uring* ring_ = nullptr;
  std::uint8_t* memory_ = nullptr;
  std::size_t memory_size_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t buffer_size_ = 0;
  std::uint32_t high_water_ = 0;
  std::vector<std::uint16_t> free_;
#ifndef NDEBUG
  std::vector<bool> lent_;
#endif
};

}  // namespace ringtun::ring
