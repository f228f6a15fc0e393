// Loop: ring set-up, socket slots, submission and completion dispatch. See loop.hpp for the contract.
#include "ring/loop.hpp"

#include <netinet/in.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "ring/compat.hpp"
#include "ring/net.hpp"

namespace ringtun::ring {

// Default handler callbacks: a handler implements only what it uses. A default on_accept must not leak the fd.
void SocketHandler::on_accept(Loop&, SocketId, int res) {
  if (res >= 0) ::close(res);
}
void SocketHandler::on_connect(Loop&, SocketId, int) {}
void SocketHandler::on_recv(Loop& loop, SocketId, int res, const RecvBuffer& buffer) {
  if (res > 0) loop.recycle(buffer);
}
void SocketHandler::on_send(Loop&, SocketId, int) {}
void SocketHandler::on_shutdown(Loop&, SocketId, int) {}
void SocketHandler::on_close(Loop&, SocketId) {}
void SocketHandler::on_flush(Loop&, SocketId) {}

namespace {
constexpr std::uint32_t kMaxIovPerSend = IOV_MAX;  // sendmsg rejects more; the rest goes in the next submission
constexpr std::uint64_t kAcceptRetryMs = 100;       // after EMFILE and friends, do not spin on accept
constexpr std::uint64_t kAcceptQuietMs = 1000;      // a pause ends after this long accepting without a failure
constexpr unsigned kAcceptLinesPerSecond = 4;       // pause and resume lines per loop (many listeners pause at once)
constexpr std::uint32_t kMaxWaitMs = 1000;          // wake at least this often even with no timer armed
constexpr unsigned kControlPerTurn = 1024;           // control messages run per turn (the rest next turn)

// Accept errors that mean "not now" rather than "not this connection": the same accept would fail again at once
// (the kernel checks for a free descriptor before it even looks at the queue), so the listener waits instead.
bool out_of_resources(int res) noexcept {
  return res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS;
}

const char* out_of_what(int res) noexcept {
  switch (res) {
    case -EMFILE:
      return "out of file descriptors (EMFILE)";
    case -ENFILE:
      return "out of file descriptors system-wide (ENFILE)";
    case -ENOMEM:
      return "out of memory (ENOMEM)";
    default:
      return "out of buffer space (ENOBUFS)";
  }
}
}  // namespace

struct Loop::Slot {
  SocketHandler* handler = nullptr;
  int fd = -1;
  std::uint32_t generation = 1;
  std::uint32_t in_flight = 0;

  bool in_use = false;
  bool closing = false;
  bool listening = false;      // accept wanted
  bool accept_armed = false;
  bool accept_paused = false;  // listed in accept_paused_
  bool recv_wanted = false;
  bool recv_armed = false;
  bool send_busy = false;
  bool send_is_fixed = false;
  bool zc_allowed = false;
  bool zc_checked = false;     // zc_allowed no longer depends on where the socket is (see zero_copy())
  bool shutdown_pending = false;
  bool flush_requested = false;
  bool connect_timed_out = false;
  bool keep_fd = false;        // detach(): the fd survives the slot
  std::uint8_t recv_pool = 0;

  std::uint16_t fixed_index = 0;
  int zc_result = 0;
  // on_send()'s value for a send finished by try_send_now(), or on_shutdown()'s for shutdown_now(): never both at
  // once, as a shutdown waits for the send in flight.
  int direct_result = 0;
  iovec* send_iov = nullptr;
  std::uint32_t send_iov_count = 0;
  std::uint64_t send_total = 0;
  iovec single_iov{};  // send_fixed's one buffer
  msghdr msg{};
};

// ---------------------------------------------------------------- set-up

Loop::Loop(const LoopOptions& options, unsigned core, unsigned core_count)
    : options_(options),
      core_(core),
      core_count_(core_count),
      timers_(monotonic_ms()),
      accept_lines_(kAcceptLinesPerSecond) {
  now_ms_ = monotonic_ms();
  accept_retry_timer_.set_callback([](void* self) { static_cast<Loop*>(self)->retry_accepts(); }, this);
}

Result<std::unique_ptr<Loop>> Loop::create(const LoopOptions& options, unsigned core, unsigned core_count) {
  std::unique_ptr<Loop> loop(new Loop(options, core, core_count == 0 ? 1 : core_count));
  RINGTUN_TRY(loop->init());
  return loop;
}

Status Loop::init() {
  if (options_.max_sockets == 0 || options_.max_sockets > (1u << 24)) {
    return fail(Errc::kInvalidArgument, "max_sockets must be 1..16M");
  }
  // Prefer SINGLE_ISSUER|DEFER_TASKRUN (completions run only when we ask for them: fewer interrupts, batched
  // task work), then COOP_TASKRUN, then plain. Each step exists on older kernels only.
  struct Attempt {
    unsigned flags;
    const char* mode;
  };
  const Attempt attempts[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "defer_taskrun"},
      {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "coop_taskrun"},
      {0, "plain"},
  };
  int ret = -EINVAL;
  io_uring_params params{};
  for (const Attempt& attempt : attempts) {
    if (!options_.try_defer_taskrun && (attempt.flags & IORING_SETUP_DEFER_TASKRUN) != 0) continue;
    params = io_uring_params{};
    params.flags = attempt.flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = options_.cq_entries;
    ret = io_uring_queue_init_params(options_.sq_entries, &ring_, &params);
    if (ret == 0) {
      features_.mode = attempt.mode;
      break;
    }
    if (ret != -EINVAL) break;  // EINVAL = flag unknown to this kernel; anything else is a real failure
  }
  if (ret == -ENOSYS || ret == -EPERM) {
    return fail(Errc::kUnsupported, "io_uring is disabled on this kernel (sysctl kernel.io_uring_disabled?)");
  }
  if (ret != 0) return fail_errno(ret, "io_uring_queue_init_params");
  ring_ready_ = true;
  features_.ext_arg = (params.features & IORING_FEAT_EXT_ARG) != 0;
  if ((params.features & IORING_FEAT_NODROP) == 0) LOG_WARN("kernel lacks IORING_FEAT_NODROP: CQ overflow loses events");
  features_.registered_ring_fd = io_uring_register_ring_fd(&ring_) == 1;

  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
    features_.send_zc = io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC) &&
                        io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    io_uring_free_probe(probe);
  }
  if (options_.use_fixed_files) {
    ret = io_uring_register_files_sparse(&ring_, options_.max_sockets);
    features_.fixed_files = ret == 0;
    if (ret != 0) LOG_WARN("fixed-file table unavailable (%s); using plain fds", std::strerror(-ret));
  }

  if (options_.recv_pools[0].buffers == 0) return fail(Errc::kInvalidArgument, "receive pool 0 must exist");
  for (unsigned i = 0; i < kMaxRecvPools; ++i) {
    const RecvPoolOptions& pool_options = options_.recv_pools[i];
    if (pool_options.buffers == 0) continue;
    auto pool = ProvidedBufferRing::create(&ring_, static_cast<std::uint16_t>(i), pool_options.buffers,
                                           pool_options.buffer_size);
    if (!pool) return Unexpected{pool.error()};
    recv_pools_[i].reset(*pool);
  }

  if (options_.fixed_buffers > 0) {
    auto pool = FixedBufferPool::create(&ring_, options_.fixed_buffers, options_.fixed_buffer_size);
    if (pool) {
      fixed_pool_.reset(*pool);
    } else {
      char buf[160];
      LOG_WARN("no registered fixed buffers: %s", pool.error().describe(buf, sizeof buf));
    }
  }

  // Blocking eventfd on purpose: io_uring returns -EAGAIN for reads of an O_NONBLOCK file instead of waiting.
  doorbell_fd_ = eventfd(0, EFD_CLOEXEC);
  if (doorbell_fd_ < 0) return fail_errno(errno, "eventfd");
  inbox_.reserve(core_count_);
  for (unsigned i = 0; i < core_count_; ++i) {
    inbox_.push_back(std::make_unique<SpscQueue<CrossCoreTask>>(options_.mailbox_capacity));
  }
  arm_doorbell();
  flush_list_.reserve(256);
  return {};
}

