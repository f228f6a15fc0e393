// Access policy on public routes: who may open a connection to a token's routes, decided on the client's L4 address
// when the gateway accepts it (never on X-Forwarded-For or anything else the client writes).
//
//   * CIDR lists: `deny` first (a denied address is refused even if an allow entry also matches), then `allow`
//     (empty: every address). IPv4 and IPv6 share one form: IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so
//     "10.0.0.0/8" also matches a v4 client seen on a dual-stack socket.
//   * A new-connection rate per client address: token buckets in a fixed table per core (RateTable). Bounded: a flood
//     from many addresses evicts entries instead of growing the table, which makes the limit approximate (an evicted
//     address starts again with a full bucket), never the memory.
//   * Concurrent connections per client address (ClientCounts, approximate: addresses hash to a fixed number of
//     shared counters, so two clients may share one and the limit errs toward refusing) and per service
//     (ServiceCounts, exact: one counter per 64-bit service key). Both are shared by every core: one atomic
//     read-modify-write per accepted connection and one when it ends, nothing per byte or frame.
//
// Pure: no I/O, no clock (callers pass the time), no threads of its own. Thread rules: AccessRules and the parse
// functions are plain values; a RateTable belongs to one core; ClientCounts and ServiceCounts may be used from any
// thread at once (atomics only, no locks, no allocation after construction).
#pragma once

#include <array>
#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace ringtun::route {

// An IPv4 or IPv6 address in the 128-bit form (IPv4 as ::ffff:a.b.c.d), network byte order.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};

  // From the four bytes of an IPv4 address in network order (as in sockaddr_in's sin_addr).
  static IpAddress from_v4(const std::uint8_t (&v4)[4]) noexcept;
  // From the sixteen bytes of an IPv6 address (sockaddr_in6's sin6_addr).
  static IpAddress from_v6(const std::uint8_t (&v6)[16]) noexcept;
  bool is_v4() const noexcept;  // an IPv4-mapped address
  // "127.0.0.2" for IPv4 (mapped), the RFC 5952 text for IPv6.
  std::string to_string() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// A network: the first `bits` bits (over the 128-bit form) of `prefix`; the rest of `prefix` is zero.
struct Cidr {
  IpAddress prefix;
  std::uint8_t bits = 128;

  bool contains(const IpAddress& address) const noexcept;
  // As written by the user's family: "10.0.0.0/8", "2001:db8::/32", "127.0.0.2/32".
  std::string to_string() const;

  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// Parses "ADDR/BITS" or a bare "ADDR" (/32 for IPv4, /128 for IPv6). IPv4 is a dotted quad of four decimal parts;
// IPv6 is the text inet_pton accepts (including "::ffff:1.2.3.4"). BITS is decimal, 0..32 for IPv4 and 0..128 for
// IPv6, without a sign or leading zeros. Bits set past the prefix are an error, not silently masked (the user meant
// a network and wrote an address): "10.0.0.1/8: host bits are set (the network is 10.0.0.0/8)".
// Errc::kInvalidArgument with a message in *error_text (it quotes `text`, printable bytes only) on any error.
Result<Cidr> parse_cidr(std::string_view text, std::string* error_text);
// "CIDR[,CIDR...]": at least one, no empty entries, spaces around entries ignored; a repeated network is an error
// (it is almost always a typo for another one). At most kMaxCidrs entries.
inline constexpr std::size_t kMaxCidrs = 4096;
Result<std::vector<Cidr>> parse_cidr_list(std::string_view text, std::string* error_text);

// Whether any of `list` contains `address`. O(list size).
bool any_contains(std::span<const Cidr> list, const IpAddress& address) noexcept;

// Networks compiled for lookup: the address ranges they cover, sorted and merged, searched in O(log n), so that a
// list of thousands costs a public connection a dozen comparisons, not thousands.
class NetworkSet {
 public:
  NetworkSet() = default;
  explicit NetworkSet(std::span<const Cidr> networks);
  bool contains(const IpAddress& address) const noexcept;
  bool empty() const noexcept { return ranges_.empty(); }
  std::size_t ranges() const noexcept { return ranges_.size(); }

 private:
  struct U128 {
    std::uint64_t high = 0;
    std::uint64_t low = 0;
    friend auto operator<=>(const U128&, const U128&) = default;
  };
  struct Range {
    U128 first;
    U128 last;
  };
  static U128 value_of(const IpAddress& address) noexcept;
  std::vector<Range> ranges_;
};

// The rules of one token (the operator's, from the gateway's config). A zero limit is no limit.
struct AccessRules {
  std::vector<Cidr> allow;  // empty: every address not denied
  std::vector<Cidr> deny;
  std::uint32_t conn_rate = 0;             // new connections per second per client address
  std::uint32_t max_conns = 0;             // concurrent connections per service
  std::uint32_t max_conns_per_client = 0;  // concurrent connections per client address, over the token's routes
  // allow and deny compiled (compile()); check_lists() searches these. Until compiled it walks the lists.
  NetworkSet allow_set;
  NetworkSet deny_set;

