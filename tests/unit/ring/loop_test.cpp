#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <thread>
#include <vector>

#include "ring/loop.hpp"
#include "ring/user_data.hpp"
#include "test_support.hpp"

using namespace ringtun;
using ring::Loop;
using ring::RecvBuffer;
using ring::SocketId;
using test::Checksum;

namespace {

// Echoes every byte back, gathering all queued buffers into one send; EOF is answered with a FIN after the data.
class EchoServer : public ring::SocketHandler {
 public:
  void on_accept(Loop& loop, SocketId, int res) override {
    REQUIRE(res >= 0);
    auto id = loop.adopt(res, this);
    REQUIRE(id);
    REQUIRE(loop.recv_start(*id));
    ++accepted;
  }
  void on_recv(Loop& loop, SocketId id, int res, const RecvBuffer& buffer) override {
    Conn& c = conns[id.index];
    if (res <= 0) {
      // With nothing received beyond the send in flight, the FIN is queued behind that send (what this exercises);
      // otherwise the bytes still waiting go first and on_send() shuts down after them.
      c.eof = true;
      if (c.pending.size() == c.in_flight) REQUIRE(loop.shutdown_write(id));
      return;
    }
    c.pending.push_back(buffer);
    if (!loop.send_busy(id)) flush(loop, id, c);
  }
  void on_send(Loop& loop, SocketId id, int res) override {
    Conn& c = conns[id.index];
    REQUIRE(res > 0);
    for (std::size_t i = 0; i < c.in_flight; ++i) {
      loop.recycle(c.pending.front());
      c.pending.pop_front();
    }
    c.in_flight = 0;
    if (c.pending.empty()) return;
    flush(loop, id, c);
    if (c.eof) REQUIRE(loop.shutdown_write(id));
  }
  void on_shutdown(Loop& loop, SocketId id, int) override { loop.close(id); }
  void on_close(Loop& loop, SocketId id) override {
    for (auto& b : conns[id.index].pending) loop.recycle(b);
    conns.erase(id.index);
    ++closed;
  }

  int accepted = 0;
  int closed = 0;

 private:
  struct Conn {
    std::deque<RecvBuffer> pending;
    std::vector<iovec> iov;
    std::size_t in_flight = 0;
    bool eof = false;  // the client's FIN arrived
  };
  void flush(Loop& loop, SocketId id, Conn& c) {
    c.iov.clear();
    for (auto& b : c.pending) c.iov.push_back(iovec{b.data, b.size});
    c.in_flight = c.pending.size();
    REQUIRE(loop.send(id, c.iov.data(), static_cast<unsigned>(c.iov.size())));
  }
  std::map<std::uint32_t, Conn> conns;
};

// Connects, sends `total` random bytes in random-size pieces, shuts down, and checksums what comes back.
class EchoClient : public ring::SocketHandler {
 public:
  EchoClient(std::uint64_t seed, std::size_t total) : rng(seed) {
    data.resize(total);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng.next());
    sent_sum.add(data.data(), data.size());
  }
  void on_connect(Loop& loop, SocketId id, int res) override {
    REQUIRE(res == 0);
    REQUIRE(loop.recv_start(id));
    send_next(loop, id);
  }
  void on_send(Loop& loop, SocketId id, int res) override {
    REQUIRE(res > 0);
    send_next(loop, id);
  }
  void on_recv(Loop& loop, SocketId id, int res, const RecvBuffer& buffer) override {
    if (res > 0) {
      received.add(buffer.data, buffer.size);
      loop.recycle(buffer);
      return;
    }
    got_eof = res == 0;
    loop.close(id);
  }
  void on_close(Loop&, SocketId) override { closed = true; }

  Checksum sent_sum;
  Checksum received;
  bool got_eof = false;
  bool closed = false;

