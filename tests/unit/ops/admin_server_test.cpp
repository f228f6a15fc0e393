// AdminServer over real loopback sockets: the loop runs on the test's thread (run_once), a plain blocking client
// talks to it from a std::thread. Every client socket has a receive timeout and every exchange a deadline, so a bug
// fails a check instead of hanging. Assertions run on the test's thread, after the client thread is joined.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../ring/test_support.hpp"
#include "ops/admin_server.hpp"
#include "ring/loop.hpp"
#include "ring/net.hpp"

namespace ringtun::ops {
namespace {

using namespace std::chrono_literals;

constexpr char kToken[] = "s3cret-token";

// Answers a few fixed paths; records what it was asked.
struct FakeRoutes final : AdminRoutes {
  struct Seen {
    std::string method, path, query, body, peer;
  };
  std::vector<Seen> seen;

  void handle(const AdminRequest& request, AdminResponse& response) override {
    seen.push_back({std::string(request.method), std::string(request.path), std::string(request.query),
                    std::string(request.body), std::string(request.peer)});
    if (request.path == "/hello") {
      response.body = "hello world";
    } else if (request.path == "/echo") {
      response.body = std::string(request.method) + " " + std::string(request.query) + " [" +
                      std::string(request.body) + "]";
    } else if (request.path == "/" || request.path == "/healthz" || request.path == "/metrics") {
      response.body = "page " + std::string(request.path);
      response.extra_headers = "X-Test: 1\r\n";
    } else {
      response.status = 404;
      response.body = "not found";
    }
  }
};

std::unique_ptr<ring::Loop> make_loop() {
  ring::LoopOptions options;
  options.recv_pools[0] = {64, 4096};  // small buffers: heads arrive in several chunks
  options.max_sockets = 256;
  options.fixed_buffers = 0;
  return test::make_loop(options);
}

struct Fixture {
  std::unique_ptr<ring::Loop> loop = make_loop();
  FakeRoutes routes;
  std::unique_ptr<AdminServer> server;
  std::uint16_t port = 0;

  explicit Fixture(AdminOptions options = {}) {
    auto address = ring::net::parse_address("127.0.0.1:0");
    REQUIRE(address);
    auto fd = ring::net::listen_tcp(*address, false, 64);
    REQUIRE(fd);
    auto local = ring::net::local_address(*fd);
    REQUIRE(local);
    port = local->port();
    auto started = AdminServer::start(*loop, *fd, std::move(options), routes);
    REQUIRE(started);
    server = std::move(*started);
  }

  ~Fixture() {
    server->close();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!server->closed() && std::chrono::steady_clock::now() < deadline) loop->run_once(5);
    CHECK(server->closed());
    if (!server->closed()) std::abort();  // destroying it now would leave the loop with dangling handlers
  }

  // Runs `client` on its own thread while this thread turns the loop; bounded.
  void talk(const std::function<void()>& client) {
    std::atomic<bool> done{false};
    std::thread thread([&] {
      client();
      done.store(true);
    });
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!done.load() && std::chrono::steady_clock::now() < deadline) loop->run_once(5);
    thread.join();  // the client's sockets time out, so this ends even if the loop did not serve it
    CHECK(done.load());
  }

  // Turns the loop for `duration` (to let the server see a client's close, say).
  void pump(std::chrono::milliseconds duration) {
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) loop->run_once(5);
  }
};

// ------------------------------------------------------------------------------------------------ the client side

struct Client {
  int fd = -1;
  std::string pending;  // received and not yet consumed

