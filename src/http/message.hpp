// HTTP/1.1 message heads (RFC 9112): the request heads a public client sends to the gateway's shared HTTP port, and
// the response heads a local service sends back through the tunnel. Parsing tells the gateway which host a request
// is for and where each message ends, so that one keep-alive client connection can be routed request by request.
//
// Strict where a lax reading lets two parties disagree about message boundaries (request smuggling):
//  * lines end in CRLF; a bare LF or CR, obsolete line folding (a line starting with SP/HTAB) and whitespace
//    between a field name and its colon are errors (400);
//  * Content-Length and Transfer-Encoding together, differing Content-Length values (duplicates or a list), a
//    Content-Length that is not 1*DIGIT or overflows, a Transfer-Encoding whose last coding is not "chunked" or that
//    names "chunked" twice, or any Transfer-Encoding in HTTP/1.0 (we pass bodies through and must know their end):
//    400. A response whose Transfer-Encoding does not end in "chunked" is read until the service closes;
//  * a request with no Host, more than one Host, an invalid Host (reg-name of at most 255 bytes, IPv4 or [IPv6],
//    optional :port up to 65535), or a Host that differs from the authority of an absolute-form target (host
//    compared case-insensitively, ports with the scheme's default): 400. An HTTP/1.0 request without Host is routed
//    by its absolute-form target, or refused. The routed name is `RequestHead::host`, and it is the only name any
//    policy reads.
// Limits: a head over kMaxHeadBytes is 431, a request line over kMaxRequestLine is 414, more than kMaxFields
// fields is 431. An Expect other than 100-continue is 417.
//
// The scanner finds the end of a head incrementally (it remembers where it stopped), so a head arriving a byte at a
// time costs O(length), not O(length^2). Parsing then runs once over the complete head. Parsed views point into the
// caller's buffer. Pure: no I/O, no allocation, no clock. Thread rules: none (plain values).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringtun::http {

inline constexpr std::size_t kMaxHeadBytes = 16 * 1024;
inline constexpr std::size_t kMaxRequestLine = 8 * 1024;
inline constexpr std::size_t kMaxFields = 100;

// Why a message cannot be handled: the HTTP status to answer with (400, 413, 414, 431, 501, 505 for requests; 502
// for a response from the service) and a static reason for logs. status 0 = no error.
struct Problem {
  int status = 0;
  const char* reason = "";
  explicit operator bool() const noexcept { return status != 0; }
};

// Finds the end of a message head ("\r\n\r\n") in a buffer that grows between calls.
class HeadScanner {
 public:
  enum class State : std::uint8_t { kNeedMore, kComplete, kTooLarge };
  // `buffer` is everything received for this head so far (the same bytes as last time, plus more). kComplete: the
  // head is buffer[0, head_length()). kTooLarge: no end within kMaxHeadBytes (or the first line is over
  // `max_first_line` without its CRLF); problem() says which status. Leading empty lines (CRLF) before a request line
  // are skipped as RFC 9112 section 2.2 allows; head_start() says where the head begins.
  State scan(std::string_view buffer, std::size_t max_first_line = kMaxRequestLine) noexcept;
  std::size_t head_start() const noexcept { return start_; }
  std::size_t head_length() const noexcept { return end_; }  // offset one past the blank line
  Problem problem() const noexcept { return problem_; }
  void reset() noexcept { *this = HeadScanner{}; }

 private:
  std::size_t scanned_ = 0;
  std::size_t start_ = 0;
  std::size_t line_start_ = 0;  // where the line being scanned begins
  std::size_t end_ = 0;
  bool first_line_done_ = false;
  Problem problem_;
};

enum class Version : std::uint8_t { kHttp10, kHttp11 };

// How a message body is delimited.
enum class BodyKind : std::uint8_t {
  kNone,        // no body (a request without CL/TE, 1xx/204/304 responses, responses to HEAD)
  kLength,      // Content-Length bytes
  kChunked,     // chunked coding up to and including the last chunk and trailer section
  kUntilClose,  // a response that ends when the service closes (no CL, no TE)
};

struct Field {
  std::string_view name;   // as sent (compare case-insensitively)
  std::string_view value;  // leading and trailing whitespace removed
};

struct Fields {
  std::array<Field, kMaxFields> items;
  std::size_t count = 0;
  // The first field with this name (case-insensitive), or an empty view when absent.
  std::string_view get(std::string_view name) const noexcept;
};

struct RequestHead {
  std::string_view method;
  std::string_view target;  // as sent (origin-form, absolute-form, authority-form or "*")
  Version version = Version::kHttp11;
  std::string_view host;  // from Host (or an absolute-form target), port removed (an IPv6 literal keeps its brackets);
                          // lower case is NOT applied
  std::string_view host_header;  // the Host field value as sent (for X-Forwarded-Host)
  BodyKind body = BodyKind::kNone;
  std::uint64_t content_length = 0;
  bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"
  bool upgrade = false;    // an Upgrade field plus "upgrade" in Connection (WebSocket and friends)
  bool expect_continue = false;
  bool is_head = false;  // method HEAD: the response has no body whatever it says
  Fields fields;
};

struct ResponseHead {
  int status = 0;
  Version version = Version::kHttp11;
  std::string_view reason;
  BodyKind body = BodyKind::kNone;
  std::uint64_t content_length = 0;
  bool keep_alive = true;  // the service keeps the connection open after this response
  bool interim = false;    // 1xx other than 101: a final response follows
  bool switching = false;  // 101 Switching Protocols: the connection becomes a byte pipe
  Fields fields;
};

// Parses a complete request head (`head` = the bytes from HeadScanner::head_start() to head_length()). On a
// problem, `out` is partly filled and must not be used.
Problem parse_request_head(std::string_view head, RequestHead* out) noexcept;
// Parses a complete response head. `request_was_head`: the request was HEAD (no body follows any status).
// Problems here are 502 (the service sent something we cannot frame).
Problem parse_response_head(std::string_view head, bool request_was_head, ResponseHead* out) noexcept;

// Case-insensitive ASCII comparison of field names and tokens.
bool iequals(std::string_view a, std::string_view b) noexcept;
// True if the comma-separated list `value` contains `token` (case-insensitive, whitespace around items ignored).
bool list_has_token(std::string_view value, std::string_view token) noexcept;

}  // namespace ringtun::http
