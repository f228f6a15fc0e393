// Access policy on public routes (see access_policy.hpp): CIDR parsing and matching, the per-core rate table and the
// shared connection counters.
#include "route/access_policy.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <numeric>
#include <tuple>

#include "common/assert.hpp"
#include "common/mix64.hpp"
#include "common/printable.hpp"

namespace ringtun::route {
namespace {

constexpr std::size_t kV4MappedPrefixBits = 96;  // ::ffff:0:0/96 holds every IPv4 address

// Stores `message` in *error_text (when given) and returns the error to propagate.
Unexpected report(std::string* error_text, std::string message) {
  if (error_text != nullptr) *error_text = std::move(message);
  return fail(Errc::kInvalidArgument, "access policy");
}

Unexpected report_in(std::string* error_text, std::string_view text, const char* rule) {
  return report(error_text, printable(text) + ": " + rule);
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// A strict decimal for an octet or a prefix length: digits only, "0" or no leading zero, at most `max`. Returns
// nullptr with *value set, or the rule `digits` breaks, taken from `rules`: {empty, not decimal, leading zero, above
// max}, worded for the field being read.
const char* parse_small_decimal(std::string_view digits, unsigned max, unsigned* value, const char* const (&rules)[4]) {
  if (digits.empty()) return rules[0];
  unsigned accumulated = 0;
  for (char c : digits) {
    if (!is_digit(c)) return rules[1];
    // Stops growing once past `max`: a long run of digits cannot overflow, and is refused as too large below.
    if (accumulated <= max) accumulated = accumulated * 10 + static_cast<unsigned>(c - '0');
  }
  if (digits.size() > 1 && digits[0] == '0') return rules[2];
  if (accumulated > max) return rules[3];
  *value = accumulated;
  return nullptr;
}

constexpr const char* kOctetRules[4] = {
    "an IPv4 address has four parts separated by '.', none of them empty",
    "an IPv4 part is not a decimal number",
    "an IPv4 part has a leading zero (octal or decimal?)",
    "an IPv4 part is above 255",
};
constexpr const char* kV4BitsRules[4] = {
    "empty prefix length after '/'",
    "the prefix length is not a decimal number",
    "the prefix length has a leading zero",
    "the prefix length is above 32 for IPv4",
};
constexpr const char* kV6BitsRules[4] = {
    kV4BitsRules[0],
    kV4BitsRules[1],
    kV4BitsRules[2],
    "the prefix length is above 128 for IPv6",
};

// Four decimal parts, each 0..255 without a leading zero. glibc's inet_pton(AF_INET) happens to agree, but inet_aton
// and its relatives read "10.1" as 10.0.0.1 and "010.0.0.1" as octal: what a policy matches must not depend on which
// parser a libc (or a later edit) picks.
const char* parse_dotted_quad(std::string_view text, std::uint8_t (&out)[4]) noexcept {
  std::size_t part = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '.') continue;
    if (part == 4) return kOctetRules[0];
    unsigned value = 0;
    if (const char* rule = parse_small_decimal(text.substr(start, i - start), 255, &value, kOctetRules)) return rule;
    out[part++] = static_cast<std::uint8_t>(value);
    start = i + 1;
  }
  return part == 4 ? nullptr : kOctetRules[0];
}

// The first `bits` bits of `address`, the rest zero.
IpAddress network_of(const IpAddress& address, std::size_t bits) noexcept {
  IpAddress network;
  const std::size_t whole = std::min<std::size_t>(bits, 128) / 8;
  std::copy_n(address.bytes.begin(), whole, network.bytes.begin());
  if (whole < 16 && bits % 8 != 0) {
    const auto keep = static_cast<std::uint8_t>(0xff00u >> (bits % 8));
    network.bytes[whole] = static_cast<std::uint8_t>(address.bytes[whole] & keep);
  }
  return network;
}

std::uint64_t load_u64(const std::uint8_t* bytes) noexcept {
  std::uint64_t word;
  std::memcpy(&word, bytes, sizeof word);
  return word;
}

// The key of (address, token) in the per-address tables. Seeded with a secret so that a client cannot pick
// addresses that all land in one slot; nonzero because 0 marks a free RateTable slot.
std::uint64_t address_key(const IpAddress& address, std::uint32_t token, std::uint64_t seed) noexcept {
  std::uint64_t h = mix64(seed ^ load_u64(address.bytes.data()));
  h = mix64(h ^ load_u64(address.bytes.data() + 8));
  h = mix64(h ^ token);
  return h == 0 ? 1 : h;
}

// slot_of returns a std::uint32_t: a table larger than that could not be addressed.
std::size_t power_of_two_slots(std::size_t requested, std::size_t minimum) {
  constexpr std::size_t kMaxSlots = std::size_t{1} << 31;
  RINGTUN_CHECK(requested <= kMaxSlots, "access policy table too large");
  return std::bit_ceil(std::max(requested, minimum));
}

}  // namespace

