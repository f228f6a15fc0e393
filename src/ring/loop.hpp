// Loop: one io_uring event loop, owned by one core's thread. Everything on that core (sockets, buffers, timers)
// belongs to it; nothing is shared with other cores except the inbound mailboxes.
//
// A socket enters the loop with adopt() (or listen()/connect helpers) and gets a SocketId {slot index,
// generation}. Operations on it (multishot accept, connect with timeout, multishot recv from the provided buffer
// ring, gather send, shutdown) complete by calling its SocketHandler. The submission's user_data encodes
// {op, slot, generation} (user_data.hpp); a completion whose generation no longer matches is dropped and counted.
//
// Life cycle of a socket slot:
//   adopt() -> ops in flight ... -> close(): no further callbacks except on_close(); every in-flight op is
//   cancelled; when the last one is reaped the fd is closed, on_close() runs (from the loop, never from inside an
//   API call) and the slot's generation changes. Only then may the handler free memory that a pending send
//   referenced. A SocketId used after that is stale: calls with it return Errc::kNotFound and do nothing.
//
// Receive: recv_start() arms a multishot recv that draws from this loop's ProvidedBufferRing. Each chunk arrives as
//   on_recv(res > 0, RecvBuffer) and the handler owns that buffer until it calls recycle(); holding buffers is how
//   data waits for a slow peer, and the pool being per core is what keeps idle connections cheap. On -ENOBUFS the
//   loop parks the socket and re-arms it when buffers are recycled; handlers never see -ENOBUFS. recv_stop() cancels
//   (for back-pressure), but the cancel reaches the kernel only with the next submission: until then the multishot
//   recv keeps completing chunks from data already in the socket buffer, so a handler must accept chunks after
//   recv_stop() (measured: up to ~100 x 16 KiB per connection under a 20 MB burst). What bounds them is the receive
//   pool, not the stop; a handler that must hold data per connection bounds its own share of the pool.
// Send: send() takes an iovec array that the CALLER owns and keeps valid and unmodified until on_send(); the loop
//   advances it in place across partial sends and reports once, with the total or a negative errno. One send is
//   in flight per socket: gather everything a turn produced into that one call (request_flush() helps). Sends of
//   at least `send_zc_threshold` bytes use zero-copy sendmsg when the kernel has it and the socket allows it
//   (not on loopback, where it only costs); on_send() then waits for the kernel's notification, so the memory is
//   free to reuse when on_send() runs.
// Shutdown: shutdown_write() makes the SHUT_WR once the pending send is done, so a FIN never overtakes data; it is
//   a plain system call (io_uring would run it on a worker thread), reported through on_shutdown() from the loop.
//
// Turn: run flush requests -> submit and wait (bounded by the next timer) -> read the clock and fire due timers ->
// dispatch every CQE -> advance the CQ once -> drain mailboxes -> re-arm starved receivers -> finalise closed
// sockets. (The clock moves before the CQEs, so a timer armed by a handler counts from the time it runs.)
//
// Thread rules: every method except request_stop(), post() (producer side) and wake() must be called on the
// loop's own thread. The Loop must be created on the thread that runs it (SINGLE_ISSUER rings belong to their
// creator).
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/counter.hpp"
#include "common/log.hpp"
#include "common/result.hpp"
#include "ring/buffer_pool.hpp"
#include "ring/buffer_ring.hpp"
#include "ring/control_inbox.hpp"
#include "ring/spsc_queue.hpp"
#include "ring/timer_wheel.hpp"
#include "ring/user_data.hpp"

namespace ringtun::ring {

class Loop;

struct SocketId {
  std::uint32_t index = UINT32_MAX;
  std::uint32_t generation = 0;

