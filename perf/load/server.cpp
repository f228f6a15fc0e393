// Echo and sink services on the ring. Each connection is a heap object owned by its loop; it deletes itself in
// on_close(). Echo: received chunks are queued (the lent buffers themselves, no copy) and sent back in one gather
// send per turn; at kPauseAt queued chunks receiving stops until sends drain the queue to kResumeAt (chunks already
// completed still arrive after recv_stop(), so the queue is a vector that may grow, not a fixed array).
// Sink: each chunk is counted (and hashed when the request asks for it) and recycled at once.
#include "load/server.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "load/payload.hpp"
#include "ring/loop.hpp"
#include "ring/runtime.hpp"

namespace ringtun::bench {
namespace {

using ring::Loop;
using ring::RecvBuffer;
using ring::SocketId;

class Connection : public ring::SocketHandler {
 public:
  void start(Loop& loop, SocketId id) noexcept {
    id_ = id;
    if (!loop.recv_start(id_)) close(loop);
  }

 protected:
  void close(Loop& loop) noexcept {
    if (closing_) return;
    closing_ = true;
    loop.close(id_);
  }

  SocketId id_;
  bool closing_ = false;
};

class EchoConnection final : public Connection {
 public:
  EchoConnection() { queue_.reserve(kPauseAt * 2); }

  void on_recv(Loop& loop, SocketId, int res, const RecvBuffer& buffer) override {
    if (res <= 0) {
      eof_ = true;
      if (queue_.size() == head_ || res < 0) close(loop);
      return;
    }
    if (closing_) {
      loop.recycle(buffer);
      return;
    }
    RecvBuffer chunk = buffer;
    chunk.size = static_cast<std::uint32_t>(res);
    queue_.push_back(chunk);
    if (queue_.size() - head_ >= kPauseAt && !paused_) {
      paused_ = true;
      if (!loop.recv_stop(id_)) close(loop);
    }
    if (in_flight_ == 0) loop.request_flush(id_);
  }

  void on_flush(Loop& loop, SocketId) override {
    if (closing_ || in_flight_ != 0 || queue_.size() == head_) return;
    const std::size_t n = std::min<std::size_t>(queue_.size() - head_, kMaxIov);
    for (std::size_t i = 0; i < n; ++i) {
      iov_[i].iov_base = queue_[head_ + i].data;
      iov_[i].iov_len = queue_[head_ + i].size;
    }
    in_flight_ = static_cast<unsigned>(n);
    if (!loop.send(id_, iov_, in_flight_)) close(loop);
  }

  void on_send(Loop& loop, SocketId, int res) override {
    for (; in_flight_ > 0; --in_flight_) loop.recycle(queue_[head_++]);
    if (head_ == queue_.size()) {
      queue_.clear();
      head_ = 0;
    }
    if (res < 0) {
      close(loop);
      return;
    }
    if (closing_) return;
    if (queue_.size() > head_) loop.request_flush(id_);
    if (eof_) {
      if (queue_.size() == head_) close(loop);
      return;
    }
    if (paused_ && queue_.size() - head_ <= kResumeAt) {
      paused_ = false;
      if (!loop.recv_start(id_)) close(loop);
    }
  }

  void on_close(Loop& loop, SocketId) override {
    for (std::size_t i = head_; i < queue_.size(); ++i) loop.recycle(queue_[i]);
    delete this;
  }

 private:
  static constexpr std::size_t kMaxIov = 16;
  static constexpr std::size_t kPauseAt = 16;
  static constexpr std::size_t kResumeAt = 4;

  std::vector<RecvBuffer> queue_;  // queue_[head_..] wait; the first in_flight_ of them are in the send
  std::size_t head_ = 0;
  iovec iov_[kMaxIov];
  unsigned in_flight_ = 0;
  bool paused_ = false;
  bool eof_ = false;
};

class SinkConnection final : public Connection {
 public:
  void on_recv(Loop& loop, SocketId, int res, const RecvBuffer& buffer) override {
    if (res <= 0) {
      close(loop);  // EOF or error: a sink connection ends when its client leaves
      return;
    }
    if (!closing_) consume(loop, buffer.data, static_cast<std::size_t>(res));
    loop.recycle(buffer);
  }

  void on_send(Loop& loop, SocketId, int res) override {
    if (res < 0) close(loop);
    // After the reply the client closes; the EOF closes us.
  }

  void on_close(Loop&, SocketId) override { delete this; }

