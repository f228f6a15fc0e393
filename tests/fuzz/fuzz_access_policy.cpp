// libFuzzer target: the access policy's CIDR parsing (src/route/access_policy). The whole input is handed to
// parse_cidr and to parse_cidr_list. Whatever they accept is a network in normal form: its text parses back to the
// same network, no bit is set past its length, it contains its own prefix and its last address but not the address
// just past its length's last bit, and contains() agrees with a bit-by-bit model. Whatever they refuse comes with a
// message that is one bounded line of printable ASCII.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "route/access_policy.hpp"

using namespace ringtun::route;

namespace {

bool bit_of(const IpAddress& address, std::size_t bit) {
  return ((address.bytes[bit / 8] >> (7 - bit % 8)) & 1) != 0;
}

IpAddress with_bit_flipped(IpAddress address, std::size_t bit) {
  address.bytes[bit / 8] = static_cast<std::uint8_t>(address.bytes[bit / 8] ^ (0x80u >> (bit % 8)));
  return address;
}

bool model_contains(const Cidr& cidr, const IpAddress& address) {
  for (std::size_t bit = 0; bit < cidr.bits; ++bit) {
    if (bit_of(cidr.prefix, bit) != bit_of(address, bit)) return false;
  }
  return true;
}

void check_refusal(const std::string& error_text) {
  // The longest message quotes 80 bytes plus "..." and names a rule or a network; 300 leaves room, not a flood.
  if (error_text.empty() || error_text.size() > 300) __builtin_trap();
  for (char c : error_text) {
    if (c < 0x20 || c > 0x7e) __builtin_trap();
  }
}

void check_network(const Cidr& cidr, const IpAddress& probe) {
  if (cidr.bits > 128) __builtin_trap();
  // IPv4 networks print as a.b.c.d/n; that needs the mapped prefix's 96 bits inside the network.
  if (cidr.prefix.is_v4() && cidr.bits < 96) __builtin_trap();
  for (std::size_t bit = cidr.bits; bit < 128; ++bit) {
    if (bit_of(cidr.prefix, bit)) __builtin_trap();
  }
  if (!cidr.contains(cidr.prefix)) __builtin_trap();
  IpAddress last = cidr.prefix;
  for (std::size_t bit = cidr.bits; bit < 128; ++bit) last = with_bit_flipped(last, bit);
  if (!cidr.contains(last)) __builtin_trap();
  if (cidr.bits > 0 && cidr.contains(with_bit_flipped(cidr.prefix, cidr.bits - 1u))) __builtin_trap();
  if (cidr.contains(probe) != model_contains(cidr, probe)) __builtin_trap();

  std::string error_text;
  const std::string text = cidr.to_string();
  auto again = parse_cidr(text, &error_text);
  if (!again || !(*again == cidr)) __builtin_trap();
  if (again->to_string() != text) __builtin_trap();

  // The bare prefix as an address: its text names the same 128 bits.
  auto host = parse_cidr(cidr.prefix.to_string(), &error_text);
  if (!host || host->bits != 128 || !(host->prefix == cidr.prefix)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // An address to probe contains() with, from the input's first bytes (zero-padded).
  IpAddress probe;
  for (std::size_t i = 0; i < size && i < probe.bytes.size(); ++i) probe.bytes[i] = data[i];

  std::string error_text;
  auto one = parse_cidr(text, &error_text);
  if (one) {
    check_network(*one, probe);
  } else {
    check_refusal(error_text);
  }

  error_text.clear();
  auto list = parse_cidr_list(text, &error_text);
  if (!list) {
    check_refusal(error_text);
    return 0;
  }
  if (list->empty() || list->size() > kMaxCidrs) __builtin_trap();
  // A single entry is the same network whether read as a list or alone.
  if (one && (list->size() != 1 || !((*list)[0] == *one))) __builtin_trap();
  std::string joined;
  for (const Cidr& cidr : *list) {
    check_network(cidr, probe);
    if (!joined.empty()) joined += ", ";
    joined += cidr.to_string();
  }
  auto again = parse_cidr_list(joined, &error_text);
  if (!again || *again != *list) __builtin_trap();
  return 0;
}
