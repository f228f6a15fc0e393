// Echo clients: blocking ping-pong (latency, demo) and the many-connection epoll load (requests/s).
#include "echo/client.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <memory>
#include <thread>

#include "common/clock.hpp"
#include "echo/payload.hpp"
#include "echo/server.hpp"

namespace ringtun::echo {

namespace {

// A connected, blocking TCP socket with TCP_NODELAY and send/receive timeouts (connect honours the send timeout).
Result<int> connect_blocking(const net::Address& target, std::uint32_t timeout_ms) {
  const int fd = ::socket(target.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno(errno, "socket");
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout_ms % 1000) * 1000);
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    const int err = errno;
    ::close(fd);
    return fail_errno(err, "setsockopt");
  }
  if (::connect(fd, target.get(), target.length) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EINPROGRESS || err == EAGAIN) return fail(Errc::kTimedOut, "connect");
    return fail_errno(err, "connect");
  }
  return fd;
}

double percentile_us(const std::vector<std::uint64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  // Nearest rank: the smallest sample with at least p of all samples at or below it.
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted_ns.size())));
  if (rank == 0) rank = 1;
  return static_cast<double>(sorted_ns[std::min(rank, sorted_ns.size()) - 1]) / 1000.0;
}

}  // namespace

// ---- PingPongConnection ----

PingPongConnection::~PingPongConnection() {
  close();
}

void PingPongConnection::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status PingPongConnection::connect(const net::Address& target, std::uint32_t timeout_ms) {
  close();
  auto fd = connect_blocking(target, timeout_ms);
  if (!fd) return Unexpected{fd.error()};
  fd_ = *fd;
  return {};
}

Result<std::uint64_t> PingPongConnection::round_trip(const std::uint8_t* data, std::uint32_t size, std::uint8_t* echo) {
  if (fd_ < 0) return fail(Errc::kClosed, "round trip on a closed connection");
  const std::uint64_t start = monotonic_ns();
  for (std::uint32_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd_, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return fail(Errc::kTimedOut, "echo send");
      return fail_errno(errno, "echo send");
    }
    sent += static_cast<std::uint32_t>(n);
  }
  for (std::uint32_t got = 0; got < size;) {
    const ssize_t n = ::recv(fd_, echo + got, size - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return fail(Errc::kTimedOut, "waiting for the echo");
      return fail_errno(errno, "echo recv");
    }
    if (n == 0) return fail(Errc::kClosed, "server closed the connection before echoing everything");
    got += static_cast<std::uint32_t>(n);
  }
  const std::uint64_t rtt = monotonic_ns() - start;
  if (std::memcmp(data, echo, size) != 0) return fail(Errc::kProtocol, "echo differs from what was sent");
  return rtt;
}

// ---- latency ----

Result<LatencyReport> run_latency(const LatencyOptions& options) {
  if (options.size == 0 || options.requests == 0) return fail(Errc::kInvalidArgument, "latency: size and requests > 0");
  PingPongConnection conn;
  RINGTUN_TRY(conn.connect(options.target, options.timeout_ms));
  std::vector<std::uint8_t> request(options.size);
  std::vector<std::uint8_t> echo(options.size);
  std::vector<std::uint64_t> samples;
  samples.reserve(options.requests);
  const std::uint64_t stream = mix64(monotonic_ns());
  const std::uint64_t total = std::uint64_t{options.warmup} + options.requests;
  for (std::uint64_t i = 0; i < total; ++i) {
    fill_payload(request.data(), request.size(), stream, i);
    auto rtt = conn.round_trip(request.data(), options.size, echo.data());
    if (!rtt) return Unexpected{rtt.error()};
    if (i >= options.warmup) samples.push_back(*rtt);
  }
  std::sort(samples.begin(), samples.end());
  LatencyReport r;
  r.requests = samples.size();
  r.p50_us = percentile_us(samples, 0.50);
  r.p90_us = percentile_us(samples, 0.90);
  r.p99_us = percentile_us(samples, 0.99);
  r.p999_us = percentile_us(samples, 0.999);
  r.max_us = static_cast<double>(samples.back()) / 1000.0;
  double sum = 0;
  for (std::uint64_t s : samples) sum += static_cast<double>(s);
  r.mean_us = sum / static_cast<double>(samples.size()) / 1000.0;
  return r;
}