 private:
  void consume(Loop& loop, const std::uint8_t* data, std::size_t size) noexcept {
    if (header_got_ < kSinkRequestSize) {
      const std::size_t take = std::min(size, kSinkRequestSize - header_got_);
      std::memcpy(header_ + header_got_, data, take);
      header_got_ += take;
      data += take;
      size -= take;
      if (header_got_ < kSinkRequestSize) return;
      const auto request = decode_request(header_);
      if (!request) {
        close(loop);
        return;
      }
      request_ = *request;
    }
    if (replied_ || received_ + size > request_.length) {
      close(loop);  // more than the request announced: a protocol error
      return;
    }
    received_ += size;
    if ((request_.flags & kSinkFlagVerify) != 0) hasher_.update(data, size);
    if (received_ == request_.length) {
      replied_ = true;
      const std::uint64_t hash = (request_.flags & kSinkFlagVerify) != 0 ? hasher_.digest() : 0;
      encode_reply(SinkReply{received_, hash}, reply_);
      reply_iov_.iov_base = reply_;
      reply_iov_.iov_len = sizeof reply_;
      if (!loop.send(id_, &reply_iov_, 1)) close(loop);
    }
  }

  std::uint8_t header_[kSinkRequestSize];
  std::size_t header_got_ = 0;
  SinkRequest request_;
  std::uint64_t received_ = 0;
  StreamHasher hasher_;
  bool replied_ = false;
  std::uint8_t reply_[kSinkReplySize];
  iovec reply_iov_{};
};

template <typename Conn>
class Listener final : public ring::SocketHandler {
 public:
  void on_accept(Loop& loop, SocketId, int res) override {
    if (res < 0) return;  // the loop keeps accepting (and backs off on EMFILE)
    (void)ring::net::set_nodelay(res);
    auto* connection = new (std::nothrow) Conn();
    if (connection == nullptr) {
      ::close(res);
      return;
    }
    auto id = loop.adopt(res, connection);
    if (!id) {
      delete connection;
      return;
    }
    connection->start(loop, *id);
  }
};

struct Core {
  Listener<EchoConnection> echo;
  Listener<SinkConnection> sink;
  ring::Timer lifetime;
};

}  // namespace

Result<int> run_services(const ServiceOptions& options) {
  std::vector<int> echo_fds, sink_fds;
  auto close_all = [&] {
    for (int fd : echo_fds) if (fd >= 0) ::close(fd);
    for (int fd : sink_fds) if (fd >= 0) ::close(fd);
  };
  std::string line = "ringtun-bench serve:";
  if (options.has_echo) {
    auto fds = ring::net::listen_tcp_group(options.echo, options.threads);
    if (!fds) return Unexpected{fds.error()};
    echo_fds = std::move(*fds);
    auto bound = ring::net::local_address(echo_fds.front());
    if (!bound) { close_all(); return Unexpected{bound.error()}; }
    line += " echo " + bound->to_string();
  }
  if (options.has_sink) {
    auto fds = ring::net::listen_tcp_group(options.sink, options.threads);
    if (!fds) { close_all(); return Unexpected{fds.error()}; }
    sink_fds = std::move(*fds);
    auto bound = ring::net::local_address(sink_fds.front());
    if (!bound) { close_all(); return Unexpected{bound.error()}; }
    line += " sink " + bound->to_string();
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);

  ring::RuntimeOptions runtime_options;
  runtime_options.threads = options.threads;
  runtime_options.loop.fixed_buffers = 0;  // no send_fixed here: do not pin memory for nothing
  ring::Runtime runtime(runtime_options);
  std::vector<std::unique_ptr<Core>> cores(options.threads);
  struct StopContext {
    ring::Runtime* runtime;
  } stop_context{&runtime};
  auto result = runtime.run([&](Loop& loop) -> Status {
    const unsigned core = loop.core();
    cores[core] = std::make_unique<Core>();
    Core& c = *cores[core];
    if (options.has_echo) {
      const int fd = std::exchange(echo_fds[core], -1);
      auto id = loop.adopt(fd, &c.echo);
      if (!id) return Unexpected{id.error()};
      RINGTUN_TRY(loop.accept_start(*id));
    }
    if (options.has_sink) {
      const int fd = std::exchange(sink_fds[core], -1);
      auto id = loop.adopt(fd, &c.sink);
      if (!id) return Unexpected{id.error()};
      RINGTUN_TRY(loop.accept_start(*id));
    }
    if (core == 0) {
      c.lifetime.set_callback([](void* ctx) { static_cast<StopContext*>(ctx)->runtime->stop(0); }, &stop_context);
      loop.timers().schedule(c.lifetime, std::uint64_t{options.max_seconds} * 1000);
      loop.set_stop_handler([](Loop& l, void* ctx) {
        l.timers().cancel(static_cast<Core*>(ctx)->lifetime);
        l.exit();
      }, &c);
    }
    return {};
  });
  close_all();
  return result;
}

}  // namespace ringtun::bench
