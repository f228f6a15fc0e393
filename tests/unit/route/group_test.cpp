// Load-balancing groups in the claims: who may join a route, members up and down, leaving, and what snapshots show.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "route/route.hpp"
#include "route_keys.hpp"

using namespace ringtun::route;  // NOLINT
using namespace ringtun::route::test;  // NOLINT

namespace {

const Owner kA{0, "edge-a"};
const Owner kB{0, "edge-b"};
const Owner kC{0, "edge-c"};
const Owner kOtherTenant{1, "edge-x"};
constexpr SessionRef kSA{1, 0};
constexpr SessionRef kSB{2, 0};
constexpr SessionRef kSC{3, 0};

std::vector<SessionRef> serving(const Claims& claims, const RouteKey& key) {
  auto table = claims.build();
  const Route* route = table->find(key);
  return route ? route->sessions : std::vector<SessionRef>{};
}

}  // namespace

TEST_CASE("agents of one token with the same group serve a key together, in claim order") {
  Claims claims;
  REQUIRE(claims.claim(kA, kSA, tcp(8080), "web", nullptr, "blue").ok());
  REQUIRE(claims.claim(kB, kSB, tcp(8080), "web", nullptr, "blue").ok());
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{kSA, kSB});
  auto table = claims.build();
  const Route* route = table->find(tcp(8080));
  REQUIRE(route != nullptr);
  CHECK(route->group == "blue");
  CHECK(route->members == 2);
  CHECK(route->owner == kA);
  CHECK(claims.keys_of(kB) == std::vector<RouteKey>{tcp(8080)});
  // A member's repeated claim changes nothing.
  const auto version = claims.version();
  CHECK(claims.claim(kB, kSB, tcp(8080), "web", nullptr, "blue").ok());
  CHECK(claims.version() == version);
}

TEST_CASE("no group, another group, another token or another service name: the key stays the holder's") {
  Claims claims;
  REQUIRE(claims.claim(kA, kSA, tcp(8080), "web", nullptr, "blue").ok());
  ClaimResult r = claims.claim(kB, kSB, tcp(8080), "web");  // no group: refused, as without groups
  CHECK(r.error == ClaimError::kTaken);
  CHECK(r.holder == kA);
  CHECK(r.group == "blue");
  CHECK(claims.claim(kB, kSB, tcp(8080), "web", nullptr, "green").error == ClaimError::kTaken);
  CHECK(claims.claim(kOtherTenant, kSC, tcp(8080), "web", nullptr, "blue").error == ClaimError::kTaken);
  r = claims.claim(kB, kSB, tcp(8080), "www", nullptr, "blue");
  CHECK(r.error == ClaimError::kGroupMismatch);
  CHECK(r.service == "web");
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{kSA});

  // A route claimed without a group cannot be joined, whatever the joiner says.
  REQUIRE(claims.claim(kA, kSA, http("app.test"), "app").ok());
  CHECK(claims.claim(kB, kSB, http("app.test"), "app", nullptr, "").error == ClaimError::kTaken);
  CHECK(claims.claim(kB, kSB, http("app.test"), "app", nullptr, "blue").error == ClaimError::kTaken);
  // A group member may not rename the service the others serve.
  REQUIRE(claims.claim(kB, kSB, tcp(8080), "web", nullptr, "blue").ok());
  CHECK(claims.claim(kA, kSA, tcp(8080), "renamed", nullptr, "blue").error == ClaimError::kGroupMismatch);
}

TEST_CASE("members down take no traffic; when every member is down, all of them do") {
  Claims claims;
  REQUIRE(claims.claim(kA, kSA, tcp(8080), "web", nullptr, "g").ok());
  REQUIRE(claims.claim(kB, kSB, tcp(8080), "web", nullptr, "g").ok());
  REQUIRE(claims.claim(kC, kSC, tcp(8080), "web", nullptr, "g").ok());
  auto version = claims.version();
  CHECK(claims.set_health(kSB, tcp(8080), false));
  CHECK(claims.version() > version);
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{kSA, kSC});
  version = claims.version();
  CHECK_FALSE(claims.set_health(kSB, tcp(8080), false));  // no change
  CHECK_FALSE(claims.set_health(kSB, tcp(9090), false));  // no such route
  CHECK_FALSE(claims.set_health(SessionRef{9, 9}, tcp(8080), false));  // not a member
  CHECK(claims.version() == version);
  CHECK(claims.set_health(kSA, tcp(8080), false));
  CHECK(claims.set_health(kSC, tcp(8080), false));
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{kSA, kSB, kSC});  // all down: all serve
  CHECK(claims.build()->find(tcp(8080))->members_up == 0);
  CHECK(claims.set_health(kSB, tcp(8080), true));
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{kSB});
  // A lone owner that is down still serves (nobody else would).
  REQUIRE(claims.claim(kA, kSA, tcp(7070), "api").ok());
  CHECK(claims.set_health(kSA, tcp(7070), false));
  CHECK(serving(claims, tcp(7070)) == std::vector<SessionRef>{kSA});
}

TEST_CASE("a member's reconnect replaces its session and starts up; the others keep theirs") {
  Claims claims;
  REQUIRE(claims.claim(kA, kSA, tcp(8080), "web", nullptr, "g").ok());
  REQUIRE(claims.claim(kB, kSB, tcp(8080), "web", nullptr, "g").ok());
  REQUIRE(claims.set_health(kSA, tcp(8080), false));
  const SessionRef again{7, 1};
  REQUIRE(claims.claim(kA, again, tcp(8080), "web", nullptr, "g").ok());
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{again, kSB});
  CHECK(claims.release_session(kSA).empty());  // the old session serves nothing any more
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{again, kSB});
}

TEST_CASE("members leave one by one; the route goes with the last, and the next member owns it") {
  Claims claims;
  REQUIRE(claims.claim(kA, kSA, tcp(8080), "web", nullptr, "g").ok());
  REQUIRE(claims.claim(kB, kSB, tcp(8080), "web", nullptr, "g").ok());
  REQUIRE(claims.claim(kC, kSC, tcp(8080), "web", nullptr, "g").ok());
  auto version = claims.version();
  CHECK(claims.release_session(kSA).empty());  // the route stays: others serve it
  CHECK(claims.version() > version);
  REQUIRE(claims.holder(tcp(8080)) != nullptr);
  CHECK(*claims.holder(tcp(8080)) == kB);
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{kSB, kSC});
  CHECK(claims.keys_of(kA).empty());
  CHECK_FALSE(claims.release(kA, tcp(8080)));
  CHECK(claims.release(kC, tcp(8080)));
  CHECK(serving(claims, tcp(8080)) == std::vector<SessionRef>{kSB});
  CHECK(claims.release_session(kSB) == std::vector<RouteKey>{tcp(8080)});
  CHECK(claims.size() == 0);
  // Free again: a group that had it is not remembered.
  CHECK(claims.claim(kOtherTenant, kSA, tcp(8080), "other").ok());
}
