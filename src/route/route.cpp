// Claims (the registry's half of the route table), key descriptions and Claims::build(). See route.hpp.
#include "route/route.hpp"

#include <algorithm>
#include <cstring>
#include <list>
#include <unordered_map>
#include <utility>

#include "common/mix64.hpp"
#include "common/printable.hpp"
#include "route/host_name.hpp"

namespace ringtun::route {

const char* kind_name(Kind kind) noexcept {
  switch (kind) {
    case Kind::kTcp:
      return "tcp";
    case Kind::kHttp:
      return "http";
    case Kind::kTls:
      return "tls";
  }
  return "unknown";  // a value cast from outside the enum
}

std::string RouteKey::describe() const {
  std::string text = kind_name(kind);
  if (kind == Kind::kTcp) {
    text += " port ";
    text += std::to_string(port);
    return text;
  }
  text += " host ";
  // The key may be an agent's refused claim on its way into a log line: no control bytes, no unbounded length.
  text += printable(host, kMaxHostLength);
  return text;
}

namespace {

// A key in normal form: what claim() accepts and what a Table's lookups can find.
bool key_is_valid(const RouteKey& key) noexcept {
  switch (key.kind) {
    case Kind::kTcp:
      return key.port != 0 && key.host.empty();
    case Kind::kHttp:
    case Kind::kTls: {
      // normalize_host would strip a trailing dot, i.e. change the key: not normal form.
      if (key.port != 0 || key.host.empty() || key.host.back() == '.') return false;
      char folded[kMaxHostLength];
      return detail::fold_host(key.host, /*allow_wildcard=*/true, folded) == nullptr &&
             std::memcmp(folded, key.host.data(), key.host.size()) == 0;
    }
  }
  return false;
}

struct KeyHash {
  std::size_t operator()(const RouteKey& key) const noexcept { return detail::key_hash(key.kind, key.port, key.host); }
};

struct SessionHash {
  std::size_t operator()(SessionRef session) const noexcept {
    return mix64((static_cast<std::uint64_t>(session.slot) << 32) | session.generation);
  }
};

struct Member {
  Owner owner;
  SessionRef session;
  bool up = true;
};

struct Entry {
  Route route;                  // route.sessions is derived from members (see sync)
  std::vector<Member> members;  // claim order; never empty while the entry exists
  std::uint64_t order = 0;      // claim order; release_session sorts what it returns by it

  // Recomputes what the snapshot shows from the members: who takes traffic, who owns the route.
  void sync() {
    route.sessions.clear();
    for (const Member& m : members) {
      if (m.up) route.sessions.push_back(m.session);
    }
    if (route.sessions.empty()) {
      for (const Member& m : members) route.sessions.push_back(m.session);
    }
    route.owner = members.front().owner;
    route.members = static_cast<std::uint32_t>(members.size());
    route.members_up = static_cast<std::uint32_t>(std::count_if(members.begin(), members.end(),
                                                                [](const Member& m) { return m.up; }));
  }
  Member* member_of(const Owner& owner) noexcept {
    for (Member& m : members) {
      if (m.owner == owner) return &m;
    }
    return nullptr;
  }
};
using EntryList = std::list<Entry>;
using EntryIt = EntryList::iterator;

}  // namespace

// A list keeps claim order with O(1) removal and stable iterators, which both indexes hold.
struct Claims::State {
  EntryList entries;
  std::unordered_map<RouteKey, EntryIt, KeyHash> by_key;
  // Every route a session serves: release_session (an agent disconnecting) touches only that session's routes.
  std::unordered_map<SessionRef, std::vector<EntryIt>, SessionHash> by_session;
  std::uint64_t version = 0;
  std::uint64_t next_order = 0;

