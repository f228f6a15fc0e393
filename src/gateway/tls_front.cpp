// TlsFront and TlsClient: see tls_front.hpp.
#include "gateway/tls_front.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <string>

#include "common/log.hpp"
#include "gateway/routing.hpp"
#include "tls/client_hello.hpp"
#include "tunnel/stream_meta.hpp"

namespace ringtun::gateway {

// One client while its ClientHello is read. Frees itself once it handed the socket on or closed it.
class TlsClient final : public ring::SocketHandler {
 public:
  TlsClient(TlsFront& front, int fd);
  ~TlsClient() override;
  void abort() noexcept { close(true); }
  bool dead() const noexcept { return closed_; }

  TlsClient* prev = nullptr;
  TlsClient* next = nullptr;

 private:
  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_send(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;
  void route(std::string_view name);
  void refuse_name(const char* why, std::string_view name);
  void close(bool abortive) noexcept;
  void log(const char* what, std::string_view name) noexcept;
  void on_timeout() noexcept;

  TlsFront& front_;
  ring::Loop& loop_;
  ring::SocketId socket_;
  ring::net::Address peer_;
  std::vector<std::byte> prefix_;  // every byte read so far
  tls::ClientHelloReader reader_;
  ring::Timer timer_;
  iovec alert_iov_{};
  bool closing_ = false;
  bool closed_ = false;
};

TlsClient::TlsClient(TlsFront& front, int fd) : front_(front), loop_(front.loop_) {
  timer_.set_callback([](void* self) { static_cast<TlsClient*>(self)->on_timeout(); }, this);
  next = front_.clients_;
  if (next != nullptr) next->prev = this;
  front_.clients_ = this;
  ++front_.stats_.reading;
  if (auto peer = ring::net::peer_address(fd)) peer_ = *peer;
  auto socket = loop_.adopt(fd, this);
  if (!socket) {
    closed_ = true;
    return;
  }
  socket_ = *socket;
  if (!loop_.recv_start(socket_, tunnel::kEdgePool)) {
    close(true);
    return;
  }
  loop_.timers().schedule(timer_, front_.hello_timeout_ms_);
}

TlsClient::~TlsClient() {
  loop_.timers().cancel(timer_);
  if (prev != nullptr) prev->next = next;
  else front_.clients_ = next;
  if (next != nullptr) next->prev = prev;
  --front_.stats_.reading;
}

void TlsClient::log(const char* what, std::string_view name) noexcept {
  std::uint64_t dropped = 0;
  if (!front_.log_budget_.take(loop_.now_ms(), &dropped)) return;
  if (dropped > 0) LOG_WARN("tls: %llu more problem(s) not logged", static_cast<unsigned long long>(dropped));
  LOG_WARN("tls %s: %s%s%.*s%s", peer_.to_string().c_str(), what, name.empty() ? "" : " (server name '",
           static_cast<int>(name.size() > 253 ? 253 : name.size()), name.data(), name.empty() ? "" : "')");
}

void TlsClient::on_recv(ring::Loop& loop, ring::SocketId, int res, const ring::RecvBuffer& buffer) {
  if (res <= 0) {
    if (!closing_) {
      log(res == 0 ? "closed before its ClientHello was complete" : "read failed before the ClientHello", {});
      ++front_.stats_.malformed;
      close(res < 0);
    }
    return;
  }
  if (closing_) {
    loop.recycle(buffer);
    return;
  }
  // Every byte is kept for the service. The prefix stays under kMaxHello + one receive buffer: the reader decides
  // (found, no name, or an error such as "ClientHello over 16 KiB") once kMaxHello bytes are in.
  const auto* bytes = reinterpret_cast<const std::byte*>(buffer.data);
  prefix_.insert(prefix_.end(), bytes, bytes + buffer.size);
  loop.recycle(buffer);
  switch (reader_.read(prefix_, front_.scratch_)) {
    case tls::ClientHelloReader::Outcome::kNeedMore:
      RINGTUN_CHECK(prefix_.size() < tls::ClientHelloReader::kMaxHello, "ClientHello reader undecided past its bound");
      return;
    case tls::ClientHelloReader::Outcome::kFound:
      route(reader_.name());
      return;
    case tls::ClientHelloReader::Outcome::kNoName:
      refuse_name("no server name (SNI) in the ClientHello", {});
      return;
    case tls::ClientHelloReader::Outcome::kError:
      ++front_.stats_.malformed;
      log(reader_.error(), {});
      close(true);
      return;
  }
}

void TlsClient::route(std::string_view name) {
  const route::Route* route = front_.routing_.table().find_host(route::Kind::kTls, name);
  if (route == nullptr) {
    front_.routing_.refused(nullptr, &peer_, route::Kind::kTls, 0, "unknown_host");
    refuse_name("no service for this name", name);
    return;
  }
  AccessPass pass;
  if (front_.routing_.admit(*route, route::Kind::kTls, 0, peer_, &pass) != route::Verdict::kAllowed) {
    log("refused by the access policy", name);
    close(true);
    return;
  }
  tunnel::TunnelConn* conn = front_.routing_.conn_for(*route);
  std::array<std::byte, tunnel::kMaxStreamMeta> meta_bytes;
  const auto meta = encode_route_meta(*route, front_.port_, peer_, 0, meta_bytes);
  if (conn == nullptr || meta.empty()) {
    front_.routing_.release(pass);
    ++front_.stats_.no_tunnel;
    front_.routing_.refused(route, &peer_, route::Kind::kTls, 0, "no_tunnel");
    log("the service's agent is not connected", name);
    close(true);
    return;
  }
  const tunnel::Tracking tracked = front_.routing_.tracking(*route, peer_, 0, pass);
  if (!conn->open_stream(socket_, meta, prefix_, tracked)) {
    front_.routing_.drop(tracked);
    ++front_.stats_.no_tunnel;
    front_.routing_.refused(route, &peer_, route::Kind::kTls, 0, "stream_limit");
    log("the agent's connection has no free stream", name);
    close(true);
    return;
  }
  // The socket is the stream's now, and with it every callback: this reader is done.
  ++front_.stats_.routed;
  delete this;
}

void TlsClient::refuse_name(const char* why, std::string_view name) {
  ++front_.stats_.unknown_name;
  log(why, name);
  loop_.timers().cancel(timer_);
  closing_ = true;
  const auto alert = tls::unrecognized_name_alert();
  alert_iov_.iov_base = const_cast<std::byte*>(alert.data());
  alert_iov_.iov_len = alert.size();
  if (!loop_.send(socket_, &alert_iov_, 1)) close(true);
}

void TlsClient::on_send(ring::Loop&, ring::SocketId, int) {
  // The alert is out (or could not be): close. Unread bytes of the client make this an RST at worst, which
  // after a fatal alert tells the client nothing new.
  closing_ = false;
  close(false);
}

void TlsClient::on_timeout() noexcept {
  ++front_.stats_.timed_out;
  log("ClientHello not complete in time", {});
  close(true);
}

void TlsClient::close(bool abortive) noexcept {
  loop_.timers().cancel(timer_);
  if (closed_ || !socket_.valid()) return;
  if (closing_ && !abortive) return;
  closing_ = true;
  if (abortive) {
    (void)ring::net::set_reset_on_close(loop_.fd(socket_));
  }
  loop_.close(socket_);
  socket_ = {};
}

void TlsClient::on_close(ring::Loop&, ring::SocketId) {
  closed_ = true;
  delete this;
}

// ---------------------------------------------------------------- TlsFront

TlsFront::TlsFront(tunnel::TunnelCore& core, Routing& routing, std::uint32_t hello_timeout_ms)
    : core_(core),
      loop_(core.loop),
      routing_(routing),
      hello_timeout_ms_(hello_timeout_ms),
      scratch_(tls::ClientHelloReader::kMaxHello),
      log_budget_(kLogLinesPerSecond) {}

TlsFront::~TlsFront() = default;

Status TlsFront::listen(int fd) {
  if (auto local = ring::net::local_address(fd)) port_ = local->port();
  auto socket = loop_.adopt_listener(fd, this);
  if (!socket) return Unexpected{socket.error()};
  listener_ = *socket;
  return {};
}

void TlsFront::on_accept(ring::Loop&, ring::SocketId, int res) {
  if (res < 0) return;
  if (stopped_) {
    ::close(res);
    return;
  }
  ++stats_.connections;
  if (stats_.reading >= kMaxReading) {
    // A flood of connections that never finish their ClientHello must not hold unbounded memory (each reader
    // keeps up to ~36 KiB): beyond the bound, newcomers are closed at once, counted and logged once a second.
    ++stats_.over_limit;
    ::close(res);
    const std::uint64_t second = loop_.now_ms() / 1000;
    if (second != over_limit_logged_) {
      over_limit_logged_ = second;
      LOG_WARN("tls: %u ClientHellos being read on this core: new connections closed (%llu so far)", kMaxReading,
               static_cast<unsigned long long>(stats_.over_limit));
    }
    return;
  }
  auto* client = new TlsClient(*this, res);
  if (client->dead()) delete client;
}

void TlsFront::on_close(ring::Loop&, ring::SocketId) {}

void TlsFront::stop() {
  stopped_ = true;
  if (listener_.valid()) loop_.close(listener_);
  listener_ = {};
  for (TlsClient* c = clients_; c != nullptr; c = c->next) c->abort();
}

}  // namespace ringtun::gateway