Loop::~Loop() {
  // Tasks still queued when the loops stopped never run; the threads are joined, so nothing pushes any more.
  CrossCoreTask task;
  for (auto& queue : inbox_) {
    while (queue->try_pop(&task)) {
      if (task.drop != nullptr) task.drop(task);
    }
  }
  if (ring_ready_) {
    // Normally run() has drained everything. If not (a test dropping a loop), close what is left; the kernel
    // cancels outstanding requests when the ring goes away.
    for (std::uint32_t i = 0; i < slots_created_; ++i) {
      Slot& slot = slot_at(i);
      if (slot.in_use && slot.fd >= 0) ::close(slot.fd);
    }
    for (auto& pool : recv_pools_) pool.reset();
    fixed_pool_.reset();
    io_uring_queue_exit(&ring_);
  }
  if (doorbell_fd_ >= 0) ::close(doorbell_fd_);
}

// ---------------------------------------------------------------- slots

Loop::Slot& Loop::slot_at(std::uint32_t index) noexcept {
  return chunks_[index / kSlotsPerChunk][index % kSlotsPerChunk];
}

Loop::Slot* Loop::lookup(SocketId socket) noexcept {
  if (socket.index >= slots_created_) return nullptr;
  Slot& slot = slot_at(socket.index);
  if (!slot.in_use || slot.generation != socket.generation) return nullptr;
  return &slot;
}

const Loop::Slot* Loop::lookup(SocketId socket) const noexcept {
  return const_cast<Loop*>(this)->lookup(socket);
}

bool Loop::alive(SocketId socket) const noexcept {
  const Slot* slot = lookup(socket);
  return slot != nullptr && !slot->closing;
}

int Loop::fd(SocketId socket) const noexcept {
  const Slot* slot = lookup(socket);
  return slot != nullptr ? slot->fd : -1;
}

Result<SocketId> Loop::adopt(int fd, SocketHandler* handler) noexcept {
  RINGTUN_ASSERT(handler != nullptr, "adopt without a handler");
  std::uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else if (slots_created_ < options_.max_sockets) {
    if (slots_created_ % kSlotsPerChunk == 0) chunks_.push_back(std::make_unique<Slot[]>(kSlotsPerChunk));
    index = slots_created_++;
  } else {
    ::close(fd);
    return fail(Errc::kExhausted, "socket slots (max_sockets)");
  }
  if (features_.fixed_files) {
    int ret = io_uring_register_files_update(&ring_, index, &fd, 1);
    if (ret != 1) {
      free_slots_.push_back(index);
      ::close(fd);
      return fail_errno(ret < 0 ? ret : -EIO, "io_uring_register_files_update");
    }
  }
  Slot& slot = slot_at(index);
  std::uint32_t generation = slot.generation;
  slot = Slot{};
  slot.generation = generation;
  slot.in_use = true;
  slot.fd = fd;
  slot.handler = handler;
  slot.zc_allowed = features_.send_zc && options_.send_zc_threshold > 0;  // unless on loopback: see zero_copy()
  ++stats_.sockets_open;
  if (stats_.sockets_open.get() > stats_.sockets_high_water.get()) {
    stats_.sockets_high_water.set(stats_.sockets_open.get());
  }
  return SocketId{index, generation};
}

io_uring_sqe* Loop::get_sqe() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    io_uring_submit(&ring_);  // SQ full: flush it and take a fresh entry
    sqe = io_uring_get_sqe(&ring_);
    RINGTUN_CHECK(sqe != nullptr, "submission queue still full after submit");
  }
  return sqe;
}

std::uint64_t Loop::user_data(Op op, std::uint32_t index) noexcept {
  return UserData{op, index, slot_at(index).generation}.encode();
}

// ---------------------------------------------------------------- operations

namespace {
// Fills the fd field for `index`'s socket: the fixed-file slot or the plain fd.
inline void set_target(io_uring_sqe* sqe, bool fixed, std::uint32_t index, int fd) {
  if (fixed) {
    sqe->fd = static_cast<int>(index);
    sqe->flags |= IOSQE_FIXED_FILE;
  } else {
    sqe->fd = fd;
  }
}
}  // namespace

Result<SocketId> Loop::adopt_listener(int fd, SocketHandler* handler) noexcept {
  auto socket = adopt(fd, handler);
  if (!socket) return socket;
  if (auto started = accept_start(*socket); !started) {
    close(*socket);
    return Unexpected{started.error()};
  }
  return socket;
}

