// ResponseReader: the events of a stream of responses, whatever the split of the bytes.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "http/response_reader.hpp"

using namespace ringtun::http;

namespace {

struct Outcome {
  std::string events;  // one letter per event: H head, B body bytes (once per run), E end, U upgraded, X error
  std::string body;    // every byte reported as body
  std::size_t consumed = 0;  // bytes used before the end (or error)
  bool keep_alive = false;
};

// Feeds `bytes` in pieces of `piece` bytes (0: whole), as the agent and the gateway do: each call handles one
// piece until only more input could bring the next event.
Outcome read(std::string_view bytes, std::size_t piece, bool head_request = false) {
  ResponseReader reader;
  reader.start(head_request);
  Outcome out;
  std::size_t at = 0;
  bool finished = false;
  while (!finished) {
    const std::size_t n = piece == 0 ? bytes.size() - at : std::min(piece, bytes.size() - at);
    std::string_view chunk = bytes.substr(at, n);
    at += n;
    while (!finished && (!chunk.empty() || !reader.wants_input())) {
      const auto step = reader.feed(chunk);
      switch (step.event) {
        case ResponseReader::Event::kNeedMore: break;
        case ResponseReader::Event::kHead: out.events += 'H'; break;
        case ResponseReader::Event::kBody:
          if (out.events.empty() || out.events.back() != 'B') out.events += 'B';
          out.body.append(chunk.substr(0, step.used));
          break;
        case ResponseReader::Event::kEnd: out.events += 'E'; finished = true; break;
        case ResponseReader::Event::kUpgraded: out.events += 'U'; finished = true; break;
        case ResponseReader::Event::kError: out.events += 'X'; finished = true; break;
      }
      out.consumed += step.used;
      chunk.remove_prefix(step.used);
    }
    if (at == bytes.size() && !finished) break;
  }
  out.keep_alive = reader.keep_alive();
  return out;
}

void same_at_every_split(std::string_view bytes, const Outcome& want, bool head_request = false) {
  for (std::size_t piece = 0; piece <= bytes.size(); ++piece) {
    CAPTURE(piece);
    const Outcome got = read(bytes, piece, head_request);
    CHECK(got.events == want.events);
    CHECK(got.body == want.body);
    // Before an error, what was taken into the head depends on the pieces; otherwise it must not.
    if (want.events.back() != 'X') CHECK(got.consumed == want.consumed);
    CHECK(got.keep_alive == want.keep_alive);
  }
}

}  // namespace

TEST_CASE("ResponseReader: a Content-Length response ends at its last byte, whatever follows") {
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  same_at_every_split(response + "EXTRA", {"HBE", "hello", response.size(), true});
}

TEST_CASE("ResponseReader: interim 100 then a chunked final response") {
  const std::string response =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n";
  same_at_every_split(response, {"HHBE", "3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n", response.size(), true});
}

TEST_CASE("ResponseReader: no body for 204, 304 and HEAD; 101 switches") {
  const std::string no_content = "HTTP/1.1 204 No Content\r\n\r\n";
  same_at_every_split(no_content, {"HE", "", no_content.size(), true});
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  same_at_every_split(head, {"HE", "", head.size(), true}, /*head_request=*/true);
  const std::string switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
  same_at_every_split(switching + "frames", {"HU", "", switching.size(), false});
}

TEST_CASE("ResponseReader: a close-delimited body ends only with the input; garbage is an error") {
  ResponseReader reader;
  reader.start(false);
  const std::string head = "HTTP/1.0 200 OK\r\n\r\n";
  CHECK(reader.feed(head).event == ResponseReader::Event::kHead);
  CHECK(reader.feed("body").event == ResponseReader::Event::kBody);
  CHECK_FALSE(reader.keep_alive());
  CHECK(reader.end_of_input());
  CHECK(reader.done());

  ResponseReader cut;
  cut.start(false);
  CHECK(cut.feed("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n").event == ResponseReader::Event::kHead);
  CHECK(cut.feed("abc").event == ResponseReader::Event::kBody);
  CHECK_FALSE(cut.end_of_input());

  same_at_every_split("HTTP/1.1 2x0 OK\r\n\r\n", {"X", "", 0, false});
  CHECK(read("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0).events == "X");
}
