// What the HTTP fuzz targets share: a check that traps (so libFuzzer reports it with the input), and the scanner run
// whole and in pieces, which must agree however a head arrives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/message.hpp"

#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

namespace ringtun::http::fuzz {

// Scans `input` whole into `*whole`, and again in pieces of 1..64 bytes drawn from `seed`; traps unless both give the
// same state, head bounds and problem. Returns the whole scan's state.
inline HeadScanner::State scan_both_ways(std::string_view input, std::uint64_t seed, HeadScanner* whole) {
  const HeadScanner::State state = whole->scan(input);
  HeadScanner pieces;
  HeadScanner::State piece_state = HeadScanner::State::kNeedMore;
  std::size_t have = 0;
  std::uint64_t rng = seed;
  while (piece_state == HeadScanner::State::kNeedMore && have < input.size()) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    have += 1 + rng % 64;
    if (have > input.size()) have = input.size();
    piece_state = pieces.scan(input.substr(0, have));
  }
  if (have == 0) piece_state = pieces.scan(input);
  FUZZ_CHECK(piece_state == state);
  FUZZ_CHECK(pieces.head_start() == whole->head_start());
  FUZZ_CHECK(pieces.head_length() == whole->head_length());
  FUZZ_CHECK(pieces.problem().status == whole->problem().status);
  return state;
}

}  // namespace ringtun::http::fuzz
