#include "tunnel/byte_queue.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/assert.hpp"

namespace ringtun::tunnel {

BlockPool::~BlockPool() {
  RINGTUN_ASSERT(in_use_ == 0, "blocks still lent out when the pool dies");
  for (std::byte* block : free_) std::free(block);
}

std::byte* BlockPool::acquire() noexcept {
  std::byte* block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else {
    if (in_use_ >= budget_blocks_) return nullptr;
    block = static_cast<std::byte*>(std::malloc(kBlockSize));
    if (block == nullptr) return nullptr;
  }
  ++in_use_;
  high_water_ = std::max(high_water_, in_use_);
  return block;
}

void BlockPool::release(std::byte* block) noexcept {
  RINGTUN_ASSERT(in_use_ > 0, "block released twice");
  --in_use_;
  free_.push_back(block);
}

Status ByteQueue::append(std::span<const std::byte> bytes) noexcept {
  const std::size_t block_size = BlockPool::kBlockSize;
  std::size_t tail_room = blocks_.empty() ? 0 : blocks_.size() * block_size - head_ - size_;
  // Reserve every block first so a failure leaves the queue as it was.
  std::size_t need = bytes.size() > tail_room ? (bytes.size() - tail_room + block_size - 1) / block_size : 0;
  const std::size_t old_blocks = blocks_.size();
  for (std::size_t i = 0; i < need; ++i) {
    std::byte* block = pool_->acquire();
    if (block == nullptr) {
      while (blocks_.size() > old_blocks) {
        pool_->release(blocks_.back());
        blocks_.pop_back();
      }
      return fail(Errc::kExhausted, "stream buffer budget");
    }
    blocks_.push_back(block);
  }
  std::size_t pos = head_ + size_;
  std::size_t done = 0;
  while (done < bytes.size()) {
    std::size_t block_index = pos / block_size;
    std::size_t offset = pos % block_size;
    std::size_t n = std::min(bytes.size() - done, block_size - offset);
    std::memcpy(blocks_[block_index] + offset, bytes.data() + done, n);
    done += n;
    pos += n;
  }
  size_ += bytes.size();
  return {};
}

std::size_t ByteQueue::gather(iovec* iov, std::size_t max_iov, std::size_t max_bytes) const noexcept {
  const std::size_t block_size = BlockPool::kBlockSize;
  std::size_t count = 0;
  std::size_t pos = head_;
  std::size_t left = std::min(size_, max_bytes);
  while (left > 0 && count < max_iov) {
    std::size_t block_index = pos / block_size;
    std::size_t offset = pos % block_size;
    std::size_t n = std::min(left, block_size - offset);
    iov[count++] = iovec{blocks_[block_index] + offset, n};
    pos += n;
    left -= n;
  }
  return count;
}

void ByteQueue::consume(std::size_t n) noexcept {
  RINGTUN_CHECK(n <= size_, "consume beyond the queue");
  const std::size_t block_size = BlockPool::kBlockSize;
  head_ += n;
  size_ -= n;
  std::size_t drop = head_ / block_size;
  if (size_ == 0) drop = blocks_.size();  // empty: give every block back
  for (std::size_t i = 0; i < drop; ++i) pool_->release(blocks_[i]);
  blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(drop));
  head_ = size_ == 0 ? 0 : head_ - drop * block_size;
}

void ByteQueue::clear() noexcept {
  for (std::byte* block : blocks_) pool_->release(block);
  blocks_.clear();
  head_ = 0;
  size_ = 0;
}

}  // namespace ringtun::tunnel