  bool valid() const noexcept { return index != UINT32_MAX; }
  friend bool operator==(SocketId a, SocketId b) noexcept {
    return a.index == b.index && a.generation == b.generation;
  }
};

// A received chunk lent by one of the loop's provided buffer rings. Return it with Loop::recycle() exactly once.
struct RecvBuffer {
  std::uint8_t* data = nullptr;
  std::uint32_t size = 0;  // bytes received into it
  std::uint16_t id = 0;
  std::uint8_t pool = 0;   // which receive pool lent it
};

inline constexpr unsigned kMaxRecvPools = 4;

struct RecvPoolOptions {
  std::uint32_t buffers = 0;  // power of two; 0 = this pool does not exist
  std::uint32_t buffer_size = 16384;
};

// Implemented by whoever owns a socket. Callbacks run on the loop thread, from the loop (never re-entrantly from
// a Loop method the handler called). Each has a default so a handler implements only what it uses.
class SocketHandler {
 public:
  virtual ~SocketHandler() = default;
  // Multishot accept on a listener: res >= 0 is a new connected fd (non-blocking, close-on-exec) that the handler
  // now owns (adopt() it or close it); res < 0 is -errno. The loop keeps accepting. Running out of descriptors or
  // memory (EMFILE, ENFILE, ENOMEM, ENOBUFS) never reaches the handler: the loop pauses that listener, logs one line
  // when it pauses and one when it accepts again, and retries every 100 ms meanwhile.
  virtual void on_accept(Loop& loop, SocketId listener, int res);
  // 0 when connected; -errno otherwise, -ETIMEDOUT when the connect timeout fired.
  virtual void on_connect(Loop& loop, SocketId socket, int res);
  // res > 0: `buffer` holds res bytes. 0: the peer shut down its write side (EOF); receiving has stopped.
  // res < 0: -errno; receiving has stopped.
  virtual void on_recv(Loop& loop, SocketId socket, int res, const RecvBuffer& buffer);
  // The whole batch passed to send() was sent (res = total bytes), or -errno (some bytes may have left).
  virtual void on_send(Loop& loop, SocketId socket, int res);
  virtual void on_shutdown(Loop& loop, SocketId socket, int res);
  // The socket is closed and every operation reaped; the id is stale from now on.
  virtual void on_close(Loop& loop, SocketId socket);
  // Requested with request_flush(): runs once at the end of the turn, before submission, to batch sends.
  virtual void on_flush(Loop& loop, SocketId socket);
};

// Work posted from another core through its bounded mailbox; runs on the target loop's thread. `fn` decides what
// `object`/`arg0` mean and who owns them; messages are copied by value, so no allocation happens per message. For
// traffic that can take back-pressure; control that must never be lost goes through post_control().
struct CrossCoreTask {
  void (*fn)(Loop& loop, const CrossCoreTask& task) = nullptr;
  void* object = nullptr;
  std::uint64_t arg0 = 0;
  // Frees what the task owns if it never runs (its target loop stopped first); called from ~Loop. May be null.
  void (*drop)(const CrossCoreTask& task) = nullptr;
};

struct LoopOptions {
  // Submission queue: the loop submits when it is full, so a turn that queues more only enters the kernel once
  // more per 256 operations; 256 x 64 B is 16 KiB resident per loop (1,024 was 64 KiB).
  unsigned sq_entries = 256;
  // Completions waiting to be handled: one turn handles them all, so this bounds a burst between two turns, not the
  // connections. A larger burst is kept by the kernel (IORING_FEAT_NODROP) and flushed into the ring on the next
  // enter; 2,048 x 16 B is 32 KiB resident per loop (16,384 was 256 KiB). The rings are memory the kernel pins for
  // the loop's life: an idle gateway + agent pair holds four of them.
  unsigned cq_entries = 2048;
  std::uint32_t max_sockets = 16384;     // socket slots = fixed-file table size
  // Provided buffer rings for multishot recv. Separate pools keep one class of sockets from starving another: a
  // tunnel connection must always be able to receive the window updates that let stalled streams drain.
  RecvPoolOptions recv_pools[kMaxRecvPools] = {{1024, 16384}, {}, {}, {}};
  std::uint32_t fixed_buffers = 64;      // registered fixed-buffer slab (0 = none)
  std::uint32_t fixed_buffer_size = 65536;
  std::uint32_t send_zc_threshold = 16384;  // bytes; 0 disables zero-copy send
  // The first sends of each turn try a plain sendmsg(MSG_DONTWAIT) before queueing to the ring: a send that fits in
  // the socket buffer then costs one syscall and no completion to reap (a lone ping-pong otherwise pays a second
  // io_uring_enter). Past this many per turn, sends are queued and submitted together. 0 = always queue.
  std::uint32_t direct_sends_per_turn = 8;
  std::uint32_t mailbox_capacity = 4096;    // per source core
  // Before it sleeps, the loop polls the ring (and its mailboxes) this long for work: a completion that arrives
  // meanwhile costs no sleep and no wake-up, at the price of a CPU kept busy. 0 = sleep at once (the default).
  std::uint32_t busy_poll_us = 0;
  bool use_fixed_files = true;
  bool try_defer_taskrun = true;          // SINGLE_ISSUER|DEFER_TASKRUN when the kernel has it
};

// What the loop found the kernel able to do, decided once at creation.
struct LoopFeatures {
  const char* mode = "plain";  // "defer_taskrun", "coop_taskrun" or "plain"
  bool ext_arg = false;        // submit_and_wait with a timeout needs no timeout SQE
  bool send_zc = false;
  bool registered_ring_fd = false;
  bool fixed_files = false;
};

// Written by the loop thread only; any thread may read them (common/counter.hpp), e.g. the admin endpoint.
struct LoopStats {
  Counter turns;
  Counter cqes;
  Counter stale_cqes;   // completions for a slot whose generation moved on (should stay 0)
  Counter enobufs;      // multishot recvs ended by an empty buffer ring
  Counter send_partial; // sends that needed a resubmit
  Counter send_direct;  // sendmsg calls made directly (see LoopOptions::direct_sends_per_turn)
  Counter send_zc;      // sends that went zero-copy
  Counter doorbells;    // wake-ups by another core
  Counter busy_poll_hits;  // sleeps that busy-polling avoided (LoopOptions::busy_poll_us)
  Counter sockets_open;
  Counter sockets_high_water;
  Counter submits;        // io_uring_enter calls (submit, wait, or both)
  Counter mailbox_depth;  // cross-core tasks and control messages drained in the last turn that had any
};

class Loop {
 public:
  // Creates the ring (with the best setup flags the kernel accepts), the buffer pools and the doorbell.
  // `core` is this loop's index among `core_count` loops (for mailboxes and log tags).
  static Result<std::unique_ptr<Loop>> create(const LoopOptions& options, unsigned core = 0,
                                              unsigned core_count = 1);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // ---- running ----
  // Runs turns until exit() was called and every socket is closed and reaped.
  void run();
  // One turn; waits at most `max_wait_ms` (0: do not block). For tests and embedding.
  void run_once(std::uint32_t max_wait_ms);
  // Thread-safe: asks the loop to stop. The stop handler (if set) runs on the loop thread and must eventually call
  // exit(); without one the loop exits at once.
  void request_stop() noexcept;
  void set_stop_handler(void (*fn)(Loop& loop, void* context), void* context) noexcept;
  bool stop_requested() const noexcept { return stop_requested_.load(std::memory_order_relaxed); }
  // Closes every socket and leaves run() once all are reaped.
  void exit() noexcept;

