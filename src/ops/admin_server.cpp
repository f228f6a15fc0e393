// AdminServer: see admin_server.hpp.
//
// One Client per connection, owned by the server's list and freed in its on_close (which the loop runs from its
// own turn, never from inside a call we made, so nothing of the client is touched after it). A client is in one of
// four states:
//   kHead     reading a request head (HeadScanner over input_, which holds at most kMaxAdminHead bytes of head);
//   kBody     the head is accepted and authorized; waiting for its Content-Length body (at most kMaxBody), after
//             a "100 Continue" when the client asked for one;
//   kSending  the routes answered; the response is in flight and reading is paused, so pipelined requests wait
//             in input_ (bounded by kMaxPendingInput) and are taken one at a time once the response is out;
//   kClosing  the last response (an error, Connection: close, HTTP/1.0) is being sent; then SHUT_WR and reading
//             and dropping until the client's FIN (or kLingerMs), because closing with unread input would send RST
//             and could destroy the answer before the client reads it.
// One timer per client: the head timeout (from the first byte of a head until the request is complete, body
// included), the idle timeout (between requests, and a stuck send), or the linger time.
#include "ops/admin_server.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include "common/assert.hpp"
#include "common/decimal.hpp"
#include "http/forward.hpp"
#include "http/message.hpp"
#include "ring/net.hpp"
#include "ring/timer_wheel.hpp"

