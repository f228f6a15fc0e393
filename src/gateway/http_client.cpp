// HttpClient: see http_client.hpp and http_front.hpp.
#include "gateway/http_client.hpp"

#include <array>
#include <cstring>

#include "common/clock.hpp"
#include "common/depth_guard.hpp"
#include "common/log.hpp"
#include "gateway/routing.hpp"
#include "http/forward.hpp"
#include "tunnel/handshake.hpp"  // as_bytes
#include "tunnel/stream_meta.hpp"

namespace ringtun::gateway {

namespace {

constexpr std::size_t kMaxSendBytes = 256 * 1024;

std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

const char* reset_reason(frame::ErrorCode code) {
  switch (code) {
    case frame::ErrorCode::kConnectFailed: return "the local service refused the connection";
    case frame::ErrorCode::kConnectTimeout: return "the local service did not accept the connection in time";
    case frame::ErrorCode::kRefusedStream: return "the agent refused the stream";
    case frame::ErrorCode::kProtocolError: return "the local service sent a response that cannot be framed";
    default: return "the agent reset the stream";
  }
}

}  // namespace

HttpClient::HttpClient(HttpFront& front, int fd)
    : front_(front), loop_(front.core().loop), out_(front.core().blocks) {
  timer_.set_callback([](void* self) { static_cast<HttpClient*>(self)->on_timer(); }, this);
  front_.link(this);
  if (auto peer = ring::net::peer_address(fd)) peer_ = *peer;
  peer_.host_text(peer_ip_, sizeof peer_ip_);
  auto socket = loop_.adopt(fd, this);
  if (!socket) {
    socket_closed_ = true;
    return;  // the front deletes clients whose socket never opened (see HttpFront::on_accept)
  }
  socket_ = *socket;  // TCP_NODELAY: inherited from our listener
  resume_reading();
  arm_timer(front_.options().head_timeout_ms);
}

HttpClient::~HttpClient() {
  loop_.timers().cancel(timer_);
  front_.unlink(this);
}

void HttpClient::abort() noexcept {
  {
    DepthGuard guard(depth_);
    close_now(true);
  }
  maybe_free();
}

// ---------------------------------------------------------------- client -> gateway

void HttpClient::on_recv(ring::Loop& loop, ring::SocketId, int res, const ring::RecvBuffer& buffer) {
  {
    DepthGuard guard(depth_);
    if (res > 0) {
      const std::string_view bytes(reinterpret_cast<const char*>(buffer.data), buffer.size);
      switch (state_) {
        case State::kHead: {
          const bool first = input_.empty();
          input_.append(bytes);
          loop.recycle(buffer);
          if (first) arm_timer(front_.options().head_timeout_ms);
          process_input();
          break;
        }
        case State::kExchange:
          if (exchange_ != nullptr && !exchange_->request_done) {
            send_request_body(bytes);
          } else {
            input_.append(bytes);  // the next request (pipelining): it waits for this response
            pause_reading();
          }
          loop.recycle(buffer);
          break;
        case State::kPipe:
          if (exchange_ != nullptr && exchange_->stream_open && exchange_->conn->queue_edge_data(*this, buffer)) {
            ingress_pending_ += buffer.size;
            if (ingress_pending_ >= kIngressLimit) pause_reading();
          } else {
            loop.recycle(buffer);
          }
          break;
        case State::kClosing:
          loop.recycle(buffer);  // read and dropped, so that closing sends FIN, not RST
          break;
      }
    } else {
      reading_ = false;
      client_eof_ = res == 0;
      if (res < 0) {
        close_now(true);
      } else {
        switch (state_) {
          case State::kHead:
            close_now(false);  // between requests, or a head that never finished: nothing to answer
            break;
          case State::kExchange:
            if (exchange_ != nullptr && !exchange_->request_done) {
              front_.log_problem("http %s %s: the client closed before its request was complete", peer_ip_,
                                 exchange_->host.c_str());
              close_now(true);
            } else {
              close_after_ = true;  // the response still goes out
            }
            break;
          case State::kPipe:
            if (exchange_ != nullptr && exchange_->stream_open) exchange_->conn->edge_fin(*this);
            if (shutdown_sent_) close_now(false);
            break;
          case State::kClosing:
            if (out_.empty() && in_flight_ == 0) close_now(false);
            break;
        }
      }
    }
  }
  maybe_free();
}

void HttpClient::process_input() noexcept {
  if (state_ != State::kHead || socket_closing_ || socket_closed_) return;
  if (input_.empty()) {
    arm_timer(front_.options().idle_timeout_ms);
    return;
  }
  switch (scanner_.scan(input_)) {
    case http::HeadScanner::State::kNeedMore:
      return;
    case http::HeadScanner::State::kTooLarge:
      reject(scanner_.problem().status, scanner_.problem().reason);
      return;
    case http::HeadScanner::State::kComplete:
      start_request();
      return;
  }
}

HttpClient::Exchange::~Exchange() {
  if (routing != nullptr) routing->release(pass);
}

void HttpClient::start_request() noexcept {
  ++front_.stats().requests;
  loop_.timers().cancel(timer_);
  const std::size_t head_end = scanner_.head_length();
  const std::string_view head(input_.data() + scanner_.head_start(), head_end - scanner_.head_start());
  http::RequestHead request;
  if (http::Problem problem = http::parse_request_head(head, &request)) {
    reject(problem.status, problem.reason);
    return;
  }
  if (request.method == "CONNECT") {
    reject(405, "CONNECT is not served here", std::string(request.host));
    return;
  }
  const route::Route* route = front_.routing().table().find_host(route::Kind::kHttp, request.host);
  if (route == nullptr) {
    front_.routing().refused(nullptr, &peer_, route::Kind::kHttp, 0, "unknown_host");
    reject(404, "no service for this host", std::string(request.host));
    return;
  }
  // The access policy of the route's token, per request (a keep-alive connection may reach several services):
  // 403 for the address lists, 429 for the rate and the connection caps.
  AccessPass pass;
  const route::Verdict verdict = front_.routing().admit(*route, route::Kind::kHttp, 0, peer_, &pass);
  if (verdict == route::Verdict::kDenied || verdict == route::Verdict::kNotAllowed) {
    reject(403, "refused by the access policy", std::string(request.host), route);
    return;
  }
  if (verdict != route::Verdict::kAllowed) {
    reject(429, route::verdict_name(verdict), std::string(request.host), route, 1);
    return;
  }
  tunnel::TunnelConn* conn = front_.routing().conn_for(*route);
  if (conn == nullptr) {
    front_.routing().release(pass);
    front_.routing().refused(route, &peer_, route::Kind::kHttp, 0, "no_tunnel");
    reject(502, "the service's agent is not connected", std::string(request.host), route);
    return;
  }
  TrafficEntry& entry = front_.routing().traffic().entry(front_.routing().table(), *route);

  const auto flags = static_cast<std::uint8_t>((request.is_head ? tunnel::kStreamHeadRequest : 0) |
                                               (request.upgrade ? tunnel::kStreamUpgrade : 0));
  std::array<std::byte, tunnel::kMaxStreamMeta> meta_bytes;
  const auto meta = encode_route_meta(*route, front_.port(), peer_, flags, meta_bytes);
  if (meta.empty() || !conn->open_stream(*this, meta, tunnel::Tracking{&entry.traffic, true, nullptr})) {
    front_.routing().release(pass);
    front_.routing().refused(route, &peer_, route::Kind::kHttp, 0, "stream_limit");
    reject(503, "the agent's connection has no free stream", std::string(request.host), route);
    return;
  }
  exchange_ = std::make_unique<Exchange>();
  exchange_->routing = &front_.routing();
  exchange_->pass = pass;
  exchange_->entry = &entry;
  if (front_.routing().access_log() != nullptr) {
    exchange_->start_ms = wall_clock_ms();
    exchange_->method.assign(request.method);
    exchange_->target.assign(request.target.substr(0, 256));
  }
  exchange_->conn = conn;
  exchange_->client_in = head_end - scanner_.head_start();
  exchange_->stream_open = true;
  exchange_->host.assign(request.host);
  exchange_->upgrade_asked = request.upgrade;
  exchange_->response.start(request.is_head);
  exchange_->request_body.start(request.body, request.content_length);
  state_ = State::kExchange;
  // HTTP/1.0 clients get one request per connection: their keep-alive dialect is not worth its corner cases.
  if (!request.keep_alive || request.version == http::Version::kHttp10) close_after_ = true;

  std::array<char, http::kMaxForwardedHead> rewritten;
  const std::size_t length = http::write_upstream_request(request, {peer_ip_, "http"}, rewritten);
  if (length == 0 || !conn->queue_copy(*this, tunnel::as_bytes({rewritten.data(), length}))) {
    reject(503, "no memory for the request", exchange_->host);
    return;
  }
  // What followed the head in the same reads: the body's start, maybe the next request.
  std::string rest = input_.substr(head_end);
  input_.clear();
  scanner_.reset();
  if (exchange_->request_body.done()) {
    input_ = std::move(rest);
    request_complete();
    if (!input_.empty()) pause_reading();
  } else if (!rest.empty()) {
    send_request_body(rest);
  }
}

void HttpClient::send_request_body(std::string_view bytes) noexcept {
  Exchange& x = *exchange_;
  const http::BodyFramer::Step step = x.request_body.feed(bytes);
  if (step.used > 0 && x.stream_open) {
    if (!x.conn->queue_copy(*this, tunnel::as_bytes(bytes.substr(0, step.used)))) {
      front_.log_problem("http %s %s: no memory for the request body", peer_ip_, x.host.c_str());
      close_now(true);
      return;
    }
    ingress_pending_ += step.used;
    x.client_in += step.used;
    if (ingress_pending_ >= kIngressLimit) pause_reading();
  }
  if (step.error != nullptr) {
    if (!x.response_started) {
      reject(400, step.error, x.host);
    } else {
      front_.log_problem("http %s %s: %s", peer_ip_, x.host.c_str(), step.error);
      close_now(true);
    }
    return;
  }
  if (step.done) {
    input_.append(bytes.substr(step.used));
    request_complete();
    if (!input_.empty()) pause_reading();
  }
}

void HttpClient::request_complete() noexcept {
  Exchange& x = *exchange_;
  x.request_done = true;
  // An upgrade request keeps the stream's sending side open: after a 101 the client's bytes follow on it.
  if (!x.upgrade_asked && x.stream_open && !x.fin_sent) {
    x.fin_sent = true;
    x.conn->edge_fin(*this);
  }
  maybe_finish_exchange();
}

void HttpClient::ingress_released(std::size_t bytes) noexcept {
  {
    DepthGuard guard(depth_);
    ingress_pending_ = bytes > ingress_pending_ ? 0 : ingress_pending_ - bytes;
    if (read_paused_ && ingress_pending_ <= kIngressLimit / 2 && input_.empty()) resume_reading();
  }
  maybe_free();
}

// ---------------------------------------------------------------- service -> client

void HttpClient::deliver(std::span<const std::byte> bytes) noexcept {
  {
    DepthGuard guard(depth_);
    response_bytes(as_text(bytes));
  }
  maybe_free();
}

void HttpClient::response_bytes(std::string_view bytes) noexcept {
  if (exchange_ == nullptr || !exchange_->stream_open || socket_closing_ || socket_closed_) return;
  Exchange& x = *exchange_;
  if (state_ == State::kPipe) {
    write_body_bytes(bytes);
    return;
  }
  if (x.response_done) {
    // More than the response: the agent is broken or hostile; none of it may reach the client.
    front_.log_problem("http %s %s: the agent sent bytes after the response", peer_ip_, x.host.c_str());
    close_after_ = true;
    drop_stream(frame::ErrorCode::kProtocolError);
    maybe_finish_exchange();
    return;
  }
  using Event = http::ResponseReader::Event;
  while (!bytes.empty() || !x.response.wants_input()) {
    const http::ResponseReader::Step step = x.response.feed(bytes);
    switch (step.event) {
      case Event::kNeedMore:
        x.conn->edge_delivered(*this, step.used);
        bytes.remove_prefix(step.used);
        return;
      case Event::kHead: {
        x.conn->edge_delivered(*this, step.used);
        bytes.remove_prefix(step.used);
        const http::ResponseHead& head = x.response.head();
        std::array<char, http::kMaxForwardedHead> rewritten;
        if (head.switching && !x.upgrade_asked) {
          response_failed(502, "the service switched protocols without an upgrade request");
          return;
        }
        if (!head.interim) {
          x.status = head.status;
          count_status(head.status, x.entry);
          if (head.body == http::BodyKind::kUntilClose) close_after_ = true;
          if (x.upgrade_asked && !head.switching && x.request_done && !x.fin_sent) {
            // Not upgraded after all: the request is complete.
            x.fin_sent = true;
            x.conn->edge_fin(*this);
          }
        }
        const std::size_t length =
            http::write_client_response(head, !head.interim && !head.switching && close_after_, rewritten);
        if (length == 0) {
          response_failed(502, "the service's response head does not fit");
          return;
        }
        write_head_bytes({rewritten.data(), length});
        x.response_started = true;
        if (head.switching) {
          ++front_.stats().upgrades;
          state_ = State::kPipe;
          x.response_done = true;  // what follows is the new protocol's, passed as it is
          x.response.release();
          if (!input_.empty()) {
            // The client did not wait for the 101: its first bytes of the new protocol.
            if (!x.conn->queue_copy(*this, tunnel::as_bytes(input_))) {
              close_now(true);
              return;
            }
            input_.clear();
          }
          resume_reading();
          if (!bytes.empty()) write_body_bytes(bytes);
          return;
        }
        continue;
      }
      case Event::kBody:
        write_body_bytes(bytes.substr(0, step.used));
        bytes.remove_prefix(step.used);
        continue;
      case Event::kEnd:
        response_complete();
        if (!bytes.empty()) {
          front_.log_problem("http %s %s: the agent sent bytes after the response", peer_ip_, x.host.c_str());
          close_after_ = true;
          drop_stream(frame::ErrorCode::kProtocolError);
        }
        maybe_finish_exchange();
        return;
      case Event::kUpgraded:
        return;  // not reached: the 101 head switches to kPipe above
      case Event::kError:
        response_failed(x.response.problem().status, x.response.problem().reason);
        return;
    }
  }
}

void HttpClient::response_complete() noexcept {
  Exchange& x = *exchange_;
  x.response_done = true;
  x.response.release();
  if (!x.request_done) {
    // The service answered before the request was complete (a 413, a redirect...): the rest of the request body
    // has nowhere to go, and the connection cannot be trusted to be at a request boundary.
    close_after_ = true;
    drop_stream(frame::ErrorCode::kCancel);
  }
}

void HttpClient::response_failed(int status, const char* reason) noexcept {
  Exchange& x = *exchange_;
  if (!x.response_started) {
    reject(status, reason, x.host);
    return;
  }
  // Part of the response is out already: the client must see it cut, not complete.
  front_.log_problem("http %s %s: response cut: %s", peer_ip_, x.host.c_str(), reason);
  close_now(true);
}

void HttpClient::peer_fin() noexcept {
  {
    DepthGuard guard(depth_);
    if (exchange_ != nullptr && exchange_->stream_open) {
      Exchange& x = *exchange_;
      if (state_ == State::kPipe) {
        if (out_.empty() && in_flight_ == 0 && !shutdown_sent_ && !socket_closing_ && !socket_closed_) {
          shutdown_sent_ = true;
          (void)loop_.shutdown_write(socket_);
          if (client_eof_) close_now(false);
        }
      } else if (!x.response_done) {
        if (x.response.end_of_input()) {
          if (x.status == 0) {
            response_failed(502, "the service closed without a response");
          } else {
            response_complete();  // a body delimited by the service's close
            maybe_finish_exchange();
          }
        } else {
          response_failed(502, "the service closed before its response was complete");
        }
      }
    }
  }
  maybe_free();
}

void HttpClient::peer_reset(frame::ErrorCode code) noexcept {
  {
    DepthGuard guard(depth_);
    if (exchange_ != nullptr && exchange_->stream_open && !exchange_->response_done) {
      exchange_->stream_open = false;  // on_closed follows and finds nothing to do
      response_failed(code == frame::ErrorCode::kConnectTimeout ? 504 : 502, reset_reason(code));
    } else if (state_ == State::kPipe) {
      close_now(true);
    }
  }
  maybe_free();
}

void HttpClient::stream_closed() noexcept {
  {
    DepthGuard guard(depth_);
    if (exchange_ != nullptr && exchange_->stream_open) {
      Exchange& x = *exchange_;
      x.stream_open = false;
      if (state_ == State::kPipe) {
        if (!(client_eof_ && shutdown_sent_)) close_now(!(client_eof_ || shutdown_sent_));
      } else if (!x.response_done) {
        response_failed(502, "the agent's connection went away");
      } else {
        maybe_finish_exchange();
      }
    }
  }
  maybe_free();
}

// ---------------------------------------------------------------- exchange end

void HttpClient::maybe_finish_exchange() noexcept {
  if (exchange_ == nullptr || state_ != State::kExchange) return;
  const Exchange& x = *exchange_;
  if (!x.response_done || x.stream_open || !out_.empty() || in_flight_ > 0) return;
  finish_exchange();
}

void HttpClient::finish_exchange() noexcept {
  log_request(exchange_->host, exchange_->status, "ok", nullptr, exchange_->client_in, exchange_->client_out);
  exchange_.reset();
  if (close_after_ || client_eof_) {
    close_gracefully();
    return;
  }
  state_ = State::kHead;
  resume_reading();
  if (!input_.empty()) arm_timer(front_.options().head_timeout_ms);
  process_input();
}

void HttpClient::log_request(std::string_view host, int status, const char* outcome, const char* reason,
                             std::uint64_t bytes_in, std::uint64_t bytes_out) noexcept {
  ops::AccessLog* log = front_.routing().access_log();
  if (log == nullptr) return;
  const std::uint64_t now = wall_clock_ms();
  const std::string client = peer_.to_string();
  ops::AccessRecord line;
  line.end_ms = now;
  line.client = client;
  line.listener = "http";
  line.host = host;
  line.status = status;
  line.outcome = outcome;
  if (reason != nullptr) line.reason = reason;
  line.bytes_in = bytes_in;
  line.bytes_out = bytes_out;
  if (const Exchange* x = exchange_.get()) {
    line.duration_ms = x->start_ms != 0 && now > x->start_ms ? now - x->start_ms : 0;
    if (x->entry != nullptr) {
      line.service = x->entry->service;
      line.agent = x->entry->agent;
    }
    line.method = x->method;
    line.target = x->target;
  }
  log->write(line);
}

void HttpClient::reject(int status, const char* reason, const std::string& host, const route::Route* route,
                        std::uint32_t retry_after_s) noexcept {
  ++front_.stats().gateway_errors;
  TrafficEntry* entry = nullptr;  // the service answered for, when one was found
  if (route != nullptr) {
    entry = &front_.routing().traffic().entry(front_.routing().table(), *route);
  } else if (exchange_ != nullptr && state_ == State::kExchange) {
    entry = exchange_->entry;
  }
  count_status(status, entry);
  front_.log_problem("http %s %s: %d %s", peer_ip_, host.empty() ? "-" : host.c_str(), status, reason);
  char page[1024];
  const std::size_t length = http::write_error_response(status, reason, true, page, retry_after_s);
  // The access line: an exchange counts its own bytes; a request refused before one began read its head (what is
  // buffered). Both get the page.
  const std::uint64_t bytes_in = exchange_ != nullptr ? exchange_->client_in : input_.size();
  const std::uint64_t bytes_out = (exchange_ != nullptr ? exchange_->client_out : 0) + length;
  // refused: no service or no agent for the host (404, 502, 503); timeout: 408, 504; error: the request itself.
  const char* outcome = status == 504 || status == 408                  ? "timeout"
                        : status == 404 || status == 502 || status == 503 || status == 403 || status == 429
                            ? "refused"
                                                                          : "error";
  log_request(host, status, outcome, reason, bytes_in, bytes_out);
  if (exchange_ != nullptr) {
    drop_stream(frame::ErrorCode::kCancel);
    exchange_.reset();
  }
  input_.clear();
  input_.shrink_to_fit();
  close_after_ = true;
  state_ = State::kClosing;
  loop_.timers().cancel(timer_);
  if (length > 0) write_head_bytes({page, length});
  close_gracefully();
}

void HttpClient::count_status(int status, TrafficEntry* entry) noexcept {
  const int cls = status / 100;
  if (cls < 1 || cls > 5) return;
  ++front_.stats().responses[cls];
  if (entry != nullptr) ++entry->http_status[cls];
}

// ---------------------------------------------------------------- writing to the client

void HttpClient::write_head_bytes(std::string_view bytes) noexcept {
  if (!out_.append(tunnel::as_bytes(bytes))) {
    close_now(true);
    return;
  }
  if (exchange_ != nullptr) exchange_->client_out += bytes.size();
  nocredit_ahead_ += bytes.size();
  send_more();
}

void HttpClient::write_body_bytes(std::string_view bytes) noexcept {
  if (bytes.empty()) return;
  if (!out_.append(tunnel::as_bytes(bytes))) {
    front_.log_problem("http %s: stream buffer budget exhausted", peer_ip_);
    close_now(true);
    return;
  }
  if (exchange_ != nullptr) exchange_->client_out += bytes.size();
  send_more();
}

void HttpClient::send_more() noexcept {
  if (in_flight_ > 0 || socket_closing_ || socket_closed_ || out_.empty()) return;
  const std::size_t count = out_.gather(iov_, kMaxIov, kMaxSendBytes);
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < count; ++i) bytes += iov_[i].iov_len;
  if (!loop_.send(socket_, iov_, static_cast<unsigned>(count))) {
    close_now(true);
    return;
  }
  in_flight_ = bytes;
}