  // ---- sockets ----
  // Takes ownership of `fd` (closed by the loop from now on, also on failure).
  Result<SocketId> adopt(int fd, SocketHandler* handler) noexcept;
  Status accept_start(SocketId listener) noexcept;
  // adopt() + accept_start() for a listening socket; on failure the socket is closed.
  Result<SocketId> adopt_listener(int fd, SocketHandler* handler) noexcept;
  // Creates a non-blocking TCP socket and connects it to `addr`; on_connect() reports the result.
  Result<SocketId> connect(const sockaddr* addr, socklen_t addr_len, std::uint32_t timeout_ms,
                           SocketHandler* handler) noexcept;
  // Arms multishot recv drawing buffers from receive pool `pool` (which must exist).
  Status recv_start(SocketId socket, unsigned pool = 0) noexcept;
  Status recv_stop(SocketId socket) noexcept;
  Status send(SocketId socket, iovec* iov, unsigned iov_count) noexcept;
  // Sends `length` bytes of a registered fixed buffer (zero-copy when long enough and allowed).
  Status send_fixed(SocketId socket, const FixedBuffer& buffer, std::uint32_t length) noexcept;
  bool send_busy(SocketId socket) const noexcept;
  Status shutdown_write(SocketId socket) noexcept;
  void close(SocketId socket) noexcept;
  // Like close(), but the fd stays open: when on_close() runs, the fd (read it with fd() before detaching) belongs
  // to the caller again, e.g. to hand it to another core. Nothing received is lost: chunks a multishot recv had
  // already taken from the socket are still delivered to on_recv (res > 0) before on_close; the rest stays in the
  // socket for the next owner. The handler must accept such chunks and keep them with the fd.
  void detach(SocketId socket) noexcept;
  // Hands the socket's callbacks to another handler (e.g. from a connector to the connection it became).
  Status set_handler(SocketId socket, SocketHandler* handler) noexcept;
  void request_flush(SocketId socket) noexcept;
  // Zero-copy send for this socket (default: on unless the peer is on loopback).
  Status set_send_zc(SocketId socket, bool allowed) noexcept;
  // The plain fd, for setsockopt/getsockname. The loop still owns it.
  int fd(SocketId socket) const noexcept;
  bool alive(SocketId socket) const noexcept;

