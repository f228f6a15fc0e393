// HTTP/1.1 head scanning and parsing (RFC 9112, RFC 9110). See message.hpp for the strictness rules and why they
// exist; this file only adds how. Nothing here allocates: views point into the caller's head.
#include "http/message.hpp"

#include <cstring>
#include <limits>

namespace ringtun::http {

namespace {

// tchar (RFC 9110 section 5.6.2): what field names, methods and transfer codings are made of.
constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

bool is_tchar(char c) noexcept {
  return kTchar[static_cast<unsigned char>(c)];
}
bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}
// CTLs other than HTAB, and DEL. obs-text (0x80-0xff) is allowed in values: it cannot move a message boundary.
bool is_bad_value_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && u != '\t') || u == 0x7f;
}
char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls f(item) for each element of a comma-separated list, OWS trimmed; empty elements are skipped as RFC 9110
// section 5.6.1 requires of recipients. f returns false to stop early.
template <typename F>
void for_each_item(std::string_view list, F&& f) noexcept {
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view item = trim_ows(list.substr(0, comma));
    if (!item.empty() && !f(item)) return;
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

constexpr Problem problem(int status, const char* reason) noexcept {
  return Problem{status, reason};
}

enum class Line : std::uint8_t { kOk, kBareLf, kUnterminated };

// Splits the next CRLF-terminated line off `rest`. A LF without CR before it is refused here; a CR without LF after
// it stays in the line and is refused by the character checks (it is a CTL).
Line next_line(std::string_view& rest, std::string_view* line) noexcept {
  const std::size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) return Line::kUnterminated;
  if (lf == 0 || rest[lf - 1] != '\r') return Line::kBareLf;
  *line = rest.substr(0, lf - 1);
  rest.remove_prefix(lf + 1);
  return Line::kOk;
}

Problem line_problem(Line l, int status) noexcept {
  return l == Line::kBareLf ? problem(status, "bare LF") : problem(status, "head not terminated by an empty line");
}

// "HTTP/" DIGIT "." DIGIT. 0 = not that shape, -1 = a version we do not speak, 1 = parsed.
int parse_version(std::string_view s, Version* v) noexcept {
  if (s.size() != 8 || s.substr(0, 5) != "HTTP/" || !is_digit(s[5]) || s[6] != '.' || !is_digit(s[7])) return 0;
  if (s[5] != '1' || (s[7] != '0' && s[7] != '1')) return -1;
  *v = s[7] == '0' ? Version::kHttp10 : Version::kHttp11;
  return 1;
}

// Field lines up to and including the empty line that ends the head. Problems carry `status` (400 or 502), except
// too many fields, which is `too_many_status` (431 for requests).
Problem parse_fields(std::string_view rest, Fields* fields, int status, int too_many_status) noexcept {
  fields->count = 0;
  while (true) {
    std::string_view line;
    const Line l = next_line(rest, &line);
    if (l != Line::kOk) return line_problem(l, status);
    if (line.empty()) {
      if (!rest.empty()) return problem(status, "bytes after the end of the head");
      return {};
    }
    if (is_ows(line.front())) return problem(status, "obsolete line folding");
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return problem(status, "field line without a colon");
    const std::string_view name = line.substr(0, colon);
    if (!name.empty() && is_ows(name.back())) return problem(status, "whitespace before a field's colon");
    if (!is_token(name)) return problem(status, "invalid field name");
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
      if (is_bad_value_char(c)) return problem(status, "control character in a field value");
    }
    if (fields->count == kMaxFields) return problem(too_many_status, "too many fields");
    fields->items[fields->count++] = Field{name, value};
  }
}

// What the framing and connection fields of a head say, gathered in one pass over its fields.
struct Framing {
  bool has_length = false;
  bool has_te = false;
  bool te_last_chunked = false;
  bool te_chunked_twice = false;
  bool te_empty = true;  // no coding named in any Transfer-Encoding field
  std::uint64_t length = 0;
  const char* length_error = nullptr;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool conn_upgrade = false;
  bool has_upgrade = false;
};

