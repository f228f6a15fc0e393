// Property test: a seeded random sequence of claim / release / release_session over a small universe of owners,
// sessions, ports and names (exact, wildcard, malformed), checked after every step against a std::map model: the
// Claims' answers, its version, and a freshly built Table's lookups, whose wildcard matches the model finds by brute
// force. Every few hundred steps an older snapshot is checked against the model of its time (snapshots never change).
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "route/route.hpp"

using namespace ringtun::route;  // NOLINT

namespace {

using ModelKey = std::tuple<int, int, std::string>;  // kind, port, host: std::map order, nothing more

ModelKey model_key(const RouteKey& key) {
  return {static_cast<int>(key.kind), key.port, key.host};
}

struct ModelRoute {
  RouteKey key;
  Owner owner;
  std::string service;
  SessionRef session;
  std::uint64_t order = 0;
};

// The obvious implementation: a map, linear scans, brute-force wildcard matching.
struct Model {
  std::map<ModelKey, ModelRoute> routes;
  std::uint64_t next_order = 0;

  static bool valid_key(const RouteKey& key) {
    if (key.kind == Kind::kTcp) return key.port != 0 && key.host.empty();
    if (key.port != 0) return false;
    std::string_view host = key.host;
    if (host.size() > 2 && host.substr(0, 2) == "*.") host.remove_prefix(2);
    return valid_name(host, /*folded=*/true);
  }

  // Letters (lower case only when `folded`), digits, '-' inside labels of 1..63, at most 253 bytes in all.
  static bool valid_name(std::string_view name, bool folded) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t start = 0;
    for (;;) {
      std::size_t end = name.find('.', start);
      std::string_view label = name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
      for (char c : label) {
        bool ok = (c >= 'a' && c <= 'z') || (!folded && c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok) return false;
      }
      if (end == std::string_view::npos) return true;
      start = end + 1;
    }
  }

  // Returns (error, holder, changed).
  std::tuple<ClaimError, Owner, bool> claim(const Owner& owner, SessionRef session, const RouteKey& key,
                                            const std::string& service) {
    if (!valid_key(key) || service.empty()) return {ClaimError::kInvalid, {}, false};
    auto it = routes.find(model_key(key));
    if (it == routes.end()) {
      routes[model_key(key)] = ModelRoute{key, owner, service, session, next_order++};
      return {ClaimError::kNone, {}, true};
    }
    ModelRoute& r = it->second;
    if (!(r.owner == owner)) return {ClaimError::kTaken, r.owner, false};
    bool changed = !(r.session == session) || r.service != service;
    r.session = session;
    r.service = service;
    return {ClaimError::kNone, {}, changed};
  }

  bool release(const Owner& owner, const RouteKey& key) {
    auto it = routes.find(model_key(key));
    if (it == routes.end() || !(it->second.owner == owner)) return false;
    routes.erase(it);
    return true;
  }