  // ---- buffers ----
  void recycle(const RecvBuffer& buffer) noexcept;
  ProvidedBufferRing& recv_pool(unsigned pool = 0) noexcept { return *recv_pools_[pool]; }
  bool has_recv_pool(unsigned pool) const noexcept { return pool < kMaxRecvPools && recv_pools_[pool] != nullptr; }
  FixedBufferPool* fixed_pool() noexcept { return fixed_pool_.get(); }

  // ---- timers ----
  TimerWheel& timers() noexcept { return timers_; }
  // The loop's clock (ms), read once per turn.
  std::uint64_t now_ms() const noexcept { return now_ms_; }

  // ---- cross-core ----
  unsigned core() const noexcept { return core_; }
  unsigned core_count() const noexcept { return core_count_; }
  // Wires this loop to its peers (index = core). Called once by the Runtime before any loop runs.
  void set_peers(std::vector<Loop*> peers) noexcept;
  // Producer side, called on this loop's thread: queues `task` for loop `target` (may be this loop) and wakes it
  // if it sleeps. Err(kExhausted) when that mailbox is full.
  Status post(unsigned target, const CrossCoreTask& task) noexcept;
  // Control messages (see control_inbox.hpp): never refused, run in the order each sender posted them, after the
  // target's I/O of the turn. post_control() is called on this loop's thread (`target` may be this loop);
  // deliver() on the target loop object, from any thread.
  void post_control(unsigned target, std::unique_ptr<ControlMessage> message) noexcept;
  void deliver(std::unique_ptr<ControlMessage> message) noexcept;
  // Thread-safe: wakes the loop if it sleeps.
  void wake() noexcept;

  const LoopFeatures& features() const noexcept { return features_; }
  const LoopStats& stats() const noexcept { return stats_; }
  const LoopOptions& options() const noexcept { return options_; }

 private:
  struct Slot;
  explicit Loop(const LoopOptions& options, unsigned core, unsigned core_count);
  Status init();

  Slot* lookup(SocketId socket) noexcept;
  const Slot* lookup(SocketId socket) const noexcept;
  Slot& slot_at(std::uint32_t index) noexcept;
  io_uring_sqe* get_sqe() noexcept;
  std::uint64_t user_data(Op op, std::uint32_t index) noexcept;
  void arm_recv(Slot& slot, std::uint32_t index) noexcept;
  void arm_accept(Slot& slot, std::uint32_t index) noexcept;
  void submit_send(Slot& slot, std::uint32_t index) noexcept;
  void shutdown_now(Slot& slot, std::uint32_t index) noexcept;
  void arm_doorbell() noexcept;
  void ring_if_asleep() noexcept;  // producer side, after its push and a full fence
  void retry_accepts() noexcept;
  void pause_accept(Slot& slot, std::uint32_t index, int error) noexcept;
  void accepted_while_paused(Slot& slot, std::uint32_t index) noexcept;
  void forget_accept_pause(Slot& slot, std::uint32_t index) noexcept;
  struct AcceptPause;
  AcceptPause* find_accept_pause(SocketId listener) noexcept;
  bool take_accept_line(char* suffix, std::size_t size) noexcept;

