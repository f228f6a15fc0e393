#include "ring/compat.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>

namespace ringtun::ring::compat {

io_uring_buf_ring* setup_buf_ring(io_uring* ring, unsigned entries, std::uint16_t group_id, int* err) noexcept {
  const std::size_t size = entries * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    *err = -errno;
    return nullptr;
  }
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(br);
  reg.ring_entries = entries;
  reg.bgid = group_id;
  int ret = io_uring_register_buf_ring(ring, &reg, 0);
  if (ret != 0) {
    munmap(mem, size);
    *err = ret;
    return nullptr;
  }
  *err = 0;
  return br;
}

int free_buf_ring(io_uring* ring, io_uring_buf_ring* br, unsigned entries, std::uint16_t group_id) noexcept {
  int ret = io_uring_unregister_buf_ring(ring, group_id);
  munmap(br, entries * sizeof(io_uring_buf));
  return ret;
}

}  // namespace ringtun::ring::compat