IpAddress IpAddress::from_v4(const std::uint8_t (&v4)[4]) noexcept {
  IpAddress address;
  address.bytes[10] = 0xff;
  address.bytes[11] = 0xff;
  std::copy_n(v4, 4, address.bytes.begin() + 12);
  return address;
}

IpAddress IpAddress::from_v6(const std::uint8_t (&v6)[16]) noexcept {
  IpAddress address;
  std::copy_n(v6, 16, address.bytes.begin());
  return address;
}

bool IpAddress::is_v4() const noexcept {
  return std::all_of(bytes.begin(), bytes.begin() + 10, [](std::uint8_t b) { return b == 0; }) && bytes[10] == 0xff &&
         bytes[11] == 0xff;
}

std::string IpAddress::to_string() const {
  if (is_v4()) {
    return std::to_string(bytes[12]) + '.' + std::to_string(bytes[13]) + '.' + std::to_string(bytes[14]) + '.' +
           std::to_string(bytes[15]);
  }
  char text[INET6_ADDRSTRLEN];
  // Cannot fail: the buffer fits the longest form and AF_INET6 is supported.
  ::inet_ntop(AF_INET6, bytes.data(), text, sizeof text);
  return text;
}

// On the accept path, once per list entry: compares the prefix's whole bytes, then the bits of the byte it ends in.
bool Cidr::contains(const IpAddress& address) const noexcept {
  const std::size_t prefix_bits = std::min<std::size_t>(bits, 128);
  const std::size_t whole = prefix_bits / 8;
  if (std::memcmp(address.bytes.data(), prefix.bytes.data(), whole) != 0) return false;
  if (prefix_bits % 8 == 0) return true;
  const auto keep = static_cast<std::uint8_t>(0xff00u >> (prefix_bits % 8));
  return ((address.bytes[whole] ^ prefix.bytes[whole]) & keep) == 0;
}

std::string Cidr::to_string() const {
  if (prefix.is_v4() && bits >= kV4MappedPrefixBits) {
    return prefix.to_string() + '/' + std::to_string(bits - kV4MappedPrefixBits);
  }
  return prefix.to_string() + '/' + std::to_string(bits);
}

Result<Cidr> parse_cidr(std::string_view text, std::string* error_text) {
  if (text.empty()) return report(error_text, "empty address (expected ADDR or ADDR/BITS)");
  const std::size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  Cidr cidr;
  const bool v6_text = address_text.find(':') != std::string_view::npos;
  if (v6_text) {
    // inet_pton reads a C string: a NUL inside the text would end it early and accept what precedes it.
    char c_text[INET6_ADDRSTRLEN];
    std::uint8_t v6[16];
    if (address_text.size() >= sizeof c_text || address_text.find('\0') != std::string_view::npos) {
      return report_in(error_text, text, "not an IPv6 address");
    }
    std::memcpy(c_text, address_text.data(), address_text.size());
    c_text[address_text.size()] = '\0';
    if (::inet_pton(AF_INET6, c_text, v6) != 1) return report_in(error_text, text, "not an IPv6 address");
    cidr.prefix = IpAddress::from_v6(v6);
  } else {
    if (!std::all_of(address_text.begin(), address_text.end(), [](char c) { return is_digit(c) || c == '.'; })) {
      return report_in(error_text, text, "not an IPv4 or IPv6 address");
    }
    std::uint8_t v4[4];
    if (const char* rule = parse_dotted_quad(address_text, v4)) return report_in(error_text, text, rule);
    cidr.prefix = IpAddress::from_v4(v4);
  }

  if (slash == std::string_view::npos) {
    cidr.bits = 128;
  } else {
    unsigned bits = 0;
    const char* rule = v6_text ? parse_small_decimal(text.substr(slash + 1), 128, &bits, kV6BitsRules)
                               : parse_small_decimal(text.substr(slash + 1), 32, &bits, kV4BitsRules);
    if (rule != nullptr) return report_in(error_text, text, rule);
    cidr.bits = static_cast<std::uint8_t>(v6_text ? bits : kV4MappedPrefixBits + bits);
  }

  const Cidr network{network_of(cidr.prefix, cidr.bits), cidr.bits};
  if (network.prefix != cidr.prefix) {
    return report(error_text, printable(text) + ": host bits are set (the network is " + network.to_string() + ")");
  }
  return cidr;
}