  void attach(SessionRef session, EntryIt entry) { by_session[session].push_back(entry); }
  void detach(SessionRef session, EntryIt entry) {
    auto found = by_session.find(session);
    RINGTUN_CHECK(found != by_session.end(), "Claims: a route's session is missing from the session index");
    std::vector<EntryIt>& routes = found->second;
    auto pos = std::find(routes.begin(), routes.end(), entry);
    RINGTUN_CHECK(pos != routes.end(), "Claims: a route is missing from its session's list");
    *pos = routes.back();  // order within a session's list does not matter
    routes.pop_back();
    if (routes.empty()) by_session.erase(found);
  }
  // Removes the entry from both indexes and the list; returns its key. The caller bumps the version.
  RouteKey take(EntryIt entry) {
    for (const Member& m : entry->members) detach(m.session, entry);
    by_key.erase(entry->route.key);
    RouteKey key = std::move(entry->route.key);
    entries.erase(entry);
    return key;
  }
};

Claims::Claims() : state_(std::make_unique<State>()) {}
Claims::~Claims() = default;

namespace {

bool same_lists(const std::shared_ptr<const AccessRules>& a, const std::shared_ptr<const AccessRules>& b) noexcept {
  if (a == b) return true;
  const AccessRules none;
  const AccessRules& x = a ? *a : none;
  const AccessRules& y = b ? *b : none;
  return x.allow == y.allow && x.deny == y.deny;
}

}  // namespace

ClaimResult Claims::claim(const Owner& owner, SessionRef session, const RouteKey& key, std::string_view service,
                          std::shared_ptr<const AccessRules> service_rules, std::string_view group) {
  RINGTUN_CHECK(session.valid(), "Claims::claim: an invalid SessionRef");
  if (!key_is_valid(key) || service.empty() || service.size() > kMaxServiceNameLength) {
    return ClaimResult{ClaimError::kInvalid, {}, {}, {}};
  }
  State& st = *state_;
  auto found = st.by_key.find(key);
  if (found == st.by_key.end()) {
    Entry fresh;
    fresh.route = Route{key, std::string(service), owner, {}, std::move(service_rules), std::string(group), 1, 1};
    fresh.members.push_back(Member{owner, session, true});
    fresh.order = st.next_order++;
    fresh.sync();
    EntryIt entry = st.entries.insert(st.entries.end(), std::move(fresh));
    st.by_key.emplace(key, entry);
    st.attach(session, entry);
    ++st.version;
    return ClaimResult{};
  }
  EntryIt entry = found->second;
  Route& route = entry->route;
  Member* member = entry->member_of(owner);
  if (member == nullptr) {
    const bool joinable = !group.empty() && group == route.group && owner.token == route.owner.token;
    if (!joinable) return ClaimResult{ClaimError::kTaken, route.owner, route.group, {}};
    if (service != route.service) return ClaimResult{ClaimError::kGroupMismatch, route.owner, route.group, route.service};
    entry->members.push_back(Member{owner, session, true});
    st.attach(session, entry);
    route.service_rules = std::move(service_rules);
    entry->sync();
    ++st.version;
    return ClaimResult{};
  }
  // A member of a group may not rename what the others serve; a lone owner may.
  if (entry->members.size() > 1 && service != route.service) {
    return ClaimResult{ClaimError::kGroupMismatch, route.owner, route.group, route.service};
  }
  const bool same_session = member->session == session;
  if (same_session && route.service == service && same_lists(route.service_rules, service_rules)) {
    return ClaimResult{};  // no change: no new snapshot needed
  }
  if (!same_session) {
    // The owner's new session replaces its old one at once: a reconnecting agent does not wait for its previous
    // session to time out before its routes lead to it. It starts up; its health check says otherwise if need be.
    st.detach(member->session, entry);
    member->session = session;
    member->up = true;
    st.attach(session, entry);
  }
  route.service.assign(service);
  if (entry->members.size() == 1) route.group.assign(group);
  route.service_rules = std::move(service_rules);
  entry->sync();
  ++st.version;
  return ClaimResult{};
}

bool Claims::set_health(SessionRef session, const RouteKey& key, bool up) {
  State& st = *state_;
  auto found = st.by_key.find(key);
  if (found == st.by_key.end()) return false;
  Entry& entry = *found->second;
  for (Member& m : entry.members) {
    if (m.session != session) continue;
    if (m.up == up) return false;
    m.up = up;
    entry.sync();
    ++st.version;
    return true;
  }
  return false;
}

bool Claims::release(const Owner& owner, const RouteKey& key) {
  State& st = *state_;
  auto found = st.by_key.find(key);
  if (found == st.by_key.end()) return false;
  EntryIt entry = found->second;
  Member* member = entry->member_of(owner);
  if (member == nullptr) return false;
  if (entry->members.size() == 1) {
    (void)st.take(entry);
  } else {
    st.detach(member->session, entry);
    entry->members.erase(entry->members.begin() + (member - entry->members.data()));
    entry->sync();
  }
  ++st.version;
  return true;
}

std::vector<RouteKey> Claims::release_session(SessionRef session) {
  State& st = *state_;
  auto found = st.by_session.find(session);
  if (found == st.by_session.end()) return {};
  // Out of the index first: take() below detaches a route's remaining members, and this one is no longer among them.
  std::vector<EntryIt> served = std::move(found->second);
  st.by_session.erase(found);
  std::vector<std::pair<std::uint64_t, RouteKey>> released;
  for (EntryIt entry : served) {
    std::vector<Member>& members = entry->members;
    members.erase(std::remove_if(members.begin(), members.end(), [&](const Member& m) { return m.session == session; }),
                  members.end());
    if (members.empty()) {
      const std::uint64_t order = entry->order;
      st.by_key.erase(entry->route.key);
      released.emplace_back(order, std::move(entry->route.key));
      st.entries.erase(entry);
      continue;
    }
    entry->sync();
  }
  ++st.version;  // the session left at least one route, released or not
  std::sort(released.begin(), released.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<RouteKey> keys;
  keys.reserve(released.size());
  for (auto& item : released) keys.push_back(std::move(item.second));
  return keys;
}

std::vector<RouteKey> Claims::keys_of(const Owner& owner) const {
  std::vector<RouteKey> keys;
  for (Entry& entry : state_->entries) {
    if (entry.member_of(owner) != nullptr) keys.push_back(entry.route.key);
  }
  return keys;
}

const Owner* Claims::holder(const RouteKey& key) const noexcept {
  auto found = state_->by_key.find(key);
  return found == state_->by_key.end() ? nullptr : &found->second->route.owner;
}

std::size_t Claims::size() const noexcept {
  return state_->entries.size();
}
std::uint64_t Claims::version() const noexcept {
  return state_->version;
}

std::shared_ptr<const Table> Claims::build() const {
  std::shared_ptr<Table> table(new Table());
  table->version_ = state_->version;
  table->routes_.reserve(state_->entries.size());
  for (const Entry& entry : state_->entries) table->routes_.push_back(entry.route);
  table->build_index();
  return table;
}

}  // namespace ringtun::route
