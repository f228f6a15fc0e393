// AdminServer: the admin HTTP endpoint (--admin-listen) of either program, served by one core's ring loop.
//
// HTTP/1.1 with the strict request-head parser of src/http (HeadScanner + parse_request_head): keep-alive (Prometheus
// reuses its connection), one request at a time per connection, bodies of at most kMaxBody bytes (Content-Length only;
// read and passed to the routes), answers always with Content-Length. Bad input gets a status and the connection
// closed: a head over kMaxAdminHead 431, malformed 400 (the parser is the gateway's: HTTP/1.0 needs a Host too), a
// request line over 4 KiB 414, a body too large 413, chunked bodies 411, no complete request (head and body) within
// head_timeout_ms 408. Every answer the server makes itself (these, 401, 403) has a short text body and
// "Connection: close". Pipelined requests are answered in order, one at a time. Past max_clients open connections
// a new one is closed at once (counted). Nothing a client sends is logged in full.
//
// Authorization: with a token configured, every path except the open ones ("/" (the dashboard page: it holds no
// data and asks the API with the token), "/healthz", "/ready", "/favicon.ico") needs "Authorization: Bearer <token>",
// compared in constant time; without it: 401 with WWW-Authenticate: Bearer. Methods that change state (POST, and
// any method but GET and HEAD) need a configured token even on loopback: without one they get 403; with one they
// need the bearer token on every path, the open ones included. Whether a token is required for a non-loopback
// address is the settings' rule (app/checks.cpp), not the server's.
//
// Ownership: the server owns its listener and client connections; the routes object must outlive it. Requests are
// answered synchronously from AdminRoutes::handle(), on the loop thread. The loop holds pointers to the server's
// socket handlers until each socket is reaped, so the server may be destroyed only once closed() is true (after
// close() and some loop turns, or after the loop's exit() and run()); the destructor checks it, in release too.
// Thread rules: the loop thread that created it, only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/counter.hpp"
#include "common/result.hpp"
#include "ring/loop.hpp"

namespace ringtun::ops {

inline constexpr std::size_t kMaxAdminHead = 8 * 1024;
inline constexpr std::size_t kMaxBody = 4 * 1024;

struct AdminRequest {
  std::string_view method;  // as sent (upper case expected)
  std::string_view path;    // the target up to '?', percent-decoding NOT applied
  std::string_view query;   // after '?', or empty
  std::string_view body;
  std::string_view peer;    // "127.0.0.1:5555"
};

struct AdminResponse {
  int status = 200;
  std::string_view content_type = "text/plain; charset=utf-8";
  std::string body;               // the routes fill it; HEAD requests get the headers only
  std::string extra_headers;      // whole lines, each ending in "\r\n" (e.g. "Retry-After: 1\r\n")
};

class AdminRoutes {
 public:
  virtual ~AdminRoutes() = default;
  // Called for every authorized, well-formed request. Unknown paths: 404; a known path with a wrong method: 405
  // with an Allow header (the routes decide both).
  virtual void handle(const AdminRequest& request, AdminResponse& response) = 0;
};

struct AdminOptions {
  std::string token;                       // empty: no authorization asked (loopback only, see above)
  std::uint32_t head_timeout_ms = 10'000;  // a request head not complete in this time: 408 and close
  std::uint32_t idle_timeout_ms = 60'000;  // a keep-alive connection idle this long is closed
  unsigned max_clients = 64;
};

struct AdminStats {
  Counter requests;        // answered by the routes (any status)
  Counter unauthorized;    // 401 and 403
  Counter bad_requests;    // 4xx from the server itself (400, 408, 411, 413, 414, 431)
  Counter clients_refused; // closed at accept: over max_clients
};

class AdminServer {
 public:
  // Adopts `listen_fd` (a bound, listening, non-blocking socket: bound by the caller at start-up so a busy address
  // is a start-up error) into `loop` and starts accepting. On error the fd is closed.
  static Result<std::unique_ptr<AdminServer>> start(ring::Loop& loop, int listen_fd, AdminOptions options,
                                                   AdminRoutes& routes);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Stops accepting and closes every client connection (answers in flight are cut). For shutdown; the object may
  // be destroyed once closed() is true (every socket reaped).
  void close() noexcept;
  bool closed() const noexcept;

  const AdminStats& stats() const noexcept;

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- reading an AdminRequest's query (the API's ?filter=&offset=&limit=) ----
// The value of `name` in a query string ("a=1&b=2"), percent-decoded ('+' is a space); empty when absent.
std::string query_value(std::string_view query, std::string_view name);
// Whether `needle` occurs in `haystack`, ASCII case folded (the API's ?filter=); an empty needle always does.
bool contains_folded(std::string_view haystack, std::string_view needle) noexcept;
// A decimal query value, capped at `max`; `fallback` when absent or not a number.
std::uint64_t query_number(std::string_view query, std::string_view name, std::uint64_t fallback, std::uint64_t max);

// Constant-time equality of two secrets (time depends on the lengths only).
bool secrets_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace ringtun::ops