  // Builds allow_set and deny_set from the lists: call it once the lists are final (not on the data path).
  void compile() {
    allow_set = NetworkSet(allow);
    deny_set = NetworkSet(deny);
  }

  // Nothing to check: the accept path skips the policy (and the peer address lookup) entirely.
  bool empty() const noexcept {
    return allow.empty() && deny.empty() && conn_rate == 0 && max_conns == 0 && max_conns_per_client == 0;
  }
};

enum class Verdict : std::uint8_t {
  kAllowed,
  kDenied,        // in the deny list
  kNotAllowed,    // an allow list exists and the address is not in it
  kRateLimited,   // conn_rate exceeded
  kServiceFull,   // max_conns reached
  kClientFull,    // max_conns_per_client reached
};
// A fixed word for metrics labels and log lines: "allowed", "denied", "not_allowed", "rate_limited", "max_conns",
// "max_conns_per_client".
const char* verdict_name(Verdict verdict) noexcept;

// The address lists only: kDenied, kNotAllowed or kAllowed. O(log n) once the rules are compiled.
Verdict check_lists(const AccessRules& rules, const IpAddress& address) noexcept;

// Token buckets per client address for one core. `slots` (rounded up to a power of two, at least 64) entries, each
// for one (address, token) key at a time, keyed by a hash seeded with `seed` (so that a client cannot aim
// collisions); a key that finds its slot held by another key takes it over with a full bucket.
class RateTable {
 public:
  RateTable(std::size_t slots, std::uint64_t seed);

  // One new connection from `address` for token `token` at `now_ms`, under a rate of `per_second_milli`
  // thousandths of a connection per second with a bucket of `burst_milli` thousandths (both > 0). True: allowed,
  // one connection (1000) taken from the bucket. A bucket fills at the rate up to the burst.
  bool take(const IpAddress& address, std::uint32_t token, std::uint64_t per_second_milli, std::uint64_t burst_milli,
            std::uint64_t now_ms) noexcept;
  std::size_t slots() const noexcept { return slots_.size(); }

 private:
  struct Slot {
    std::uint64_t key = 0;  // the hash of (address, token); 0: free
    std::uint64_t milli = 0;
    std::uint64_t last_ms = 0;
  };
  std::vector<Slot> slots_;
  std::uint64_t seed_;
};

// Concurrent connections per client address, approximate (see the top of this file). Any thread.
class ClientCounts {
 public:
  ClientCounts(std::size_t slots, std::uint64_t seed);  // slots rounded up to a power of two

  // The slot `address` counts in (for token `token`); pass it back to release().
  std::uint32_t slot_of(const IpAddress& address, std::uint32_t token) const noexcept;
  // Takes one if fewer than `limit` are held in `slot`.
  bool try_acquire(std::uint32_t slot, std::uint32_t limit) noexcept;
  void release(std::uint32_t slot) noexcept;
  std::uint32_t held(std::uint32_t slot) const noexcept;

 private:
  std::unique_ptr<std::atomic<std::uint32_t>[]> counts_;
  std::size_t mask_;
  std::uint64_t seed_;
};

// Concurrent connections per service, exact: one counter per nonzero 64-bit key (service_key()), in an
// open-addressing table of fixed capacity whose keys are never removed (a service that goes and comes back finds
// its counter again). Any thread. When the table is full a new key is not counted (try_acquire gives kNoSlot's
// answer: allowed), and full() says so for a log line.
class ServiceCounts {
 public:
  static constexpr std::uint32_t kNoSlot = UINT32_MAX;
  explicit ServiceCounts(std::size_t capacity);  // rounded up to a power of two

  // The slot for `key` (inserted if new), or kNoSlot when the table is full.
  std::uint32_t slot_of(std::uint64_t key) noexcept;
  bool try_acquire(std::uint32_t slot, std::uint32_t limit) noexcept;  // kNoSlot: true
  void release(std::uint32_t slot) noexcept;                           // kNoSlot: nothing
  std::uint32_t held(std::uint32_t slot) const noexcept;               // kNoSlot: 0
  bool full() const noexcept { return full_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    std::atomic<std::uint64_t> key{0};
    std::atomic<std::uint32_t> count{0};
  };
  std::unique_ptr<Slot[]> slots_;
  std::size_t mask_;
  std::atomic<bool> full_{false};
};

// A nonzero 64-bit key for a service: its token index and route key (kind, port, host).
std::uint64_t service_key(std::uint32_t token, std::uint8_t kind, std::uint16_t port, std::string_view host) noexcept;

}  // namespace ringtun::route
