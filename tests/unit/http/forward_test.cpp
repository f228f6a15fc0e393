// What the gateway writes, checked byte for byte: request heads toward a service, response heads toward a client,
// and its own error answers.
#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <string>

#include "http/forward.hpp"
#include "http/message.hpp"

using namespace ringtun::http;  // NOLINT

namespace {

std::unique_ptr<RequestHead> parsed_request(std::string_view text) {
  auto h = std::make_unique<RequestHead>();
  HeadScanner s;
  REQUIRE(s.scan(text) == HeadScanner::State::kComplete);
  const Problem p = parse_request_head(text.substr(s.head_start(), s.head_length() - s.head_start()), h.get());
  REQUIRE(p.status == 0);
  return h;
}

std::unique_ptr<ResponseHead> parsed_response(std::string_view text, bool was_head = false) {
  auto h = std::make_unique<ResponseHead>();
  HeadScanner s;
  REQUIRE(s.scan(text) == HeadScanner::State::kComplete);
  const Problem p = parse_response_head(text.substr(0, s.head_length()), was_head, h.get());
  REQUIRE(p.status == 0);
  return h;
}

std::string upstream(const RequestHead& head, Forwarding fwd = {"192.0.2.7", "https"}) {
  std::array<char, kMaxForwardedHead> out;
  const std::size_t n = write_upstream_request(head, fwd, out);
  REQUIRE(n > 0);
  return std::string(out.data(), n);
}

std::string to_client(const ResponseHead& head, bool close_after) {
  std::array<char, kMaxForwardedHead> out;
  const std::size_t n = write_client_response(head, close_after, out);
  REQUIRE(n > 0);
  return std::string(out.data(), n);
}

}  // namespace

TEST_CASE("upstream request: X-Forwarded-For appended, hop-by-hop dropped, X-Forwarded-* replaced") {
  const auto h = parsed_request(
      "POST /submit?x=1 HTTP/1.1\r\n"
      "Host: app.example:8080\r\n"
      "X-Forwarded-For: 203.0.113.1\r\n"
      "Connection: keep-alive, X-Secret, Content-Length\r\n"
      "Keep-Alive: timeout=5\r\n"
      "X-Secret: drop me\r\n"
      "TE: trailers\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "X-Real-IP: 6.6.6.6\r\n"
      "x-forwarded-proto: gopher\r\n"
      "X-Forwarded-Host: evil.example\r\n"
      "Content-Length: 3\r\n"
      "Upgrade: h2c\r\n"
      "x-forwarded-for: 198.51.100.2, 198.51.100.3\r\n"
      "Accept:*/*\r\n"
      "\r\n");
  CHECK_FALSE(h->upgrade);
  CHECK(upstream(*h) ==
        "POST /submit?x=1 HTTP/1.1\r\n"
        "Host: app.example:8080\r\n"
        "Content-Length: 3\r\n"
        "Accept: */*\r\n"
        "X-Forwarded-For: 203.0.113.1, 198.51.100.2, 198.51.100.3, 192.0.2.7\r\n"
        "X-Real-IP: 192.0.2.7\r\n"
        "X-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: app.example:8080\r\n"
        "Connection: keep-alive\r\n"
        "\r\n");
}

