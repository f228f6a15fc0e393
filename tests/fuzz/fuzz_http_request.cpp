// libFuzzer target: request heads from a public client (src/http). The bytes are scanned whole and in pieces (the
// scanner must give the same answer however the head arrives), parsed, written toward a service, and the written
// head parsed again: what the gateway forwards must frame and route exactly as what it received.
//
// Input: [split seed][request bytes...]. The seed picks the piece sizes of the incremental scan.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "http/forward.hpp"
#include "http/message.hpp"
#include "http_fuzz.hpp"

using namespace ringtun::http;  // NOLINT

namespace {

// Heads are large (kMaxFields fields each): static, not on the fuzzer's stack; one thread only.
RequestHead g_head;
RequestHead g_again;
std::array<char, kMaxForwardedHead> g_out;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  HeadScanner whole;
  const HeadScanner::State state = fuzz::scan_both_ways(input, data[0] * 0x9e3779b97f4a7c15ULL + 1, &whole);
  if (state != HeadScanner::State::kComplete) return 0;
  FUZZ_CHECK(whole.head_start() < whole.head_length() && whole.head_length() <= input.size());
  FUZZ_CHECK(whole.head_length() <= kMaxHeadBytes);

  const std::string_view head = input.substr(whole.head_start(), whole.head_length() - whole.head_start());
  if (parse_request_head(head, &g_head)) return 0;
  FUZZ_CHECK(!g_head.host.empty());

  const std::size_t n = write_upstream_request(g_head, Forwarding{"2001:db8::1", "https"}, g_out);
  FUZZ_CHECK(n > 0);  // kMaxForwardedHead is enough for any head we accept
  const std::string_view written(g_out.data(), n);
  const Problem again = parse_request_head(written, &g_again);
  if (again.status == 431) return 0;  // the added fields pushed it over kMaxFields
  FUZZ_CHECK(!again);
  FUZZ_CHECK(g_again.method == g_head.method);
  FUZZ_CHECK(g_again.target == g_head.target);
  FUZZ_CHECK(g_again.version == g_head.version);
  FUZZ_CHECK(g_again.host == g_head.host);
  FUZZ_CHECK(g_again.body == g_head.body);
  FUZZ_CHECK(g_again.content_length == g_head.content_length);
  FUZZ_CHECK(g_again.upgrade == g_head.upgrade);
  return 0;
}