Result<std::vector<Cidr>> parse_cidr_list(std::string_view text, std::string* error_text) {
  std::vector<Cidr> list;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != ',') continue;
    std::string_view entry = text.substr(start, i - start);
    start = i + 1;
    const std::size_t first = entry.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
      if (text.find_first_not_of(" \t") == std::string_view::npos) {
        return report(error_text, "empty list (expected CIDR[,CIDR...])");
      }
      return report(error_text, printable(text) + ": empty entry (number " + std::to_string(list.size() + 1) + ")");
    }
    entry = entry.substr(first, entry.find_last_not_of(" \t") + 1 - first);
    if (list.size() == kMaxCidrs) {
      return report(error_text, "more than " + std::to_string(kMaxCidrs) + " entries in one list");
    }
    auto cidr = parse_cidr(entry, error_text);
    if (!cidr) return Unexpected{cidr.error()};
    list.push_back(*cidr);
  }

  // Sorted positions rather than a pairwise scan: a list of kMaxCidrs entries stays cheap to check.
  std::vector<std::uint32_t> order(list.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&list](std::uint32_t a, std::uint32_t b) {
    return std::tie(list[a].prefix.bytes, list[a].bits, a) < std::tie(list[b].prefix.bytes, list[b].bits, b);
  });
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (list[order[i - 1]] == list[order[i]]) {
      return report(error_text, list[order[i]].to_string() + " is listed twice (entries " +
                                    std::to_string(order[i - 1] + 1) + " and " + std::to_string(order[i] + 1) + ")");
    }
  }
  return list;
}

bool any_contains(std::span<const Cidr> list, const IpAddress& address) noexcept {
  return std::any_of(list.begin(), list.end(), [&address](const Cidr& cidr) { return cidr.contains(address); });
}

const char* verdict_name(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::kAllowed:
      return "allowed";
    case Verdict::kDenied:
      return "denied";
    case Verdict::kNotAllowed:
      return "not_allowed";
    case Verdict::kRateLimited:
      return "rate_limited";
    case Verdict::kServiceFull:
      return "max_conns";
    case Verdict::kClientFull:
      return "max_conns_per_client";
  }
  return "unknown";  // a value cast from outside the enum
}

NetworkSet::U128 NetworkSet::value_of(const IpAddress& address) noexcept {
  U128 v;
  for (std::size_t i = 0; i < 8; ++i) v.high = (v.high << 8) | address.bytes[i];
  for (std::size_t i = 8; i < 16; ++i) v.low = (v.low << 8) | address.bytes[i];
  return v;
}

