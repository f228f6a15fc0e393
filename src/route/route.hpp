// The gateway's route table: which service, and which agent sessions, serve a public connection.
//
//   listener (kind tcp | http | tls, public port for tcp) -> route key (none for tcp; the Host name for http; the SNI
//   name for tls: an exact name or a "*.suffix" wildcard) -> service (a name an agent declared) -> the agent
//   sessions that serve it (a list: one agent's, or, for a load-balancing group, every healthy member's).
//
// Two halves:
//  * `Claims` is the mutable state the registry keeps: who claimed which key. A claim is owned by (token, agent id):
//    an agent id lives inside its token's namespace, so one tenant can never name, take or receive another's routes.
//    Agents that claim a key with the same non-empty group name, under the same token and service name, serve it
//    together (members); each member is up or down (its agent's health check). Claims decide conflicts and build
//    snapshots.
//  * `Table` is an immutable snapshot built from the claims. Every gateway core holds one and reads it on the data
//    path: a lookup takes no lock and allocates nothing (host names are lower-cased into a stack buffer).
//
// Names: host names compare case-insensitively and without a trailing dot; `normalize_host` checks and folds them
// (letters, digits, '-' and '.', labels of 1..63, at most 253 characters; a wildcard is "*." followed by a name of
// at least one label). A wildcard "*.example.com" matches every name ending in ".example.com" at any depth, not
// "example.com" itself. A lookup takes the exact name first, then the longest matching wildcard.
//
// Pure: no I/O, no clock, no threads. Thread rules: a `Claims` belongs to the registry's thread; a `Table` is
// immutable once built and may be read from any thread (each core keeps its own reference to it).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "route/access_policy.hpp"

namespace ringtun::route {

enum class Kind : std::uint8_t { kTcp = 0, kHttp = 1, kTls = 2 };
const char* kind_name(Kind kind) noexcept;  // "tcp", "http", "tls"

inline constexpr std::size_t kMaxHostLength = 253;
inline constexpr std::size_t kMaxServiceNameLength = 64;

// What a route is found by. For kTcp: `port` (1..65535), `host` empty. For kHttp/kTls: `host` (normalized, exact or
// "*.suffix"), `port` 0: the route is served on every listener of that kind.
struct RouteKey {
  Kind kind = Kind::kTcp;
  std::uint16_t port = 0;
  std::string host;

  friend bool operator==(const RouteKey&, const RouteKey&) = default;
  // "tcp port 8080", "http host app.example.com": for log lines and refusal messages. A key from an agent may be
  // malformed: it is quoted through printable() (common/printable.hpp: bytes outside printable ASCII as \xNN), cut
  // at kMaxHostLength characters ("...").
  std::string describe() const;
};

// Checks and folds a host name (or "*.suffix" wildcard when `allow_wildcard`) into `out` (lower case, no trailing
// dot). Errc::kInvalidArgument with a static context naming the rule that failed; `out` is then left as it was.
// Rules beyond the ones above: a label neither starts nor ends with '-'; '*' appears only as the leading "*." of a
// wildcard; the 253 limit counts a wildcard's "*." too. Labels of digits only pass (no special case for names that
// look like IPv4 addresses: "10.0.0.1" is a valid name, and a valid key). No IDNA: punycode "xn--" labels are just
// names.
Status normalize_host(std::string_view name, bool allow_wildcard, std::string* out);

// Whether a token whose host patterns are `patterns` may claim the host key `key`. Both are normalized (as
// normalize_host writes them): exact names or "*.suffix". A claim is allowed when every name it can match is allowed
// by some pattern: an exact pattern allows that one name only; "*.s" allows every exact name ending in ".s" (at any
// depth, not "s" itself) and every wildcard "*.t" where t is s or ends in ".s". No patterns: nothing is allowed.
bool host_allowed(std::span<const std::string> patterns, std::string_view key) noexcept;

// Whom a claim belongs to: an agent id inside one token's namespace (the token's index in the gateway's config).
struct Owner {
  std::uint32_t token = 0;
  std::string agent_id;

  friend bool operator==(const Owner&, const Owner&) = default;
};

// A connected agent instance, as the registry numbers it: a slot reused after the session ends, and a generation
// that tells a reused slot from the session that held it before. Cores map the slot to their own tunnel connection
// of that session; a stale generation finds nothing.
struct SessionRef {
  std::uint32_t slot = UINT32_MAX;
  std::uint32_t generation = 0;

  bool valid() const noexcept { return slot != UINT32_MAX; }
  friend bool operator==(SessionRef, SessionRef) = default;
};

// One route in a snapshot.
struct Route {
  RouteKey key;
  std::string service;                // the service's name, as its agents declared it
  Owner owner;                        // the first member's owner (every member has the same token)
  // Who takes new connections: the members that are up, in claim order; when none is up, every member (a health
  // check that fails everywhere is more likely wrong than every replica down, and a connection attempt is the
  // truer test: the "panic" rule of other balancers). Never empty in a snapshot.
  std::vector<SessionRef> sessions;
  // The service's own address lists (its agent's config): they narrow the token's, never widen them. Null: none.
  // For a group, the lists of the member that claimed last.
  std::shared_ptr<const AccessRules> service_rules;
  std::string group;                  // the load-balancing group, or empty
  std::uint32_t members = 1;          // members in all, up or down
  std::uint32_t members_up = 1;       // of which up
};

// An immutable snapshot. Lookups are O(1) for tcp and exact names and O(labels) for wildcards.
class Table {
 public:
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;
  ~Table();

