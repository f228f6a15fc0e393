// libFuzzer target: response heads from a service (src/http). Scanned whole and in pieces (same answer), parsed,
// written toward the client, and the written head parsed again: the client must frame the body exactly as the
// gateway does.
//
// Input: [flags][response bytes...]. flags bit 0: the request was HEAD; bit 1: the gateway closes after this
// response; the rest seeds the piece sizes of the incremental scan.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/forward.hpp"
#include "http/message.hpp"
#include "http_fuzz.hpp"

using namespace ringtun::http;  // NOLINT

namespace {

ResponseHead g_head;
ResponseHead g_again;
std::array<char, kMaxForwardedHead> g_out;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool was_head = (data[0] & 1) != 0;
  const bool close_after = (data[0] & 2) != 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  HeadScanner whole;
  const HeadScanner::State state = fuzz::scan_both_ways(input, (data[0] >> 2) * 0x9e3779b97f4a7c15ULL + 1, &whole);
  if (state != HeadScanner::State::kComplete) return 0;

  const std::string_view head = input.substr(whole.head_start(), whole.head_length() - whole.head_start());
  if (const Problem p = parse_response_head(head, was_head, &g_head)) {
    FUZZ_CHECK(p.status == 502);
    return 0;
  }
  FUZZ_CHECK(g_head.status >= 100 && g_head.status <= 599);
  FUZZ_CHECK(!(g_head.interim && g_head.switching));
  if (g_head.interim || g_head.switching || was_head) FUZZ_CHECK(g_head.body == BodyKind::kNone);
  if (g_head.body == BodyKind::kUntilClose) FUZZ_CHECK(!g_head.keep_alive);

  const std::size_t n = write_client_response(g_head, close_after, g_out);
  FUZZ_CHECK(n > 0);
  const Problem again = parse_response_head(std::string_view(g_out.data(), n), was_head, &g_again);
  if (again.status == 502 && g_head.fields.count == kMaxFields) return 0;  // Connection added past kMaxFields
  FUZZ_CHECK(!again);
  FUZZ_CHECK(g_again.status == g_head.status);
  FUZZ_CHECK(g_again.body == g_head.body);
  FUZZ_CHECK(g_again.content_length == g_head.content_length);
  FUZZ_CHECK(g_again.switching == g_head.switching);
  if (close_after && !g_head.interim) FUZZ_CHECK(!g_again.keep_alive);
  return 0;
}