void HttpClient::on_send(ring::Loop&, ring::SocketId, int res) {
  {
    DepthGuard guard(depth_);
    const std::size_t sent = in_flight_;
    in_flight_ = 0;
    if (res < 0) {
      close_now(true);
    } else {
      out_.consume(sent);
      const std::size_t ours = sent < nocredit_ahead_ ? sent : nocredit_ahead_;
      nocredit_ahead_ -= ours;
      if (sent > ours && exchange_ != nullptr && exchange_->stream_open) {
        exchange_->conn->edge_delivered(*this, sent - ours);
      }
      if (!out_.empty()) {
        send_more();
      } else if (state_ == State::kClosing) {
        close_gracefully();
      } else if (state_ == State::kPipe) {
        if (exchange_ == nullptr || !exchange_->stream_open) {
          close_now(false);
        }
      } else {
        maybe_finish_exchange();
      }
    }
  }
  maybe_free();
}

void HttpClient::close_gracefully() noexcept {
  state_ = State::kClosing;
  if (socket_closing_ || socket_closed_) return;
  if (!out_.empty() || in_flight_ > 0) return;  // on_send comes back here
  if (client_eof_) {
    close_now(false);
    return;
  }
  if (!shutdown_sent_) {
    shutdown_sent_ = true;
    (void)loop_.shutdown_write(socket_);
    // Keep reading (and dropping) until the client's FIN: closing with unread bytes would send RST, which can
    // destroy the answer before the client reads it.
    resume_reading();
    arm_timer(front_.options().linger_ms);
  }
}

