// The epoll echo server: the reference the ring server must beat, written the way a careful C server would be.
//
// One worker thread per core (same count as the ring server's loops), each pinned, each with its own epoll
// instance and its own SO_REUSEPORT listener, so neither engine shares anything between cores. Sockets are
// non-blocking and level-triggered: on readiness the worker reads once into the connection's buffer and writes it
// straight back (send with MSG_NOSIGNAL: a peer that vanished is an error, not a SIGPIPE). Reading once per event
// (instead of until EAGAIN) saves the extra read() that would return EAGAIN in ping-pong traffic; anything left unread
// is reported again by the next epoll_wait, which also keeps one busy connection from starving the others. If the write
// is short the rest stays in the buffer, the socket waits for EPOLLOUT only (no EPOLLIN: back-pressure, the peer's data
// waits in the kernel), and reading resumes once the buffer has been sent. Ownership: each worker owns its epoll fd,
// its listener and its connections (freed when the worker exits). Thread rules: a worker's state is touched only by its
// thread; stop()/snapshot() from any thread.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <thread>

#include "common/log.hpp"
#include "echo/server.hpp"
#include "ring/runtime.hpp"

namespace ringtun::echo {
namespace {

constexpr std::size_t kBufferSize = 16384;  // the same as the ring's provided buffers
constexpr int kMaxEvents = 256;

struct Connection {
  int fd = -1;
  std::uint32_t index = 0;        // position in the worker's connection list (swap-remove)
  std::uint32_t pending_off = 0;  // unsent bytes: buffer[pending_off .. pending_off + pending_len)
  std::uint32_t pending_len = 0;
  std::uint8_t buffer[kBufferSize];
};

// Markers for the two non-connection fds in every epoll set (data.ptr identifies the source).
char g_stop_marker;
char g_listener_marker;

class Worker {
 public:
  Worker(int listen_fd, int stop_fd, CoreCounters& counters) noexcept
      : listen_fd_(listen_fd), stop_fd_(stop_fd), counters_(counters) {}
  ~Worker() {
    for (Connection* c : connections_) {
      ::close(c->fd);
      delete c;
    }
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  Status init() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return fail_errno(errno, "epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &g_listener_marker;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) return fail_errno(errno, "epoll_ctl listener");
    ev.data.ptr = &g_stop_marker;  // level-triggered and never read: every worker sees it
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev) != 0) return fail_errno(errno, "epoll_ctl stop");
    return {};
  }

  void run() noexcept {
    counters_.publish_cpu_clock();
    epoll_event events[kMaxEvents];
    bool running = true;
    while (running) {
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        LOG_ERROR("epoll echo: epoll_wait: %s", std::strerror(errno));
        break;
      }
      CoreCounters::add(counters_.iterations, 1);
      CoreCounters::add(counters_.events, static_cast<std::uint64_t>(n));
      CoreCounters::add(counters_.syscalls, 1);
      for (int i = 0; i < n; ++i) {
        void* source = events[i].data.ptr;
        if (source == &g_stop_marker) {
          running = false;
        } else if (source == &g_listener_marker) {
          accept_all();
        } else {
          on_ready(static_cast<Connection*>(source), events[i].events);
        }
      }
    }
    counters_.retire_cpu_clock();
  }

 private:
  void accept_all() noexcept {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      CoreCounters::add(counters_.syscalls, 1);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && accept_errors_++ % 1024 == 0) LOG_WARN("epoll echo: accept: %s", std::strerror(errno));
        return;
      }
      const int one = 1;
      (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto* c = new (std::nothrow) Connection;
      if (c == nullptr) {
        ::close(fd);
        continue;
      }
      c->fd = fd;
      c->index = static_cast<std::uint32_t>(connections_.size());
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = c;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        delete c;
        continue;
      }
      connections_.push_back(c);
      CoreCounters::add(counters_.accepted, 1);
    }
  }

  void on_ready(Connection* c, std::uint32_t ready) noexcept {
    if (c->pending_len > 0) {
      // Waiting for EPOLLOUT: only the rest of the buffer matters now.
      if ((ready & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
      if (!write_pending(c)) return close_connection(c);
      if (c->pending_len > 0) return;  // still blocked
      if (!set_interest(c, EPOLLIN)) return close_connection(c);
      // Level-triggered: if the peer sent more meanwhile, the next epoll_wait reports it.
      return;
    }
    const ssize_t got = ::recv(c->fd, c->buffer, kBufferSize, 0);
    CoreCounters::add(counters_.syscalls, 1);
    if (got > 0) {
      CoreCounters::add(counters_.reads, 1);
      c->pending_off = 0;
      c->pending_len = static_cast<std::uint32_t>(got);
      if (!write_pending(c)) return close_connection(c);
      if (c->pending_len > 0 && !set_interest(c, EPOLLOUT)) return close_connection(c);
      return;
    }
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close_connection(c);  // EOF or a receive error
  }

  // Writes what is pending; false on a fatal error. Leaves pending_len > 0 if the socket is full.
  bool write_pending(Connection* c) noexcept {
    while (c->pending_len > 0) {
      const ssize_t put = ::send(c->fd, c->buffer + c->pending_off, c->pending_len, MSG_NOSIGNAL);
      CoreCounters::add(counters_.writes, 1);
      CoreCounters::add(counters_.syscalls, 1);
      if (put < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN;
      }
      CoreCounters::add(counters_.bytes, static_cast<std::uint64_t>(put));
      c->pending_off += static_cast<std::uint32_t>(put);
      c->pending_len -= static_cast<std::uint32_t>(put);
    }
    return true;
  }

  bool set_interest(Connection* c, std::uint32_t events) noexcept {
    if (events == EPOLLOUT) CoreCounters::add(counters_.paused, 1);
    CoreCounters::add(counters_.syscalls, 1);
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    return epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev) == 0;
  }

  void close_connection(Connection* c) noexcept {
    ::close(c->fd);  // also removes it from the epoll set (we never dup it)
    Connection* last = connections_.back();
    connections_[c->index] = last;
    last->index = c->index;
    connections_.pop_back();
    delete c;
    CoreCounters::add(counters_.closed, 1);
  }

  int epoll_fd_ = -1;
  int listen_fd_;
  int stop_fd_;
  CoreCounters& counters_;
  std::vector<Connection*> connections_;
  std::uint64_t accept_errors_ = 0;
};