  // The route for a public TCP port, or null.
  const Route* find_tcp(std::uint16_t port) const noexcept;
  // The route for a host name on a listener of `kind` (kHttp or kTls): the exact name, else the longest wildcard
  // suffix. `host` is looked up case-insensitively; a trailing dot is ignored; an invalid name finds nothing.
  const Route* find_host(Kind kind, std::string_view host) const noexcept;
  // The route with exactly this key (no wildcard matching), or null.
  const Route* find(const RouteKey& key) const noexcept;

  std::span<const Route> routes() const noexcept { return routes_; }
  std::size_t size() const noexcept { return routes_.size(); }
  // The version of the `Claims` this snapshot was built from: a later snapshot of the same claims never has a
  // smaller one, and a larger one whenever the claims changed in between, so a core can tell an older snapshot from
  // a newer one. Two snapshots with the same version have the same routes.
  std::uint64_t version() const noexcept { return version_; }

 private:
  friend class Claims;
  struct Index;  // the flat hash index over routes_ (table.cpp)
  Table();
  // Builds index_ over routes_ once they are final: the index points into them.
  void build_index();

  std::vector<Route> routes_;
  std::unique_ptr<Index> index_;
  std::uint64_t version_ = 0;
};

// Why a claim was not granted.
enum class ClaimError : std::uint8_t {
  kNone,
  kTaken,    // another owner holds the key (`holder` says who)
  kInvalid,  // the key itself is malformed (a tcp key without a port, a host key with a bad name...), or the service
             // name is empty or longer than kMaxServiceNameLength
  kGroupMismatch,  // the holder's group and token match, but it serves the key under another service name
};

struct ClaimResult {
  ClaimError error = ClaimError::kNone;
  Owner holder;            // for kTaken and kGroupMismatch
  std::string group;       // the holder's group (empty: none), for kTaken and kGroupMismatch
  std::string service;     // the holder's service name, for kGroupMismatch
  bool ok() const noexcept { return error == ClaimError::kNone; }
};

// The registry's mutable claims. Every change bumps the version; build() makes the snapshot of the current state.
class Claims {
 public:
  Claims();
  ~Claims();
  Claims(const Claims&) = delete;
  Claims& operator=(const Claims&) = delete;

  // Claims `key` for `owner`, served by `session`, under the name `service`. Granted when nobody holds the key,
  // when `owner` is a member already (its session then becomes `session`: a reconnect takes its routes back at once
  // and starts up; the service name is updated; the route keeps its place in claim order), or when `group` is not
  // empty and the route's group, token and service name are the same (`owner` joins as a member, up). kTaken when
  // another owner holds it otherwise; kGroupMismatch when only the service name differs (a member's streams name
  // the route's service). A key must be in normal form (see RouteKey; host keys exactly as normalize_host writes
  // them), else kInvalid. `session` must be valid(): the registry numbers sessions itself, so an invalid one is a
  // bug (checked, fatal). A re-claim that changes nothing leaves the version as it is. `service_rules`: the
  // service's own address lists (see Route), or null. A member's `group` is the route's: it is set by the first.
  ClaimResult claim(const Owner& owner, SessionRef session, const RouteKey& key, std::string_view service,
                    std::shared_ptr<const AccessRules> service_rules = nullptr, std::string_view group = {});
  // Marks `session`'s membership of `key` up or down (its health check). False when the session serves no such
  // route or nothing changed (the version then stays).
  bool set_health(SessionRef session, const RouteKey& key, bool up);
  // Takes `owner` out of `key`'s members; the route is released with its last member. False if `owner` is none.
  bool release(const Owner& owner, const RouteKey& key);
  // Removes `session` from every route; a route left without members is released. Returns the released keys, in
  // claim order. O(routes of that session), not O(all routes).
  std::vector<RouteKey> release_session(SessionRef session);
  // The keys `owner` holds (alone or as a group member), in claim order.
  std::vector<RouteKey> keys_of(const Owner& owner) const;
  // Who holds `key` (its first member), or null.
  const Owner* holder(const RouteKey& key) const noexcept;

  std::size_t size() const noexcept;
  std::uint64_t version() const noexcept;
  // A snapshot of the current claims (allocates; registry thread, not the data path).
  std::shared_ptr<const Table> build() const;

 private:
  struct State;  // claims in claim order plus indexes by key and by session; O(1) expected per claim, release
                 // and holder
  std::unique_ptr<State> state_;
};

}  // namespace ringtun::route