NetworkSet::NetworkSet(std::span<const Cidr> networks) {
  ranges_.reserve(networks.size());
  for (const Cidr& cidr : networks) {
    const U128 first = value_of(cidr.prefix);
    // The host part all ones: the last address of the network.
    const std::size_t host_bits = 128 - std::min<std::size_t>(cidr.bits, 128);
    U128 last = first;
    if (host_bits >= 64) {
      last.low = ~std::uint64_t{0};
      last.high |= host_bits >= 128 ? ~std::uint64_t{0} : (std::uint64_t{1} << (host_bits - 64)) - 1;
    } else if (host_bits > 0) {
      last.low |= (std::uint64_t{1} << host_bits) - 1;
    }
    ranges_.push_back(Range{first, last});
  }
  std::sort(ranges_.begin(), ranges_.end(), [](const Range& a, const Range& b) { return a.first < b.first; });
  // Merge overlapping and nested networks (and adjacent ones): the ranges left are disjoint and sorted.
  std::size_t kept = 0;
  for (const Range& r : ranges_) {
    if (kept > 0) {
      Range& prev = ranges_[kept - 1];
      const bool touches = prev.last.low == ~std::uint64_t{0}
                               ? (prev.last.high == ~std::uint64_t{0} || r.first <= U128{prev.last.high + 1, 0})
                               : r.first <= U128{prev.last.high, prev.last.low + 1};
      if (touches) {
        if (r.last > prev.last) prev.last = r.last;
        continue;
      }
    }
    ranges_[kept++] = r;
  }
  ranges_.resize(kept);
}

bool NetworkSet::contains(const IpAddress& address) const noexcept {
  const U128 v = value_of(address);
  // The last range that starts at or before v.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), v, [](const U128& x, const Range& r) { return x < r.first; });
  if (it == ranges_.begin()) return false;
  return v <= std::prev(it)->last;
}

Verdict check_lists(const AccessRules& rules, const IpAddress& address) noexcept {
  const bool denied = rules.deny_set.empty() ? any_contains(rules.deny, address) : rules.deny_set.contains(address);
  if (denied) return Verdict::kDenied;
  if (rules.allow.empty()) return Verdict::kAllowed;
  const bool allowed =
      rules.allow_set.empty() ? any_contains(rules.allow, address) : rules.allow_set.contains(address);
  return allowed ? Verdict::kAllowed : Verdict::kNotAllowed;
}

// ---- RateTable

RateTable::RateTable(std::size_t slots, std::uint64_t seed) : slots_(power_of_two_slots(slots, 64)), seed_(seed) {}

bool RateTable::take(const IpAddress& address, std::uint32_t token, std::uint64_t per_second_milli,
                     std::uint64_t burst_milli, std::uint64_t now_ms) noexcept {
  RINGTUN_ASSERT(per_second_milli > 0 && burst_milli > 0, "a rate and a burst of zero are no limit: skip the table");
  const std::uint64_t key = address_key(address, token, seed_);
  Slot& slot = slots_[key & (slots_.size() - 1)];
  if (slot.key != key) {
    slot = Slot{key, burst_milli, now_ms};
  } else if (now_ms > slot.last_ms) {
    // A clock that went backwards (now_ms < last_ms) adds nothing: the bucket waits for it to pass last_ms again.
    std::uint64_t product = 0;
    const std::uint64_t elapsed = now_ms - slot.last_ms;
    const std::uint64_t refill =
        __builtin_mul_overflow(elapsed, per_second_milli, &product) ? burst_milli : product / 1000;
    // A rate below one thousandth per millisecond refills nothing in a short gap: leave last_ms where it was so
    // that the gaps add up instead of each being rounded down to zero. (Whole connections per second, as the
    // config gives, are exact.)
    if (refill > 0) {
      slot.milli = refill >= burst_milli - std::min(slot.milli, burst_milli) ? burst_milli : slot.milli + refill;
      slot.last_ms = now_ms;
    }
  }
  if (slot.milli < 1000) return false;
  slot.milli -= 1000;
  return true;
}

// ---- ClientCounts
//
// Relaxed ordering throughout: each counter stands alone (nothing else is published through it), and a
// read-modify-write always acts on the latest value in the counter's modification order whatever its ordering, so
// the count and the limit check are exact without acquire/release fences.

ClientCounts::ClientCounts(std::size_t slots, std::uint64_t seed)
    : counts_(std::make_unique<std::atomic<std::uint32_t>[]>(power_of_two_slots(slots, 1))),
      mask_(power_of_two_slots(slots, 1) - 1),
      seed_(seed) {}

std::uint32_t ClientCounts::slot_of(const IpAddress& address, std::uint32_t token) const noexcept {
  return static_cast<std::uint32_t>(address_key(address, token, seed_) & mask_);
}