class EpollEchoServer final : public EchoServer {
 public:
  EpollEchoServer(const ServerOptions& options, const net::Address& bound, std::vector<int> listeners, int stop_fd)
      : options_(options), address_(bound), listen_fds_(std::move(listeners)), stop_fd_(stop_fd) {
    for (unsigned i = 0; i < options_.threads; ++i) counters_.push_back(std::make_unique<CoreCounters>());
  }
  ~EpollEchoServer() override {
    for (int fd : listen_fds_) {
      if (fd >= 0) ::close(fd);
    }
    ::close(stop_fd_);
  }

  Result<int> run() override {
    int signal_fd = -1;
    if (options_.handle_signals) {
      // Blocked here before the workers exist, so they inherit the mask and only the signalfd sees the signals.
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
      if (signal_fd < 0) return fail_errno(errno, "signalfd");
    }
    std::vector<std::unique_ptr<Worker>> workers;
    Status status;
    for (unsigned i = 0; i < options_.threads; ++i) {
      workers.push_back(std::make_unique<Worker>(listen_fds_[i], stop_fd_, *counters_[i]));
      listen_fds_[i] = -1;  // the worker owns it now
      status = workers.back()->init();
      if (!status) break;
    }
    std::vector<std::thread> threads;
    if (status) {
      const std::vector<unsigned> cpus = ring::Runtime::allowed_cpus();
      for (unsigned i = 0; i < options_.threads; ++i) {
        threads.emplace_back([this, i, &cpus, worker = workers[i].get()] {
          if (options_.pin_threads && !cpus.empty()) (void)pin_current_thread(cpus[i % cpus.size()]);
          started_.fetch_add(1);
          worker->run();
        });
      }
      pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {signal_fd, POLLIN, 0}};
      while (poll(fds, signal_fd >= 0 ? 2 : 1, -1) < 0 && errno == EINTR) {
      }
      stop(0);  // a signal: the first stop() decides the code, so an earlier stop(code) is kept
    }
    for (auto& t : threads) t.join();
    if (signal_fd >= 0) ::close(signal_fd);
    if (!status) return Unexpected{status.error()};
    return exit_code_.load();
  }

  void stop(int exit_code) noexcept override {
    if (stopped_.exchange(true)) return;
    exit_code_.store(exit_code);
    const std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
  }

  ServerSnapshot snapshot() const noexcept override { return sum_counters(counters_); }
  bool serving() const noexcept override { return started_.load() == options_.threads && !stopped_.load(); }

  std::string describe() const override {
    return "epoll, " + std::to_string(options_.threads) + " thread" + (options_.threads == 1 ? "" : "s") +
           ", level-triggered, one read per readiness";
  }

  const net::Address& address() const noexcept override { return address_; }

 private:
  ServerOptions options_;
  net::Address address_;
  std::vector<int> listen_fds_;  // index = worker; -1 once handed to it
  int stop_fd_;                  // eventfd, written once by stop()
  std::vector<std::unique_ptr<CoreCounters>> counters_;
  std::atomic<bool> stopped_{false};
  std::atomic<int> exit_code_{0};
  std::atomic<unsigned> started_{0};  // workers running
};

}  // namespace

Result<std::unique_ptr<EchoServer>> open_epoll_server(const ServerOptions& options) {
  if (options.threads == 0) return fail(Errc::kInvalidArgument, "epoll echo server: --threads must be >= 1");
  auto fds = net::listen_tcp_group(options.listen, options.threads);
  if (!fds) return Unexpected{fds.error()};
  auto bound = net::local_address(fds->front());
  const int stop_fd = bound ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
  if (!bound || stop_fd < 0) {
    const int err = errno;
    for (int fd : *fds) ::close(fd);
    if (!bound) return Unexpected{bound.error()};
    return fail_errno(err, "eventfd");
  }
  return std::unique_ptr<EchoServer>(std::make_unique<EpollEchoServer>(options, *bound, std::move(*fds), stop_fd));
}

}  // namespace ringtun::echo
