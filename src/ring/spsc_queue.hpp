// SpscQueue<T>: a bounded single-producer single-consumer ring for messages between two cores.
//
// One producer thread calls try_push, one consumer thread calls try_pop; capacity is fixed at construction (a
// power of two), so a full queue is reported to the producer instead of growing. Head and tail sit on separate
// cache lines, and each side caches the other's index to touch the shared line only when it must.
// Ownership: the queue owns a copy of each T between push and pop. Thread rules: exactly one producer and one
// consumer thread, which may differ from the thread that built the queue.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "common/assert.hpp"

namespace ringtun::ring {

inline constexpr std::size_t kCacheLine = 64;

template <typename T>
class SpscQueue {
  static_assert(std::is_trivially_copyable_v<T>, "messages are copied across cores by value");

 public:
  // The slots are raw bytes, written only by push: a queue's pages become resident as messages fill them, not at
  // construction (a loop has one 4,096-slot queue per source core, mostly idle).
  explicit SpscQueue(std::size_t capacity) : mask_(capacity - 1), slots_(new std::byte[capacity * sizeof(T)]) {
    RINGTUN_CHECK(capacity >= 2 && (capacity & (capacity - 1)) == 0, "SpscQueue capacity must be a power of 2");
  }

  // Producer side. False when full.
  bool try_push(const T& value) noexcept {
    const std::uint64_t tail = tail_.value.load(std::memory_order_relaxed);
    if (tail - producer_head_cache_ > mask_) {
      producer_head_cache_ = head_.value.load(std::memory_order_acquire);
      if (tail - producer_head_cache_ > mask_) return false;
    }
    std::memcpy(slots_.get() + (tail & mask_) * sizeof(T), &value, sizeof(T));
    tail_.value.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer side. False when empty.
  bool try_pop(T* out) noexcept {
    const std::uint64_t head = head_.value.load(std::memory_order_relaxed);
    if (head == consumer_tail_cache_) {
      consumer_tail_cache_ = tail_.value.load(std::memory_order_acquire);
      if (head == consumer_tail_cache_) return false;
    }
    std::memcpy(out, slots_.get() + (head & mask_) * sizeof(T), sizeof(T));
    head_.value.store(head + 1, std::memory_order_release);
    return true;
  }

  // Either side; a snapshot.
  bool empty() const noexcept {
    return head_.value.load(std::memory_order_acquire) == tail_.value.load(std::memory_order_acquire);
  }
  std::size_t capacity() const noexcept { return mask_ + 1; }

 private:
  struct alignas(kCacheLine) PaddedIndex {
    std::atomic<std::uint64_t> value{0};
  };

  const std::uint64_t mask_;
  std::unique_ptr<std::byte[]> slots_;  // capacity x sizeof(T); T is trivially copyable
  PaddedIndex head_;  // consumer-owned
  PaddedIndex tail_;  // producer-owned
  alignas(kCacheLine) std::uint64_t producer_head_cache_ = 0;
  alignas(kCacheLine) std::uint64_t consumer_tail_cache_ = 0;
};

}  // namespace ringtun::ring