// ---- requests per second ----

namespace {

struct LoadConnection {
  int fd = -1;
  std::uint64_t stream = 0;
  std::uint64_t sequence = 0;
  std::uint32_t sent = 0;
  std::uint32_t received = 0;
  bool want_write = false;
  std::uint64_t last_progress_ns = 0;
  std::vector<std::uint8_t> request;
  std::vector<std::uint8_t> echo;
};

struct LoadWindow {
  std::uint64_t warm_end_ns = 0;  // completions before this are warm-up
  std::uint64_t end_ns = 0;       // the run stops here
};

// Drives a share of the connections from one thread: one request outstanding per connection.
class LoadWorker {
 public:
  LoadWorker(std::vector<LoadConnection*> connections, const RpsOptions& options, LoadWindow window)
      : connections_(std::move(connections)), options_(options), window_(window) {}
  ~LoadWorker() {
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }
  LoadWorker(const LoadWorker&) = delete;
  LoadWorker& operator=(const LoadWorker&) = delete;

  Status run() noexcept {
    const std::uint64_t wall_start = monotonic_ns();
    const std::uint64_t cpu_start = thread_cpu_ns();
    Status status = drive();
    const std::uint64_t wall = monotonic_ns() - wall_start;
    busy_ = wall > 0 ? static_cast<double>(thread_cpu_ns() - cpu_start) / static_cast<double>(wall) : 0;
    return status;
  }

  std::uint64_t completed() const noexcept { return completed_; }
  double busy() const noexcept { return busy_; }

 private:
  static std::uint64_t thread_cpu_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
  }

  Status drive() noexcept {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return fail_errno(errno, "epoll_create1");
    std::uint64_t now = monotonic_ns();
    for (LoadConnection* c : connections_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = c;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd, &ev) != 0) return fail_errno(errno, "epoll_ctl");
      c->last_progress_ns = now;
      RINGTUN_TRY(issue(c));
    }
    epoll_event events[256];
    std::uint64_t next_stall_check = now + 100'000'000ULL;
    while (now < window_.end_ns) {
      const int n = epoll_wait(epoll_fd_, events, 256, 50);
      if (n < 0 && errno != EINTR) return fail_errno(errno, "epoll_wait");
      now = monotonic_ns();
      for (int i = 0; i < n; ++i) {
        RINGTUN_TRY(on_ready(static_cast<LoadConnection*>(events[i].data.ptr), events[i].events, now));
      }
      if (now >= next_stall_check) {
        next_stall_check = now + 100'000'000ULL;
        for (const LoadConnection* c : connections_) {
          if (now - c->last_progress_ns > std::uint64_t{options_.timeout_ms} * 1'000'000ULL) {
            return fail(Errc::kTimedOut, "a connection got no echo in time");
          }
        }
      }
    }
    return {};
  }

  Status issue(LoadConnection* c) noexcept {
    fill_payload(c->request.data(), c->request.size(), c->stream, c->sequence);
    c->sent = 0;
    c->received = 0;
    return write_some(c);
  }

  Status write_some(LoadConnection* c) noexcept {
    const auto size = static_cast<std::uint32_t>(c->request.size());
    while (c->sent < size) {
      const ssize_t n = ::send(c->fd, c->request.data() + c->sent, size - c->sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return fail_errno(errno, "load send");
        break;
      }
      c->sent += static_cast<std::uint32_t>(n);
    }
    const bool want_write = c->sent < size;
    if (want_write != c->want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want_write ? EPOLLOUT : 0u);
      ev.data.ptr = c;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev) != 0) return fail_errno(errno, "epoll_ctl");
      c->want_write = want_write;
    }
    return {};
  }

  Status on_ready(LoadConnection* c, std::uint32_t ready, std::uint64_t now) noexcept {
    if ((ready & EPOLLOUT) != 0 && c->want_write) RINGTUN_TRY(write_some(c));
    if ((ready & (EPOLLIN | EPOLLERR | EPOLLHUP)) == 0) return {};
    const auto size = static_cast<std::uint32_t>(c->echo.size());
    const ssize_t n = ::recv(c->fd, c->echo.data() + c->received, size - c->received, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return {};
      return fail_errno(errno, "load recv");
    }
    if (n == 0) return fail(Errc::kClosed, "server closed a load connection");
    c->received += static_cast<std::uint32_t>(n);
    c->last_progress_ns = now;
    if (c->received < size) return {};
    if (c->sent < size || std::memcmp(c->request.data(), c->echo.data(), size) != 0) {
      return fail(Errc::kProtocol, "echo differs from what was sent");
    }
    if (now >= window_.warm_end_ns && now < window_.end_ns) ++completed_;
    ++c->sequence;
    return issue(c);
  }

  std::vector<LoadConnection*> connections_;
  const RpsOptions& options_;
  LoadWindow window_;
  int epoll_fd_ = -1;
  std::uint64_t completed_ = 0;
  double busy_ = 0;
};

}  // namespace

