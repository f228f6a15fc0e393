// liburing 2.3 compatibility: helpers that newer liburing ships and Debian 12's 2.3 does not.
//
// Every difference between liburing 2.3 and what we use lives here, so moving to a newer liburing means deleting
// code in one place. Features the kernel may lack are probed at run time by the Loop (see loop.hpp), never assumed.
// Thread rules: call on the thread that owns the ring.
#pragma once

#include <liburing.h>

#include <cstdint>

namespace ringtun::ring::compat {

// io_uring_setup_buf_ring() appeared in liburing 2.4: maps the ring of `entries` (a power of two) buffer
// descriptors, initialises it and registers it as buffer group `group_id`. Returns nullptr and sets *err
// (negative errno) on failure. Free with free_buf_ring().
io_uring_buf_ring* setup_buf_ring(io_uring* ring, unsigned entries, std::uint16_t group_id, int* err) noexcept;
int free_buf_ring(io_uring* ring, io_uring_buf_ring* br, unsigned entries, std::uint16_t group_id) noexcept;

// Flags that the 2.3 header already names, but whose kernel support varies (6.1 has all of these).
#ifndef IORING_SETUP_SINGLE_ISSUER
#error "liburing headers older than 2.3"
#endif

// Cancels every request on a fixed-file slot (kernel 6.0+); the 2.3 header has the flag but no helper.
inline void prep_cancel_fixed_fd(io_uring_sqe* sqe, unsigned file_index) noexcept {
  io_uring_prep_cancel_fd(sqe, static_cast<int>(file_index), IORING_ASYNC_CANCEL_ALL);
  sqe->cancel_flags |= IORING_ASYNC_CANCEL_FD_FIXED;
}

}  // namespace ringtun::ring::compat
