// ResponseReader: one response at a time out of a byte stream from a service, as far as a proxy needs it: where the
// head ends (and what it says), which bytes are body, where the response ends, and whether the connection turned
// into a byte pipe (101). Both programs read responses this way: the agent to know when an upstream connection is
// free for the next request, the gateway to know what it may pass to the client (never a byte beyond the response a
// request asked for) and when the client connection may carry the next request.
//
// Usage: feed() the bytes as they come; each call consumes a prefix of the input (Step::used) and reports one
// event; call again with the rest. Interim (1xx) responses are reported as heads and followed by the final one.
// Pure: no I/O. The head is copied into the reader (at most kMaxHeadBytes; release() gives that memory back, for a
// connection going idle). Thread rules: none.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/body.hpp"
#include "http/message.hpp"

namespace ringtun::http {

class ResponseReader {
 public:
  enum class Event : std::uint8_t {
    kNeedMore,  // every input byte was taken (into the head being assembled); feed more
    kHead,      // head() holds a parsed head (interim or final); `used` bytes ended it
    kBody,      // input[0, used) is body: pass it on unchanged
    kEnd,       // the response is complete (the final head of a body-less response, or after its last body byte)
    kUpgraded,  // after a 101 head: what follows is no longer HTTP
    kError,     // the service sent something that cannot be framed; problem() says what
  };
  struct Step {
    Event event = Event::kNeedMore;
    std::size_t used = 0;
  };

  // Starts on the response to a request; `request_was_head`: that request was HEAD.
  void start(bool request_was_head) noexcept;
  Step feed(std::string_view input) noexcept;
  // The service closed its side: true if that ends the response cleanly (a close-delimited body), false if the
  // response is cut short.
  bool end_of_input() noexcept;
  // Frees the head buffer (head() is invalid afterwards).
  void release() noexcept;

  const ResponseHead& head() const noexcept { return head_; }  // after kHead, until the next feed()
  Problem problem() const noexcept { return problem_; }
  bool done() const noexcept { return state_ == State::kDone; }
  bool upgraded() const noexcept { return state_ == State::kUpgraded; }
  // Only more bytes can bring the next event (a head or body is being read); otherwise feed() has one to report
  // even with no input (the end of a response, an error, the switch after a 101).
  bool wants_input() const noexcept { return state_ == State::kHead || state_ == State::kBody; }
  // The final head said the service keeps the connection (valid once done()).
  bool keep_alive() const noexcept { return keep_alive_; }

 private:
  enum class State : std::uint8_t { kIdle, kHead, kBody, kEndPending, kDone, kUpgraded, kFailed };
  State state_ = State::kIdle;
  bool request_was_head_ = false;
  bool keep_alive_ = false;
  std::string raw_;  // the head being assembled, then the head last parsed
  HeadScanner scanner_;
  ResponseHead head_;
  BodyFramer framer_;
  Problem problem_;
};

}  // namespace ringtun::http
