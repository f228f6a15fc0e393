// HTTP heads: the scanner split at every byte, request parsing and every smuggling refusal with its status, Host
// rules, connection semantics, and response framing rules.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "http/message.hpp"

using namespace ringtun::http;  // NOLINT

namespace {

struct Scan {
  HeadScanner::State state;
  std::size_t start = 0;
  std::size_t length = 0;
  int status = 0;
  bool operator==(const Scan&) const = default;
};

Scan scan_whole(std::string_view buffer, std::size_t max_first_line = kMaxRequestLine) {
  HeadScanner s;
  const auto state = s.scan(buffer, max_first_line);
  return {state, s.head_start(), s.head_length(), s.problem().status};
}

// Feeds a growing prefix: first `split` bytes, then everything; and one byte at a time.
Scan scan_split(std::string_view buffer, std::size_t split, std::size_t max_first_line = kMaxRequestLine) {
  HeadScanner s;
  auto state = s.scan(buffer.substr(0, split), max_first_line);
  if (state == HeadScanner::State::kNeedMore) state = s.scan(buffer, max_first_line);
  return {state, s.head_start(), s.head_length(), s.problem().status};
}
Scan scan_bytewise(std::string_view buffer, std::size_t max_first_line = kMaxRequestLine) {
  HeadScanner s;
  auto state = HeadScanner::State::kNeedMore;
  for (std::size_t n = 0; n <= buffer.size() && state == HeadScanner::State::kNeedMore; ++n) {
    state = s.scan(buffer.substr(0, n), max_first_line);
  }
  return {state, s.head_start(), s.head_length(), s.problem().status};
}

void check_split_invariance(std::string_view buffer, std::size_t max_first_line = kMaxRequestLine) {
  const Scan whole = scan_whole(buffer, max_first_line);
  for (std::size_t k = 0; k <= buffer.size(); ++k) CHECK(scan_split(buffer, k, max_first_line) == whole);
  CHECK(scan_bytewise(buffer, max_first_line) == whole);
}

// Heads are big (kMaxFields fields): keep them off the test's stack.
std::unique_ptr<RequestHead> new_request() {
  return std::make_unique<RequestHead>();
}

// Scans then parses a request; the status of the first problem (0 = accepted).
int request_status(std::string_view text, RequestHead* out) {
  HeadScanner s;
  const auto state = s.scan(text);
  if (state == HeadScanner::State::kTooLarge) return s.problem().status;
  if (state != HeadScanner::State::kComplete) return -1;
  return parse_request_head(text.substr(s.head_start(), s.head_length() - s.head_start()), out).status;
}
int request_status(std::string_view text) {
  auto h = new_request();
  return request_status(text, h.get());
}

std::string get(std::string_view rest) {
  return "GET / HTTP/1.1\r\nHost: a.example\r\n" + std::string(rest) + "\r\n\r\n";
}

}  // namespace

TEST_CASE("scanner finds the end of a head and skips leading empty lines") {
  const std::string req = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
  Scan s = scan_whole(req);
  CHECK(s.state == HeadScanner::State::kComplete);
  CHECK(s.start == 0);
  CHECK(s.length == req.size() - 4);

  const std::string lead = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  s = scan_whole(lead);
  CHECK(s.state == HeadScanner::State::kComplete);
  CHECK(s.start == 4);
  CHECK(s.length == lead.size());

  CHECK(scan_whole("GET / HTTP/1.1\r\nHost: a\r\n").state == HeadScanner::State::kNeedMore);
  CHECK(scan_whole("").state == HeadScanner::State::kNeedMore);
  CHECK(scan_whole("\r").state == HeadScanner::State::kNeedMore);
  // A head with no fields at all ends at the first empty line after the first line.
  CHECK(scan_whole("HTTP/1.1 200 OK\r\n\r\n").length == 19);
}

TEST_CASE("scanner is split-invariant at every byte") {
  const std::vector<std::string> inputs = {
      "GET / HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n",
      "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nextra",
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\n\r\n",
      "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
      "\n",
      "HTTP/1.1 204 No Content\r\n\r\n",
      "GET /0123456789 HTTP/1.1\r\n\r\n",
      "GET /0123456789 HTTP/1.1\n\r\n",
  };
  for (const auto& in : inputs) {
    CAPTURE(in);
    check_split_invariance(in);
    // A first-line limit around the first line's length: 414 or not, the same answer at every split.
    for (std::size_t limit = 10; limit < 30; ++limit) check_split_invariance(in, limit);
  }
}