Result<RpsReport> run_rps(const RpsOptions& options) {
  if (options.connections == 0 || options.size == 0 || options.threads == 0 || options.seconds <= 0) {
    return fail(Errc::kInvalidArgument, "rps: connections, size, threads and seconds must be > 0");
  }
  std::vector<std::unique_ptr<LoadConnection>> connections;
  struct Closer {
    std::vector<std::unique_ptr<LoadConnection>>& list;
    ~Closer() {
      for (auto& c : list) {
        if (c->fd >= 0) ::close(c->fd);
      }
    }
  } closer{connections};
  const std::uint64_t seed = mix64(monotonic_ns());
  for (std::uint32_t i = 0; i < options.connections; ++i) {
    auto fd = connect_blocking(options.target, options.timeout_ms);
    if (!fd) return Unexpected{fd.error()};
    auto c = std::make_unique<LoadConnection>();
    c->fd = *fd;
    c->stream = seed + i;
    c->request.resize(options.size);
    c->echo.resize(options.size);
    connections.push_back(std::move(c));
    const int flags = fcntl(*fd, F_GETFL);
    if (flags < 0 || fcntl(*fd, F_SETFL, flags | O_NONBLOCK) != 0) return fail_errno(errno, "fcntl O_NONBLOCK");
  }

  const unsigned threads = std::min<unsigned>(options.threads, options.connections);
  LoadWindow window;
  window.warm_end_ns = monotonic_ns() + std::uint64_t{options.warmup_ms} * 1'000'000ULL;
  window.end_ns = window.warm_end_ns + static_cast<std::uint64_t>(options.seconds * 1e9);
  std::vector<std::unique_ptr<LoadWorker>> workers;
  for (unsigned t = 0; t < threads; ++t) {
    std::vector<LoadConnection*> share;
    for (std::uint32_t i = t; i < options.connections; i += threads) share.push_back(connections[i].get());
    workers.push_back(std::make_unique<LoadWorker>(std::move(share), options, window));
  }
  std::vector<Status> results(threads);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      if (!options.cpus.empty()) (void)pin_current_thread(options.cpus[t % options.cpus.size()]);
      results[t] = workers[t]->run();
    });
  }
  for (auto& th : pool) th.join();
  RpsReport report;
  for (unsigned t = 0; t < threads; ++t) {
    if (!results[t]) return Unexpected{results[t].error()};
    report.requests += workers[t]->completed();
    report.client_busy += workers[t]->busy() / threads;
  }
  report.seconds = options.seconds;
  report.rps = static_cast<double>(report.requests) / report.seconds;
  return report;
}

}  // namespace ringtun::echo