void HttpClient::on_shutdown(ring::Loop&, ring::SocketId, int) {}

void HttpClient::close_now(bool abortive) noexcept {
  loop_.timers().cancel(timer_);
  drop_stream(frame::ErrorCode::kCancel);
  if (socket_closing_ || socket_closed_) return;
  socket_closing_ = true;
  if (abortive) {
    (void)ring::net::set_reset_on_close(loop_.fd(socket_));
  }
  loop_.close(socket_);
}

void HttpClient::drop_stream(frame::ErrorCode code) noexcept {
  if (exchange_ == nullptr || !exchange_->stream_open) return;
  exchange_->stream_open = false;  // the synchronous stream_closed() must find nothing left to do
  exchange_->conn->edge_failed(*this, code);
}

void HttpClient::on_close(ring::Loop&, ring::SocketId) {
  {
    DepthGuard guard(depth_);
    socket_closed_ = true;
    socket_closing_ = false;
    out_.clear();
    drop_stream(frame::ErrorCode::kCancel);
    exchange_.reset();
  }
  maybe_free();
}

// ---------------------------------------------------------------- reading, timers, lifetime

void HttpClient::pause_reading() noexcept {
  if (!reading_ || read_paused_ || socket_closing_ || socket_closed_) return;
  read_paused_ = true;
  (void)loop_.recv_stop(socket_);
}

void HttpClient::resume_reading() noexcept {
  if (socket_closing_ || socket_closed_ || client_eof_) return;
  if (reading_ && !read_paused_) return;
  read_paused_ = false;
  reading_ = static_cast<bool>(loop_.recv_start(socket_, tunnel::kEdgePool));
}

void HttpClient::arm_timer(std::uint32_t ms) noexcept { loop_.timers().schedule(timer_, ms); }

void HttpClient::on_timer() noexcept {
  {
    DepthGuard guard(depth_);
    if (state_ == State::kHead) {
      if (input_.empty()) {
        close_now(false);  // an idle keep-alive connection
      } else {
        reject(408, "the request head was not complete in time");
      }
    } else if (state_ == State::kClosing) {
      close_now(false);
    }
  }
  maybe_free();
}

void HttpClient::maybe_free() noexcept {
  if (depth_ == 0 && socket_closed_ && (exchange_ == nullptr || !exchange_->stream_open)) delete this;
}

}  // namespace ringtun::gateway
