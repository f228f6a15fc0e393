// The heads the gateway writes. Every writer appends into the caller's span and reports 0 if it does not fit, so a
// half-written head is never used.
#include "http/forward.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace ringtun::http {

namespace {

// Appends into a fixed span; remembers overflow instead of failing at each call.
class HeadWriter {
 public:
  explicit HeadWriter(std::span<char> out) noexcept : out_(out) {}
  void put(std::string_view s) noexcept {
    if (overflow_ || s.size() > out_.size() - len_) {
      overflow_ = true;
      return;
    }
    if (!s.empty()) std::memcpy(out_.data() + len_, s.data(), s.size());
    len_ += s.size();
  }
  void put(char c) noexcept { put(std::string_view(&c, 1)); }
  void put_uint(std::uint64_t v) noexcept {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, v);
    put(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
  }
  void field(std::string_view name, std::string_view value) noexcept {
    put(name);
    put(": ");
    put(value);
    put("\r\n");
  }
  std::size_t finish() const noexcept { return overflow_ ? 0 : len_; }

 private:
  std::span<char> out_;
  std::size_t len_ = 0;
  bool overflow_ = false;
};

bool is_one_of(std::string_view name, std::initializer_list<std::string_view> names) noexcept {
  for (std::string_view n : names) {
    if (iequals(name, n)) return true;
  }
  return false;
}

// Fields that frame the message or name its destination. A client or service that lists them in Connection must not
// get them stripped on the way: a body forwarded without its Content-Length is a body the next hop reads as the
// next request.
bool is_protected(std::string_view name) noexcept {
  return is_one_of(name, {"host", "content-length", "transfer-encoding"});
}

// Hop-by-hop (RFC 9110 section 7.6.1): the fixed set plus every field the Connection fields name. The Connection
// fields are found once per head, not once per field.
class HopByHop {
 public:
  // `keep_upgrade` exempts Upgrade, which an upgrade passes on.
  HopByHop(const Fields& fields, bool keep_upgrade) noexcept : fields_(fields), keep_upgrade_(keep_upgrade) {
    for (std::size_t i = 0; i < fields.count; ++i) {
      if (iequals(fields.items[i].name, "connection")) connection_[connections_++] = static_cast<std::uint8_t>(i);
    }
  }
  bool drops(std::string_view name) const noexcept {
    if (iequals(name, "upgrade")) return !keep_upgrade_;
    if (is_one_of(name, {"connection", "keep-alive", "proxy-connection", "te", "trailer"})) return true;
    if (connections_ == 0 || is_protected(name)) return false;
    for (std::size_t i = 0; i < connections_; ++i) {
      if (list_has_token(fields_.items[connection_[i]].value, name)) return true;
    }
    return false;
  }

 private:
  static_assert(kMaxFields <= 256, "field indices are stored in a byte");
  const Fields& fields_;
  bool keep_upgrade_;
  std::size_t connections_ = 0;
  std::array<std::uint8_t, kMaxFields> connection_;
};

void put_version(HeadWriter& w, Version v) noexcept {
  w.put(v == Version::kHttp10 ? "HTTP/1.0" : "HTTP/1.1");
}

}  // namespace

std::size_t write_upstream_request(const RequestHead& head, const Forwarding& forwarding,
                                   std::span<char> out) noexcept {
  HeadWriter w(out);
  w.put(head.method);
  w.put(' ');
  w.put(head.target);
  w.put(' ');
  put_version(w, head.version);
  w.put("\r\n");

  bool any_xff = false;
  const HopByHop hop_by_hop(head.fields, head.upgrade);
  for (std::size_t i = 0; i < head.fields.count; ++i) {
    const Field& f = head.fields.items[i];
    if (is_one_of(f.name, {"x-forwarded-for", "x-real-ip", "x-forwarded-proto", "x-forwarded-host"})) continue;
    if (hop_by_hop.drops(f.name)) continue;
    w.field(f.name, f.value);
  }
  // One X-Forwarded-For: what the client sent (every field, in order), then the address it came from.
  w.put("X-Forwarded-For: ");
  for (std::size_t i = 0; i < head.fields.count; ++i) {
    const Field& f = head.fields.items[i];
    if (f.value.empty() || !iequals(f.name, "x-forwarded-for")) continue;
    if (any_xff) w.put(", ");
    w.put(f.value);
    any_xff = true;
  }
  if (any_xff) w.put(", ");
  w.put(forwarding.client_ip);
  w.put("\r\n");
  w.field("X-Real-IP", forwarding.client_ip);
  w.field("X-Forwarded-Proto", forwarding.proto);
  // An HTTP/1.0 request routed by its absolute-form target has no Host; its authority's host stands in.
  w.field("X-Forwarded-Host", head.host_header.empty() ? head.host : head.host_header);
  w.put(head.upgrade ? "Connection: upgrade\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
  return w.finish();
}

std::size_t write_client_response(const ResponseHead& head, bool close_after, std::span<char> out) noexcept {
  HeadWriter w(out);
  // The gateway speaks HTTP/1.1 to its clients whatever the service spoke.
  w.put("HTTP/1.1 ");
  w.put_uint(static_cast<std::uint64_t>(head.status));
  w.put(' ');
  w.put(head.reason.empty() ? reason_phrase(head.status) : head.reason);
  w.put("\r\n");
  const HopByHop hop_by_hop(head.fields, head.switching);
  for (std::size_t i = 0; i < head.fields.count; ++i) {
    const Field& f = head.fields.items[i];
    if (hop_by_hop.drops(f.name)) continue;
    w.field(f.name, f.value);
  }
  if (head.switching) {
    w.put("Connection: upgrade\r\n");
  } else if (close_after && !head.interim) {
    w.put("Connection: close\r\n");
  }
  w.put("\r\n");
  return w.finish();
}

std::size_t write_error_response(int status, std::string_view detail, bool close_after, std::span<char> out,
                                 std::uint32_t retry_after_s) noexcept {
  constexpr std::size_t kMaxDetail = 200;
  // The body is built first: the head states its length.
  char body[kMaxDetail + 64];
  HeadWriter b(std::span<char>(body, sizeof body));
  const std::string_view phrase = reason_phrase(status);
  b.put_uint(status < 0 ? 0 : static_cast<std::uint64_t>(status));
  b.put(' ');
  b.put(phrase);
  b.put(": ");
  const std::size_t n = detail.size() < kMaxDetail ? detail.size() : kMaxDetail;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = detail[i];
    b.put(c >= 0x20 && c <= 0x7e ? c : '?');
  }
  b.put('\n');
  const std::size_t body_len = b.finish();

  HeadWriter w(out);
  w.put("HTTP/1.1 ");
  w.put_uint(status < 0 ? 0 : static_cast<std::uint64_t>(status));
  w.put(' ');
  w.put(phrase);
  w.put("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  w.put_uint(body_len);
  w.put("\r\n");
  if (retry_after_s > 0) {
    w.put("Retry-After: ");
    w.put_uint(retry_after_s);
    w.put("\r\n");
  }
  if (close_after) w.put("Connection: close\r\n");
  w.put("\r\n");
  w.put(std::string_view(body, body_len));
  return w.finish();
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace ringtun::http
