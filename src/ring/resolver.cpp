#include "ring/resolver.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include "common/log.hpp"

namespace ringtun::ring {

namespace {

// The thread's answer on the wire: 'A' then, per address, one length byte and the sockaddr bytes; or 'E' then the
// error text. At most one answer per socketpair, ended by the thread closing its end.
constexpr char kAddresses = 'A';
constexpr char kError = 'E';
constexpr std::size_t kMaxAnswerBytes = 64 * 1024;
constexpr std::size_t kMaxAddresses = 64;

void write_all(int fd, const std::string& bytes) noexcept {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the loop gave up on this lookup and closed its end
    sent += static_cast<std::size_t>(n);
  }
}

}  // namespace

Resolve::Resolve(Loop& loop, Done done, void* context) : loop_(loop), done_(done), context_(context) {
  timeout_.set_callback(
      [](void* self) {
        auto* resolve = static_cast<Resolve*>(self);
        resolve->finish(Answer{{}, "no answer within the lookup timeout"});
      },
      this);
}

void Resolve::run_lookup(int fd, std::string host, std::uint16_t port) noexcept {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  std::string answer;
  if (rc != 0) {
    answer.push_back(kError);
    answer += rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
  } else {
    answer.push_back(kAddresses);
    std::size_t count = 0;
    for (const addrinfo* a = list; a != nullptr && count < kMaxAddresses; a = a->ai_next) {
      if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) || a->ai_addrlen > sizeof(sockaddr_storage)) continue;
      answer.push_back(static_cast<char>(a->ai_addrlen));
      answer.append(reinterpret_cast<const char*>(a->ai_addr), a->ai_addrlen);
      ++count;
    }
    ::freeaddrinfo(list);
  }
  write_all(fd, answer);
  ::close(fd);
}

Resolve* Resolve::start(Loop& loop, const std::string& host, std::uint16_t port, std::uint32_t timeout_ms,
                        unsigned receive_pool, Done done, void* context) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    LOG_WARN("resolving %s: socketpair: %s", host.c_str(), std::strerror(errno));
    return nullptr;
  }
  try {
    std::thread(&Resolve::run_lookup, fds[1], host, port).detach();
  } catch (const std::system_error& e) {
    LOG_WARN("resolving %s: cannot start a lookup thread: %s", host.c_str(), e.what());
    ::close(fds[0]);
    ::close(fds[1]);
    return nullptr;
  }
  auto* resolve = new Resolve(loop, done, context);
  auto socket = loop.adopt(fds[0], resolve);
  if (!socket) {
    delete resolve;
    return nullptr;
  }
  resolve->socket_ = *socket;
  resolve->socket_open_ = true;
  loop.timers().schedule(resolve->timeout_, timeout_ms);
  if (!loop.recv_start(*socket, receive_pool)) {
    LOG_WARN("resolving %s: cannot read the lookup's answer", host.c_str());
    resolve->cancel();
    return nullptr;
  }
  return resolve;
}

void Resolve::cancel() noexcept {
  done_ = nullptr;
  finish(Answer{});
}

void Resolve::on_recv(Loop& loop, SocketId, int res, const RecvBuffer& buffer) {
  if (res > 0) {
    if (bytes_.size() + buffer.size <= kMaxAnswerBytes) {
      bytes_.append(reinterpret_cast<const char*>(buffer.data), buffer.size);
    }
    loop.recycle(buffer);
    return;
  }
  if (finished_) return;
  Answer answer;
  if (res < 0 || bytes_.empty()) {
    answer.error = "the lookup ended without an answer";
  } else if (bytes_[0] == kError) {
    answer.error = bytes_.substr(1);
  } else {
    std::size_t at = 1;
    while (at < bytes_.size()) {
      const auto length = static_cast<unsigned char>(bytes_[at++]);
      if (length == 0 || at + length > bytes_.size() || length > sizeof(sockaddr_storage)) break;
      net::Address address;
      std::memcpy(&address.storage, bytes_.data() + at, length);
      address.length = length;
      answer.addresses.push_back(address);
      at += length;
    }
    if (answer.addresses.empty()) answer.error = "the name has no IPv4 or IPv6 address";
  }
  finish(std::move(answer));
}

void Resolve::finish(Answer&& answer) noexcept {
  if (finished_) return;
  finished_ = true;
  loop_.timers().cancel(timeout_);
  if (socket_open_) loop_.close(socket_);
  if (done_ != nullptr) done_(context_, std::move(answer));
  done_ = nullptr;
  if (!socket_open_) delete this;
}

void Resolve::on_close(Loop&, SocketId) {
  socket_open_ = false;
  if (!finished_) {  // the loop is exiting: nobody waits for the answer any more
    finished_ = true;
    loop_.timers().cancel(timeout_);
  }
  delete this;
}

}  // namespace ringtun::ring