namespace ringtun::ops {

namespace {

// A request line over this is 414 (the head as a whole is limited by kMaxAdminHead: 431).
constexpr std::size_t kMaxRequestLine = 4 * 1024;
// What a client may send ahead while one of its responses is in flight (reading is paused then, but chunks already
// taken from the socket still arrive): a couple of pipelined requests. Past it the client is cut.
constexpr std::size_t kMaxPendingInput = 2 * (kMaxAdminHead + kMaxBody) + 32 * 1024;
constexpr std::uint32_t kLingerMs = 2'000;
// A response buffer that grew past this (a large metrics page) is released after sending, to keep idle clients
// small.
constexpr std::size_t kKeepOutCapacity = 16 * 1024;

constexpr std::string_view kOpenPaths[] = {"/", "/healthz", "/ready", "/favicon.ico"};

bool is_open_path(std::string_view path) noexcept {
  for (std::string_view open : kOpenPaths) {
    if (path == open) return true;
  }
  return false;
}

// The path and query of a request target: origin-form as is, absolute-form without its scheme and authority.
void split_target(std::string_view target, std::string_view* path, std::string_view* query) noexcept {
  if (!target.empty() && target.front() != '/') {
    const std::size_t scheme = target.find("://");
    if (scheme != std::string_view::npos) {
      const std::size_t slash = target.find('/', scheme + 3);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  const std::size_t mark = target.find('?');
  *path = target.substr(0, mark);
  *query = mark == std::string_view::npos ? std::string_view() : target.substr(mark + 1);
}

// "Authorization: Bearer <token>" (scheme case-insensitive, RFC 9110 section 11.1) compared with `token`.
bool authorized(std::string_view header, std::string_view token) noexcept {
  const std::size_t space = header.find(' ');
  if (space == std::string_view::npos || !http::iequals(header.substr(0, space), "Bearer")) return false;
  std::string_view credentials = header.substr(space + 1);
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  return secrets_equal(credentials, token);
}

}  // namespace

// ------------------------------------------------------------------------------------------------ the server

struct AdminServer::Impl final : ring::SocketHandler {
  class Client;

  Impl(ring::Loop& loop_in, AdminOptions options_in, AdminRoutes& routes_in)
      : loop(loop_in), options(std::move(options_in)), routes(routes_in) {}
  ~Impl() override;

  void on_accept(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;  // the listener

  void close_all() noexcept;
  bool closed() const noexcept { return listener_reaped && clients.empty(); }
  void remove(Client* client) noexcept;

  ring::Loop& loop;
  AdminOptions options;
  AdminRoutes& routes;
  AdminStats stats;
  ring::SocketId listener;
  bool listener_reaped = true;  // until adopted
  bool closing = false;
  std::vector<std::unique_ptr<Client>> clients;  // a client knows its index (swap-remove)
};

class AdminServer::Impl::Client final : public ring::SocketHandler {
 public:
  Client(Impl& server, std::size_t index) noexcept : index_(index), server_(server) {
    timer_.set_callback([](void* self) { static_cast<Client*>(self)->on_timer(); }, this);
  }
  ~Client() override { server_.loop.timers().cancel(timer_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Adopts the accepted fd; false if the loop refused it (the fd is closed then and the client must be dropped).
  bool start(int fd) noexcept;
  void close_now(bool abortive) noexcept;

  std::size_t index_;

 private:
  enum class State : std::uint8_t { kHead, kBody, kSending, kClosing };

  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_send(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;

  void process_input() noexcept;
  bool accept_head(const http::RequestHead& head) noexcept;  // false: rejected
  void dispatch() noexcept;
  void write_response(int status, std::string_view content_type, std::string_view body,
                      std::string_view extra_headers, bool head_only, http::Version version) noexcept;
  void reject(int status, const char* detail, bool head_only = false) noexcept;
  void send_out() noexcept;
  void close_gracefully() noexcept;
  void pause_reading() noexcept;
  void resume_reading() noexcept;
  void on_timer() noexcept;

  Impl& server_;
  ring::SocketId socket_;
  std::string peer_;
  std::string input_;    // the request being read (and what a pipelining client sent after it)
  std::string out_;      // the response in flight
  iovec iov_{};
  http::HeadScanner scanner_;
  std::size_t request_end_ = 0;  // kBody: input_ offset one past the body
  ring::Timer timer_;
  State state_ = State::kHead;
  bool counting_head_ = false;  // the timer measures the head timeout of the request being read
  bool close_after_ = false;
  bool sending_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool client_eof_ = false;
  bool shutdown_sent_ = false;
  bool closing_ = false;  // close() called; on_close follows
};

AdminServer::Impl::~Impl() = default;

void AdminServer::Impl::on_accept(ring::Loop&, ring::SocketId, int res) {
  if (res < 0) return;  // the loop keeps accepting (and waits out EMFILE)
  if (closing) {
    ::close(res);
    return;
  }
  if (clients.size() >= options.max_clients) {
    ++stats.clients_refused;
    ::close(res);
    return;
  }
  clients.push_back(std::make_unique<Client>(*this, clients.size()));
  if (!clients.back()->start(res)) clients.pop_back();
}

void AdminServer::Impl::on_close(ring::Loop&, ring::SocketId) { listener_reaped = true; }

void AdminServer::Impl::close_all() noexcept {
  closing = true;
  if (!listener_reaped && loop.alive(listener)) loop.close(listener);
  // Clients leave the list in their on_close, which runs later from the loop: this walk is safe.
  for (auto& client : clients) client->close_now(false);
}

void AdminServer::Impl::remove(Client* client) noexcept {
  const std::size_t index = client->index_;
  RINGTUN_ASSERT(index < clients.size() && clients[index].get() == client, "AdminServer: client list");
  if (index + 1 != clients.size()) {
    clients[index] = std::move(clients.back());
    clients[index]->index_ = index;
  }
  clients.pop_back();
}

// ------------------------------------------------------------------------------------------------ a client

bool AdminServer::Impl::Client::start(int fd) noexcept {
  if (auto peer = ring::net::peer_address(fd)) peer_ = peer->to_string();
  auto socket = server_.loop.adopt(fd, this);
  if (!socket) return false;
  socket_ = *socket;
  (void)ring::net::set_nodelay(fd);
  resume_reading();
  // A connection that sends nothing is closed (silently) after the head timeout.
  counting_head_ = true;
  server_.loop.timers().schedule(timer_, server_.options.head_timeout_ms);
  return true;
}

void AdminServer::Impl::Client::on_recv(ring::Loop& loop, ring::SocketId, int res, const ring::RecvBuffer& buffer) {
  if (res > 0) {
    const bool drop = state_ == State::kClosing || closing_;
    if (!drop) input_.append(reinterpret_cast<const char*>(buffer.data), buffer.size);
    loop.recycle(buffer);
    if (drop) return;
    if (input_.size() > kMaxPendingInput) {
      close_now(true);  // far more than a head and a body, while we were answering: not an admin client
      return;
    }
    if (state_ == State::kHead || state_ == State::kBody) process_input();
    return;
  }
  reading_ = false;
  if (res < 0) {
    close_now(true);
    return;
  }
  client_eof_ = true;
  switch (state_) {
    case State::kHead:
    case State::kBody:
      close_now(false);  // between requests, or one that will never be complete: nothing to answer
      break;
    case State::kSending:
      break;  // the answer still goes out; on_send decides
    case State::kClosing:
      if (!sending_) close_now(false);
      break;
  }
}

void AdminServer::Impl::Client::process_input() noexcept {
  if (closing_) return;
  if (state_ == State::kHead) {
    if (input_.empty()) {
      if (client_eof_) {
        close_now(false);
      } else if (!counting_head_) {
        server_.loop.timers().schedule(timer_, server_.options.idle_timeout_ms);
      }
      return;
    }
    if (!counting_head_) {
      counting_head_ = true;
      server_.loop.timers().schedule(timer_, server_.options.head_timeout_ms);
    }
    switch (scanner_.scan(input_, kMaxRequestLine)) {
      case http::HeadScanner::State::kTooLarge:
        reject(scanner_.problem().status, scanner_.problem().reason);
        return;
      case http::HeadScanner::State::kNeedMore:
        if (input_.size() > kMaxAdminHead) {
          reject(431, "request head too large");
        } else if (client_eof_) {
          close_now(false);
        }
        return;
      case http::HeadScanner::State::kComplete:
        break;
    }
    if (scanner_.head_length() > kMaxAdminHead) {
      reject(431, "request head too large");
      return;
    }
    http::RequestHead head;
    const std::string_view text(input_.data() + scanner_.head_start(), scanner_.head_length() - scanner_.head_start());
    if (http::Problem problem = http::parse_request_head(text, &head)) {
      reject(problem.status, problem.reason);
      return;
    }
    if (!accept_head(head)) return;
    request_end_ = scanner_.head_length() + (head.body == http::BodyKind::kLength ? head.content_length : 0);
    state_ = State::kBody;
    if (head.expect_continue && input_.size() < request_end_) {
      // The client waits for this before sending its body (curl would otherwise pause a second).
      out_ = "HTTP/1.1 100 Continue\r\n\r\n";
      send_out();
      return;
    }
  }
  if (state_ == State::kBody) {
    if (sending_) return;  // the 100 Continue is still going out; on_send comes back here
    if (input_.size() < request_end_) {
      if (client_eof_) close_now(false);
      return;
    }
    dispatch();
  }
}

// Body framing and authorization, decided on the head alone so that nothing is read for a request we refuse.
bool AdminServer::Impl::Client::accept_head(const http::RequestHead& head) noexcept {
  if (head.body == http::BodyKind::kChunked) {
    reject(411, "a body needs Content-Length", head.is_head);
    return false;
  }
  if (head.body == http::BodyKind::kLength && head.content_length > kMaxBody) {
    reject(413, "body too large", head.is_head);
    return false;
  }
  std::string_view path;
  std::string_view query;
  split_target(head.target, &path, &query);
  const AdminOptions& options = server_.options;
  const bool reads = head.method == "GET" || head.method == "HEAD";
  if (!reads && options.token.empty()) {
    reject(403, "set --admin-token to use this endpoint", head.is_head);
    return false;
  }
  if (!options.token.empty() && !(reads && is_open_path(path)) &&
      !authorized(head.fields.get("Authorization"), options.token)) {
    reject(401, "a bearer token is required", head.is_head);
    return false;
  }
  return true;
}

void AdminServer::Impl::Client::dispatch() noexcept {
  // The head was parsed and accepted when it completed; parsing again is cheaper than keeping a RequestHead (a few
  // KiB) per connection, and the views must point into input_ as it is now.
  http::RequestHead head;
  const std::string_view text(input_.data() + scanner_.head_start(), scanner_.head_length() - scanner_.head_start());
  const http::Problem problem = http::parse_request_head(text, &head);
  RINGTUN_CHECK(!problem, "AdminServer: a parsed head no longer parses");

  AdminRequest request;
  request.method = head.method;
  split_target(head.target, &request.path, &request.query);
  request.body = std::string_view(input_).substr(scanner_.head_length(), request_end_ - scanner_.head_length());
  request.peer = peer_;
  AdminResponse response;
  server_.routes.handle(request, response);
  ++server_.stats.requests;

  close_after_ = !head.keep_alive || server_.closing;
  write_response(response.status, response.content_type, response.body, response.extra_headers, head.is_head,
                 head.version);
  input_.erase(0, request_end_);
  scanner_.reset();
  request_end_ = 0;
  counting_head_ = false;
  if (close_after_) {
    state_ = State::kClosing;
    input_.clear();
  } else {
    state_ = State::kSending;
    pause_reading();  // pipelined requests wait for this answer
  }
  // The idle timeout bounds a response the client does not read.
  server_.loop.timers().schedule(timer_, server_.options.idle_timeout_ms);
  send_out();
}

void AdminServer::Impl::Client::write_response(int status, std::string_view content_type, std::string_view body,
                                               std::string_view extra_headers, bool head_only,
                                               http::Version version) noexcept {
  out_.clear();
  out_ += "HTTP/1.1 ";
  append_decimal(out_, static_cast<std::uint64_t>(status));
  out_ += ' ';
  out_ += http::reason_phrase(status);
  out_ += "\r\nContent-Type: ";
  out_ += content_type;
  out_ += "\r\nContent-Length: ";
  append_decimal(out_, body.size());
  out_ += "\r\nCache-Control: no-store\r\n";
  out_ += extra_headers;
  if (close_after_) {
    out_ += "Connection: close\r\n";
  } else if (version == http::Version::kHttp10) {
    out_ += "Connection: keep-alive\r\n";  // an HTTP/1.0 client that asked for it must be told it holds
  }
  out_ += "\r\n";
  if (!head_only) out_ += body;
}

// An answer from the server itself (bad input, authorization): a short text body, then the connection closes.
void AdminServer::Impl::Client::reject(int status, const char* detail, bool head_only) noexcept {
  if (status == 401 || status == 403) {
    ++server_.stats.unauthorized;
  } else {
    ++server_.stats.bad_requests;
  }
  std::string body;
  append_decimal(body, static_cast<std::uint64_t>(status));
  body += ' ';
  body += http::reason_phrase(status);
  body += ": ";
  body += detail;
  body += '\n';
  close_after_ = true;
  write_response(status, "text/plain; charset=utf-8", body,
                 status == 401 ? "WWW-Authenticate: Bearer realm=\"ringtun\"\r\n" : "", head_only,
                 http::Version::kHttp11);
  input_.clear();
  input_.shrink_to_fit();
  scanner_.reset();
  state_ = State::kClosing;
  counting_head_ = false;
  server_.loop.timers().schedule(timer_, server_.options.idle_timeout_ms);
  send_out();
}

void AdminServer::Impl::Client::send_out() noexcept {
  iov_.iov_base = out_.data();
  iov_.iov_len = out_.size();
  if (!server_.loop.send(socket_, &iov_, 1)) {
    close_now(true);
    return;
  }
  sending_ = true;
}

void AdminServer::Impl::Client::on_send(ring::Loop&, ring::SocketId, int res) {
  sending_ = false;
  if (res < 0) {
    close_now(true);
    return;
  }
  out_.clear();
  if (out_.capacity() > kKeepOutCapacity) out_.shrink_to_fit();
  if (state_ == State::kClosing) {
    close_gracefully();
    return;
  }
  if (state_ == State::kBody) {
    process_input();  // the 100 Continue went out: the body may be here already
    return;
  }
  state_ = State::kHead;
  server_.loop.timers().cancel(timer_);
  process_input();  // a pipelined request, or arm the idle timer
  if (!closing_ && (state_ == State::kHead || state_ == State::kBody)) resume_reading();
}

void AdminServer::Impl::Client::close_gracefully() noexcept {
  if (closing_) return;
  if (client_eof_) {
    close_now(false);
    return;
  }
  if (!shutdown_sent_) {
    shutdown_sent_ = true;
    (void)server_.loop.shutdown_write(socket_);
    resume_reading();  // read and drop until the client's FIN
    server_.loop.timers().schedule(timer_, kLingerMs);
  }
}

void AdminServer::Impl::Client::close_now(bool abortive) noexcept {
  server_.loop.timers().cancel(timer_);
  if (closing_) return;
  closing_ = true;
  if (abortive) (void)ring::net::set_reset_on_close(server_.loop.fd(socket_));
  server_.loop.close(socket_);
}

void AdminServer::Impl::Client::on_close(ring::Loop&, ring::SocketId) {
  server_.remove(this);  // frees this client: nothing may follow
}

void AdminServer::Impl::Client::pause_reading() noexcept {
  if (!reading_ || read_paused_ || closing_) return;
  read_paused_ = true;
  (void)server_.loop.recv_stop(socket_);
}

void AdminServer::Impl::Client::resume_reading() noexcept {
  if (closing_ || client_eof_) return;
  if (reading_ && !read_paused_) return;
  read_paused_ = false;
  reading_ = static_cast<bool>(server_.loop.recv_start(socket_));
}

void AdminServer::Impl::Client::on_timer() noexcept {
  switch (state_) {
    case State::kHead:
    case State::kBody:
      if (input_.empty()) {
        close_now(false);  // idle between requests, or never sent anything
      } else {
        reject(408, "the request was not complete in time");
      }
      break;
    case State::kSending:
      close_now(true);  // the client does not read its answer
      break;
    case State::kClosing:
      close_now(sending_);  // linger over (or the error answer was never read)
      break;
  }
}

// ------------------------------------------------------------------------------------------------ public

Result<std::unique_ptr<AdminServer>> AdminServer::start(ring::Loop& loop, int listen_fd, AdminOptions options,
                                                        AdminRoutes& routes) {
  auto impl = std::make_unique<Impl>(loop, std::move(options), routes);
  auto listener = loop.adopt_listener(listen_fd, impl.get());
  if (!listener) return Unexpected{listener.error()};
  impl->listener = *listener;
  impl->listener_reaped = false;
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() {
  // The loop holds pointers to the listener's and the clients' handlers until each socket is reaped.
  RINGTUN_CHECK(impl_->closed(), "AdminServer destroyed before closed(): close() it and run the loop until closed()");
}

void AdminServer::close() noexcept { impl_->close_all(); }

bool AdminServer::closed() const noexcept { return impl_->closed(); }

const AdminStats& AdminServer::stats() const noexcept { return impl_->stats; }

bool secrets_equal(std::string_view a, std::string_view b) noexcept {
  // Every byte of the longer one is visited whatever the contents; the barrier keeps the compiler from turning the
  // accumulation into an early exit.
  const std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0U : 1U;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned>(x ^ y);
    __asm__ volatile("" : "+r"(diff));
  }
  return diff == 0;
}

std::string query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    const std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      unsigned value = 0;
      if (raw[i] == '+') {
        out.push_back(' ');
      } else if (raw[i] == '%' && i + 2 < raw.size() &&
                 std::from_chars(raw.data() + i + 1, raw.data() + i + 3, value, 16).ptr == raw.data() + i + 3) {
        out.push_back(static_cast<char>(value));
        i += 2;
      } else {
        out.push_back(raw[i]);
      }
    }
    return out;
  }
  return {};
}

bool contains_folded(std::string_view haystack, std::string_view needle) noexcept {
  if (needle.empty()) return true;
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != haystack.end();
}

std::uint64_t query_number(std::string_view query, std::string_view name, std::uint64_t fallback, std::uint64_t max) {
  const std::string text = query_value(query, name);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return fallback;
  return value < max ? value : max;
}

}  // namespace ringtun::ops