Status Loop::accept_start(SocketId listener) noexcept {
  Slot* slot = lookup(listener);
  if (slot == nullptr) return fail(Errc::kNotFound, "accept_start");
  if (slot->closing) return fail(Errc::kClosed, "accept_start");
  slot->listening = true;
  if (!slot->accept_armed) arm_accept(*slot, listener.index);
  return {};
}

void Loop::arm_accept(Slot& slot, std::uint32_t index) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_multishot_accept(sqe, 0, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  set_target(sqe, features_.fixed_files, index, slot.fd);
  io_uring_sqe_set_data64(sqe, user_data(Op::kAccept, index));
  slot.accept_armed = true;
  ++slot.in_flight;
  ++ops_in_flight_;
}

Result<SocketId> Loop::connect(const sockaddr* addr, socklen_t addr_len, std::uint32_t timeout_ms,
                               SocketHandler* handler) noexcept {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return fail_errno(errno, "socket");
  auto id = adopt(fd, handler);
  if (!id) return id;
  Slot& slot = slot_at(id->index);
  // The kernel copies the address and the timeout while the SQEs are submitted: they wait in connect_args_ for the
  // turn's one submit (a connect used to cost a submit of its own), and a full array is submitted at once.
  if (connect_args_used_ == connect_args_.size() || io_uring_sq_space_left(&ring_) < 2) {
    const int ret = io_uring_submit(&ring_);
    RINGTUN_CHECK(ret >= 0, "io_uring_submit failed for a connect");
    connect_args_used_ = 0;
  }
  ConnectArgs& args = connect_args_[connect_args_used_++];
  sockaddr_storage& address = args.address;
  address = {};
  std::memcpy(&address, addr, std::min<std::size_t>(addr_len, sizeof address));
  args.timeout.tv_sec = timeout_ms / 1000;
  args.timeout.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;

  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_connect(sqe, 0, reinterpret_cast<sockaddr*>(&address), addr_len);
  set_target(sqe, features_.fixed_files, id->index, fd);
  io_uring_sqe_set_data64(sqe, user_data(Op::kConnect, id->index));
  ++slot.in_flight;
  ++ops_in_flight_;
  if (timeout_ms > 0) {
    sqe->flags |= IOSQE_IO_LINK;  // the two SQEs go in one submit: there was room for both
    io_uring_sqe* tsqe = get_sqe();
    io_uring_prep_link_timeout(tsqe, &args.timeout, 0);
    io_uring_sqe_set_data64(tsqe, user_data(Op::kLinkTimeout, id->index));
    ++slot.in_flight;
    ++ops_in_flight_;
  }
  net::Address peer;
  std::memcpy(&peer.storage, &address, sizeof address);
  peer.length = addr_len;
  slot.zc_allowed = slot.zc_allowed && !peer.is_loopback();
  slot.zc_checked = true;
  return id;
}

Status Loop::recv_start(SocketId socket, unsigned pool) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr) return fail(Errc::kNotFound, "recv_start");
  if (slot->closing) return fail(Errc::kClosed, "recv_start");
  if (!has_recv_pool(pool)) return fail(Errc::kInvalidArgument, "recv_start: no such receive pool");
  if (slot->recv_armed && slot->recv_pool != pool) {
    return fail(Errc::kInvalidArgument, "recv_start: a recv on another pool is still in flight");
  }
  slot->recv_pool = static_cast<std::uint8_t>(pool);
  slot->recv_wanted = true;
  // If a cancelled recv is still on its way back, its final completion re-arms (recv_wanted is set again).
  if (!slot->recv_armed) arm_recv(*slot, socket.index);
  return {};
}

Status Loop::recv_stop(SocketId socket) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr) return fail(Errc::kNotFound, "recv_stop");
  if (!slot->recv_wanted) return {};
  slot->recv_wanted = false;
  if (slot->recv_armed && !slot->closing) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, user_data(Op::kRecv, socket.index), 0);
    io_uring_sqe_set_data64(sqe, user_data(Op::kCancel, socket.index));
    ++slot->in_flight;
    ++ops_in_flight_;
  }
  return {};
}

void Loop::arm_recv(Slot& slot, std::uint32_t index) noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_recv_multishot(sqe, 0, nullptr, 0, 0);
  set_target(sqe, features_.fixed_files, index, slot.fd);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = recv_pools_[slot.recv_pool]->group_id();
  io_uring_sqe_set_data64(sqe, user_data(Op::kRecv, index));
  slot.recv_armed = true;
  ++slot.in_flight;
  ++ops_in_flight_;
}

Status Loop::send(SocketId socket, iovec* iov, unsigned iov_count) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr) return fail(Errc::kNotFound, "send");
  if (slot->closing) return fail(Errc::kClosed, "send");
  if (slot->send_busy) return fail(Errc::kInvalidArgument, "send: one send in flight per socket");
  if (slot->shutdown_pending) return fail(Errc::kClosed, "send after shutdown_write");
  if (iov_count == 0) return fail(Errc::kInvalidArgument, "send: empty batch");
  std::uint64_t total = 0;
  for (unsigned i = 0; i < iov_count; ++i) total += iov[i].iov_len;
  slot->send_iov = iov;
  slot->send_iov_count = iov_count;
  slot->send_total = total;
  slot->send_is_fixed = false;
  slot->send_busy = true;
  if (!try_send_now(*slot, socket.index)) submit_send(*slot, socket.index);
  return {};
}

bool Loop::try_send_now(Slot& slot, std::uint32_t index) noexcept {
  if (direct_sends_this_turn_ >= options_.direct_sends_per_turn) return false;
  const std::uint32_t count = std::min(slot.send_iov_count, kMaxIovPerSend);
  std::uint64_t bytes = 0;
  for (std::uint32_t i = 0; i < count; ++i) bytes += slot.send_iov[i].iov_len;
  if (zero_copy(slot, bytes)) return false;  // large: zero-copy through the ring
  ++direct_sends_this_turn_;
  ++stats_.send_direct;
  msghdr msg{};
  msg.msg_iov = slot.send_iov;
  msg.msg_iovlen = count;
  const ssize_t n = ::sendmsg(slot.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;  // the ring waits for room
    slot.direct_result = -errno;
  } else if (advance_send(slot, static_cast<std::uint64_t>(n))) {
    slot.direct_result = static_cast<int>(std::min<std::uint64_t>(slot.send_total, INT_MAX));
  } else {
    ++stats_.send_partial;
    return false;  // the rest goes through the ring
  }
  // Finished here, but reported from the loop: callbacks never run inside a call the handler made.
  direct_done_.push_back(DirectDone{SocketId{index, slot.generation}, Op::kSend});
  return true;
}

