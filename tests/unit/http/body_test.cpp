// BodyFramer: length and close-delimited bodies, the chunked coding with extensions and trailers, its refusals, and
// the same answer whether the bytes come whole, split at any byte, or one at a time.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "http/body.hpp"

using namespace ringtun::http;  // NOLINT

namespace {

struct Outcome {
  std::size_t used = 0;
  bool done = false;
  bool error = false;
  bool operator==(const Outcome&) const = default;
};

// Feeds `input` in pieces cut at `cuts` (ascending offsets); stops at done or error like the gateway would.
Outcome feed_pieces(BodyKind kind, std::uint64_t length, std::string_view input, const std::vector<std::size_t>& cuts) {
  BodyFramer f;
  f.start(kind, length);
  Outcome o;
  o.done = f.done();
  std::size_t at = 0;
  auto piece = [&](std::size_t end) {
    if (o.done || o.error) return;
    const BodyFramer::Step step = f.feed(input.substr(at, end - at));
    o.used += step.used;
    o.done = step.done;
    o.error = step.error != nullptr;
    at = end;
  };
  for (std::size_t c : cuts) piece(c);
  piece(input.size());
  CHECK(f.body_bytes() == o.used);
  CHECK(f.done() == o.done);
  return o;
}

Outcome feed_whole(BodyKind kind, std::uint64_t length, std::string_view input) {
  return feed_pieces(kind, length, input, {});
}

void check_split_invariance(BodyKind kind, std::uint64_t length, std::string_view input) {
  const Outcome whole = feed_whole(kind, length, input);
  for (std::size_t k = 0; k <= input.size(); ++k) CHECK(feed_pieces(kind, length, input, {k}) == whole);
  std::vector<std::size_t> every;
  for (std::size_t k = 1; k < input.size(); ++k) every.push_back(k);
  CHECK(feed_pieces(kind, length, input, every) == whole);
}

Outcome chunked(std::string_view input) {
  return feed_whole(BodyKind::kChunked, 0, input);
}

}  // namespace

TEST_CASE("length, none and until-close bodies") {
  BodyFramer f;
  f.start(BodyKind::kNone);
  CHECK(f.done());
  CHECK(f.feed("abc").used == 0);
  f.start(BodyKind::kLength, 0);
  CHECK(f.done());
  CHECK(f.end_of_input());

  f.start(BodyKind::kLength, 5);
  CHECK_FALSE(f.done());
  auto step = f.feed("abc");
  CHECK(step.used == 3);
  CHECK_FALSE(step.done);
  step = f.feed("defgh");
  CHECK(step.used == 2);
  CHECK(step.done);
  CHECK(f.feed("x").used == 0);
  CHECK(f.body_bytes() == 5);

  f.start(BodyKind::kLength, 5);
  (void)f.feed("ab");
  CHECK_FALSE(f.end_of_input());  // truncated

  f.start(BodyKind::kUntilClose);
  CHECK(f.feed("anything at all").used == 15);
  CHECK_FALSE(f.done());
  CHECK(f.end_of_input());
  CHECK(f.done());
  CHECK(f.body_bytes() == 15);
}

TEST_CASE("chunked coding with extensions and trailers") {
  const std::string simple = "5\r\nhello\r\n0\r\n\r\n";
  CHECK(chunked(simple + "NEXT") == Outcome{simple.size(), true, false});

  const std::string ext =
      "A;name=value;quoted=\"a b\"\r\n0123456789\r\n"
      "1 ;x\r\n!\r\n"
      "00f\r\n0123456789abcde\r\n"
      "000;last\r\n"
      "Expires: never\r\n"
      "X-Checksum:\tabc \r\n"
      "\r\n";
  CHECK(chunked(ext + "GET / HTTP/1.1") == Outcome{ext.size(), true, false});
  check_split_invariance(BodyKind::kChunked, 0, ext + "tail");

  const std::string upper = "1F\r\n" + std::string(31, 'x') + "\r\n0\r\n\r\n";
  CHECK(chunked(upper) == Outcome{upper.size(), true, false});

  // Not finished yet: everything given is body, nothing is done.
  CHECK(chunked("5\r\nhel") == Outcome{6, false, false});
  CHECK(chunked("5\r\nhello\r\n0\r\n") == Outcome{13, false, false});
  BodyFramer f;
  f.start(BodyKind::kChunked);
  (void)f.feed("5\r\nhel");
  CHECK_FALSE(f.end_of_input());

  // 16 hex digits is the most and cannot overflow.
  BodyFramer big;
  big.start(BodyKind::kChunked);
  CHECK(big.feed("ffffffffffffffff\r\nabc").error == nullptr);
}

