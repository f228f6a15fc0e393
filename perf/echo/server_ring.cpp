// The ring echo server: a ring::Runtime with one Loop per worker, each with its own SO_REUSEPORT listener.
//
// Data path per connection: a multishot recv lends each received chunk from the loop's provided buffer ring; the
// connection queues the lent buffers, and at the end of the turn (on_flush) sends up to kMaxIovPerSend of them
// back in ONE gather send whose iovec array lives in the connection. When the send completes, those buffers go
// back to the pool. A peer that sends faster than it reads makes the queue grow: at kPauseAt queued chunks the
// connection stops receiving (recv_stop) and resumes when its sends drain it to kResumeAt.
//
// Why the queue is a chain through a per-core array and not a fixed array in the connection: recv_stop() cannot
// stop chunks that the kernel has already completed, and with DEFER_TASKRUN one turn can deliver a whole socket
// receive buffer's worth (measured: dozens of 16 KiB chunks after the stop). Any fixed per-connection capacity
// can overflow. But every queued chunk IS a lent buffer of this core's pool, so linking queued chunks by buffer
// id (BufferChain, one slot per pool buffer) holds any number of them with no allocation and no per-connection
// capacity; the pool size bounds the total, and the loop's -ENOBUFS parking handles an empty pool.
// Ownership: the Runtime owns the loops; RingCore (one per loop) owns the listener handler, the chain storage and
// publishes counters; each EchoConnection is heap-allocated on accept and deletes itself in on_close.
// Thread rules: everything below runs on its loop's thread, except RingEchoServer's public methods.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>

#include "common/log.hpp"
#include "echo/server.hpp"
#include "ring/loop.hpp"
#include "ring/runtime.hpp"

namespace ringtun::echo {
namespace {

using ring::Loop;
using ring::RecvBuffer;
using ring::SocketId;

constexpr std::uint64_t kPublishIntervalMs = 20;

// Links lent receive buffers into per-connection FIFOs: next_[id] is the buffer queued after buffer `id`.
// A buffer is in at most one queue (it is lent to one connection), so one slot per pool buffer is enough.
class BufferChain {
 public:
  static constexpr std::uint16_t kNone = 0xFFFF;  // pool ids are < 32768

  explicit BufferChain(std::uint32_t pool_count) : next_(pool_count, kNone), size_(pool_count, 0) {}

  struct Queue {
    std::uint16_t head = kNone;
    std::uint16_t tail = kNone;
    std::uint32_t count = 0;
  };

  void push(Queue& q, std::uint16_t id, std::uint32_t size) noexcept {
    next_[id] = kNone;
    size_[id] = size;
    if (q.count == 0) {
      q.head = id;
    } else {
      next_[q.tail] = id;
    }
    q.tail = id;
    ++q.count;
  }
  std::uint16_t pop(Queue& q) noexcept {
    const std::uint16_t id = q.head;
    q.head = next_[id];
    if (--q.count == 0) q.tail = kNone;
    return id;
  }
  std::uint16_t next(std::uint16_t id) const noexcept { return next_[id]; }
  std::uint32_t size(std::uint16_t id) const noexcept { return size_[id]; }

 private:
  std::vector<std::uint16_t> next_;
  std::vector<std::uint32_t> size_;
};

class EchoConnection final : public ring::SocketHandler {
 public:
  EchoConnection(CoreCounters& counters, BufferChain& chain) noexcept : counters_(counters), chain_(chain) {}

  void start(Loop& loop, SocketId id) noexcept {
    id_ = id;
    if (!loop.recv_start(id_)) close(loop);
  }

  void on_recv(Loop& loop, SocketId, int res, const RecvBuffer& buffer) override {
    if (res > 0) {
      if (closing_) {
        loop.recycle(buffer);
        return;
      }
      CoreCounters::add(counters_.reads, 1);
      if (paused_) CoreCounters::add(counters_.late_chunks, 1);
      enqueue(loop, buffer.id, static_cast<std::uint32_t>(res));
      return;
    }
    if (res == 0) {
      eof_ = true;
      if (queue_.count == 0) close(loop);
      return;
    }
    close(loop);  // a receive error: the connection is done (the loop never reports -ENOBUFS or our cancels)
  }

  void on_flush(Loop& loop, SocketId) override {
    if (closing_ || in_flight_ != 0 || queue_.count == 0) return;
    // What waits goes out in one gather send; the loop advances iov_ in place on partial sends.
    std::uint16_t id = queue_.head;
    const std::uint32_t n = std::min(queue_.count, kMaxIovPerSend);
    for (std::uint32_t i = 0; i < n; ++i, id = chain_.next(id)) {
      iov_[i].iov_base = loop.recv_pool().data(id);
      iov_[i].iov_len = chain_.size(id);
    }
    in_flight_ = n;
    if (!loop.send(id_, iov_, n)) close(loop);
  }