void Loop::finish_direct_ops() noexcept {
  // on_send() may send or shut down again (and add to the list), so walk by index.
  for (std::size_t i = 0; i < direct_done_.size(); ++i) {
    const DirectDone done = direct_done_[i];
    Slot* slot = lookup(done.socket);
    if (slot == nullptr) continue;  // closed and freed meanwhile
    if (done.op == Op::kShutdown) {
      if (!slot->closing) slot->handler->on_shutdown(*this, done.socket, slot->direct_result);
      continue;
    }
    if (slot->closing) {
      slot->send_busy = false;
      continue;
    }
    finish_send(*slot, done.socket.index, slot->direct_result);
  }
  direct_done_.clear();
}

Status Loop::send_fixed(SocketId socket, const FixedBuffer& buffer, std::uint32_t length) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr) return fail(Errc::kNotFound, "send_fixed");
  if (slot->closing) return fail(Errc::kClosed, "send_fixed");
  if (slot->send_busy) return fail(Errc::kInvalidArgument, "send: one send in flight per socket");
  if (slot->shutdown_pending) return fail(Errc::kClosed, "send after shutdown_write");
  if (length == 0 || length > buffer.size) return fail(Errc::kInvalidArgument, "send_fixed: length");
  slot->single_iov = iovec{buffer.data, length};
  slot->send_iov = &slot->single_iov;
  slot->send_iov_count = 1;
  slot->send_total = length;
  slot->send_is_fixed = true;
  slot->fixed_index = buffer.index;
  slot->send_busy = true;
  submit_send(*slot, socket.index);
  return {};
}

bool Loop::send_busy(SocketId socket) const noexcept {
  const Slot* slot = lookup(socket);
  return slot != nullptr && slot->send_busy;
}

void Loop::submit_send(Slot& slot, std::uint32_t index) noexcept {
  std::uint64_t remaining = 0;
  const std::uint32_t count = std::min(slot.send_iov_count, kMaxIovPerSend);
  for (std::uint32_t i = 0; i < count; ++i) remaining += slot.send_iov[i].iov_len;
  const bool zc = zero_copy(slot, remaining);
  io_uring_sqe* sqe = get_sqe();
  if (slot.send_is_fixed && fixed_pool_ != nullptr) {
    void* base = slot.send_iov[0].iov_base;
    const std::size_t len = slot.send_iov[0].iov_len;
    if (zc) {
      io_uring_prep_send_zc_fixed(sqe, 0, base, len, MSG_NOSIGNAL, 0, slot.fixed_index);
    } else {
      io_uring_prep_send(sqe, 0, base, len, MSG_NOSIGNAL);
    }
  } else {
    slot.msg = msghdr{};
    slot.msg.msg_iov = slot.send_iov;
    slot.msg.msg_iovlen = count;
    if (zc) {
      io_uring_prep_sendmsg_zc(sqe, 0, &slot.msg, MSG_NOSIGNAL);
    } else {
      io_uring_prep_sendmsg(sqe, 0, &slot.msg, MSG_NOSIGNAL);
    }
  }
  set_target(sqe, features_.fixed_files, index, slot.fd);
  io_uring_sqe_set_data64(sqe, user_data(Op::kSend, index));
  if (zc) ++stats_.send_zc;
  ++slot.in_flight;
  ++ops_in_flight_;
}

Status Loop::shutdown_write(SocketId socket) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr) return fail(Errc::kNotFound, "shutdown_write");
  if (slot->closing) return fail(Errc::kClosed, "shutdown_write");
  if (slot->shutdown_pending) return {};
  slot->shutdown_pending = true;
  if (!slot->send_busy) shutdown_now(*slot, socket.index);
  return {};
}

// A system call, not an io_uring op: the kernel runs every IORING_OP_SHUTDOWN on an io-wq worker thread (it is
// marked to go async), so each one woke a worker and switched to it - a fifth of the relays' CPU per connection in
// a Connection: close benchmark. shutdown(SHUT_WR) on a TCP socket never blocks: it queues the FIN behind the data
// already sent (a shutdown waits for the send in flight, see finish_send).
void Loop::shutdown_now(Slot& slot, std::uint32_t index) noexcept {
  slot.direct_result = ::shutdown(slot.fd, SHUT_WR) == 0 ? 0 : -errno;
  direct_done_.push_back(DirectDone{SocketId{index, slot.generation}, Op::kShutdown});
}

Status Loop::set_send_zc(SocketId socket, bool allowed) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr) return fail(Errc::kNotFound, "set_send_zc");
  if (allowed && !features_.send_zc) return fail(Errc::kUnsupported, "zero-copy send");
  slot->zc_allowed = allowed && options_.send_zc_threshold > 0;
  slot->zc_checked = true;
  return {};
}

// Zero-copy only pays off the host: on loopback the kernel copies anyway and the notification is pure cost. Where
// the socket is gets looked up at its first send large enough to ask, so that a short connection never pays for the
// getsockname (a system call per accepted connection, before).
bool Loop::zero_copy(Slot& slot, std::uint64_t bytes) noexcept {
  if (!slot.zc_allowed || bytes < options_.send_zc_threshold) return false;
  if (!slot.zc_checked) {
    slot.zc_checked = true;
    auto local = net::local_address(slot.fd);
    slot.zc_allowed = local && !local->is_loopback();
  }
  return slot.zc_allowed;
}

void Loop::request_flush(SocketId socket) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr || slot->closing || slot->flush_requested) return;
  slot->flush_requested = true;
  flush_list_.push_back(socket.index);
}

void Loop::close(SocketId socket) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr || slot->closing) return;
  slot->closing = true;
  slot->listening = false;
  slot->recv_wanted = false;
  if (slot->accept_paused) forget_accept_pause(*slot, socket.index);
  if (slot->in_flight > 0) {
    io_uring_sqe* sqe = get_sqe();
    if (features_.fixed_files) {
      compat::prep_cancel_fixed_fd(sqe, socket.index);
    } else {
      io_uring_prep_cancel_fd(sqe, slot->fd, IORING_ASYNC_CANCEL_ALL);
    }
    io_uring_sqe_set_data64(sqe, user_data(Op::kCancel, socket.index));
    ++slot->in_flight;
    ++ops_in_flight_;
  }
  closing_.push_back(socket.index);
}

