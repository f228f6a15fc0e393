// HttpFront: the shared HTTP port's listener on one core. See http_front.hpp.
#include "gateway/http_front.hpp"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

#include "common/log.hpp"
#include "gateway/http_client.hpp"
#include "gateway/routing.hpp"

namespace ringtun::gateway {

HttpFront::HttpFront(tunnel::TunnelCore& core, Routing& routing, const HttpFrontOptions& options)
    : core_(core), loop_(core.loop), routing_(routing), options_(options), log_budget_(kLogLinesPerSecond) {}

HttpFront::~HttpFront() = default;

Status HttpFront::listen(int fd) {
  if (auto local = ring::net::local_address(fd)) port_ = local->port();
  auto socket = loop_.adopt_listener(fd, this);
  if (!socket) return Unexpected{socket.error()};
  listener_ = *socket;
  return {};
}

void HttpFront::on_accept(ring::Loop&, ring::SocketId, int res) {
  if (res < 0) return;  // the loop retries EMFILE and friends itself
  if (stopped_) {
    ::close(res);
    return;
  }
  ++stats_.connections;
  auto* client = new HttpClient(*this, res);
  if (client->socket_closed_) delete client;
}

void HttpFront::on_close(ring::Loop&, ring::SocketId) {}

void HttpFront::stop() {
  stopped_ = true;
  if (listener_.valid()) loop_.close(listener_);
  listener_ = {};
  // abort() never frees synchronously (the socket's close completes later), so the list stays walkable.
  for (HttpClient* c = clients_; c != nullptr; c = c->next) c->abort();
}

void HttpFront::link(HttpClient* client) noexcept {
  client->next = clients_;
  if (clients_ != nullptr) clients_->prev = client;
  clients_ = client;
  ++stats_.open;
}

void HttpFront::unlink(HttpClient* client) noexcept {
  if (client->prev != nullptr) client->prev->next = client->next;
  else clients_ = client->next;
  if (client->next != nullptr) client->next->prev = client->prev;
  --stats_.open;
}

void HttpFront::log_problem(const char* format, ...) noexcept {
  std::uint64_t dropped = 0;
  if (!log_budget_.take(loop_.now_ms(), &dropped)) return;
  if (dropped > 0) {
    LOG_WARN("http: %llu more problem(s) not logged", static_cast<unsigned long long>(dropped));
  }
  char line[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  LOG_WARN("%s", line);
}

}  // namespace ringtun::gateway
