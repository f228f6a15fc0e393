// libFuzzer target: the ClientHello/SNI reader (src/tls/client_hello). The input is the client's byte stream. It is
// read whole, grown in chunks whose sizes come from the input's own bytes (the scratch buffer scribbled over between
// calls), and grown a byte at a time: all three must give the same outcome, name and reason. Beyond that: a name is
// 1..255 bytes; a prefix of kMaxHello bytes always gets a decision; and a hello read from a single record gives the
// same answer when its message is re-framed into small records (the defragmenting path).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "tls/client_hello.hpp"

using ringtun::tls::ClientHelloReader;
using Outcome = ClientHelloReader::Outcome;

namespace {

std::byte g_scratch[ClientHelloReader::kMaxHello];
std::uint8_t g_framed[ClientHelloReader::kMaxHello];

// Only the first `size` bytes: a message never exceeds the input, and a whole 16 KiB per call would be most of the
// run time.
void scribble(std::uint8_t value, std::size_t size) {
  std::memset(g_scratch, value, size < sizeof g_scratch ? size : sizeof g_scratch);
}

void same(const ClientHelloReader& a, const ClientHelloReader& b) {
  if (a.outcome() != b.outcome() || a.name() != b.name() || std::strcmp(a.error(), b.error()) != 0) __builtin_trap();
}

std::span<const std::byte> prefix(const std::uint8_t* data, std::size_t n) {
  return {reinterpret_cast<const std::byte*>(data), n};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ClientHelloReader whole;
  const Outcome outcome = whole.read(prefix(data, size), g_scratch);
  if (outcome != whole.outcome()) __builtin_trap();
  if (outcome == Outcome::kFound && (whole.name().empty() || whole.name().size() > ClientHelloReader::kMaxName)) {
    __builtin_trap();
  }
  if (outcome != Outcome::kFound && !whole.name().empty()) __builtin_trap();
  if ((outcome == Outcome::kError) != (whole.error()[0] != '\0')) __builtin_trap();
  if (outcome == Outcome::kNeedMore && (size >= ClientHelloReader::kMaxHello || whole.bytes_needed() == 0)) {
    __builtin_trap();
  }
  // Final answers stay final.
  if (whole.read(prefix(data, size), g_scratch) != outcome) __builtin_trap();

  ClientHelloReader chunked;
  std::size_t n = 0;
  for (std::size_t k = 0; chunked.read(prefix(data, n), g_scratch) == Outcome::kNeedMore && n < size; ++k) {
    scribble(static_cast<std::uint8_t>(k), size);
    n += 1 + data[k % size] % 61;
    if (n > size) n = size;
  }
  same(whole, chunked);

  ClientHelloReader bytewise;
  for (n = 0; bytewise.read(prefix(data, n), g_scratch) == Outcome::kNeedMore && n < size; ++n) {
  }
  same(whole, bytewise);

  // A hello that came in one record (its message ends within it), re-framed into records of 1..200 bytes.
  if ((outcome == Outcome::kFound || outcome == Outcome::kNoName) && size >= 9) {
    const std::size_t record = std::size_t{data[3]} << 8 | data[4];
    const std::size_t message = 4 + (std::size_t{data[6]} << 16 | std::size_t{data[7]} << 8 | data[8]);
    const std::size_t piece = 1 + data[size - 1] % 200;
    const std::size_t records = (message + piece - 1) / piece;
    if (record >= message && message + 5 * records <= sizeof g_framed) {
      std::size_t at = 0;
      for (std::size_t from = 0; from < message; from += piece) {
        const std::size_t take = message - from < piece ? message - from : piece;
        const std::uint8_t header[5] = {22, 3, 3, static_cast<std::uint8_t>(take >> 8),
                                        static_cast<std::uint8_t>(take)};
        std::memcpy(g_framed + at, header, 5);
        std::memcpy(g_framed + at + 5, data + 5 + from, take);
        at += 5 + take;
      }
      ClientHelloReader framed;
      (void)framed.read(prefix(g_framed, at), g_scratch);
      same(whole, framed);
    }
  }
  return 0;
}