void Loop::detach(SocketId socket) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr || slot->closing) return;
  slot->keep_fd = true;
  close(socket);
}

Status Loop::set_handler(SocketId socket, SocketHandler* handler) noexcept {
  Slot* slot = lookup(socket);
  if (slot == nullptr) return fail(Errc::kNotFound, "set_handler");
  RINGTUN_ASSERT(handler != nullptr, "set_handler without a handler");
  slot->handler = handler;
  return {};
}

void Loop::recycle(const RecvBuffer& buffer) noexcept { recv_pools_[buffer.pool]->recycle(buffer.id); }

// ---------------------------------------------------------------- completions

void Loop::dispatch(const io_uring_cqe* cqe) noexcept {
  ++stats_.cqes;
  const UserData ud = UserData::decode(cqe->user_data);
  if (ud.op == Op::kDoorbell) {
    --ops_in_flight_;
    doorbell_armed_ = false;
    ++stats_.doorbells;
    if (!exiting_) arm_doorbell();
    return;  // the mailboxes are drained every turn
  }
  if (ud.op == Op::kWake || ud.op == Op::kNone) return;
  Slot* slot = ud.index < slots_created_ ? &slot_at(ud.index) : nullptr;
  if (slot == nullptr || !slot->in_use || (slot->generation & UserData::kGenerationMask) != ud.generation) {
    // A completion for a slot that moved on. Never expected (slots are freed only when reaped); a buffer it
    // carries still goes back to the pool.
    ++stats_.stale_cqes;
    if ((cqe->flags & IORING_CQE_F_BUFFER) != 0 && slot != nullptr) {
      auto id = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
      ProvidedBufferRing& pool = *recv_pools_[slot->recv_pool];
      pool.on_taken(id);
      pool.recycle(id);
    }
    if (ud.op == Op::kAccept && cqe->res >= 0) ::close(cqe->res);
    return;
  }
  const SocketId id{ud.index, slot->generation};
  switch (ud.op) {
    case Op::kAccept:
      on_accept_cqe(*slot, ud.index, cqe);
      break;
    case Op::kRecv:
      on_recv_cqe(*slot, ud.index, cqe);
      break;
    case Op::kSend:
      on_send_cqe(*slot, ud.index, cqe);
      break;
    case Op::kConnect: {
      on_op_done(*slot, ud.index);
      if (slot->closing) break;
      int res = cqe->res;
      // Our linked timeout is the only thing that cancels a connect of a live socket.
      if (res == -ECANCELED || slot->connect_timed_out) res = -ETIMEDOUT;
      slot->handler->on_connect(*this, id, res);
      break;
    }
    case Op::kLinkTimeout:
      on_op_done(*slot, ud.index);
      if (cqe->res == -ETIME) slot->connect_timed_out = true;
      break;
    case Op::kCancel:
      on_op_done(*slot, ud.index);
      break;
    default:
      RINGTUN_CHECK(false, "completion with an unknown op");
  }
}

void Loop::on_op_done(Slot& slot, std::uint32_t) noexcept {
  RINGTUN_CHECK(slot.in_flight > 0 && ops_in_flight_ > 0, "completion without an operation in flight");
  --slot.in_flight;
  --ops_in_flight_;
}

void Loop::on_accept_cqe(Slot& slot, std::uint32_t index, const io_uring_cqe* cqe) noexcept {
  const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  const int res = cqe->res;
  if (!more) {
    slot.accept_armed = false;
    on_op_done(slot, index);
  }
  if (slot.closing || !slot.listening) {
    if (res >= 0) ::close(res);
    return;
  }
  if (out_of_resources(res)) {
    // Not the handler's business: nothing it could do but log, and it would log on every retry.
    if (!more) pause_accept(slot, index, res);
    return;
  }
  if (res >= 0 && slot.accept_paused) accepted_while_paused(slot, index);
  slot.handler->on_accept(*this, SocketId{index, slot.generation}, res);
  if (!more && slot.listening && !slot.closing && !slot.accept_armed) arm_accept(slot, index);
}

// A descriptor shortage can last minutes and retries run ten times a second: a pause is logged when it starts and
// when it ends, never per retry. It ends once the listener has been accepting for kAcceptQuietMs without a failure
// (its retried accept armed, or a connection taken), not at the first connection accepted: at the limit, each
// descriptor given back lets one queued connection in before the next accept fails, and that is one long pause, not
// a pause per connection. The lines of all listeners share a per-loop budget, because a gateway with a thousand ports
// sees them all pause together.
// Kernel note: an accept takes a descriptor before it looks at the queue, so a retry fails at once while the process
// is at its limit. Kernels that report whether the queue is empty (IORING_CQE_F_SOCK_NONEMPTY on accept) leave a
// multishot accept whose queue drained waiting without trying again: a listener that took its last queued client
// counts as accepting again even if the process is still at its limit (its next client would pause it again).
void Loop::pause_accept(Slot& slot, std::uint32_t index, int error) noexcept {
  if (AcceptPause* pause = find_accept_pause(SocketId{index, slot.generation})) {
    pause->retry_due = true;
    pause->accepting = false;
  } else {
    slot.accept_paused = true;
    accept_paused_.push_back(AcceptPause{SocketId{index, slot.generation}, now_ms_});
    char dropped[64];
    if (take_accept_line(dropped, sizeof dropped)) {
      auto local = net::local_address(slot.fd);
      LOG_WARN("accept on %s: %s; pausing accepts, retrying every %llu ms%s",
               local ? local->to_string().c_str() : "a listener", out_of_what(error),
               static_cast<unsigned long long>(kAcceptRetryMs), dropped);
    }
  }
  if (!accept_retry_timer_.armed()) timers_.schedule(accept_retry_timer_, kAcceptRetryMs);
}

// A connection taken by an accept that accept_start() armed during the pause (the retries mark their own start).
void Loop::accepted_while_paused(Slot& slot, std::uint32_t index) noexcept {
  AcceptPause* pause = find_accept_pause(SocketId{index, slot.generation});
  RINGTUN_CHECK(pause != nullptr, "a paused listener without its pause");
  if (pause->accepting) return;
  pause->accepting = true;
  pause->accepting_since_ms = now_ms_;
  if (!accept_retry_timer_.armed()) timers_.schedule(accept_retry_timer_, kAcceptRetryMs);
}