  void on_send(Loop& loop, SocketId, int res) override {
    if (res < 0) {
      close(loop);
      return;
    }
    CoreCounters::add(counters_.writes, 1);
    CoreCounters::add(counters_.bytes, static_cast<std::uint64_t>(res));
    for (; in_flight_ > 0; --in_flight_) recycle(loop, chain_.pop(queue_));
    if (closing_) return;
    if (queue_.count > 0) loop.request_flush(id_);  // chunks that came in while the send was in flight
    if (eof_) {
      if (queue_.count == 0) close(loop);
      return;
    }
    if (paused_ && queue_.count <= kResumeAt) {
      paused_ = false;
      if (!loop.recv_start(id_)) close(loop);
    }
  }

  void on_close(Loop& loop, SocketId) override {
    // Every operation is reaped: whatever the queue still holds (also what a failed send referenced) goes back.
    while (queue_.count > 0) recycle(loop, chain_.pop(queue_));
    CoreCounters::add(counters_.closed, 1);
    delete this;
  }

 private:
  static constexpr std::uint32_t kMaxIovPerSend = 16;  // 256 KiB of 16 KiB chunks per send
  static constexpr std::uint32_t kPauseAt = 16;        // queued chunks (in flight included)
  static constexpr std::uint32_t kResumeAt = 4;

  void enqueue(Loop& loop, std::uint16_t id, std::uint32_t size) noexcept {
    chain_.push(queue_, id, size);
    if (queue_.count > high_water_) {
      high_water_ = queue_.count;
      if (high_water_ > counters_.queue_high_water.load(std::memory_order_relaxed)) {
        counters_.queue_high_water.store(high_water_, std::memory_order_relaxed);
      }
    }
    if (queue_.count >= kPauseAt && !paused_ && !eof_) {
      paused_ = true;
      CoreCounters::add(counters_.paused, 1);
      if (!loop.recv_stop(id_)) close(loop);
    }
    if (in_flight_ == 0) loop.request_flush(id_);
  }

  void recycle(Loop& loop, std::uint16_t id) noexcept {
    loop.recycle(RecvBuffer{loop.recv_pool().data(id), chain_.size(id), id});
  }

  void close(Loop& loop) noexcept {
    if (closing_) return;
    closing_ = true;
    loop.close(id_);
  }

  CoreCounters& counters_;
  BufferChain& chain_;
  SocketId id_;
  BufferChain::Queue queue_;   // FIFO of lent buffers; the first in_flight_ of them are in the send in flight
  iovec iov_[kMaxIovPerSend];  // the in-flight send's gather list: must stay valid until on_send()
  std::uint32_t in_flight_ = 0;
  std::uint32_t high_water_ = 0;
  bool paused_ = false;
  bool eof_ = false;
  bool closing_ = false;
};

class Listener final : public ring::SocketHandler {
 public:
  Listener(CoreCounters& counters, BufferChain& chain) noexcept : counters_(counters), chain_(chain) {}

  void on_accept(Loop& loop, SocketId, int res) override {
    if (res < 0) {
      // EMFILE and friends: the loop keeps accepting; say so now and then, not per attempt.
      if (accept_errors_++ % 1024 == 0) LOG_WARN("echo accept: %s", std::strerror(-res));
      return;
    }
    (void)net::set_nodelay(res);  // best effort: an echo still works without it, only slower
    auto* connection = new (std::nothrow) EchoConnection(counters_, chain_);
    if (connection == nullptr) {
      ::close(res);
      return;
    }
    auto id = loop.adopt(res, connection);  // the loop owns the fd from here, also on failure
    if (!id) {
      delete connection;
      return;
    }
    CoreCounters::add(counters_.accepted, 1);
    connection->start(loop, *id);
  }

 private:
  CoreCounters& counters_;
  BufferChain& chain_;
  std::uint64_t accept_errors_ = 0;
};

// One per loop: created on the loop's thread in init, destroyed after the runtime stopped.
struct RingCore {
  RingCore(Loop& l, CoreCounters& c) : loop(l), counters(c), chain(l.recv_pool().count()), listener(c, chain) {
    publish_timer.set_callback(&RingCore::on_publish_timer, this);
  }

  void publish() noexcept {
    const ring::LoopStats& s = loop.stats();
    constexpr auto kRelaxed = std::memory_order_relaxed;
    counters.iterations.store(s.turns, kRelaxed);
    counters.syscalls.store(s.turns, kRelaxed);  // one io_uring_enter per turn (strace -c agrees)
    counters.events.store(s.cqes, kRelaxed);
    counters.stale.store(s.stale_cqes, kRelaxed);
    counters.enobufs.store(s.enobufs, kRelaxed);
  }

  static void on_publish_timer(void* context) {
    auto* self = static_cast<RingCore*>(context);
    self->publish();
    if (!self->loop.stop_requested()) self->loop.timers().schedule(self->publish_timer, kPublishIntervalMs);
  }