TEST_CASE("chunked refusals") {
  struct Case {
    std::string input;
    std::size_t used;  // valid bytes before the error
  };
  const std::vector<Case> cases = {
      {"\r\n", 0},
      {"x\r\n", 0},
      {";ext\r\n", 0},
      {"-1\r\n", 0},
      {"0x5\r\n", 1},
      {"5\nhello\r\n0\r\n\r\n", 1},  // bare LF after the size
      {"5\rhello", 2},               // CR without LF
      {"5\r\nhelloX\r\n", 8},        // data not followed by CRLF
      {"5\r\nhello\n0\r\n\r\n", 8},  // bare LF after data
      {"5\r\nhello\r\r\n", 9},
      {"5 x\r\n", 2},                  // BWS not followed by ";"
      {"5;a\nb\r\n", 3},               // bare LF in an extension
      {"5;a\x01\r\n", 3},              // CTL in an extension
      {"11111111111111111\r\n", 16},   // 17 digits
      {"0\r\n\n", 3},                  // bare LF ends the trailer section
      {"0\r\nX: a\n\r\n", 7},          // bare LF ends a trailer
      {"0\r\n folded: a\r\n\r\n", 3},  // trailer line starting with SP
      {"0\r\nX : a\r\n\r\n", 4},       // whitespace before a trailer's colon
      {"0\r\nNoColon\r\n\r\n", 10},
      {"0\r\nX: a\x7f\r\n\r\n", 7},
      {"0\r\n\rX", 4},  // final CR without LF
  };
  for (const auto& c : cases) {
    CAPTURE(c.input);
    CHECK(chunked(c.input) == Outcome{c.used, false, true});
    check_split_invariance(BodyKind::kChunked, 0, c.input);
  }

  // An error is sticky.
  BodyFramer f;
  f.start(BodyKind::kChunked);
  CHECK(f.feed("zz").error != nullptr);
  const auto again = f.feed("5\r\nhello\r\n");
  CHECK(again.used == 0);
  CHECK(again.error != nullptr);
  CHECK_FALSE(f.end_of_input());
}

TEST_CASE("chunked limits: chunk line and trailer section") {
  const std::string line_ok = "1;" + std::string(BodyFramer::kMaxChunkLine - 2, 'e') + "\r\nx\r\n0\r\n\r\n";
  CHECK(chunked(line_ok) == Outcome{line_ok.size(), true, false});
  const std::string line_long = "1;" + std::string(BodyFramer::kMaxChunkLine - 1, 'e') + "\r\nx\r\n0\r\n\r\n";
  CHECK(chunked(line_long) == Outcome{BodyFramer::kMaxChunkLine, false, true});

  std::string trailers = "0\r\n";
  while (trailers.size() < BodyFramer::kMaxTrailerBytes + 100) trailers += "X-T: " + std::string(50, 't') + "\r\n";
  trailers += "\r\n";
  const Outcome o = chunked(trailers);
  CHECK(o.error);
  CHECK(o.used == 3 + BodyFramer::kMaxTrailerBytes);
}

TEST_CASE("chunked framing is split-invariant for many bodies") {
  const std::vector<std::string> inputs = {
      "3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nT: v\r\n\r\nrest",
      "0\r\n\r\n",
      "1\r\n\r\r\n0\r\n\r\n",
      "2\r\n\r\n\r\n0\r\n\r\n",
      "5\r\nabc",
      "5 \t ; a = \"b\" \r\n12345\r\n0\r\n\r\n",
      "10\r\n0123456789abcdef\r\n0\r\nA:\r\nB: x\r\n\r\n",
  };
  for (const auto& in : inputs) {
    CAPTURE(in);
    check_split_invariance(BodyKind::kChunked, 0, in);
  }
  check_split_invariance(BodyKind::kLength, 7, "0123456789");
  check_split_invariance(BodyKind::kUntilClose, 0, "0123456789");
}