void Loop::retry_accepts() noexcept {
  bool again = false;
  for (std::size_t i = 0; i < accept_paused_.size();) {
    AcceptPause& pause = accept_paused_[i];
    Slot* slot = lookup(pause.listener);
    // close() takes a listener off the list, so a listed one is open and listening.
    RINGTUN_CHECK(slot != nullptr && slot->listening && !slot->closing, "a paused listener was closed");
    if (pause.retry_due) {
      pause.retry_due = false;  // if armed already, accept_start() did it: its completion says how it went
      if (!slot->accept_armed) {
        ++pause.retries;
        arm_accept(*slot, pause.listener.index);
      }
      pause.accepting = true;  // until its completion says otherwise
      pause.accepting_since_ms = now_ms_;
    } else if (pause.accepting && now_ms_ - pause.accepting_since_ms >= kAcceptQuietMs) {
      char dropped[64];
      if (take_accept_line(dropped, sizeof dropped)) {
        auto local = net::local_address(slot->fd);
        LOG_INFO("accept on %s: accepting again after %.1f s paused (%u retries)%s",
                 local ? local->to_string().c_str() : "a listener",
                 static_cast<double>(pause.accepting_since_ms - pause.since_ms) / 1000.0, pause.retries, dropped);
      }
      slot->accept_paused = false;
      accept_paused_[i] = accept_paused_.back();
      accept_paused_.pop_back();
      continue;
    }
    again = again || pause.retry_due || pause.accepting;
    ++i;
  }
  if (again && !accept_retry_timer_.armed()) timers_.schedule(accept_retry_timer_, kAcceptRetryMs);
}

void Loop::forget_accept_pause(Slot& slot, std::uint32_t index) noexcept {
  slot.accept_paused = false;
  const SocketId listener{index, slot.generation};
  for (std::size_t i = 0; i < accept_paused_.size(); ++i) {
    if (accept_paused_[i].listener == listener) {
      accept_paused_[i] = accept_paused_.back();
      accept_paused_.pop_back();
      return;
    }
  }
}

Loop::AcceptPause* Loop::find_accept_pause(SocketId listener) noexcept {
  for (AcceptPause& pause : accept_paused_) {
    if (pause.listener == listener) return &pause;
  }
  return nullptr;
}

// True if a pause or resume line may be written now; `suffix` then says how many were left out before it.
bool Loop::take_accept_line(char* suffix, std::size_t size) noexcept {
  std::uint64_t dropped = 0;
  if (!accept_lines_.take(now_ms_, &dropped)) return false;
  suffix[0] = '\0';
  if (dropped > 0) {
    std::snprintf(suffix, size, " (%llu more pause/resume lines not logged)", static_cast<unsigned long long>(dropped));
  }
  return true;
}

void Loop::on_recv_cqe(Slot& slot, std::uint32_t index, const io_uring_cqe* cqe) noexcept {
  const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  const int res = cqe->res;
  if (!more) {
    slot.recv_armed = false;
    on_op_done(slot, index);
  }
  RecvBuffer buffer;
  ProvidedBufferRing& pool = *recv_pools_[slot.recv_pool];
  if ((cqe->flags & IORING_CQE_F_BUFFER) != 0) {
    buffer.id = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    buffer.pool = slot.recv_pool;
    buffer.data = pool.data(buffer.id);
    buffer.size = res > 0 ? static_cast<std::uint32_t>(res) : 0;
    pool.on_taken(buffer.id);
    if (res <= 0) {  // a buffer without data: straight back
      pool.recycle(buffer.id);
      buffer = RecvBuffer{};
    }
  }
  const SocketId id{index, slot.generation};
  if (slot.closing) {
    // detach() hands the fd on: bytes the kernel already moved into our buffers belong to the new owner as much as
    // those still in the socket, so the handler gets them (before on_close). After a close they are just dropped.
    if (slot.keep_fd && res > 0) {
      slot.handler->on_recv(*this, id, res, buffer);
      return;
    }
    if (buffer.data != nullptr) pool.recycle(buffer.id);
    return;
  }
  if (res > 0) {
    slot.handler->on_recv(*this, id, res, buffer);
    // The handler may have closed or stopped the socket; re-arm only if it still wants data.
    if (!more && !slot.closing && slot.recv_wanted && !slot.recv_armed) arm_recv(slot, index);
    return;
  }
  if (res == -ENOBUFS) {
    // Every buffer is lent out: park until some come back (rearm_starved), invisible to the handler.
    ++stats_.enobufs;
    if (slot.recv_wanted && !slot.recv_armed) starved_.push_back(SocketId{index, slot.generation});
    return;
  }
  if (res == -ECANCELED) {
    // recv_stop() cancelled it; recv_start() since then wants it back.
    if (slot.recv_wanted && !slot.recv_armed) arm_recv(slot, index);
    return;
  }
  if (more) return;  // a transient result inside a live multishot; nothing to report
  slot.recv_wanted = false;
  slot.handler->on_recv(*this, id, res, buffer);
}

void Loop::on_send_cqe(Slot& slot, std::uint32_t index, const io_uring_cqe* cqe) noexcept {
  int res;
  if ((cqe->flags & IORING_CQE_F_NOTIF) != 0) {
    // Zero-copy: the kernel no longer references the memory; now the send counts as done.
    res = slot.zc_result;
  } else if ((cqe->flags & IORING_CQE_F_MORE) != 0) {
    // The result; a notification follows for the same submission.
    slot.zc_result = cqe->res;
    return;
  } else {
    res = cqe->res;
  }
  on_op_done(slot, index);
  if (slot.closing) {
    slot.send_busy = false;
    return;
  }
  if (res < 0) {
    if (res == -EAGAIN || res == -EINTR) {  // should not surface from io_uring; retry rather than fail
      submit_send(slot, index);
      return;
    }
    finish_send(slot, index, res);
    return;
  }
  if (advance_send(slot, static_cast<std::uint64_t>(res))) {
    finish_send(slot, index, static_cast<int>(std::min<std::uint64_t>(slot.send_total, INT_MAX)));
    return;
  }
  ++stats_.send_partial;
  submit_send(slot, index);
}

