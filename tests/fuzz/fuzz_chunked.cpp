// libFuzzer target: the chunked body framer (src/http/body). The same bytes are fed whole and in pieces whose sizes
// the input picks; both must agree on how many bytes are body, whether it ended, and whether it failed. A body that
// ended ends on its final LF.
//
// Input: [split seed][body bytes...].
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/body.hpp"
#include "http_fuzz.hpp"

using namespace ringtun::http;  // NOLINT

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint64_t rng = data[0] * 0x9e3779b97f4a7c15ULL + 1;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  BodyFramer whole;
  whole.start(BodyKind::kChunked);
  const BodyFramer::Step w = whole.feed(input);
  FUZZ_CHECK(w.used <= input.size());
  FUZZ_CHECK(!(w.done && w.error != nullptr));
  FUZZ_CHECK(whole.body_bytes() == w.used);
  if (w.done) FUZZ_CHECK(input[w.used - 1] == '\n' && input[w.used - 2] == '\r');
  if (w.error == nullptr && !w.done) FUZZ_CHECK(w.used == input.size());

  BodyFramer split;
  split.start(BodyKind::kChunked);
  std::size_t at = 0;
  std::size_t used = 0;
  bool done = false;
  const char* error = nullptr;
  while (at < input.size() && !done && error == nullptr) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    // Mostly small pieces (where state crosses boundaries), sometimes large ones.
    std::size_t n = (rng & 0x100) != 0 ? 1 + (rng >> 9) % 4096 : 1 + (rng >> 9) % 8;
    if (n > input.size() - at) n = input.size() - at;
    const BodyFramer::Step s = split.feed(input.substr(at, n));
    FUZZ_CHECK(s.used <= n);
    if (s.error == nullptr && !s.done) FUZZ_CHECK(s.used == n);
    used += s.used;
    done = s.done;
    error = s.error;
    at += n;
  }
  FUZZ_CHECK(used == w.used);
  FUZZ_CHECK(done == w.done);
  FUZZ_CHECK((error != nullptr) == (w.error != nullptr));
  FUZZ_CHECK(split.done() == whole.done());
  FUZZ_CHECK(split.body_bytes() == whole.body_bytes());
  // After the end or an error, nothing more is taken.
  if (done || error != nullptr) FUZZ_CHECK(split.feed(input).used == 0);
  return 0;
}