TEST_CASE("upstream request: a plain request and an upgrade") {
  const auto plain = parsed_request("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
  CHECK(upstream(*plain, {"2001:db8::1", "http"}) ==
        "GET / HTTP/1.1\r\n"
        "Host: a.example\r\n"
        "X-Forwarded-For: 2001:db8::1\r\n"
        "X-Real-IP: 2001:db8::1\r\n"
        "X-Forwarded-Proto: http\r\n"
        "X-Forwarded-Host: a.example\r\n"
        "Connection: keep-alive\r\n"
        "\r\n");

  const auto ws = parsed_request(
      "GET /chat HTTP/1.1\r\n"
      "Host: a.example\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "\r\n");
  CHECK(ws->upgrade);
  CHECK(upstream(*ws) ==
        "GET /chat HTTP/1.1\r\n"
        "Host: a.example\r\n"
        "Upgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "X-Forwarded-For: 192.0.2.7\r\n"
        "X-Real-IP: 192.0.2.7\r\n"
        "X-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: a.example\r\n"
        "Connection: upgrade\r\n"
        "\r\n");

  // HTTP/1.0 routed by its absolute-form target: no Host to copy, the authority's host stands in.
  const auto old = parsed_request("GET http://b.example/x HTTP/1.0\r\n\r\n");
  const std::string text = upstream(*old);
  CHECK(text.rfind("GET http://b.example/x HTTP/1.0\r\n", 0) == 0);
  CHECK(text.find("X-Forwarded-Host: b.example\r\n") != std::string::npos);
}

TEST_CASE("upstream request: too small a buffer is 0, never a partial head") {
  const auto h = parsed_request("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
  const std::string full = upstream(*h);
  std::array<char, 512> out;
  for (std::size_t n = 0; n < full.size(); ++n) {
    CHECK(write_upstream_request(*h, {"192.0.2.7", "https"}, std::span<char>(out.data(), n)) == 0);
  }
  CHECK(write_upstream_request(*h, {"192.0.2.7", "https"}, std::span<char>(out.data(), full.size())) == full.size());
}

TEST_CASE("client response: hop-by-hop dropped, close and upgrade") {
  const auto ok = parsed_response(
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/html\r\n"
      "Connection: keep-alive, X-Internal\r\n"
      "Keep-Alive: timeout=5\r\n"
      "X-Internal: 1\r\n"
      "Transfer-Encoding: chunked\r\n"
      "Trailer: Expires\r\n"
      "Upgrade: h2c\r\n"
      "\r\n");
  CHECK(to_client(*ok, false) ==
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/html\r\n"
        "Transfer-Encoding: chunked\r\n"
        "\r\n");
  CHECK(to_client(*ok, true) ==
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/html\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Connection: close\r\n"
        "\r\n");

  const auto sw = parsed_response(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "\r\n");
  CHECK(to_client(*sw, false) ==
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Connection: upgrade\r\n"
        "\r\n");

  // An HTTP/1.0 service, no reason phrase: the client hears HTTP/1.1 and our phrase.
  const auto old = parsed_response("HTTP/1.0 404\r\nContent-Length: 0\r\n\r\n");
  CHECK(to_client(*old, true) == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");

  // An interim response never says close: the final one does.
  const auto cont = parsed_response("HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(to_client(*cont, true) == "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST_CASE("error responses") {
  std::array<char, 1024> out;
  std::size_t n = write_error_response(404, "no route for a.example", true, out);
  CHECK(std::string(out.data(), n) ==
        "HTTP/1.1 404 Not Found\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 38\r\n"
        "Connection: close\r\n"
        "\r\n"
        "404 Not Found: no route for a.example\n");

  n = write_error_response(502, "bad\r\nX-Injected: 1\x80", false, out);
  CHECK(std::string(out.data(), n) ==
        "HTTP/1.1 502 Bad Gateway\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 37\r\n"
        "\r\n"
        "502 Bad Gateway: bad??X-Injected: 1?\n");

  // The detail is cut at 200 bytes; 1 KiB always suffices.
  const std::string long_detail(5000, 'd');
  n = write_error_response(431, long_detail, true, out);
  REQUIRE(n > 0);
  const std::string text(out.data(), n);
  const std::string body = "431 Request Header Fields Too Large: " + std::string(200, 'd') + "\n";
  CHECK(text.substr(text.size() - body.size()) == body);
  CHECK(text.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);

  CHECK(write_error_response(400, "x", true, std::span<char>(out.data(), 20)) == 0);
  CHECK(reason_phrase(599) == "Unknown");
  CHECK(reason_phrase(505) == "HTTP Version Not Supported");
}