// Advances the caller's iovec array past `sent` bytes; true when nothing is left to send.
bool Loop::advance_send(Slot& slot, std::uint64_t sent) noexcept {
  while (slot.send_iov_count > 0 && sent >= slot.send_iov[0].iov_len) {
    sent -= slot.send_iov[0].iov_len;
    ++slot.send_iov;
    --slot.send_iov_count;
  }
  if (slot.send_iov_count > 0 && sent > 0) {
    slot.send_iov[0].iov_base = static_cast<std::uint8_t*>(slot.send_iov[0].iov_base) + sent;
    slot.send_iov[0].iov_len -= sent;
  }
  while (slot.send_iov_count > 0 && slot.send_iov[0].iov_len == 0) {
    ++slot.send_iov;
    --slot.send_iov_count;
  }
  return slot.send_iov_count == 0 || (slot.send_is_fixed && slot.send_iov == &slot.single_iov + 1);
}

void Loop::finish_send(Slot& slot, std::uint32_t index, int res) noexcept {
  slot.send_busy = false;
  slot.send_iov = nullptr;
  slot.send_iov_count = 0;
  // A shutdown asked for while this send was busy waited for it; one that on_send() asks for is made at once.
  const bool shutdown_waited = slot.shutdown_pending;
  slot.handler->on_send(*this, SocketId{index, slot.generation}, res);
  if (shutdown_waited && !slot.closing && !slot.send_busy) shutdown_now(slot, index);
}

// ---------------------------------------------------------------- end-of-turn work

void Loop::run_flushes() noexcept {
  if (flush_list_.empty()) return;
  // Handlers may request flushes while flushing; those run next turn, so take the current list.
  std::size_t count = flush_list_.size();
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t index = flush_list_[i];
    Slot& slot = slot_at(index);
    if (!slot.in_use || !slot.flush_requested) continue;
    slot.flush_requested = false;
    if (slot.closing) continue;
    slot.handler->on_flush(*this, SocketId{index, slot.generation});
  }
  flush_list_.erase(flush_list_.begin(), flush_list_.begin() + static_cast<std::ptrdiff_t>(count));
}

void Loop::rearm_starved() noexcept {
  if (starved_.empty()) return;
  // Re-arm only sockets whose pool has a buffer free again; the others stay parked.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < starved_.size(); ++i) {
    SocketId socket = starved_[i];
    Slot* slot = lookup(socket);
    if (slot == nullptr || slot->closing || !slot->recv_wanted || slot->recv_armed) continue;
    const ProvidedBufferRing& pool = *recv_pools_[slot->recv_pool];
    if (pool.in_use() >= pool.count()) {
      starved_[kept++] = socket;
      continue;
    }
    arm_recv(*slot, socket.index);
  }
  starved_.resize(kept);
}

void Loop::reap_closed() noexcept {
  if (closing_.empty()) return;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < closing_.size(); ++i) {
    std::uint32_t index = closing_[i];
    Slot& slot = slot_at(index);
    if (slot.in_flight > 0) {
      closing_[kept++] = index;
      continue;
    }
    free_slot(index);
  }
  closing_.resize(kept);
}

void Loop::free_slot(std::uint32_t index) noexcept {
  Slot& slot = slot_at(index);
  const SocketId id{index, slot.generation};
  if (features_.fixed_files) {
    int none = -1;
    io_uring_register_files_update(&ring_, index, &none, 1);
  }
  if (!slot.keep_fd) ::close(slot.fd);
  SocketHandler* handler = slot.handler;
  // The generation moves on before the handler hears of it, so the old id is stale inside on_close too.
  slot.generation = (slot.generation + 1) & UserData::kGenerationMask;
  if (slot.generation == 0) slot.generation = 1;
  slot.in_use = false;
  slot.fd = -1;
  slot.handler = nullptr;
  free_slots_.push_back(index);
  --stats_.sockets_open;
  handler->on_close(*this, id);
}

// ---------------------------------------------------------------- cross-core

void Loop::set_peers(std::vector<Loop*> peers) noexcept { peers_ = std::move(peers); }

Status Loop::post(unsigned target, const CrossCoreTask& task) noexcept {
  Loop* loop = target == core_ ? this : (target < peers_.size() ? peers_[target] : nullptr);
  if (loop == nullptr || core_ >= loop->inbox_.size()) return fail(Errc::kInvalidArgument, "post: no such core");
  if (!loop->inbox_[core_]->try_push(task)) return fail(Errc::kExhausted, "post: mailbox full");
  // Dekker-style handshake with the consumer's sleeping_ store: either it sees our message before sleeping, or we
  // see it asleep and ring. A doorbell is paid only when the target is actually parked.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (loop != this) loop->ring_if_asleep();
  return {};
}

void Loop::post_control(unsigned target, std::unique_ptr<ControlMessage> message) noexcept {
  Loop* loop = target == core_ ? this : (target < peers_.size() ? peers_[target] : nullptr);
  RINGTUN_CHECK(loop != nullptr, "post_control: no such core");
  loop->deliver(std::move(message));
}

void Loop::deliver(std::unique_ptr<ControlMessage> message) noexcept {
  control_inbox_.push(message.release());
  // The same handshake with sleeping_ as post(): a parked loop is woken, a busy one is not.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  ring_if_asleep();
}

// One doorbell per sleep: a burst of posts to a parked loop (a registration binding 1,000 ports on every core) rings
// once, not once per message. The loop clears the flag just before it announces a sleep, so a flag found set during
// a sleep was set by a producer after that clear, whose eventfd write is on its way (or in the eventfd already): it
// wakes this very sleep. A late producer of an earlier sleep only causes a spurious wake-up.
void Loop::ring_if_asleep() noexcept {
  // Acquire: seeing this sleep's `true` means seeing the clear made before it, so the exchange below is ordered after
  // that clear.
  if (!sleeping_.load(std::memory_order_acquire)) return;
  if (doorbell_rung_.exchange(true, std::memory_order_acq_rel)) return;
  wake();
}

void Loop::wake() noexcept {
  std::uint64_t one = 1;
  (void)!::write(doorbell_fd_, &one, sizeof one);
}

void Loop::arm_doorbell() noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, doorbell_fd_, &doorbell_value_, sizeof doorbell_value_, 0);
  io_uring_sqe_set_data64(sqe, UserData{Op::kDoorbell, 0, 0}.encode());
  doorbell_armed_ = true;
  ++ops_in_flight_;
}

