// Table: the immutable snapshot and its lookups (see route.hpp). The index is built once, by Claims::build() on the
// registry's thread; afterwards everything here is read-only, so any number of cores read a Table at once.
#include <algorithm>
#include <bit>
#include <memory>
#include <vector>

#include "route/host_name.hpp"
#include "route/route.hpp"

namespace ringtun::route {

// Open addressing with linear probing over a power-of-two array at load <= 1/2: a hit costs one or two adjacent
// slots, a miss stops at the first empty one. A slot is 8 bytes (no copy of the key): the tag (the hash's high half)
// filters, and only a matching tag reads the route itself to compare the key, so a hit touches one slot line and
// the route it returns.
struct Table::Index {
  static constexpr std::uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    std::uint32_t tag = 0;
    std::uint32_t route = kEmpty;  // index into routes
  };

  std::vector<Slot> slots;
  std::size_t mask = 0;
  const Route* routes = nullptr;  // Table::routes_.data(): fixed once the index is built (a Table never changes)
  // Per Kind: whether any wildcard key exists. A name's wildcard candidates are probed only when one does.
  bool wildcards[3] = {false, false, false};

  static std::uint32_t tag_of(std::uint64_t hash) noexcept { return static_cast<std::uint32_t>(hash >> 32); }

  void insert(std::uint64_t hash, std::uint32_t route) noexcept {
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      if (slots[i].route == kEmpty) {
        slots[i] = Slot{tag_of(hash), route};
        return;
      }
    }
  }

  const Route* probe(std::uint64_t hash, Kind kind, std::uint16_t port, std::string_view host) const noexcept {
    const std::uint32_t tag = tag_of(hash);
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots[i];
      if (slot.route == kEmpty) return nullptr;
      if (slot.tag != tag) continue;
      const Route& route = routes[slot.route];
      if (route.key.kind == kind && route.key.port == port && route.key.host == host) return &route;
    }
  }
};

Table::Table() = default;
Table::~Table() = default;

void Table::build_index() {
  RINGTUN_CHECK(routes_.size() < Index::kEmpty, "Table: more routes than the index can number");
  auto index = std::make_unique<Index>();
  // Never full (load <= 1/2), so every probe loop meets an empty slot; at least 8 slots so an empty table has some.
  const std::size_t capacity = std::bit_ceil(std::max<std::size_t>(8, routes_.size() * 2));
  index->slots.assign(capacity, Index::Slot{});
  index->mask = capacity - 1;
  index->routes = routes_.data();
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const RouteKey& key = routes_[i].key;
    RINGTUN_ASSERT(
        index->probe(detail::key_hash(key.kind, key.port, key.host), key.kind, key.port, key.host) == nullptr,
        "Table: duplicate key");
    index->insert(detail::key_hash(key.kind, key.port, key.host), static_cast<std::uint32_t>(i));
    if (detail::is_wildcard(key.host)) index->wildcards[static_cast<std::size_t>(key.kind)] = true;
  }
  index_ = std::move(index);
}

const Route* Table::find_tcp(std::uint16_t port) const noexcept {
  if (port == 0) return nullptr;
  return index_->probe(detail::key_hash(Kind::kTcp, port, {}), Kind::kTcp, port, {});
}

const Route* Table::find(const RouteKey& key) const noexcept {
  return index_->probe(detail::key_hash(key.kind, key.port, key.host), key.kind, key.port, key.host);
}

const Route* Table::find_host(Kind kind, std::string_view host) const noexcept {
  if (kind != Kind::kHttp && kind != Kind::kTls) return nullptr;
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  char name[kMaxHostLength];
  if (detail::fold_host(host, /*allow_wildcard=*/false, name) != nullptr) return nullptr;
  const std::size_t length = host.size();

  // One pass from the last byte to the first hashes the exact name and, at each dot, the wildcard for the suffix
  // after that dot. Labels are non-empty, so a name of <= 253 bytes has at most 126 dots.
  struct Candidate {
    std::uint64_t state;  // FNV state after the suffix; finished only if probed (the exact name usually hits)
    std::size_t dot;
  };
  Candidate candidates[kMaxHostLength / 2];
  std::size_t count = 0;
  const bool any_wildcard = index_->wildcards[static_cast<std::size_t>(kind)];
  std::uint64_t state = detail::key_seed(kind, 0);
  for (std::size_t i = length; i-- > 0;) {
    const auto byte = static_cast<unsigned char>(name[i]);
    if (byte == '.' && any_wildcard) {
      candidates[count++] = {state, i};
    }
    state = detail::fnv_step(state, byte);
  }
  if (const Route* exact = index_->probe(detail::key_finish(state), kind, 0, std::string_view(name, length))) {
    return exact;
  }
  // The longest suffix first: the leftmost dot, recorded last. Its candidate "*.suffix" is spelled in place by
  // writing '*' over the byte before the dot; that byte belongs to a label left of every later (shorter) candidate.
  while (count > 0) {
    const Candidate& c = candidates[--count];
    name[c.dot - 1] = '*';
    std::string_view wildcard(name + c.dot - 1, length - c.dot + 1);
    const std::uint64_t hash = detail::key_finish(detail::fnv_step(detail::fnv_step(c.state, '.'), '*'));
    if (const Route* route = index_->probe(hash, kind, 0, wildcard)) return route;
  }
  return nullptr;
}

}  // namespace ringtun::route