// One Content-Length element: 1*DIGIT without overflow.
bool parse_length(std::string_view s, std::uint64_t* out) noexcept {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

void read_framing(const Fields& fields, Framing* f) noexcept {
  bool te_chunked_seen = false;
  for (std::size_t i = 0; i < fields.count; ++i) {
    const Field& field = fields.items[i];
    if (iequals(field.name, "content-length")) {
      // An empty value, or an empty list element ("5,,5" is read as two elements by for_each_item but "" or ","
      // names no length at all): both are refused.
      bool any = false;
      for_each_item(field.value, [&](std::string_view item) {
        any = true;
        std::uint64_t v = 0;
        if (!parse_length(item, &v)) {
          f->length_error = "invalid Content-Length";
          return false;
        }
        if (f->has_length && v != f->length) {
          f->length_error = "differing Content-Length values";
          return false;
        }
        f->has_length = true;
        f->length = v;
        return true;
      });
      if (!any && f->length_error == nullptr) f->length_error = "invalid Content-Length";
    } else if (iequals(field.name, "transfer-encoding")) {
      f->has_te = true;
      for_each_item(field.value, [&](std::string_view item) {
        f->te_empty = false;
        const bool chunked = iequals(item, "chunked");
        if (chunked && te_chunked_seen) f->te_chunked_twice = true;
        te_chunked_seen = te_chunked_seen || chunked;
        f->te_last_chunked = chunked;
        return true;
      });
    } else if (iequals(field.name, "connection")) {
      for_each_item(field.value, [&](std::string_view item) {
        if (iequals(item, "close")) f->conn_close = true;
        if (iequals(item, "keep-alive")) f->conn_keep_alive = true;
        if (iequals(item, "upgrade")) f->conn_upgrade = true;
        return true;
      });
    } else if (iequals(field.name, "upgrade")) {
      f->has_upgrade = true;
    }
  }
}

// reg-name characters (RFC 3986: unreserved / sub-delims; pct-encoded is checked by the caller).
bool is_reg_name_char(char c) noexcept {
  if (is_alpha(c) || is_digit(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

// A DNS name is at most 255 bytes; anything longer is not a host we could route to.
constexpr std::size_t kMaxHostName = 255;

// Splits "host[:port]" (RFC 3986 authority without userinfo): host is a reg-name (IPv4 included) or "[IPv6]",
// port 1..5 digits up to 65535. `port` is 0 when absent, `has_port` says so.
bool split_authority(std::string_view authority, std::string_view* host, std::uint32_t* port, bool* has_port) noexcept {
  if (authority.empty()) return false;
  std::size_t host_end = 0;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close < 3) return false;  // "[::]" is the shortest
    bool colon = false;
    for (std::size_t i = 1; i < close; ++i) {
      const char c = authority[i];
      if (!is_hex(c) && c != ':' && c != '.') return false;
      colon = colon || c == ':';
    }
    if (!colon) return false;
    host_end = close + 1;
  } else {
    while (host_end < authority.size() && authority[host_end] != ':') {
      const char c = authority[host_end];
      if (c == '%') {
        if (host_end + 2 >= authority.size() || !is_hex(authority[host_end + 1]) || !is_hex(authority[host_end + 2])) {
          return false;
        }
        host_end += 3;
        continue;
      }
      if (!is_reg_name_char(c)) return false;
      ++host_end;
    }
    if (host_end == 0) return false;
  }
  if (host_end > kMaxHostName) return false;
  *host = authority.substr(0, host_end);
  *port = 0;
  *has_port = false;
  const std::string_view rest = authority.substr(host_end);
  if (rest.empty()) return true;
  if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return false;
  std::uint32_t p = 0;
  for (char c : rest.substr(1)) {
    if (!is_digit(c)) return false;
    p = p * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (p > 65535) return false;
  *port = p;
  *has_port = true;
  return true;
}

// absolute-form (RFC 9112 section 3.2.2) for the schemes a gateway serves: "http" or "https" "://" authority, then
// the path and query. Userinfo is refused (it has no place in a request and confuses authority parsers).
bool split_absolute_target(std::string_view target, std::string_view* authority, std::uint32_t* default_port) noexcept {
  std::size_t scheme_end = 0;
  if (target.size() > 8 && iequals(target.substr(0, 7), "http://")) {
    scheme_end = 4;
    *default_port = 80;
  } else if (target.size() > 9 && iequals(target.substr(0, 8), "https://")) {
    scheme_end = 5;
    *default_port = 443;
  } else {
    return false;
  }
  const std::string_view rest = target.substr(scheme_end + 3);
  *authority = rest.substr(0, rest.find_first_of("/?#"));
  return true;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool list_has_token(std::string_view value, std::string_view token) noexcept {
  bool found = false;
  for_each_item(value, [&](std::string_view item) {
    found = iequals(item, token);
    return !found;
  });
  return found;
}

std::string_view Fields::get(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    if (iequals(items[i].name, name)) return items[i].value;
  }
  return {};
}

// Lines are found by their LF. The head ends at the first empty line after the first line; empty lines before the
// first line are skipped (RFC 9112 section 2.2) but count towards kMaxHeadBytes, which bounds them. A bare LF ends
// the scan at once as kComplete: the parser then refuses the head (400) instead of the connection waiting for an
// empty line that a lax sender never sends in the form we require.
HeadScanner::State HeadScanner::scan(std::string_view buffer, std::size_t max_first_line) noexcept {
  if (end_ != 0) return State::kComplete;
  if (problem_) return State::kTooLarge;
  const std::size_t limit = buffer.size() < kMaxHeadBytes ? buffer.size() : kMaxHeadBytes;
  const char* const data = buffer.data();
  while (scanned_ < limit) {
    const void* found = std::memchr(data + scanned_, '\n', limit - scanned_);
    if (found == nullptr) {
      scanned_ = limit;
      break;
    }
    const auto lf = static_cast<std::size_t>(static_cast<const char*>(found) - data);
    scanned_ = lf + 1;
    // The first line's length is judged the same way whether its LF is here or not yet received (below), so that a
    // head fed byte by byte gets the answer it gets whole.
    if (!first_line_done_ && lf - start_ > max_first_line + 1) {
      problem_ = Problem{414, "request line too long"};
      return State::kTooLarge;
    }
    const bool crlf = lf > line_start_ && data[lf - 1] == '\r';
    if (!crlf) {
      end_ = lf + 1;
      return State::kComplete;
    }
    const bool empty = lf == line_start_ + 1;
    line_start_ = lf + 1;
    if (!first_line_done_) {
      if (empty) {
        start_ = line_start_;
      } else {
        first_line_done_ = true;
      }
      continue;
    }
    if (empty) {
      end_ = lf + 1;
      return State::kComplete;
    }
  }
  if (!first_line_done_ && scanned_ - start_ > max_first_line + 1) {
    problem_ = Problem{414, "request line too long"};
    return State::kTooLarge;
  }
  if (buffer.size() >= kMaxHeadBytes) {
    problem_ = Problem{431, "head too large"};
    return State::kTooLarge;
  }
  return State::kNeedMore;
}

Problem parse_request_head(std::string_view head, RequestHead* out) noexcept {
  out->method = out->target = out->host = out->host_header = {};
  out->version = Version::kHttp11;
  out->body = BodyKind::kNone;
  out->content_length = 0;
  out->keep_alive = true;
  out->upgrade = out->expect_continue = out->is_head = false;
  out->fields.count = 0;

  std::string_view rest = head;
  std::string_view line;
  const Line l = next_line(rest, &line);
  if (l != Line::kOk) return line_problem(l, 400);
  if (line.size() > kMaxRequestLine) return problem(414, "request line too long");

  // method SP request-target SP HTTP-version, single spaces (RFC 9112 section 3).
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return problem(400, "malformed request line");
  out->method = line.substr(0, sp1);
  if (!is_token(out->method)) return problem(400, "invalid method");
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return problem(400, "malformed request line");
  out->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (out->target.empty()) return problem(400, "empty request target");
  for (char c : out->target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return problem(400, "invalid character in request target");
  }
  const int version = parse_version(line.substr(sp2 + 1), &out->version);
  if (version == 0) return problem(400, "malformed HTTP version");
  if (version < 0) return problem(505, "HTTP version not supported");
  const bool http11 = out->version == Version::kHttp11;

  if (Problem p = parse_fields(rest, &out->fields, 400, 431)) return p;

  Framing f;
  read_framing(out->fields, &f);
  if (f.length_error != nullptr) return problem(400, f.length_error);
  if (f.has_te) {
    if (f.has_length) return problem(400, "both Content-Length and Transfer-Encoding");
    // RFC 9112 section 6.1: HTTP/1.0 has no transfer codings; a sender that uses one cannot be framed reliably.
    if (!http11) return problem(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (f.te_empty) return problem(400, "empty Transfer-Encoding");
    if (f.te_chunked_twice) return problem(400, "chunked applied more than once");
    if (!f.te_last_chunked) return problem(400, "Transfer-Encoding does not end in chunked");
    out->body = BodyKind::kChunked;
  } else if (f.has_length) {
    out->body = BodyKind::kLength;
    out->content_length = f.length;
  }

  // Host (RFC 9112 section 3.2): exactly one, valid, and equal to the target's authority when there is one.
  std::size_t hosts = 0;
  for (std::size_t i = 0; i < out->fields.count; ++i) {
    const Field& field = out->fields.items[i];
    if (iequals(field.name, "host")) {
      ++hosts;
      out->host_header = field.value;
    } else if (iequals(field.name, "expect")) {
      // RFC 9110 section 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored.
      if (!iequals(field.value, "100-continue")) return problem(417, "unsupported expectation");
      out->expect_continue = http11;
    }
  }
  if (hosts > 1) return problem(400, "more than one Host");
  std::string_view header_host;
  std::uint32_t header_port = 0;
  bool header_has_port = false;
  if (hosts == 1 && !split_authority(out->host_header, &header_host, &header_port, &header_has_port)) {
    return problem(400, "invalid Host");
  }

  const bool is_connect = out->method == "CONNECT";
  const std::string_view target = out->target;
  if (target.front() == '/') {
    // origin-form
  } else if (target == "*") {
    if (out->method != "OPTIONS") return problem(400, "asterisk-form target outside OPTIONS");
  } else if (is_connect) {
    // authority-form: host and port. Whether CONNECT is served is the gateway's decision, not the parser's.
    std::string_view h;
    std::uint32_t p = 0;
    bool has_port = false;
    if (!split_authority(target, &h, &p, &has_port) || !has_port) return problem(400, "invalid CONNECT target");
  } else {
    std::string_view authority;
    std::uint32_t default_port = 0;
    if (!split_absolute_target(target, &authority, &default_port)) return problem(400, "invalid request target");
    std::string_view uri_host;
    std::uint32_t uri_port = 0;
    bool uri_has_port = false;
    if (!split_authority(authority, &uri_host, &uri_port, &uri_has_port)) {
      return problem(400, "invalid authority in request target");
    }
    if (hosts == 1) {
      const std::uint32_t a = uri_has_port ? uri_port : default_port;
      const std::uint32_t b = header_has_port ? header_port : default_port;
      if (!iequals(uri_host, header_host) || a != b) return problem(400, "Host differs from the target's authority");
    }
    out->host = uri_host;
  }
  if (hosts == 1) {
    if (out->host.empty()) out->host = header_host;
  } else if (http11 || out->host.empty()) {
    // HTTP/1.1 requires Host; an HTTP/1.0 request without one can only be routed by an absolute-form target.
    return problem(400, "missing Host");
  }

  out->is_head = out->method == "HEAD";
  out->keep_alive = http11 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  // RFC 9110 section 7.8: Upgrade in an HTTP/1.0 request is ignored.
  out->upgrade = http11 && f.has_upgrade && f.conn_upgrade;
  return {};
}

Problem parse_response_head(std::string_view head, bool request_was_head, ResponseHead* out) noexcept {
  out->status = 0;
  out->version = Version::kHttp11;
  out->reason = {};
  out->body = BodyKind::kNone;
  out->content_length = 0;
  out->keep_alive = true;
  out->interim = out->switching = false;
  out->fields.count = 0;

  std::string_view rest = head;
  std::string_view line;
  const Line l = next_line(rest, &line);
  if (l != Line::kOk) return line_problem(l, 502);

  // HTTP-version SP 3DIGIT SP [reason] (RFC 9112 section 4). A missing SP before an empty reason is tolerated:
  // it cannot change where the message ends.
  if (line.size() < 12 || line[8] != ' ') return problem(502, "malformed status line");
  if (parse_version(line.substr(0, 8), &out->version) != 1) return problem(502, "unsupported HTTP version");
  if (!is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11])) return problem(502, "malformed status");
  out->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (out->status < 100 || out->status > 599) return problem(502, "status out of range");
  if (line.size() > 12) {
    if (line[12] != ' ') return problem(502, "malformed status line");
    out->reason = line.substr(13);
    for (char c : out->reason) {
      if (is_bad_value_char(c)) return problem(502, "control character in reason phrase");
    }
  }
  const bool http11 = out->version == Version::kHttp11;

  if (Problem p = parse_fields(rest, &out->fields, 502, 502)) return p;

  Framing f;
  read_framing(out->fields, &f);
  if (f.length_error != nullptr) return problem(502, f.length_error);
  if (f.has_te) {
    if (!http11) return problem(502, "Transfer-Encoding in an HTTP/1.0 response");
    if (f.te_empty) return problem(502, "empty Transfer-Encoding");
    if (f.te_chunked_twice) return problem(502, "chunked applied more than once");
  }
  out->keep_alive = http11 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);

  if (out->status == 101) {
    // The connection stops being HTTP: it never carries another response.
    out->switching = true;
    out->keep_alive = false;
    return {};
  }
  if (out->status < 200) {
    out->interim = true;
    out->keep_alive = true;
    return {};
  }
  // RFC 9112 section 6.3: TE overrides CL, but a message with both may be an attempt at smuggling; do not reuse the
  // connection after it.
  if (f.has_te && f.has_length) out->keep_alive = false;
  if (request_was_head || out->status == 204 || out->status == 304) return {};
  if (f.has_te) {
    if (f.te_last_chunked) {
      out->body = BodyKind::kChunked;
    } else {
      out->body = BodyKind::kUntilClose;
      out->keep_alive = false;
    }
  } else if (f.has_length) {
    out->body = BodyKind::kLength;
    out->content_length = f.length;
  } else {
    out->body = BodyKind::kUntilClose;
    out->keep_alive = false;
  }
  return {};
}

}  // namespace ringtun::http