bool Loop::mailboxes_empty() const noexcept {
  for (const auto& queue : inbox_) {
    if (!queue->empty()) return false;
  }
  return control_inbox_.empty();
}

bool Loop::drain_mailboxes() noexcept {
  std::uint64_t drained = 0;
  CrossCoreTask task;
  for (auto& queue : inbox_) {
    // Bounded per turn so a busy producer cannot starve this loop's own I/O.
    for (unsigned n = 0; n < 256 && queue->try_pop(&task); ++n) {
      ++drained;
      task.fn(*this, task);
    }
  }
  // Control messages are bounded per turn too; the rest wait (and keep the loop from sleeping), never dropped.
  for (unsigned n = 0; n < kControlPerTurn; ++n) {
    std::unique_ptr<ControlMessage> message(control_inbox_.pop());
    if (!message) break;
    ++drained;
    message->run(*this);
  }
  if (drained != 0 || stats_.mailbox_depth.get() != 0) stats_.mailbox_depth.set(drained);
  return drained != 0;
}

// ---------------------------------------------------------------- running

void Loop::request_stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  wake();
}

void Loop::set_stop_handler(void (*fn)(Loop&, void*), void* context) noexcept {
  stop_fn_ = fn;
  stop_context_ = context;
}

void Loop::begin_stop() noexcept {
  stopping_ = true;
  if (stop_fn_ != nullptr) {
    stop_fn_(*this, stop_context_);
  } else {
    exit();
  }
}

void Loop::exit() noexcept {
  if (exiting_) return;
  exiting_ = true;
  for (std::uint32_t i = 0; i < slots_created_; ++i) {
    Slot& slot = slot_at(i);
    if (slot.in_use && !slot.closing) close(SocketId{i, slot.generation});
  }
  if (doorbell_armed_) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, UserData{Op::kDoorbell, 0, 0}.encode(), 0);
    io_uring_sqe_set_data64(sqe, UserData{Op::kWake, 0, 0}.encode());
  }
}

bool Loop::finished() const noexcept {
  return exiting_ && stats_.sockets_open == 0 && ops_in_flight_ == 0;
}

void Loop::wait_for_completions(std::uint32_t max_wait_ms) noexcept {
  std::uint64_t wait_ms = std::min(max_wait_ms, kMaxWaitMs);
  if (auto next = timers_.next_expiry_ms()) {
    wait_ms = *next <= now_ms_ ? 0 : std::min<std::uint64_t>(wait_ms, *next - now_ms_);
  }
  if (!flush_list_.empty() || !closing_.empty() || !direct_done_.empty()) wait_ms = 0;
  if (wait_ms > 0 && options_.busy_poll_us > 0) {
    const std::uint64_t before = monotonic_ms();
    if (busy_poll()) {
      wait_ms = 0;
    } else {
      // The poll took part of the wait: sleep only what is left of it, not the whole wait again.
      const std::uint64_t spent = monotonic_ms() - before;
      wait_ms = wait_ms > spent ? wait_ms - spent : 0;
    }
  }
  if (wait_ms > 0) {
    // Cleared before the sleep it stands for, never after a wake: a producer that rang late for the previous sleep
    // must not leave it set for this one (its ring would then be consumed before this sleep, and nobody would ring).
    doorbell_rung_.store(false, std::memory_order_relaxed);
    sleeping_.store(true, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!mailboxes_empty() || stop_requested_.load(std::memory_order_acquire) != stopping_) wait_ms = 0;
  }
  if (wait_ms == 0) {
    sleeping_.store(false, std::memory_order_relaxed);
    ++stats_.submits;
    io_uring_submit_and_get_events(&ring_);
    return;
  }
  __kernel_timespec ts{};
  ts.tv_sec = static_cast<long long>(wait_ms / 1000);
  ts.tv_nsec = static_cast<long long>(wait_ms % 1000) * 1'000'000;
  io_uring_cqe* cqe = nullptr;
  ++stats_.submits;
  io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  sleeping_.store(false, std::memory_order_relaxed);
}

bool Loop::busy_poll() noexcept {
  // Submits first (what this turn queued must not wait for the spin), then asks the kernel for completions until
  // one is there, a message or a stop arrives, a timer is due, or the time is up. io_uring_get_events runs the
  // deferred task work that DEFER_TASKRUN keeps until the ring is entered, so polling the CQ alone would never see
  // a network completion.
  ++stats_.submits;
  io_uring_submit_and_get_events(&ring_);
  const std::uint64_t start = monotonic_ns();
  const std::uint64_t budget = std::uint64_t{options_.busy_poll_us} * 1000;
  const std::optional<std::uint64_t> timer = timers_.next_expiry_ms();
  while (true) {
    if (io_uring_cq_ready(&ring_) > 0 || !mailboxes_empty() ||
        stop_requested_.load(std::memory_order_acquire) != stopping_) {
      ++stats_.busy_poll_hits;
      return true;
    }
    const std::uint64_t now = monotonic_ns();
    if (timer && now / 1'000'000 >= *timer) return true;  // a timer is due: the turn runs it, no sleep
    if (now - start >= budget) return false;
    io_uring_get_events(&ring_);
  }
}

void Loop::process_completions() noexcept {
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    dispatch(cqe);
    ++count;
  }
  io_uring_cq_advance(&ring_, count);
}

void Loop::turn(std::uint32_t max_wait_ms) noexcept {
  ++stats_.turns;
  direct_sends_this_turn_ = 0;
  run_flushes();
  wait_for_completions(max_wait_ms);
  connect_args_used_ = 0;  // submitted: the kernel has its copies
  // The clock and the wheel move before any completion is handled: a handler that arms a timer after a long sleep
  // must count from now, not from before the sleep (it would fire at once: a fresh HTTP client's head timeout did).
  now_ms_ = monotonic_ms();
  timers_.advance(now_ms_);
  process_completions();
  finish_direct_ops();
  drain_mailboxes();
  if (!stopping_ && stop_requested_.load(std::memory_order_acquire)) begin_stop();
  rearm_starved();
  reap_closed();
}

void Loop::run_once(std::uint32_t max_wait_ms) { turn(max_wait_ms); }

void Loop::run() {
  while (!finished()) turn(kMaxWaitMs);
  // Submit the last cancellations and collect anything still pending (the doorbell's cancel completion).
  io_uring_submit_and_get_events(&ring_);
  process_completions();
}

}  // namespace ringtun::ring