 private:
  void send_next(Loop& loop, SocketId id) {
    if (offset == data.size()) {
      REQUIRE(loop.shutdown_write(id));
      return;
    }
    // Several random-size pieces per send: exercises gathering and partial progress.
    iov.clear();
    for (int i = 0; i < 8 && offset < data.size(); ++i) {
      std::size_t n = std::min<std::size_t>(1 + rng.below(70'000), data.size() - offset);
      iov.push_back(iovec{data.data() + offset, n});
      offset += n;
    }
    REQUIRE(loop.send(id, iov.data(), static_cast<unsigned>(iov.size())));
  }
  test::Xorshift rng;
  std::vector<std::uint8_t> data;
  std::vector<iovec> iov;
  std::size_t offset = 0;
};

}  // namespace

TEST_CASE("user_data round-trips op, slot and generation") {
  ring::UserData ud{ring::Op::kSend, 123456, 0xABCDEF};
  auto back = ring::UserData::decode(ud.encode());
  CHECK(back.op == ring::Op::kSend);
  CHECK(back.index == 123456);
  CHECK(back.generation == 0xABCDEF);
}

TEST_CASE("accept + connect + echo of random sizes, checksummed, over loopback") {
  auto loop = test::make_loop();
  INFO("io_uring mode " << loop->features().mode);
  std::uint16_t port = 0;
  int lfd = test::listen_loopback(128, &port);
  test::set_nonblocking(lfd);
  EchoServer server;
  auto listener = loop->adopt(lfd, &server);
  REQUIRE(listener);
  REQUIRE(loop->accept_start(*listener));

  std::vector<std::unique_ptr<EchoClient>> clients;
  const sockaddr_in addr = test::loopback_addr(port);
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<EchoClient>(100 + i, 1 + (i * 377'777) % 3'000'000));
    auto id = loop->connect(reinterpret_cast<const sockaddr*>(&addr), sizeof addr, 5000, clients.back().get());
    REQUIRE(id);
  }
  REQUIRE(test::run_until(*loop, [&] {
    for (auto& c : clients) {
      if (!c->closed) return false;
    }
    return server.closed == 8;
  }));
  for (auto& c : clients) {
    CHECK(c->got_eof);
    CHECK(c->received.bytes == c->sent_sum.bytes);
    CHECK(c->received.value == c->sent_sum.value);
  }
  CHECK(server.accepted == 8);
  CHECK(loop->stats().stale_cqes == 0);
  CHECK(loop->recv_pool().in_use() == 0);
  loop->close(*listener);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
}

namespace {
// Keeps every buffer it receives (the pool runs dry, or must grow under it), checksumming the bytes.
struct Hoarder : ring::SocketHandler {
  std::vector<RecvBuffer> held;
  Checksum sum;
  bool eof = false;
  void on_recv(Loop&, SocketId, int res, const RecvBuffer& buffer) override {
    if (res > 0) {
      sum.add(buffer.data, buffer.size);
      held.push_back(buffer);
    } else {
      eof = true;
    }
  }
};

std::vector<std::uint8_t> random_bytes(std::size_t size, std::uint64_t seed) {
  std::vector<std::uint8_t> bytes(size);
  test::Xorshift rng(seed);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng.next());
  return bytes;
}

// Writes all of `payload` to the blocking socket `fd` on a thread, then shuts its write side.
std::thread write_then_shut(int fd, const std::vector<std::uint8_t>& payload) {
  return std::thread([fd, &payload] {
    std::size_t off = 0;
    while (off < payload.size()) {
      ssize_t n = ::write(fd, payload.data() + off, payload.size() - off);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
  });
}
}  // namespace

TEST_CASE("multishot recv survives provided-buffer exhaustion and recovers") {
  ring::LoopOptions options;
  options.recv_pools[0] = {4, 4096};
  auto loop = test::make_loop(options);
  auto [client, server] = test::tcp_pair();
  test::set_nonblocking(server);

  Hoarder hoarder;
  auto id = loop->adopt(server, &hoarder);
  REQUIRE(id);
  REQUIRE(loop->recv_start(*id));

  const std::vector<std::uint8_t> payload = random_bytes(256 * 1024, 9);
  Checksum expected;
  expected.add(payload.data(), payload.size());
  std::thread writer = write_then_shut(client, payload);

  std::uint64_t starvations = 0;
  REQUIRE(test::run_until(*loop, [&] {
    if (hoarder.held.size() == options.recv_pools[0].buffers) {
      // The ring is empty and recv has stopped: give everything back; the loop must re-arm by itself.
      CHECK(loop->recv_pool().in_use() == options.recv_pools[0].buffers);
      for (auto& b : hoarder.held) loop->recycle(b);
      hoarder.held.clear();
      ++starvations;
    }
    return hoarder.eof;
  }));
  writer.join();
  for (auto& b : hoarder.held) loop->recycle(b);
  CHECK(starvations > 3);
  CHECK(loop->stats().enobufs > 0);
  CHECK(hoarder.sum.bytes == expected.bytes);
  CHECK(hoarder.sum.value == expected.value);
  CHECK(loop->recv_pool().high_water() == options.recv_pools[0].buffers);
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("a provided buffer ring is given buffers as the load needs them, not all at once") {
  ring::LoopOptions options;
  options.recv_pools[0] = {1024, 4096};
  auto loop = test::make_loop(options);
  // At first only the first 64 buffers: the kernel writes every buffer it is given in turn, so an idle or lightly
  // loaded core keeps 64 x 4 KiB resident, not 4 MiB.
  CHECK(loop->recv_pool().given() == ring::ProvidedBufferRing::kInitialBuffers);
  auto [client, server] = test::tcp_pair();
  test::set_nonblocking(server);
  Hoarder hoarder;
  auto id = loop->adopt(server, &hoarder);
  REQUIRE(id);
  REQUIRE(loop->recv_start(*id));
  const std::vector<std::uint8_t> payload = random_bytes(1536 * 1024, 11);  // over 256 buffers' worth, under 1,024
  Checksum expected;
  expected.add(payload.data(), payload.size());
  std::thread writer = write_then_shut(client, payload);
  REQUIRE(test::run_until(*loop, [&] { return hoarder.eof; }));
  writer.join();
  CHECK(hoarder.sum.bytes == expected.bytes);
  CHECK(hoarder.sum.value == expected.value);
  const std::uint32_t held = loop->recv_pool().in_use();
  CHECK(held == hoarder.held.size());
  CHECK(held > 256);
  // Doubled as the buffers lent out passed half of those given: never short of what was held, never past count.
  CHECK(loop->recv_pool().given() >= held);
  CHECK(loop->recv_pool().given() <= 1024);
  for (auto& b : hoarder.held) loop->recycle(b);
  CHECK(loop->recv_pool().in_use() == 0);
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("gather send of 1,000 iovecs completes across partial sends, in order") {
  auto loop = test::make_loop();
  auto [client, server] = test::tcp_pair();
  // Small kernel buffers on both sides force the 1,000-iovec batch (~2.5 MB) to leave in many partial sends.
  // (Not tiny: a receive buffer of a few KB makes TCP wait for its persist timer between window updates.)
  int sndbuf = 16384;
  int rcvbuf = 65536;
  setsockopt(server, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  setsockopt(client, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  test::set_nonblocking(server);

  struct Sender : ring::SocketHandler {
    int result = 0;
    bool done = false;
    void on_send(Loop&, SocketId, int res) override {
      result = res;
      done = true;
    }
  } sender;
  auto id = loop->adopt(server, &sender);
  REQUIRE(id);

  test::Xorshift rng(5);
  std::vector<std::vector<std::uint8_t>> pieces(1000);
  std::vector<iovec> iov;
  Checksum expected;
  std::size_t total = 0;
  for (auto& piece : pieces) {
    piece.resize(1 + rng.below(5000));
    for (auto& b : piece) b = static_cast<std::uint8_t>(rng.next());
    expected.add(piece.data(), piece.size());
    iov.push_back(iovec{piece.data(), piece.size()});
    total += piece.size();
  }
  Checksum received;
  std::thread reader([fd = client, &received, total] {
    std::vector<std::uint8_t> buf(1500);
    while (received.bytes < total) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n <= 0) break;
      received.add(buf.data(), static_cast<std::size_t>(n));
      if (received.bytes < 200'000) std::this_thread::sleep_for(std::chrono::microseconds(200));  // slow start
    }
  });
  REQUIRE(loop->send(*id, iov.data(), static_cast<unsigned>(iov.size())));
  CHECK(loop->send_busy(*id));
  // A second send while one is in flight is refused, not queued behind the caller's back.
  iovec extra{pieces[0].data(), 1};
  auto second = loop->send(*id, &extra, 1);
  CHECK_FALSE(second);
  REQUIRE(test::run_until(*loop, [&] { return sender.done; }));
  reader.join();
  CHECK(sender.result == static_cast<int>(total));
  CHECK(loop->stats().send_partial > 0);
  CHECK(received.bytes == expected.bytes);
  CHECK(received.value == expected.value);
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("close with operations in flight reaps everything, then a stale id is refused") {
  auto loop = test::make_loop();
  std::uint16_t port = 0;
  int lfd = test::listen_loopback(128, &port);
  test::set_nonblocking(lfd);
  auto [client, server] = test::tcp_pair();
  int small = 4096;
  setsockopt(server, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  test::set_nonblocking(server);

  struct Counter : ring::SocketHandler {
    int closes = 0;
    int callbacks_after_close = 0;
    bool closing = false;
    void on_send(Loop&, SocketId, int) override { callbacks_after_close += closing; }
    void on_recv(Loop& loop, SocketId, int res, const RecvBuffer& b) override {
      callbacks_after_close += closing;
      if (res > 0) loop.recycle(b);
    }
    void on_close(Loop&, SocketId) override { ++closes; }
  } handler;

  auto listener = loop->adopt(lfd, &handler);
  auto conn = loop->adopt(server, &handler);
  REQUIRE(listener);
  REQUIRE(conn);
  REQUIRE(loop->accept_start(*listener));   // multishot accept armed
  REQUIRE(loop->recv_start(*conn));         // multishot recv armed
  std::vector<std::uint8_t> big(8 << 20, 0x5a);
  iovec iov{big.data(), big.size()};
  REQUIRE(loop->send(*conn, &iov, 1));      // a send that cannot finish: the peer reads nothing
  REQUIRE(loop->shutdown_write(*conn));     // queued behind the send
  loop->run_once(0);
  loop->run_once(0);
  CHECK(loop->send_busy(*conn));
  handler.closing = true;
  loop->close(*conn);
  loop->close(*listener);
  CHECK_FALSE(loop->alive(*conn));
  REQUIRE(test::run_until(*loop, [&] { return handler.closes == 2; }));
  CHECK(handler.callbacks_after_close == 0);
  CHECK(loop->stats().sockets_open == 0);
  CHECK(loop->stats().stale_cqes == 0);
  // Both ids are stale now: every call is refused with kNotFound.
  auto r = loop->send(*conn, &iov, 1);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::kNotFound);
  CHECK(loop->recv_start(*listener).error().code() == Errc::kNotFound);
  ::close(client);
}

namespace {
// Takes a connect's result (1 until it comes) and closes the socket.
struct Connector : ring::SocketHandler {
  int result = 1;
  void on_connect(Loop& loop, SocketId id, int res) override {
    result = res;
    loop.close(id);
  }
};
}  // namespace

TEST_CASE("connect: refused and timed out are reported as such") {
  auto loop = test::make_loop();
  SUBCASE("refused") {
    std::uint16_t port = 0;
    int lfd = test::listen_loopback(1, &port);
    ::close(lfd);  // nothing listens there now
    Connector c;
    sockaddr_in addr = test::loopback_addr(port);
    REQUIRE(loop->connect(reinterpret_cast<const sockaddr*>(&addr), sizeof addr, 2000, &c));
    REQUIRE(test::run_until(*loop, [&] { return c.result != 1; }));
    CHECK(c.result == -ECONNREFUSED);
    // The handler must outlive its socket: drain before `c` goes out of scope.
    REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  }
  SUBCASE("timeout") {
    // A listener whose accept queue is full drops SYNs, so a connect to it hangs until our timeout.
    std::uint16_t port = 0;
    int lfd = test::listen_loopback(0, &port);
    sockaddr_in addr = test::loopback_addr(port);
    std::vector<int> fillers;
    for (int i = 0; i < 4; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
      fillers.push_back(fd);
    }
    Connector c;
    REQUIRE(loop->connect(reinterpret_cast<const sockaddr*>(&addr), sizeof addr, 300, &c));
    REQUIRE(test::run_until(*loop, [&] { return c.result != 1; }));
    CHECK(c.result == -ETIMEDOUT);
    REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
    for (int fd : fillers) ::close(fd);
    ::close(lfd);
  }
}

TEST_CASE("connect: 40 at once (more than wait for one submit), each to its own address, each told its result") {
  auto loop = test::make_loop();
  std::uint16_t open_port = 0, closed_port = 0;
  const int lfd = test::listen_loopback(128, &open_port);
  ::close(test::listen_loopback(1, &closed_port));  // nothing listens there now
  std::vector<Connector> connectors(40);
  for (std::size_t i = 0; i < connectors.size(); ++i) {
    const sockaddr_in addr = test::loopback_addr(i % 2 == 0 ? open_port : closed_port);
    REQUIRE(
        loop->connect(reinterpret_cast<const sockaddr*>(&addr), sizeof addr, i % 3 == 0 ? 0 : 5000, &connectors[i]));
  }
  REQUIRE(test::run_until(*loop, [&] {
    return std::all_of(connectors.begin(), connectors.end(), [](const Connector& c) { return c.result != 1; });
  }));
  for (std::size_t i = 0; i < connectors.size(); ++i) {
    CAPTURE(i);
    CHECK(connectors[i].result == (i % 2 == 0 ? 0 : -ECONNREFUSED));
  }
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(lfd);
}

TEST_CASE("shutdown_write waits for the pending send: the FIN never overtakes data") {
  auto loop = test::make_loop();
  auto [client, server] = test::tcp_pair();
  test::set_nonblocking(server);
  struct Quiet : ring::SocketHandler {
    int shutdown_res = 1;
    void on_shutdown(Loop&, SocketId, int res) override { shutdown_res = res; }
  } h;
  auto id = loop->adopt(server, &h);
  REQUIRE(id);
  std::vector<std::uint8_t> data(3 << 20);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 31);
  Checksum expected;
  expected.add(data.data(), data.size());
  iovec iov{data.data(), data.size()};
  REQUIRE(loop->send(*id, &iov, 1));
  REQUIRE(loop->shutdown_write(*id));
  Checksum got;
  std::thread reader([fd = client, &got] {
    std::vector<std::uint8_t> buf(65536);
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) got.add(buf.data(), static_cast<std::size_t>(n));
  });
  REQUIRE(test::run_until(*loop, [&] { return h.shutdown_res != 1; }));
  reader.join();  // ends at the FIN
  CHECK(h.shutdown_res == 0);
  CHECK(got.bytes == expected.bytes);
  CHECK(got.value == expected.value);
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("shutdown_write on an idle socket: made at once, no ring operation; on_shutdown runs from the loop") {
  auto loop = test::make_loop();
  auto [client, server] = test::tcp_pair();
  test::set_nonblocking(server);
  struct Recorder : ring::SocketHandler {
    bool inside = false;
    int called_inside = 0;
    int shutdown_res = 1;
    void on_shutdown(Loop&, SocketId, int res) override {
      called_inside += inside;
      shutdown_res = res;
    }
  } h;
  auto id = loop->adopt(server, &h);
  REQUIRE(id);
  loop->run_once(0);
  const auto cqes_before = loop->stats().cqes;
  h.inside = true;
  REQUIRE(loop->shutdown_write(*id));
  h.inside = false;
  CHECK(h.shutdown_res == 1);  // not reported from inside the call
  char byte;
  CHECK(::read(client, &byte, 1) == 0);  // but the FIN is already out
  REQUIRE(test::run_until(*loop, [&] { return h.shutdown_res != 1; }));
  CHECK(h.shutdown_res == 0);
  CHECK(h.called_inside == 0);
  CHECK(loop->stats().cqes == cqes_before);  // the kernel would run an IORING_OP_SHUTDOWN on a worker thread
  char msg[] = "late";
  iovec iov{msg, 4};
  CHECK_FALSE(loop->send(*id, &iov, 1));  // nothing goes after the FIN
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("shutdown_write from inside on_send: one shutdown, one on_shutdown") {
  auto loop = test::make_loop();
  auto [client, server] = test::tcp_pair();
  test::set_nonblocking(server);
  struct LastSend : ring::SocketHandler {
    int sends = 0;
    int shutdowns = 0;
    void on_send(Loop& loop, SocketId id, int res) override {
      CHECK(res == 5);
      ++sends;
      REQUIRE(loop.shutdown_write(id));  // what EdgeStream does after the last bytes before a FIN
    }
    void on_shutdown(Loop&, SocketId, int res) override {
      CHECK(res == 0);
      ++shutdowns;
    }
  } h;
  auto id = loop->adopt(server, &h);
  REQUIRE(id);
  char msg[] = "last.";
  iovec iov{msg, 5};
  REQUIRE(loop->send(*id, &iov, 1));
  REQUIRE(test::run_until(*loop, [&] { return h.shutdowns > 0; }));
  for (int i = 0; i < 3; ++i) loop->run_once(0);
  CHECK(h.sends == 1);
  CHECK(h.shutdowns == 1);
  char in[8];
  CHECK(::read(client, in, sizeof in) == 5);
  CHECK(::read(client, in, sizeof in) == 0);  // then the FIN
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("send_fixed sends from the registered slab and the pool counts buffers") {
  auto loop = test::make_loop();
  auto* pool = loop->fixed_pool();
  if (pool == nullptr) {
    MESSAGE("no registered buffers on this machine (RLIMIT_MEMLOCK?): skipping");
    return;
  }
  auto [client, server] = test::tcp_pair();
  test::set_nonblocking(server);
  struct Sender : ring::SocketHandler {
    int result = 0;
    void on_send(Loop&, SocketId, int res) override { result = res; }
  } h;
  auto id = loop->adopt(server, &h);
  REQUIRE(id);
  auto buf = pool->acquire();
  REQUIRE(buf);
  CHECK(pool->in_use() == 1);
  for (std::uint32_t i = 0; i < buf->size; ++i) buf->data[i] = static_cast<std::uint8_t>(i ^ 0x33);
  Checksum expected;
  expected.add(buf->data, buf->size);
  REQUIRE(loop->send_fixed(*id, *buf, buf->size));
  REQUIRE(test::run_until(*loop, [&] { return h.result != 0; }));
  CHECK(h.result == static_cast<int>(buf->size));
  std::vector<std::uint8_t> in(buf->size);
  std::size_t off = 0;
  while (off < in.size()) {
    ssize_t n = ::read(client, in.data() + off, in.size() - off);
    REQUIRE(n > 0);
    off += static_cast<std::size_t>(n);
  }
  Checksum got;
  got.add(in.data(), in.size());
  CHECK(got.value == expected.value);
  if (loop->features().send_zc) {  // again as send_zc_fixed: the registered buffer goes out without a copy
    REQUIRE(loop->set_send_zc(*id, true));
    h.result = 0;
    REQUIRE(loop->send_fixed(*id, *buf, buf->size));
    REQUIRE(test::run_until(*loop, [&] { return h.result != 0; }));
    CHECK(h.result == static_cast<int>(buf->size));
    CHECK(loop->stats().send_zc == 1);
    off = 0;
    while (off < in.size()) {
      ssize_t n = ::read(client, in.data() + off, in.size() - off);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
    Checksum again;
    again.add(in.data(), in.size());
    CHECK(again.value == expected.value);
  }
  pool->release(*buf);
  CHECK(pool->in_use() == 0);
  CHECK(pool->high_water() == 1);
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("request_flush runs on_flush once per turn, after the handlers of that turn") {
  auto loop = test::make_loop();
  auto [client, server] = test::tcp_pair();
  struct Flusher : ring::SocketHandler {
    int flushes = 0;
    void on_flush(Loop&, SocketId) override { ++flushes; }
  } h;
  auto id = loop->adopt(server, &h);
  REQUIRE(id);
  loop->request_flush(*id);
  loop->request_flush(*id);
  loop->request_flush(*id);
  loop->run_once(0);
  CHECK(h.flushes == 1);
  loop->run_once(0);
  CHECK(h.flushes == 1);
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("receive pools are isolated: an exhausted pool does not starve sockets on another") {
  ring::LoopOptions options;
  options.recv_pools[0] = {8, 4096};
  options.recv_pools[1] = {2, 4096};
  auto loop = test::make_loop(options);
  auto [client_a, server_a] = test::tcp_pair();
  auto [client_b, server_b] = test::tcp_pair();
  struct Collector : ring::SocketHandler {
    std::vector<RecvBuffer> held;
    std::uint64_t bytes = 0;
    bool hoard = false;
    void on_recv(Loop& loop, SocketId, int res, const RecvBuffer& b) override {
      if (res <= 0) return;
      bytes += b.size;
      if (hoard) {
        held.push_back(b);
      } else {
        loop.recycle(b);
      }
    }
  } hoarder, reader;
  hoarder.hoard = true;
  auto a = loop->adopt(server_a, &hoarder);
  auto b = loop->adopt(server_b, &reader);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(loop->recv_start(*a, 1));
  REQUIRE(loop->recv_start(*b, 0));
  CHECK_FALSE(loop->recv_start(*b, 3));  // a pool that does not exist
  std::vector<std::uint8_t> chunk(4096, 1);
  // Exhaust pool 1 through socket a, then keep socket b busy on pool 0.
  for (int i = 0; i < 4; ++i) {
    REQUIRE(::write(client_a, chunk.data(), chunk.size()) == 4096);
    loop->run_once(5);
  }
  REQUIRE(test::run_until(*loop, [&] { return loop->recv_pool(1).in_use() == 2; }));
  for (int i = 0; i < 32; ++i) {
    REQUIRE(::write(client_b, chunk.data(), chunk.size()) == 4096);
    loop->run_once(1);
  }
  REQUIRE(test::run_until(*loop, [&] { return reader.bytes == 32 * 4096; }));
  CHECK(hoarder.held.front().pool == 1);
  CHECK(loop->recv_pool(0).in_use() == 0);
  for (auto& buf : hoarder.held) loop->recycle(buf);
  hoarder.hoard = false;
  REQUIRE(test::run_until(*loop, [&] { return hoarder.bytes == 4 * 4096; }));
  loop->close(*a);
  loop->close(*b);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client_a);
  ::close(client_b);
}

TEST_CASE("zero-copy send: off on loopback (found at the first large send); forced, large sends complete intact") {
  auto loop = test::make_loop();
  if (!loop->features().send_zc) {
    MESSAGE("this kernel has no zero-copy send: nothing to test here");
    return;
  }
  auto [client, server] = test::tcp_pair();
  test::set_nonblocking(server);
  struct Sender : ring::SocketHandler {
    std::vector<int> results;
    void on_send(Loop&, SocketId, int res) override { results.push_back(res); }
  } h;
  auto id = loop->adopt(server, &h);
  REQUIRE(id);
  std::vector<std::uint8_t> big(4 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>((i * 131) >> 3);
  Checksum expected;
  expected.add(big.data(), big.size());
  expected.add(big.data(), big.size());
  expected.add(big.data(), 1000);
  Checksum got;
  std::thread reader([fd = client, &got, total = expected.bytes] {
    std::vector<std::uint8_t> buf(65536);
    while (got.bytes < total) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n <= 0) break;
      got.add(buf.data(), static_cast<std::size_t>(n));
    }
  });
  iovec iov[2] = {{big.data(), big.size() / 2}, {big.data() + big.size() / 2, big.size() / 2}};
  // Off by default on loopback, where it only costs (found out at this first large send, not at adopt()).
  REQUIRE(loop->send(*id, iov, 2));
  REQUIRE(test::run_until(*loop, [&] { return h.results.size() == 1; }));
  CHECK(h.results[0] == static_cast<int>(big.size()));
  CHECK(loop->stats().send_zc == 0);
  REQUIRE(loop->set_send_zc(*id, true));
  // The loop advanced the iovecs past what it sent: they are set afresh.
  iov[0] = {big.data(), big.size() / 2};
  iov[1] = {big.data() + big.size() / 2, big.size() / 2};
  REQUIRE(loop->send(*id, iov, 2));
  REQUIRE(test::run_until(*loop, [&] { return h.results.size() == 2; }));
  CHECK(h.results[1] == static_cast<int>(big.size()));
  CHECK(loop->stats().send_zc > 0);
  // Below the threshold the same socket sends by copy.
  const auto zc_before = loop->stats().send_zc;
  iovec small{big.data(), 1000};
  REQUIRE(loop->send(*id, &small, 1));
  REQUIRE(test::run_until(*loop, [&] { return h.results.size() == 3; }));
  CHECK(h.results[2] == 1000);
  CHECK(loop->stats().send_zc == zc_before);
  reader.join();
  CHECK(got.bytes == expected.bytes);
  CHECK(got.value == expected.value);
  loop->close(*id);
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  ::close(client);
}

TEST_CASE("direct sends: a small send completes without a ring round trip, but on_send still runs from the loop") {
  ring::LoopOptions options;
  options.direct_sends_per_turn = 2;
  auto loop = test::make_loop(options);
  std::vector<std::pair<int, int>> pairs;
  struct Recorder : ring::SocketHandler {
    bool inside_send = false;
    int called_inside = 0;
    std::vector<int> results;
    void on_send(Loop&, SocketId, int res) override {
      called_inside += inside_send;
      results.push_back(res);
    }
  } h;
  std::vector<SocketId> ids;
  for (int i = 0; i < 3; ++i) {
    auto [client, server] = test::tcp_pair();
    pairs.emplace_back(client, server);
    auto id = loop->adopt(server, &h);
    REQUIRE(id);
    ids.push_back(*id);
  }
  loop->run_once(0);
  const auto cqes_before = loop->stats().cqes;
  char msg[3][16] = {"first", "second", "third"};
  iovec iov[3];
  for (int i = 0; i < 3; ++i) {
    iov[i] = iovec{msg[i], 16};
    h.inside_send = true;
    REQUIRE(loop->send(ids[i], &iov[i], 1));
    h.inside_send = false;
  }
  CHECK(h.results.empty());  // never reported from inside send()
  CHECK(loop->stats().send_direct == 2);  // the third exceeded this turn's budget and went through the ring
  REQUIRE(test::run_until(*loop, [&] { return h.results.size() == 3; }));
  CHECK(h.called_inside == 0);
  for (int r : h.results) CHECK(r == 16);
  CHECK(loop->stats().cqes - cqes_before == 1);  // only the queued send produced a completion
  for (int i = 0; i < 3; ++i) {
    char in[16];
    REQUIRE(::read(pairs[i].first, in, 16) == 16);
    CHECK(std::memcmp(in, msg[i], 16) == 0);
    loop->close(ids[i]);
  }
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  for (auto& p : pairs) ::close(p.first);
}

TEST_CASE("detach while data streams in loses nothing: what recv took is delivered, the rest stays in the fd") {
  // A reader that detaches after its first chunk, like the gateway's handshake reader handing a connection on.
  struct Detacher : ring::SocketHandler {
    Checksum got;
    bool detached = false;
    bool closed = false;
    int fd = -1;
    void on_recv(Loop& loop, SocketId id, int res, const RecvBuffer& buffer) override {
      if (res <= 0) return;
      got.add(buffer.data, buffer.size);
      loop.recycle(buffer);
      if (!detached) {
        detached = true;
        fd = loop.fd(id);
        loop.detach(id);
      }
    }
    void on_close(Loop&, SocketId) override { closed = true; }
  };
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    auto loop = test::make_loop();
    auto [client, server] = test::tcp_pair();
    Detacher reader;
    auto id = loop->adopt(server, &reader);
    REQUIRE(id);
    REQUIRE(loop->recv_start(*id));
    // 4 MiB in 4 KiB writes from another thread while the loop reads, detaches and reaps.
    Checksum sent;
    test::Xorshift rng(static_cast<std::uint64_t>(round) + 1);
    std::vector<std::uint8_t> all(4 << 20);
    for (auto& b : all) b = static_cast<std::uint8_t>(rng.next());
    sent.add(all.data(), all.size());
    std::thread writer([&, fd = client] {
      for (std::size_t at = 0; at < all.size();) {
        const ssize_t n = ::send(fd, all.data() + at, std::min<std::size_t>(4096, all.size() - at), MSG_NOSIGNAL);
        if (n <= 0) break;
        at += static_cast<std::size_t>(n);
      }
      ::shutdown(fd, SHUT_WR);
    });
    REQUIRE(test::run_until(*loop, [&] { return reader.closed; }));
    // The next owner reads the rest from the fd, to EOF.
    std::vector<std::uint8_t> buf(65536);
    for (;;) {
      const ssize_t n = ::recv(reader.fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      reader.got.add(buf.data(), static_cast<std::size_t>(n));
    }
    writer.join();
    CHECK(reader.got.bytes == sent.bytes);
    CHECK(reader.got.value == sent.value);
    ::close(reader.fd);
    ::close(client);
  }
}

namespace {
// Arms a 100 ms timer from inside its receive callback.
struct ArmOnRecv : ring::SocketHandler {
  Loop* loop = nullptr;
  ring::Timer timer;
  bool fired = false;
  bool received = false;
  void on_recv(Loop& l, SocketId, int res, const RecvBuffer& buffer) override {
    if (res > 0) l.recycle(buffer);
    received = true;
    l.timers().schedule(timer, 100);
  }
};

// A loop whose socket receives one byte `delay_ms` after the loop's last turn, turned until the handler has it.
struct LateByte {
  std::unique_ptr<Loop> loop;
  int fds[2] = {-1, -1};
  ArmOnRecv handler;
  SocketId socket;

  LateByte(const ring::LoopOptions& options, int delay_ms) {
    auto made = Loop::create(options);
    REQUIRE(made);
    loop = std::move(*made);
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    handler.timer.set_callback([](void* self) { static_cast<ArmOnRecv*>(self)->fired = true; }, &handler);
    auto id = loop->adopt(fds[0], &handler);
    REQUIRE(id);
    socket = *id;
    REQUIRE(loop->recv_start(socket));
    loop->run_once(0);
    std::thread late([this, delay_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      REQUIRE(::write(fds[1], "x", 1) == 1);
    });
    for (int i = 0; i < 100 && !handler.received; ++i) loop->run_once(1000);
    late.join();
    REQUIRE(handler.received);
  }
  ~LateByte() {
    loop->timers().cancel(handler.timer);
    loop->close(socket);
    loop->exit();
    loop->run();
    ::close(fds[1]);
  }
};
}  // namespace

TEST_CASE("a timer armed by a completion handler after a long sleep counts from when the handler runs") {
  // The loop sleeps in its wait while the byte is late: the handler runs 300 ms after the loop's last turn.
  LateByte t(ring::LoopOptions{}, 300);
  t.loop->run_once(0);
  CHECK_FALSE(t.handler.fired);  // armed for 100 ms: not due yet
  for (int i = 0; i < 100 && !t.handler.fired; ++i) t.loop->run_once(50);
  CHECK(t.handler.fired);
}

TEST_CASE("busy polling: off by default; on, a completion that arrives while the loop polls is handled unslept") {
  CHECK(ring::LoopOptions{}.busy_poll_us == 0);
  for (const std::uint32_t busy_poll_us : {0U, 2'000'000U}) {
    CAPTURE(busy_poll_us);
    ring::LoopOptions options;
    options.busy_poll_us = busy_poll_us;  // 2 s: the late byte comes long before the poll ends, even on a slow host
    LateByte t(options, 20);
    if (busy_poll_us == 0) {
      CHECK(t.loop->stats().busy_poll_hits.get() == 0);  // it slept, and the byte woke it
    } else {
      CHECK(t.loop->stats().busy_poll_hits.get() >= 1);
    }
  }
}

TEST_CASE("busy polling: a timer that falls due during the poll fires then, not a whole wait later") {
  ring::LoopOptions options;
  options.busy_poll_us = 5'000'000;  // longer than the timer: the poll must end when the timer is due
  auto made = Loop::create(options);
  REQUIRE(made);
  Loop& loop = **made;
  bool fired = false;
  ring::Timer timer;
  timer.set_callback([](void* flag) { *static_cast<bool*>(flag) = true; }, &fired);
  loop.run_once(0);
  const auto start = std::chrono::steady_clock::now();
  loop.timers().schedule(timer, 400);
  for (int i = 0; i < 100 && !fired; ++i) loop.run_once(1000);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(fired);
  // Polling until the timer is due and then sleeping the wait computed before the poll would take about 800 ms.
  CHECK_MESSAGE(took < std::chrono::milliseconds(700), std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
  loop.exit();
  loop.run();
}