TEST_CASE("scanner limits: 414 for a long first line, 431 for a large head") {
  const std::string long_line = "GET /" + std::string(kMaxRequestLine, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  CHECK(scan_whole(long_line).status == 414);
  CHECK(scan_bytewise(long_line).status == 414);
  // Exactly kMaxRequestLine bytes of request line is allowed.
  const std::string fits = "GET /" + std::string(kMaxRequestLine - 14, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  CHECK(scan_whole(fits).state == HeadScanner::State::kComplete);
  CHECK(request_status(fits) == 0);

  std::string big = "GET / HTTP/1.1\r\n";
  while (big.size() < kMaxHeadBytes + 100) big += "X-Filler: " + std::string(100, 'f') + "\r\n";
  CHECK(scan_whole(big).status == 431);
  HeadScanner s;
  CHECK(s.scan(std::string_view(big).substr(0, kMaxHeadBytes - 1)) == HeadScanner::State::kNeedMore);
  CHECK(s.scan(big) == HeadScanner::State::kTooLarge);
  CHECK(s.problem().status == 431);
  // Once decided, the answer stays.
  CHECK(s.scan(big) == HeadScanner::State::kTooLarge);

  // A head ending exactly at kMaxHeadBytes fits.
  std::string exact = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
  exact += std::string(kMaxHeadBytes - exact.size() - 4, 'p');
  exact += "\r\n\r\n";
  REQUIRE(exact.size() == kMaxHeadBytes);
  CHECK(scan_whole(exact).state == HeadScanner::State::kComplete);
  CHECK(scan_whole(exact + "more").state == HeadScanner::State::kComplete);
}

TEST_CASE("a browser request parses") {
  const std::string text =
      "GET /index.html?q=1 HTTP/1.1\r\n"
      "Host: WWW.Example.com:8080\r\n"
      "User-Agent: test/1.0\r\n"
      "Accept:text/html \r\n"
      "Accept-Encoding: gzip,\t deflate\r\n"
      "\r\n";
  auto h = new_request();
  REQUIRE(request_status(text, h.get()) == 0);
  CHECK(h->method == "GET");
  CHECK(h->target == "/index.html?q=1");
  CHECK(h->version == Version::kHttp11);
  CHECK(h->host == "WWW.Example.com");
  CHECK(h->host_header == "WWW.Example.com:8080");
  CHECK(h->body == BodyKind::kNone);
  CHECK(h->keep_alive);
  CHECK_FALSE(h->upgrade);
  CHECK_FALSE(h->expect_continue);
  CHECK_FALSE(h->is_head);
  REQUIRE(h->fields.count == 4);
  CHECK(h->fields.get("accept") == "text/html");
  CHECK(h->fields.get("ACCEPT-ENCODING") == "gzip,\t deflate");
  CHECK(h->fields.get("missing").empty());
}

TEST_CASE("request smuggling and malformed heads are refused with the right status") {
  struct Case {
    std::string text;
    int status;
  };
  const std::vector<Case> cases = {
      // Line endings and folding.
      {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\rY: 2\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400},
      {get("X: a\r\n folded"), 400},
      {get("X: a\r\n\tfolded"), 400},
      {get("Content-Length : 5"), 400},
      {get("Content-Length\t: 5"), 400},
      {get("X Y: 1"), 400},
      {get(": empty name"), 400},
      {get("no colon"), 400},
      {get("X: ctl\x01here"), 400},
      {get("X: del\x7fhere"), 400},
      {get(std::string("X: nul\0here", 11)), 400},
      // Content-Length and Transfer-Encoding.
      {get("Content-Length: 5\r\nTransfer-Encoding: chunked"), 400},
      {get("Transfer-Encoding: chunked\r\nContent-Length: 5"), 400},
      {get("Content-Length: 5\r\nContent-Length: 6"), 400},
      {get("Content-Length: 5, 6"), 400},
      {get("Content-Length: +5"), 400},
      {get("Content-Length: -1"), 400},
      {get("Content-Length: 0x10"), 400},
      {get("Content-Length: 5 5"), 400},
      {get("Content-Length: "), 400},
      {get("Content-Length: ,"), 400},
      {get("Content-Length: 18446744073709551616"), 400},
      {get("Content-Length: 99999999999999999999999"), 400},
      {get("Transfer-Encoding: gzip"), 400},
      {get("Transfer-Encoding: chunked, gzip"), 400},
      {get("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip"), 400},
      {get("Transfer-Encoding: chunked, chunked"), 400},
      {get("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"), 400},
      {get("Transfer-Encoding: xchunked"), 400},
      {get("Transfer-Encoding: \"chunked\""), 400},
      {get("Transfer-Encoding: chunked;a=b"), 400},
      {get("Transfer-Encoding: "), 400},
      {"GET / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      // Request line.
      {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
      {"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
      {"GET / http/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /\r\nHost: a\r\n\r\n", 400},
      {" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET a.example:80 HTTP/1.1\r\nHost: a.example\r\n\r\n", 400},
      // Host.
      {"GET / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a:x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: " + std::string(256, 'a') + "\r\n\r\n", 400},
      {"GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400},
      {"GET http://a.example:8080/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400},
      {"GET https://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n", 400},
      {"GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400},
      {"GET http:/// HTTP/1.1\r\nHost: a.example\r\n\r\n", 400},
      {"GET / HTTP/1.0\r\n\r\n", 400},
      // Expect.
      {get("Expect: 200-ok"), 417},
      // Limits.
      {"GET / HTTP/1.1\r\nHost: a\r\n" +
           [] {
             std::string s;
             for (std::size_t i = 0; i < kMaxFields; ++i) s += "X: 1\r\n";
             return s;
           }() +
           "\r\n",
       431},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    CHECK(request_status(c.text) == c.status);
  }
}

TEST_CASE("requests that are fine") {
  struct Case {
    std::string text;
    BodyKind body;
    std::uint64_t length;
  };
  const std::vector<Case> cases = {
      {get("Content-Length: 5"), BodyKind::kLength, 5},
      {get("Content-Length: 5\r\nContent-Length: 5"), BodyKind::kLength, 5},
      {get("Content-Length: 5, 5"), BodyKind::kLength, 5},
      {get("Content-Length: 0"), BodyKind::kLength, 0},
      {get("Content-Length: 18446744073709551615"), BodyKind::kLength, 18446744073709551615ULL},
      {get("Transfer-Encoding: chunked"), BodyKind::kChunked, 0},
      {get("Transfer-Encoding: CHUNKED"), BodyKind::kChunked, 0},
      {get("Transfer-Encoding: gzip, chunked"), BodyKind::kChunked, 0},
      {get("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"), BodyKind::kChunked, 0},
      {get("X: obs-text \xe9\xff ok\r\nY:\tv\t"), BodyKind::kNone, 0},
      {get("Empty:"), BodyKind::kNone, 0},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto h = new_request();
    REQUIRE(request_status(c.text, h.get()) == 0);
    CHECK(h->body == c.body);
    CHECK(h->content_length == c.length);
  }
  CHECK(request_status("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
  CHECK(request_status("GET / HTTP/1.1\r\nHost: " + std::string(255, 'a') + ":443\r\n\r\n") == 0);
  std::string full = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (std::size_t i = 1; i < kMaxFields; ++i) full += "X: 1\r\n";
  CHECK(request_status(full + "\r\n") == 0);  // exactly kMaxFields fields
}

TEST_CASE("Host: forms, ports and absolute-form targets") {
  auto h = new_request();
  REQUIRE(request_status("GET / HTTP/1.1\r\nHost: 192.0.2.1:8080\r\n\r\n", h.get()) == 0);
  CHECK(h->host == "192.0.2.1");
  REQUIRE(request_status("GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n", h.get()) == 0);
  CHECK(h->host == "[2001:db8::1]");
  REQUIRE(request_status("GET / HTTP/1.1\r\nHost: a%2Db.example\r\n\r\n", h.get()) == 0);

  REQUIRE(request_status("GET http://A.Example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\n", h.get()) == 0);
  CHECK(h->host == "A.Example");
  CHECK(h->host_header == "a.example");
  CHECK(h->target == "http://A.Example/x?y");
  // Ports compare with the scheme's default.
  CHECK(request_status("GET http://a.example:80/ HTTP/1.1\r\nHost: a.example\r\n\r\n") == 0);
  CHECK(request_status("GET http://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n") == 0);
  CHECK(request_status("GET https://a.example/ HTTP/1.1\r\nHost: a.example:443\r\n\r\n") == 0);
  CHECK(request_status("GET HTTPS://a.example:8443 HTTP/1.1\r\nHost: A.EXAMPLE:8443\r\n\r\n") == 0);

  // HTTP/1.0 without Host: routed by an absolute-form target only.
  REQUIRE(request_status("GET http://b.example:81/ HTTP/1.0\r\n\r\n", h.get()) == 0);
  CHECK(h->host == "b.example");
  CHECK(h->host_header.empty());
  CHECK(h->version == Version::kHttp10);
  CHECK_FALSE(h->keep_alive);

  // CONNECT: authority-form is the parser's to accept; whether to serve it is the gateway's decision.
  REQUIRE(request_status("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", h.get()) == 0);
  CHECK(h->method == "CONNECT");
  CHECK(h->host == "a.example");
  CHECK(request_status("CONNECT a.example HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400);
}

TEST_CASE("connection semantics: keep-alive, upgrade, expect, HEAD") {
  auto h = new_request();
  REQUIRE(request_status(get("Connection: close"), h.get()) == 0);
  CHECK_FALSE(h->keep_alive);
  REQUIRE(request_status(get("Connection: foo, Close"), h.get()) == 0);
  CHECK_FALSE(h->keep_alive);
  REQUIRE(request_status("GET / HTTP/1.0\r\nHost: a\r\n\r\n", h.get()) == 0);
  CHECK_FALSE(h->keep_alive);
  REQUIRE(request_status("GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", h.get()) == 0);
  CHECK(h->keep_alive);

  REQUIRE(request_status(get("Upgrade: websocket\r\nConnection: keep-alive, Upgrade"), h.get()) == 0);
  CHECK(h->upgrade);
  CHECK(h->keep_alive);
  REQUIRE(request_status(get("Upgrade: websocket"), h.get()) == 0);
  CHECK_FALSE(h->upgrade);
  REQUIRE(request_status(get("Connection: upgrade"), h.get()) == 0);
  CHECK_FALSE(h->upgrade);
  REQUIRE(request_status("GET / HTTP/1.0\r\nHost: a\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", h.get()) == 0);
  CHECK_FALSE(h->upgrade);

  REQUIRE(request_status(get("Expect: 100-Continue"), h.get()) == 0);
  CHECK(h->expect_continue);
  REQUIRE(request_status("POST / HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", h.get()) == 0);
  CHECK_FALSE(h->expect_continue);

  REQUIRE(request_status("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", h.get()) == 0);
  CHECK(h->is_head);
  REQUIRE(request_status("head / HTTP/1.1\r\nHost: a\r\n\r\n", h.get()) == 0);
  CHECK_FALSE(h->is_head);  // methods are case-sensitive
}

TEST_CASE("iequals and list_has_token") {
  CHECK(iequals("Content-Length", "content-length"));
  CHECK_FALSE(iequals("Content-Length", "content-lengt"));
  CHECK_FALSE(iequals("a", std::string_view("A\0", 2)));
  CHECK(list_has_token("a, b ,\tUpgrade", "upgrade"));
  CHECK(list_has_token(",,close,", "close"));
  CHECK_FALSE(list_has_token("closed, xclose", "close"));
  CHECK_FALSE(list_has_token("", "close"));
}

namespace {

struct Response {
  int status = -1;  // the problem's status, 0 = parsed
  std::unique_ptr<ResponseHead> head = std::make_unique<ResponseHead>();
};

Response response(std::string_view text, bool request_was_head = false) {
  Response r;
  HeadScanner s;
  if (s.scan(text) != HeadScanner::State::kComplete) return r;
  r.status =
      parse_response_head(text.substr(s.head_start(), s.head_length() - s.head_start()), request_was_head, r.head.get())
          .status;
  return r;
}

}  // namespace

TEST_CASE("response framing rules") {
  struct Case {
    std::string text;
    bool was_head;
    BodyKind body;
    std::uint64_t length;
    bool keep_alive;
    bool interim;
    bool switching;
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", false, BodyKind::kLength, 12, true, false, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyKind::kChunked, 0, true, false, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, BodyKind::kChunked, 0, true, false, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, BodyKind::kUntilClose, 0, false, false, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyKind::kChunked, 0,
       false, false, false},
      {"HTTP/1.1 200 OK\r\n\r\n", false, BodyKind::kUntilClose, 0, false, false, false},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, BodyKind::kLength, 1, false, false,
       false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, BodyKind::kLength, 1, false, false, false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", false, BodyKind::kLength, 1, true,
       false, false},
      {"HTTP/1.1 204 No Content\r\n\r\n", false, BodyKind::kNone, 0, true, false, false},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false, BodyKind::kNone, 0, true, false, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, BodyKind::kNone, 0, true, false, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, BodyKind::kNone, 0, true, false, false},
      {"HTTP/1.1 100 Continue\r\n\r\n", false, BodyKind::kNone, 0, true, true, false},
      {"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false, BodyKind::kNone, 0, true, true, false},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", false, BodyKind::kNone,
       0, false, false, true},
      {"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, BodyKind::kLength, 0, true, false, false},
      {"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, BodyKind::kLength, 0, true, false, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const Response r = response(c.text, c.was_head);
    REQUIRE(r.status == 0);
    CHECK(r.head->body == c.body);
    CHECK(r.head->content_length == c.length);
    CHECK(r.head->keep_alive == c.keep_alive);
    CHECK(r.head->interim == c.interim);
    CHECK(r.head->switching == c.switching);
  }
  const Response ok = response("HTTP/1.1 200 Fine Thanks\r\nX: y\r\n\r\n");
  CHECK(ok.head->status == 200);
  CHECK(ok.head->reason == "Fine Thanks");
  CHECK(ok.head->fields.get("x") == "y");
}

TEST_CASE("malformed responses are 502") {
  const std::vector<std::string> cases = {
      "HTTP/1.1 99 Low\r\n\r\n",
      "HTTP/1.1 600 High\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 abc OK\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "http/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
  };
  for (const auto& c : cases) {
    CAPTURE(c);
    const Response r = response(c);
    CHECK(r.status == 502);
  }
}