  explicit Client(std::uint16_t port, int timeout_ms = 3000) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~Client() {
    if (fd >= 0) ::close(fd);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool send(std::string_view text) const {
    while (!text.empty()) {
      const ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // >0 bytes appended, 0 EOF, -1 error or timeout (errno says which).
  ssize_t receive_some() {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) pending.append(buf, static_cast<std::size_t>(n));
    return n;
  }

  // True when the server closed the connection (EOF, or a reset) before the timeout; what came before stays in
  // `pending`.
  bool closed_by_server() {
    for (;;) {
      const ssize_t n = receive_some();
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }
};

struct Reply {
  bool ok = false;  // a whole response arrived
  int status = 0;
  std::string head;
  std::string body;

  std::string header(std::string_view name) const {
    const std::string key = "\r\n" + std::string(name) + ": ";
    const std::size_t at = head.find(key);
    if (at == std::string::npos) return {};
    const std::size_t start = at + key.size();
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

// Reads one response (head, then Content-Length bytes unless it answers a HEAD).
Reply read_reply(Client& client, bool head_request = false) {
  Reply reply;
  std::size_t end = 0;
  while ((end = client.pending.find("\r\n\r\n")) == std::string::npos) {
    if (client.receive_some() <= 0) return reply;
  }
  reply.head = client.pending.substr(0, end + 4);
  if (reply.head.rfind("HTTP/1.1 ", 0) != 0 || reply.head.size() < 12) return reply;
  reply.status = std::atoi(reply.head.c_str() + 9);
  const std::size_t length = head_request ? 0 : std::strtoull(reply.header("Content-Length").c_str(), nullptr, 10);
  while (client.pending.size() < end + 4 + length) {
    if (client.receive_some() <= 0) return reply;
  }
  reply.body = client.pending.substr(end + 4, length);
  client.pending.erase(0, end + 4 + length);
  reply.ok = true;
  return reply;
}

std::string get(std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: admin\r\n" + std::string(extra) + "\r\n";
}

std::string bearer(std::string_view token) { return "Authorization: Bearer " + std::string(token) + "\r\n"; }

// One request on a fresh connection: the reply, and whether the server closed afterwards.
struct Exchange {
  Reply reply;
  bool closed = false;
};
Exchange one_shot(Fixture& f, const std::string& request, bool head_request = false) {
  Exchange result;
  f.talk([&] {
    Client client(f.port);
    if (client.fd < 0 || !client.send(request)) return;
    result.reply = read_reply(client, head_request);
    result.closed = client.closed_by_server();
  });
  return result;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ routing

TEST_CASE("GET: the routes' answer with Content-Length and the fixed headers") {
  Fixture f;
  Reply reply;
  f.talk([&] {
    Client client(f.port);
    if (client.send(get("/hello?x=1"))) reply = read_reply(client);
  });
  REQUIRE(reply.ok);
  CHECK(reply.status == 200);
  CHECK(reply.head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reply.body == "hello world");
  CHECK(reply.header("Content-Length") == "11");
  CHECK(reply.header("Content-Type") == "text/plain; charset=utf-8");
  CHECK(reply.header("Cache-Control") == "no-store");
  CHECK(reply.header("Connection").empty());
  REQUIRE(f.routes.seen.size() == 1);
  CHECK(f.routes.seen[0].method == "GET");
  CHECK(f.routes.seen[0].path == "/hello");
  CHECK(f.routes.seen[0].query == "x=1");
  CHECK(f.routes.seen[0].peer.rfind("127.0.0.1:", 0) == 0);
  CHECK(f.server->stats().requests.get() == 1);
}

TEST_CASE("HEAD: the headers with the body's length, and no body") {
  Fixture f;
  Reply head;
  Reply after;
  f.talk([&] {
    Client client(f.port);
    if (!client.send("HEAD /hello HTTP/1.1\r\nHost: admin\r\n\r\n")) return;
    head = read_reply(client, true);
    // Were a body sent, it would sit in front of this answer and break it.
    if (client.send(get("/hello"))) after = read_reply(client);
  });
  REQUIRE(head.ok);
  CHECK(head.status == 200);
  CHECK(head.header("Content-Length") == "11");
  REQUIRE(after.ok);
  CHECK(after.status == 200);
  CHECK(after.body == "hello world");
}

TEST_CASE("404 and extra headers come from the routes") {
  Fixture f;
  auto missing = one_shot(f, get("/nowhere", "Connection: close\r\n"));
  REQUIRE(missing.reply.ok);
  CHECK(missing.reply.status == 404);
  CHECK(missing.reply.body == "not found");
  auto page = one_shot(f, get("/healthz", "Connection: close\r\n"));
  CHECK(page.reply.status == 200);
  CHECK(page.reply.header("X-Test") == "1");
}

TEST_CASE("keep-alive: two requests on one connection, an absolute-form target") {
  Fixture f;
  Reply first;
  Reply second;
  f.talk([&] {
    Client client(f.port);
    if (client.send(get("/echo?n=1"))) first = read_reply(client);
    if (client.send("GET http://admin/echo?n=2 HTTP/1.1\r\nHost: admin\r\n\r\n")) second = read_reply(client);
  });
  CHECK(first.body == "GET n=1 []");
  CHECK(second.body == "GET n=2 []");
  CHECK(f.server->stats().requests.get() == 2);
}

TEST_CASE("pipelined requests are answered one at a time, in order") {
  Fixture f;
  std::vector<Reply> replies;
  f.talk([&] {
    Client client(f.port);
    const std::string burst = get("/echo?n=1") + get("/echo?n=2") + get("/echo?n=3");
    if (!client.send(burst)) return;
    for (int i = 0; i < 3; ++i) replies.push_back(read_reply(client));
  });
  REQUIRE(replies.size() == 3);
  CHECK(replies[0].body == "GET n=1 []");
  CHECK(replies[1].body == "GET n=2 []");
  CHECK(replies[2].body == "GET n=3 []");
}

TEST_CASE("pipelined requests followed by the client's FIN are all answered, then the connection closes") {
  Fixture f;
  std::vector<Reply> replies;
  bool closed = false;
  f.talk([&] {
    Client client(f.port);
    if (!client.send(get("/echo?n=1") + get("/echo?n=2"))) return;
    ::shutdown(client.fd, SHUT_WR);
    for (int i = 0; i < 2; ++i) replies.push_back(read_reply(client));
    closed = client.closed_by_server();
  });
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].body == "GET n=1 []");
  CHECK(replies[1].body == "GET n=2 []");
  CHECK(closed);
}

TEST_CASE("Connection: close and HTTP/1.0 close after the answer; HTTP/1.0 keep-alive is honoured") {
  Fixture f;
  auto closing = one_shot(f, get("/hello", "Connection: close\r\n"));
  CHECK(closing.reply.status == 200);
  CHECK(closing.reply.header("Connection") == "close");
  CHECK(closing.closed);

  auto old = one_shot(f, "GET /hello HTTP/1.0\r\nHost: a\r\n\r\n");
  CHECK(old.reply.status == 200);
  CHECK(old.reply.body == "hello world");
  CHECK(old.closed);

  Reply first;
  Reply second;
  f.talk([&] {
    Client client(f.port);
    const std::string request = "GET /hello HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n";
    if (client.send(request)) first = read_reply(client);
    if (client.send(request)) second = read_reply(client);
  });
  CHECK(first.header("Connection") == "keep-alive");
  CHECK(second.status == 200);
}

TEST_CASE("a request whose body arrives after its head") {
  AdminOptions options;
  options.token = kToken;
  Fixture f(options);
  Reply reply;
  f.talk([&] {
    Client client(f.port);
    if (!client.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n" + bearer(kToken) + "\r\nab")) return;
    std::this_thread::sleep_for(50ms);
    if (client.send("cdefg")) reply = read_reply(client);
  });
  CHECK(reply.status == 200);
  CHECK(reply.body == "POST  [abcdefg]");
}

TEST_CASE("Expect: 100-continue gets its interim answer before the body is sent") {
  AdminOptions options;
  options.token = kToken;
  Fixture f(options);
  Reply interim;
  Reply reply;
  f.talk([&] {
    Client client(f.port);
    if (!client.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n" +
                     bearer(kToken) + "\r\n")) {
      return;
    }
    interim = read_reply(client);
    if (client.send("body")) reply = read_reply(client);
  });
  CHECK(interim.status == 100);
  CHECK(reply.status == 200);
  CHECK(reply.body == "POST  [body]");
}

// ------------------------------------------------------------------------------------------------ authorization

TEST_CASE("with a token: 401 without it or with a wrong one, 200 with it; open paths stay open") {
  AdminOptions options;
  options.token = kToken;
  Fixture f(options);

  auto none = one_shot(f, get("/metrics"));
  CHECK(none.reply.status == 401);
  CHECK(none.reply.header("WWW-Authenticate") == "Bearer realm=\"ringtun\"");
  CHECK(none.reply.header("Connection") == "close");
  CHECK(none.closed);

  auto wrong = one_shot(f, get("/metrics", bearer("s3cret-tokeN")));
  CHECK(wrong.reply.status == 401);
  auto longer = one_shot(f, get("/metrics", bearer(std::string(kToken) + "x")));
  CHECK(longer.reply.status == 401);
  auto basic = one_shot(f, get("/metrics", "Authorization: Basic czNjcmV0LXRva2Vu\r\n"));
  CHECK(basic.reply.status == 401);
  CHECK(f.routes.seen.empty());

  const std::string lower_case_scheme = "authorization: bearer " + std::string(kToken) + "\r\n";
  auto right = one_shot(f, get("/metrics", lower_case_scheme + "Connection: close\r\n"));
  CHECK(right.reply.status == 200);
  CHECK(right.reply.body == "page /metrics");

  for (const char* path : {"/", "/healthz", "/?x=1"}) {
    auto open = one_shot(f, get(path, "Connection: close\r\n"));
    CHECK(open.reply.status == 200);
  }
  auto unknown = one_shot(f, get("/healthz/x"));
  CHECK(unknown.reply.status == 401);
  CHECK(f.server->stats().unauthorized.get() == 5);
}

TEST_CASE("POST without a configured token: 403, whatever the path") {
  Fixture f;
  auto post = one_shot(f, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\na=1");
  CHECK(post.reply.status == 403);
  CHECK(post.reply.body.find("set --admin-token to use this endpoint") != std::string::npos);
  CHECK(post.closed);
  auto open = one_shot(f, "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  CHECK(open.reply.status == 403);
  CHECK(f.routes.seen.empty());
  CHECK(f.server->stats().unauthorized.get() == 2);
}

TEST_CASE("POST with a token: routed with its body; without the bearer token 401, also on an open path") {
  AdminOptions options;
  options.token = kToken;
  Fixture f(options);
  auto post = one_shot(f, "POST /echo?q HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n" + bearer(kToken) +
                              "Connection: close\r\n\r\na=1");
  CHECK(post.reply.status == 200);
  CHECK(post.reply.body == "POST q [a=1]");
  auto anonymous = one_shot(f, "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  CHECK(anonymous.reply.status == 401);
  REQUIRE(f.routes.seen.size() == 1);
  CHECK(f.routes.seen[0].body == "a=1");
}

TEST_CASE("secrets_equal") {
  CHECK(secrets_equal("", ""));
  CHECK(secrets_equal("abc", "abc"));
  CHECK_FALSE(secrets_equal("abc", "abd"));
  CHECK_FALSE(secrets_equal("abc", "xbc"));
  CHECK_FALSE(secrets_equal("abc", "ab"));
  CHECK_FALSE(secrets_equal("ab", "abc"));
  CHECK_FALSE(secrets_equal("", "a"));
  CHECK_FALSE(secrets_equal("abc", std::string_view("abc\0", 4)));
  CHECK(secrets_equal(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  // Every bit of every byte counts, at any position.
  int wrong = 0;
  for (int x = 0; x < 256; ++x) {
    for (int y = 0; y < 256; ++y) {
      const std::string a = "ab" + std::string(1, static_cast<char>(x)) + "cd";
      const std::string b = "ab" + std::string(1, static_cast<char>(y)) + "cd";
      if (secrets_equal(a, b) != (x == y)) ++wrong;
    }
  }
  CHECK(wrong == 0);
}

// ------------------------------------------------------------------------------------------------ refusals

TEST_CASE("refusals from the server: status, short text body, Connection: close, connection closed") {
  Fixture f;
  struct Case {
    const char* name;
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"431 head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n", 431},
      {"431 many lines", "GET / HTTP/1.1\r\nHost: a\r\n" + [] {
         std::string lines;
         for (int i = 0; i < 400; ++i) lines += "X-Field-" + std::to_string(i) + ": v\r\n";
         return lines;
       }() + "\r\n", 431},
      {"400 garbage", "\x01\x02 garbage\r\n\r\n", 400},
      {"400 no Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"400 bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400},
      {"414 request line", "GET /" + std::string(5000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
      {"411 chunked", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411},
      {"413 body", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", 413},
  };
  std::uint64_t expected = 0;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    auto result = one_shot(f, c.request);
    REQUIRE(result.reply.ok);
    CHECK(result.reply.status == c.status);
    CHECK(result.reply.header("Connection") == "close");
    CHECK(result.reply.body.rfind(std::to_string(c.status) + " ", 0) == 0);
    CHECK(result.closed);
    CHECK(f.server->stats().bad_requests.get() == ++expected);
  }
  CHECK(f.routes.seen.empty());
  CHECK(f.server->stats().requests.get() == 0);
}

TEST_CASE("408: a head not complete within head_timeout_ms; an idle connection is closed quietly") {
  AdminOptions options;
  options.head_timeout_ms = 200;
  options.idle_timeout_ms = 300;
  Fixture f(options);
  Exchange slow;
  std::string idle_bytes;
  bool idle_closed = false;
  std::chrono::milliseconds waited{};
  f.talk([&] {
    Client client(f.port);
    const auto start = std::chrono::steady_clock::now();
    if (!client.send("GET / HTTP/1.1\r\nHost: a\r\n")) return;
    slow.reply = read_reply(client);
    waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    slow.closed = client.closed_by_server();

    Client idle(f.port);
    if (!idle.send(get("/hello"))) return;
    if (!read_reply(idle).ok) return;
    idle_closed = idle.closed_by_server();  // after idle_timeout_ms, with nothing more sent
    idle_bytes = idle.pending;
  });
  CHECK(slow.reply.status == 408);
  CHECK(slow.closed);
  CHECK(waited >= 150ms);
  CHECK(idle_closed);
  CHECK(idle_bytes.empty());
}

TEST_CASE("max_clients: a connection past it is closed at once and counted") {
  AdminOptions options;
  options.max_clients = 2;
  Fixture f(options);
  Reply a;
  Reply b;
  bool third_closed = false;
  Reply after;
  f.talk([&] {
    Client first(f.port);
    Client second(f.port);
    // Answered requests prove both are accepted before the third arrives.
    if (first.send(get("/hello"))) a = read_reply(first);
    if (second.send(get("/hello"))) b = read_reply(second);
    {
      Client third(f.port);
      third_closed = third.closed_by_server();
    }
    // A slot frees when a client leaves.
    ::close(first.fd);
    first.fd = -1;
    std::this_thread::sleep_for(100ms);
    Client fourth(f.port);
    if (fourth.send(get("/hello"))) after = read_reply(fourth);
  });
  CHECK(a.status == 200);
  CHECK(b.status == 200);
  CHECK(third_closed);
  CHECK(f.server->stats().clients_refused.get() == 1);
  CHECK(after.status == 200);
}

TEST_CASE("close(): stops accepting, closes clients, closed() once all are reaped") {
  Fixture f;
  Client client(f.port);
  REQUIRE(client.fd >= 0);
  REQUIRE(client.send("GET /hel"));  // a request in progress
  f.pump(50ms);
  CHECK_FALSE(f.server->closed());
  f.server->close();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!f.server->closed() && std::chrono::steady_clock::now() < deadline) f.loop->run_once(5);
  CHECK(f.server->closed());
  CHECK(client.closed_by_server());
  Client late(f.port);
  CHECK(late.fd < 0);  // the listener is gone: refused
}

}  // namespace ringtun::ops