  std::vector<RouteKey> release_session(SessionRef session) {
    std::vector<ModelRoute> gone;
    for (auto it = routes.begin(); it != routes.end();) {
      if (it->second.session == session) {
        gone.push_back(it->second);
        it = routes.erase(it);
      } else {
        ++it;
      }
    }
    std::sort(gone.begin(), gone.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
    std::vector<RouteKey> keys;
    for (const auto& r : gone) keys.push_back(r.key);
    return keys;
  }

  std::vector<ModelRoute> in_claim_order() const {
    std::vector<ModelRoute> v;
    for (const auto& [k, r] : routes) v.push_back(r);
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
    return v;
  }

  std::vector<RouteKey> keys_of(const Owner& owner) const {
    std::vector<RouteKey> keys;
    for (const auto& r : in_claim_order()) {
      if (r.owner == owner) keys.push_back(r.key);
    }
    return keys;
  }

  const ModelRoute* find(const RouteKey& key) const {
    auto it = routes.find(model_key(key));
    return it == routes.end() ? nullptr : &it->second;
  }

  // Brute force: the exact name, else every wildcard of the kind whose ".suffix" ends the name; the longest wins.
  const ModelRoute* find_host(Kind kind, std::string name) const {
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (!valid_name(name, /*folded=*/false)) return nullptr;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (const ModelRoute* exact = find(RouteKey{kind, 0, name})) return exact;
    const ModelRoute* best = nullptr;
    for (const auto& [k, r] : routes) {
      if (r.key.kind != kind || r.key.host.size() < 2 || r.key.host.substr(0, 2) != "*.") continue;
      std::string suffix = r.key.host.substr(1);  // ".suffix"
      bool matches =
          name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
      if (matches && (best == nullptr || r.key.host.size() > best->key.host.size())) best = &r;
    }
    return best;
  }
};

void check_route(const Route* got, const ModelRoute* want) {
  if (want == nullptr) {
    CHECK(got == nullptr);
    return;
  }
  REQUIRE(got != nullptr);
  CHECK(got->key == want->key);
  CHECK(got->owner == want->owner);
  CHECK(got->service == want->service);
  CHECK(got->sessions == std::vector<SessionRef>{want->session});
}

const std::vector<std::uint16_t> kProbePorts{0, 1, 80, 81, 443, 8080, 65535};
const std::vector<std::string> kQueries{"a.test",        "b.test",    "x.b.test",    "y.x.b.test", "z.y.x.b.test",
                                        "test",          "q.test",    "Q.X.B.TEST.", "A.Test",     "c.d.example",
                                        "e.c.d.example", "d.example", "example",     "other.org",  "a.test.",
                                        "test.",         "a..test",   "*.test",      "",           ".",
                                        "-a.test",       "a_b.test",  "x.d.example", "1.2.3.4"};

// A name of 1..5 labels from a pool that overlaps the claimed names, in random case, sometimes with a trailing dot.
std::string random_query(std::mt19937_64& rng) {
  static constexpr const char* kLabels[] = {"a", "b", "x", "y", "test", "example", "c", "d", "3", "4", "q-r"};
  std::string name;
  const std::size_t labels = 1 + rng() % 5;
  for (std::size_t i = 0; i < labels; ++i) {
    if (i > 0) name += '.';
    name += kLabels[rng() % std::size(kLabels)];
  }
  for (char& c : name) {
    if (rng() % 4 == 0) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (rng() % 5 == 0) name += '.';
  return name;
}

// Every lookup of `table` agrees with `model`.
void check_table(const Table& table, const Model& model, const std::vector<RouteKey>& universe,
                 const std::vector<std::string>& extra_queries = {}) {
  REQUIRE(table.size() == model.routes.size());
  auto ordered = model.in_claim_order();
  for (std::size_t i = 0; i < ordered.size(); ++i) check_route(&table.routes()[i], &ordered[i]);
  for (std::uint16_t port : kProbePorts) check_route(table.find_tcp(port), model.find(RouteKey{Kind::kTcp, port, {}}));
  for (Kind kind : {Kind::kHttp, Kind::kTls}) {
    for (const auto* queries : {&kQueries, &extra_queries}) {
      for (const std::string& q : *queries) {
        CAPTURE(q);
        check_route(table.find_host(kind, q), model.find_host(kind, q));
      }
    }
  }
  for (const RouteKey& key : universe) check_route(table.find(key), model.find(key));
}

}  // namespace

TEST_CASE("property: random claims, releases and session ends agree with a map model, in Claims and in Tables") {
  const std::vector<Owner> owners{{0, "a"}, {0, "b"}, {1, "a"}, {2, "edge-7"}};
  std::vector<SessionRef> sessions;
  for (std::uint32_t slot = 0; slot < 3; ++slot) {
    for (std::uint32_t generation = 0; generation < 2; ++generation) sessions.push_back(SessionRef{slot, generation});
  }
  std::vector<RouteKey> valid_keys;
  for (std::uint16_t port : {1, 80, 443, 8080, 65535}) valid_keys.push_back(RouteKey{Kind::kTcp, port, {}});
  for (Kind kind : {Kind::kHttp, Kind::kTls}) {
    for (const char* host : {"a.test", "b.test", "x.b.test", "y.x.b.test", "test", "c.d.example", "d.example", "*.test",
                             "*.b.test", "*.x.b.test", "*.example", "*.d.example", "1.2.3.4", "*.3.4"}) {
      valid_keys.push_back(RouteKey{kind, 0, host});
    }
  }
  std::vector<RouteKey> invalid_keys{
      {Kind::kTcp, 0, {}},         {Kind::kTcp, 80, "a.test"},  {Kind::kHttp, 80, "a.test"},
      {Kind::kHttp, 0, "A.test"},  {Kind::kTls, 0, "a.test."},  {Kind::kTls, 0, "*"},
      {Kind::kHttp, 0, "a..test"}, {Kind::kHttp, 0, "*x.test"}, {Kind::kTls, 0, ""}};
  std::vector<RouteKey> universe = valid_keys;
  universe.insert(universe.end(), invalid_keys.begin(), invalid_keys.end());
  const std::vector<std::string> services{"s0", "s1", "s2"};

  std::mt19937_64 rng(0x5eed2026);
  auto pick = [&rng](const auto& v) -> const auto& {
    return v[rng() % v.size()];
  };

  Claims claims;
  Model model;
  std::shared_ptr<const Table> old_table = claims.build();
  Model old_model = model;
  std::uint64_t granted = 0, taken = 0, invalid = 0, released = 0, session_routes = 0;

  constexpr int kSteps = 20000;
  for (int step = 0; step < kSteps; ++step) {
    CAPTURE(step);
    const std::uint64_t version_before = claims.version();
    bool changed = false;
    const unsigned op = static_cast<unsigned>(rng() % 100);
    if (op < 55) {
      const Owner& owner = pick(owners);
      SessionRef session = pick(sessions);
      const RouteKey& key = rng() % 10 == 0 ? pick(invalid_keys) : pick(valid_keys);
      const std::string& service = pick(services);
      auto [want_error, want_holder, want_changed] = model.claim(owner, session, key, service);
      ClaimResult got = claims.claim(owner, session, key, service);
      REQUIRE(got.error == want_error);
      if (want_error == ClaimError::kTaken) CHECK(got.holder == want_holder);
      changed = want_changed;
      granted += got.ok();
      taken += want_error == ClaimError::kTaken;
      invalid += want_error == ClaimError::kInvalid;
    } else if (op < 85) {
      // Mostly a key that is held, by its holder or not; else anything, malformed keys included.
      Owner owner = pick(owners);
      RouteKey key = pick(universe);
      if (!model.routes.empty() && rng() % 4 != 0) {
        auto it = std::next(model.routes.begin(), static_cast<long>(rng() % model.routes.size()));
        key = it->second.key;
        if (rng() % 3 != 0) owner = it->second.owner;
      }
      bool want = model.release(owner, key);
      REQUIRE(claims.release(owner, key) == want);
      changed = want;
      released += want;
    } else {
      SessionRef session = pick(sessions);
      std::vector<RouteKey> want = model.release_session(session);
      REQUIRE(claims.release_session(session) == want);
      changed = !want.empty();
      session_routes += want.size();
    }

    // The Claims' own answers.
    REQUIRE(claims.size() == model.routes.size());
    if (changed) {
      REQUIRE(claims.version() > version_before);
    } else {
      REQUIRE(claims.version() == version_before);
    }
    for (const RouteKey& key : universe) {
      const ModelRoute* want = model.find(key);
      const Owner* got = claims.holder(key);
      REQUIRE((got == nullptr) == (want == nullptr));
      if (got != nullptr) CHECK(*got == want->owner);
    }
    for (const Owner& owner : owners) REQUIRE(claims.keys_of(owner) == model.keys_of(owner));

    // A fresh snapshot agrees too.
    auto table = claims.build();
    REQUIRE(table->version() == claims.version());
    std::vector<std::string> queries;
    for (int i = 0; i < 8; ++i) queries.push_back(random_query(rng));
    check_table(*table, model, universe, queries);

    if (step % 500 == 499) {
      // The snapshot taken 500 steps ago still shows the state of its time.
      check_table(*old_table, old_model, universe);
      old_table = table;
      old_model = model;
    }
  }
  // The run exercised every outcome, not only one.
  MESSAGE("granted " << granted << ", taken " << taken << ", invalid " << invalid << ", released " << released
                     << ", released with a session " << session_routes);
  CHECK(granted > 1000);
  CHECK(taken > 1000);
  CHECK(invalid > 300);
  CHECK(released > 500);
  CHECK(session_routes > 500);
}