  void dispatch(const io_uring_cqe* cqe) noexcept;
  void on_accept_cqe(Slot& slot, std::uint32_t index, const io_uring_cqe* cqe) noexcept;
  void on_recv_cqe(Slot& slot, std::uint32_t index, const io_uring_cqe* cqe) noexcept;
  void on_send_cqe(Slot& slot, std::uint32_t index, const io_uring_cqe* cqe) noexcept;
  void on_op_done(Slot& slot, std::uint32_t index) noexcept;
  void finish_send(Slot& slot, std::uint32_t index, int res) noexcept;
  void reap_closed() noexcept;
  bool try_send_now(Slot& slot, std::uint32_t index) noexcept;
  bool zero_copy(Slot& slot, std::uint64_t bytes) noexcept;  // whether a send of `bytes` goes zero-copy
  bool advance_send(Slot& slot, std::uint64_t sent) noexcept;
  void finish_direct_ops() noexcept;
  void free_slot(std::uint32_t index) noexcept;
  void run_flushes() noexcept;
  void rearm_starved() noexcept;
  bool drain_mailboxes() noexcept;
  bool mailboxes_empty() const noexcept;
  void begin_stop() noexcept;
  void wait_for_completions(std::uint32_t max_wait_ms) noexcept;
  // LoopOptions::busy_poll_us: true if work arrived or a timer fell due while polling (the loop then does not sleep).
  bool busy_poll() noexcept;
  void process_completions() noexcept;
  void turn(std::uint32_t max_wait_ms) noexcept;
  bool finished() const noexcept;

  LoopOptions options_;
  unsigned core_;
  unsigned core_count_;
  io_uring ring_{};
  bool ring_ready_ = false;
  LoopFeatures features_;
  LoopStats stats_;

  std::unique_ptr<ProvidedBufferRing> recv_pools_[kMaxRecvPools];
  std::unique_ptr<FixedBufferPool> fixed_pool_;
  TimerWheel timers_;
  std::uint64_t now_ms_ = 0;

  // Socket slots live in fixed-size chunks that never move: in-flight msghdrs point into them.
  static constexpr std::uint32_t kSlotsPerChunk = 256;
  std::vector<std::unique_ptr<Slot[]>> chunks_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t slots_created_ = 0;

  std::vector<std::uint32_t> flush_list_;
  std::vector<SocketId> starved_;          // recv parked on -ENOBUFS
  // A listener waiting out EMFILE and friends: listed from the failure that paused it until it has been accepting
  // for kAcceptQuietMs without another failure (or until its close), so that one line says when the pause started
  // and one when it ended, however long it lasted (see pause_accept in loop.cpp).
  struct AcceptPause {
    SocketId listener;
    std::uint64_t since_ms = 0;            // the failure that started the pause
    std::uint64_t accepting_since_ms = 0;  // if `accepting`: since when no accept has failed
    std::uint32_t retries = 0;
    bool retry_due = true;   // the retry timer re-arms it
    bool accepting = false;  // armed again (or took a connection) and no failure since
  };
  std::vector<AcceptPause> accept_paused_;
  log::LineBudget accept_lines_;
  Timer accept_retry_timer_;
  std::vector<std::uint32_t> closing_;     // closed, waiting for their last op
  // Sends finished by a direct sendmsg and shutdowns made directly: their callbacks run from the loop.
  struct DirectDone {
    SocketId socket;
    Op op;  // kSend or kShutdown
  };
  std::vector<DirectDone> direct_done_;
  std::uint32_t direct_sends_this_turn_ = 0;
  // connect()'s address and timeout, kept until the SQEs that point at them are submitted.
  struct ConnectArgs {
    sockaddr_storage address;
    __kernel_timespec timeout;
  };
  std::array<ConnectArgs, 16> connect_args_{};
  std::size_t connect_args_used_ = 0;
  std::uint32_t ops_in_flight_ = 0;        // all ops, socket and loop-level

  // Cross-core: inbox_[source] is written by core `source` only. peers_ are the other loops.
  std::vector<std::unique_ptr<SpscQueue<CrossCoreTask>>> inbox_;
  ControlInbox control_inbox_;
  std::vector<Loop*> peers_;
  int doorbell_fd_ = -1;
  std::uint64_t doorbell_value_ = 0;
  bool doorbell_armed_ = false;
  alignas(kCacheLine) std::atomic<bool> sleeping_{false};
  std::atomic<bool> doorbell_rung_{false};  // a producer rang for the current sleep (see ring_if_asleep)
  std::atomic<bool> stop_requested_{false};
  bool stopping_ = false;
  bool exiting_ = false;
  void (*stop_fn_)(Loop&, void*) = nullptr;
  void* stop_context_ = nullptr;
};

}  // namespace ringtun::ring