  static void on_stop(Loop& loop, void* context) {
    auto* self = static_cast<RingCore*>(context);
    // The timer must not outlive the wheel it is filed in, and the wheel dies with the loop.
    loop.timers().cancel(self->publish_timer);
    self->publish();
    self->counters.retire_cpu_clock();
    loop.exit();
  }

  Loop& loop;
  CoreCounters& counters;
  BufferChain chain;
  Listener listener;
  ring::Timer publish_timer;
};

class RingEchoServer final : public EchoServer {
 public:
  RingEchoServer(const ServerOptions& options, const net::Address& bound, std::vector<int> listeners)
      : address_(bound),
        threads_(options.threads),
        runtime_(make_runtime_options(options)),
        listen_fds_(std::move(listeners)) {
    for (unsigned i = 0; i < threads_; ++i) {
      counters_.push_back(std::make_unique<CoreCounters>());
      cores_.emplace_back();
    }
  }

  ~RingEchoServer() override {
    // Handlers (listeners, timers) go before the runtime's loops: declared after runtime_, destroyed first.
    for (int fd : listen_fds_) {
      if (fd >= 0) ::close(fd);  // never handed to a loop (the runtime failed before that core's init)
    }
  }

  Result<int> run() override {
    if (stopped_.load()) return exit_code_.load();
    return runtime_.run([this](Loop& loop) { return init_core(loop); });
  }

  void stop(int exit_code) noexcept override {
    if (!stopped_.exchange(true)) exit_code_.store(exit_code);
    runtime_.stop(exit_code);
  }

  ServerSnapshot snapshot() const noexcept override { return sum_counters(counters_); }
  bool serving() const noexcept override { return started_.load() == threads_ && !stopped_.load(); }

  std::string describe() const override {
    std::lock_guard<std::mutex> lock(describe_mutex_);
    return describe_;
  }

  const net::Address& address() const noexcept override { return address_; }

 private:
  static ring::RuntimeOptions make_runtime_options(const ServerOptions& options) {
    ring::RuntimeOptions r;
    r.threads = options.threads;
    r.pin_threads = options.pin_threads;
    r.handle_signals = options.handle_signals;
    r.loop.recv_pools[0].buffers = options.ring_buffers;
    r.loop.recv_pools[0].buffer_size = options.ring_buffer_size;
    return r;
  }

  Status init_core(Loop& loop) {
    const unsigned core = loop.core();
    if (core >= cores_.size()) return fail(Errc::kInvalidArgument, "ring echo server: more loops than listeners");
    CoreCounters& counters = *counters_[core];
    counters.publish_cpu_clock();
    cores_[core] = std::make_unique<RingCore>(loop, counters);
    RingCore& rc = *cores_[core];
    const int fd = listen_fds_[core];
    listen_fds_[core] = -1;  // the loop owns it now, also if adopt() fails
    auto id = loop.adopt(fd, &rc.listener);
    if (!id) return Unexpected{id.error()};
    RINGTUN_TRY(loop.accept_start(*id));
    loop.set_stop_handler(&RingCore::on_stop, &rc);
    loop.timers().schedule(rc.publish_timer, kPublishIntervalMs);
    started_.fetch_add(1);
    if (core == 0) {
      const ring::LoopFeatures& f = loop.features();
      char text[256];
      std::snprintf(text, sizeof text, "io_uring, %u loop%s, mode %s%s%s%s, %u provided buffers x %u B", threads_,
                    threads_ == 1 ? "" : "s", f.mode, f.fixed_files ? ", fixed files" : "",
                    f.registered_ring_fd ? ", registered ring fd" : "", f.ext_arg ? ", ext_arg waits" : "",
                    loop.recv_pool().count(), loop.recv_pool().buffer_size());
      std::lock_guard<std::mutex> lock(describe_mutex_);
      describe_ = text;
    }
    return {};
  }

  net::Address address_;
  unsigned threads_;
  ring::Runtime runtime_;
  std::vector<int> listen_fds_;  // index = core; -1 once adopted by that core's loop
  std::vector<std::unique_ptr<CoreCounters>> counters_;
  std::vector<std::unique_ptr<RingCore>> cores_;  // after runtime_: destroyed before the loops
  std::atomic<bool> stopped_{false};
  std::atomic<int> exit_code_{0};
  std::atomic<unsigned> started_{0};  // loops whose init finished
  mutable std::mutex describe_mutex_;
  std::string describe_ = "io_uring (not started yet)";
};

}  // namespace

Result<std::unique_ptr<EchoServer>> open_ring_server(const ServerOptions& options) {
  if (options.threads == 0) return fail(Errc::kInvalidArgument, "ring echo server: --threads must be >= 1");
  auto fds = net::listen_tcp_group(options.listen, options.threads);
  if (!fds) return Unexpected{fds.error()};
  auto bound = net::local_address(fds->front());
  if (!bound) {
    for (int fd : *fds) ::close(fd);
    return Unexpected{bound.error()};
  }
  return std::unique_ptr<EchoServer>(std::make_unique<RingEchoServer>(options, *bound, std::move(*fds)));
}

}  // namespace ringtun::echo
