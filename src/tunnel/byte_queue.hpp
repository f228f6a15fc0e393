// BlockPool and ByteQueue: where bytes wait for a slow socket.
//
// Data that arrived on a tunnel connection for one stream waits here until its edge socket (the public client on the
// gateway, the local service on the agent) takes it. Copying it out of the tunnel's receive buffer lets that buffer
// go back to the kernel at once, so a client that reads slowly holds memory only up to its own stream window and
// never stalls the tunnel (which must keep reading PINGs and window updates for every other stream).
//
// BlockPool is a per-core free list of fixed-size blocks: it grows on demand up to a byte budget and never shrinks
// below what it handed out, so steady-state traffic allocates nothing. ByteQueue is a FIFO of bytes over a chain of
// blocks, with gather (iovec) access for one send and consume() after the send.
// Ownership: a queue returns its blocks to the pool it was built with. Thread rules: one core's thread.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.hpp"

namespace ringtun::tunnel {

class BlockPool {
 public:
  static constexpr std::uint32_t kBlockSize = 16 * 1024;

  explicit BlockPool(std::uint64_t budget_bytes) noexcept : budget_blocks_(budget_bytes / kBlockSize) {}
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // nullptr when the budget is spent.
  std::byte* acquire() noexcept;
  void release(std::byte* block) noexcept;

  std::uint64_t in_use() const noexcept { return in_use_; }
  std::uint64_t high_water() const noexcept { return high_water_; }
  std::uint64_t budget_blocks() const noexcept { return budget_blocks_; }

 private:
  std::uint64_t budget_blocks_;
  std::uint64_t in_use_ = 0;
  std::uint64_t high_water_ = 0;
  std::vector<std::byte*> free_;
};

class ByteQueue {
 public:
  explicit ByteQueue(BlockPool& pool) noexcept : pool_(&pool) {}
  ~ByteQueue() { clear(); }
  ByteQueue(const ByteQueue&) = delete;
  ByteQueue& operator=(const ByteQueue&) = delete;

  // Appends all of `bytes`, or nothing: Err(kExhausted) when the pool's budget cannot hold them.
  Status append(std::span<const std::byte> bytes) noexcept;
  // Fills up to `max_iov` iovecs with the oldest bytes (at most `max_bytes`); returns how many were filled.
  std::size_t gather(iovec* iov, std::size_t max_iov, std::size_t max_bytes) const noexcept;
  // Drops the oldest n bytes (n <= size()).
  void consume(std::size_t n) noexcept;
  void clear() noexcept;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  BlockPool* pool_;
  std::vector<std::byte*> blocks_;  // small: a stream window's worth at most
  std::size_t head_ = 0;            // offset of the first byte in blocks_[0]
  std::size_t size_ = 0;
};

}  // namespace ringtun::tunnel