namespace {

bool acquire_below(std::atomic<std::uint32_t>& count, std::uint32_t limit) noexcept {
  std::uint32_t held = count.load(std::memory_order_relaxed);
  do {
    if (held >= limit) return false;
  } while (!count.compare_exchange_weak(held, held + 1, std::memory_order_relaxed));
  return true;
}

// Never below zero, in release too: a wrapped counter would refuse every later connection of its slot.
void release_one(std::atomic<std::uint32_t>& count) noexcept {
  std::uint32_t held = count.load(std::memory_order_relaxed);
  do {
    RINGTUN_ASSERT(held > 0, "a connection counter released more often than acquired");
    if (held == 0) return;
  } while (!count.compare_exchange_weak(held, held - 1, std::memory_order_relaxed));
}

}  // namespace

bool ClientCounts::try_acquire(std::uint32_t slot, std::uint32_t limit) noexcept {
  RINGTUN_ASSERT(slot <= mask_, "a slot from another ClientCounts");
  return acquire_below(counts_[slot & mask_], limit);
}

void ClientCounts::release(std::uint32_t slot) noexcept {
  RINGTUN_ASSERT(slot <= mask_, "a slot from another ClientCounts");
  release_one(counts_[slot & mask_]);
}

std::uint32_t ClientCounts::held(std::uint32_t slot) const noexcept {
  return counts_[slot & mask_].load(std::memory_order_relaxed);
}

// ---- ServiceCounts (relaxed ordering as for ClientCounts: a key and a count are each their own variable, and the
// object itself reaches other threads through whatever published it after construction).

ServiceCounts::ServiceCounts(std::size_t capacity)
    : slots_(std::make_unique<Slot[]>(power_of_two_slots(capacity, 1))), mask_(power_of_two_slots(capacity, 1) - 1) {}

std::uint32_t ServiceCounts::slot_of(std::uint64_t key) noexcept {
  RINGTUN_ASSERT(key != 0, "service keys are nonzero (service_key())");
  if (key == 0) key = 1;  // 0 marks a free slot
  for (std::size_t probe = 0; probe <= mask_; ++probe) {
    const std::size_t index = (key + probe) & mask_;
    std::uint64_t held = slots_[index].key.load(std::memory_order_relaxed);
    // A free slot is claimed by CAS; losing the race to the same key is as good as winning it.
    if (held == 0 && (slots_[index].key.compare_exchange_strong(held, key, std::memory_order_relaxed) || held == key)) {
      return static_cast<std::uint32_t>(index);
    }
    if (held == key) return static_cast<std::uint32_t>(index);
  }
  full_.store(true, std::memory_order_relaxed);
  return kNoSlot;
}

bool ServiceCounts::try_acquire(std::uint32_t slot, std::uint32_t limit) noexcept {
  if (slot == kNoSlot) return true;
  RINGTUN_ASSERT(slot <= mask_, "a slot from another ServiceCounts");
  return acquire_below(slots_[slot & mask_].count, limit);
}

void ServiceCounts::release(std::uint32_t slot) noexcept {
  if (slot == kNoSlot) return;
  RINGTUN_ASSERT(slot <= mask_, "a slot from another ServiceCounts");
  release_one(slots_[slot & mask_].count);
}

std::uint32_t ServiceCounts::held(std::uint32_t slot) const noexcept {
  if (slot == kNoSlot) return 0;
  return slots_[slot & mask_].count.load(std::memory_order_relaxed);
}

std::uint64_t service_key(std::uint32_t token, std::uint8_t kind, std::uint16_t port, std::string_view host) noexcept {
  // The host's length goes in with kind and port so that "a" and "a\0" (padded to one word alike) differ.
  std::uint64_t h = mix64(token);
  h = mix64(h ^ (std::uint64_t{kind} | std::uint64_t{port} << 8 | std::uint64_t{host.size()} << 24));
  for (std::size_t at = 0; at < host.size(); at += 8) {
    std::uint8_t word[8] = {};
    std::memcpy(word, host.data() + at, std::min<std::size_t>(8, host.size() - at));
    h = mix64(h ^ load_u64(word));
  }
  return h == 0 ? 1 : h;
}

}  // namespace ringtun::route
