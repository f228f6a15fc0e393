// ProvidedBufferRing and FixedBufferPool: the two per-core buffer pools.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>

#include "common/assert.hpp"
#include "ring/buffer_pool.hpp"
#include "ring/buffer_ring.hpp"
#include "ring/compat.hpp"

namespace ringtun::ring {

namespace {
std::uint8_t* map_memory(std::size_t size) noexcept {
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  return mem == MAP_FAILED ? nullptr : static_cast<std::uint8_t*>(mem);
}
}  // namespace

// ---- ProvidedBufferRing ----

Result<ProvidedBufferRing*> ProvidedBufferRing::create(io_uring* ring, std::uint16_t group_id, std::uint32_t count,
                                                       std::uint32_t buffer_size) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || buffer_size == 0) {
    return fail(Errc::kInvalidArgument, "provided buffer ring: count must be a power of two <= 32768");
  }
  auto* self = new ProvidedBufferRing();
  self->ring_ = ring;
  self->count_ = count;
  self->buffer_size_ = buffer_size;
  self->group_id_ = group_id;
  self->memory_size_ = std::size_t{count} * buffer_size;
  // Pages are only made resident when the kernel first writes into a buffer, so a large pool costs little
  // until traffic needs it.
  self->memory_ = map_memory(self->memory_size_);
  if (self->memory_ == nullptr) {
    int err = errno;
    delete self;
    return fail_errno(err, "provided buffer ring: mmap");
  }
  int err = 0;
  self->br_ = compat::setup_buf_ring(ring, count, group_id, &err);
  if (self->br_ == nullptr) {
    delete self;
    if (err == -EINVAL || err == -ENOSYS) return fail(Errc::kUnsupported, "provided buffer rings (kernel 5.19+)");
    return fail_errno(err, "io_uring_register_buf_ring");
  }
  self->give(std::min(count, kInitialBuffers));
#ifndef NDEBUG
  self->lent_.assign(count, false);
#endif
  return self;
}

void ProvidedBufferRing::give(std::uint32_t until) noexcept {
  const int mask = io_uring_buf_ring_mask(count_);
  const std::uint32_t first = given_;
  for (std::uint32_t id = first; id < until; ++id) {
    io_uring_buf_ring_add(br_, data(static_cast<std::uint16_t>(id)), buffer_size_, static_cast<unsigned short>(id),
                          mask, static_cast<int>(id - first));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(until - first));
  given_ = until;
}

ProvidedBufferRing::~ProvidedBufferRing() {
  if (br_ != nullptr) compat::free_buf_ring(ring_, br_, count_, group_id_);
  if (memory_ != nullptr) munmap(memory_, memory_size_);
}

void ProvidedBufferRing::on_taken(std::uint16_t id) noexcept {
  RINGTUN_CHECK(id < count_, "buffer id out of range");
#ifndef NDEBUG
  RINGTUN_ASSERT(!lent_[id], "kernel handed out a buffer we believe is lent");
  lent_[id] = true;
#endif
  ++in_use_;
  if (in_use_ > high_water_) high_water_ = in_use_;
  // More than half of what the kernel was given is lent out: give it twice as much before it runs dry.
  if (in_use_ * 2 > given_ && given_ < count_) give(std::min(count_, given_ * 2));
}

void ProvidedBufferRing::recycle(std::uint16_t id) noexcept {
  RINGTUN_CHECK(id < count_, "buffer id out of range");
#ifndef NDEBUG
  RINGTUN_ASSERT(lent_[id], "buffer recycled twice");
  lent_[id] = false;
#endif
  RINGTUN_CHECK(in_use_ > 0, "recycle with no buffer lent");
  --in_use_;
  io_uring_buf_ring_add(br_, data(id), buffer_size_, id, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
}

// ---- FixedBufferPool ----

Result<FixedBufferPool*> FixedBufferPool::create(io_uring* ring, std::uint32_t count, std::uint32_t buffer_size) {
  if (count == 0 || count > 65535 || buffer_size == 0) {
    return fail(Errc::kInvalidArgument, "fixed buffer pool: count must be 1..65535");
  }
  auto* self = new FixedBufferPool();
  self->count_ = count;
  self->buffer_size_ = buffer_size;
  self->memory_size_ = std::size_t{count} * buffer_size;
  self->memory_ = map_memory(self->memory_size_);
  if (self->memory_ == nullptr) {
    int err = errno;
    delete self;
    return fail_errno(err, "fixed buffer pool: mmap");
  }
  if (ring != nullptr) {
    std::vector<iovec> iovs(count);
    for (std::uint32_t i = 0; i < count; ++i) {
      iovs[i].iov_base = self->memory_ + std::size_t{i} * buffer_size;
      iovs[i].iov_len = buffer_size;
    }
    int ret = io_uring_register_buffers(ring, iovs.data(), count);
    if (ret != 0) {
      delete self;
      return fail_errno(ret, "io_uring_register_buffers (check RLIMIT_MEMLOCK)");
    }
    self->ring_ = ring;
  }
  self->free_.reserve(count);
  for (std::uint32_t i = count; i > 0; --i) self->free_.push_back(static_cast<std::uint16_t>(i - 1));
#ifndef NDEBUG
  self->lent_.assign(count, false);
#endif
  return self;
}

FixedBufferPool::~FixedBufferPool() {
  if (ring_ != nullptr) io_uring_unregister_buffers(ring_);
  if (memory_ != nullptr) munmap(memory_, memory_size_);
}

Result<FixedBuffer> FixedBufferPool::acquire() noexcept {
  if (free_.empty()) return fail(Errc::kExhausted, "fixed buffer pool");
  std::uint16_t index = free_.back();
  free_.pop_back();
#ifndef NDEBUG
  lent_[index] = true;
#endif
  std::uint32_t used = in_use();
  if (used > high_water_) high_water_ = used;
  return FixedBuffer{memory_ + std::size_t{index} * buffer_size_, buffer_size_, index};
}

void FixedBufferPool::release(const FixedBuffer& buffer) noexcept {
  RINGTUN_CHECK(buffer.index < count_ && buffer.data == memory_ + std::size_t{buffer.index} * buffer_size_,
                "buffer released to a pool it did not come from");
#ifndef NDEBUG
  RINGTUN_ASSERT(lent_[buffer.index], "fixed buffer released twice");
  lent_[buffer.index] = false;
#endif
  free_.push_back(buffer.index);
}

}  // namespace ringtun::ring
