// Route table: host-name rules, claims and conflicts, sessions, snapshots and their lookups (exact, wildcard, tcp).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "route/route.hpp"
#include "route_keys.hpp"

using namespace ringtun::route;  // NOLINT
using namespace ringtun::route::test;  // NOLINT

namespace {

const Owner kAlice{0, "alice"};
const Owner kBob{0, "bob"};
constexpr SessionRef kS1{1, 0};
constexpr SessionRef kS2{2, 0};

std::string normalized(std::string_view name, bool allow_wildcard) {
  std::string out = "untouched";
  auto status = normalize_host(name, allow_wildcard, &out);
  return status ? out : std::string("error: ") + status.error().context();
}

bool valid(std::string_view name, bool allow_wildcard = false) {
  std::string out;
  return normalize_host(name, allow_wildcard, &out).has_value();
}

// The service a lookup finds, or "-" for none.
std::string service_of(const Route* route) {
  return route ? route->service : "-";
}

}  // namespace

TEST_CASE("kind_name and describe") {
  CHECK(std::string(kind_name(Kind::kTcp)) == "tcp");
  CHECK(std::string(kind_name(Kind::kHttp)) == "http");
  CHECK(std::string(kind_name(Kind::kTls)) == "tls");
  CHECK(tcp(8080).describe() == "tcp port 8080");
  CHECK(http("app.example.com").describe() == "http host app.example.com");
  CHECK(tls("*.example.com").describe() == "tls host *.example.com");
  // A refused key from an agent can hold anything: the description stays one printable, bounded line.
  CHECK(http("evil\n\x01.test").describe() == "http host evil\\x0a\\x01.test");
  std::string long_host(300, 'a');
  CHECK(http(long_host).describe() == "http host " + std::string(kMaxHostLength, 'a') + "...");
}

TEST_CASE("normalize_host folds case and one trailing dot") {
  CHECK(normalized("App.Example.COM", false) == "app.example.com");
  CHECK(normalized("app.example.com.", false) == "app.example.com");
  CHECK(normalized("localhost", false) == "localhost");
  CHECK(normalized("xn--bcher-kva.example", false) == "xn--bcher-kva.example");
  CHECK(normalized("a-b.c-d", false) == "a-b.c-d");
  CHECK(normalized("10.0.0.1", false) == "10.0.0.1");  // documented: numeric labels pass
  CHECK(normalized("*.Example.com.", true) == "*.example.com");
  CHECK(normalized("*.test", true) == "*.test");
}

TEST_CASE("normalize_host refuses malformed names and says which rule") {
  CHECK(normalized("", false) == "error: empty host name");
  CHECK(normalized(".", false) == "error: empty host name");
  CHECK(normalized("a..b", false) == "error: empty label in host name");
  CHECK(normalized(".a", false) == "error: empty label in host name");
  CHECK(normalized("a.b..", false) == "error: empty label in host name");  // only one trailing dot is stripped
  CHECK(normalized("-a.b", false) == "error: label starts or ends with '-' in host name");
  CHECK(normalized("a-.b", false) == "error: label starts or ends with '-' in host name");
  CHECK(normalized("a.b-", false) == "error: label starts or ends with '-' in host name");
  CHECK(normalized("a_b.c", false) == "error: host name byte other than a letter, digit, '-' or '.'");
  CHECK_FALSE(valid("a b.c"));
  CHECK_FALSE(valid(std::string_view("a\0b", 3)));
  CHECK_FALSE(valid("caf\xc3\xa9.fr"));
  CHECK_FALSE(valid("host:8080"));
  CHECK_FALSE(valid("a/b"));

  // Lengths: labels up to 63, names up to 253 (after the trailing dot).
  const std::string label63(63, 'a');
  CHECK(valid(label63 + ".b"));
  CHECK(normalized(std::string(64, 'a') + ".b", false) == "error: label longer than 63 characters in host name");
  std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'a');
  REQUIRE(name253.size() == 253);
  CHECK(valid(name253));
  CHECK(valid(name253 + "."));
  CHECK(normalized(name253 + "a", false) == "error: host name longer than 253 characters");
  CHECK_FALSE(valid(name253 + ".."));

  // '*' only as the leading "*." of a wildcard, and only when wildcards are allowed.
  const char* star = "error: '*' only as the leading \"*.\" of a wildcard host name";
  CHECK(normalized("*.test", false) == star);
  CHECK(normalized("*", true) == star);
  CHECK(normalized("*.", true) == star);  // "*." loses its dot and is "*"
  CHECK(normalized("*foo.bar", true) == star);
  CHECK(normalized("a.*.b", true) == star);
  CHECK(normalized("a.*", true) == star);
  CHECK(normalized("*.*.b", true) == star);
  CHECK(normalized("*..b", true) == "error: empty label in host name");
  CHECK(normalized("*.-a", true) == "error: label starts or ends with '-' in host name");
  CHECK(valid("*." + std::string(251, 'a').replace(63, 1, ".").replace(127, 1, ".").replace(191, 1, "."), true));
  CHECK_FALSE(valid("*." + std::string(252, 'a').replace(63, 1, ".").replace(127, 1, ".").replace(191, 1, "."), true));

  // A failed call leaves `out` as it was.
  std::string out = "kept";
  CHECK_FALSE(normalize_host("a..b", false, &out).has_value());
  CHECK(out == "kept");
}

TEST_CASE("claim grants a free key; another owner gets kTaken with the holder") {
  Claims claims;
  CHECK(claims.claim(kAlice, kS1, http("app.test"), "web").ok());
  CHECK(claims.size() == 1);
  REQUIRE(claims.holder(http("app.test")) != nullptr);
  CHECK(*claims.holder(http("app.test")) == kAlice);
  CHECK(claims.holder(http("other.test")) == nullptr);

  ClaimResult taken = claims.claim(kBob, kS2, http("app.test"), "web");
  CHECK(taken.error == ClaimError::kTaken);
  CHECK(taken.holder == kAlice);
  CHECK(*claims.holder(http("app.test")) == kAlice);
  CHECK(claims.keys_of(kBob).empty());
}

TEST_CASE("an agent id is scoped by its token: the same id under two tokens is two owners") {
  Claims claims;
  const Owner tenant_a{1, "edge"};
  const Owner tenant_b{2, "edge"};
  REQUIRE(claims.claim(tenant_a, kS1, tcp(8080), "ssh").ok());
  ClaimResult r = claims.claim(tenant_b, kS2, tcp(8080), "ssh");
  CHECK(r.error == ClaimError::kTaken);
  CHECK(r.holder == tenant_a);
  CHECK_FALSE(claims.release(tenant_b, tcp(8080)));
  CHECK(claims.keys_of(tenant_b).empty());
  CHECK(claims.keys_of(tenant_a) == std::vector<RouteKey>{tcp(8080)});
}

TEST_CASE("the same owner re-claims: a reconnect takes the route back at once, session replaced") {
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, http("app.test"), "web").ok());
  REQUIRE(claims.claim(kAlice, kS1, tcp(2222), "ssh").ok());
  // The agent reconnects (new session) before its old session is noticed gone.
  const SessionRef reconnected{7, 3};
  REQUIRE(claims.claim(kAlice, reconnected, http("app.test"), "web-v2").ok());
  auto table = claims.build();
  const Route* route = table->find_host(Kind::kHttp, "app.test");
  REQUIRE(route != nullptr);
  CHECK(route->sessions == std::vector<SessionRef>{reconnected});
  CHECK(route->service == "web-v2");
  CHECK(route->owner == kAlice);
  CHECK(claims.keys_of(kAlice) == std::vector<RouteKey>{http("app.test"), tcp(2222)});  // keeps its place

  // The old session's end releases only what still leads to it.
  CHECK(claims.release_session(kS1) == std::vector<RouteKey>{tcp(2222)});
  CHECK(claims.holder(http("app.test")) != nullptr);
  CHECK(claims.release_session(reconnected) == std::vector<RouteKey>{http("app.test")});
  CHECK(claims.size() == 0);
}

TEST_CASE("release: only by the holder") {
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, tls("db.test"), "pg").ok());
  CHECK_FALSE(claims.release(kBob, tls("db.test")));
  CHECK_FALSE(claims.release(kAlice, http("db.test")));  // another kind: another key
  CHECK_FALSE(claims.release(kAlice, tcp(5432)));
  CHECK(claims.size() == 1);
  CHECK(claims.release(kAlice, tls("db.test")));
  CHECK_FALSE(claims.release(kAlice, tls("db.test")));
  CHECK(claims.size() == 0);
  CHECK(claims.holder(tls("db.test")) == nullptr);
  // Free again: anyone may claim it.
  CHECK(claims.claim(kBob, kS2, tls("db.test"), "pg").ok());
}

TEST_CASE("release_session releases that session's routes only, in claim order") {
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, tcp(1001), "a").ok());
  REQUIRE(claims.claim(kBob, kS2, tcp(1002), "b").ok());
  REQUIRE(claims.claim(kAlice, kS1, http("z.test"), "c").ok());
  REQUIRE(claims.claim(kAlice, kS1, http("a.test"), "d").ok());
  REQUIRE(claims.claim(kAlice, kS1, tls("*.a.test"), "e").ok());
  REQUIRE(claims.release(kAlice, http("z.test")));
  CHECK(claims.release_session(SessionRef{9, 9}).empty());
  // Same slot, older generation: not the same session.
  CHECK(claims.release_session(SessionRef{1, 1}).empty());
  const std::vector<RouteKey> expected{tcp(1001), http("a.test"), tls("*.a.test")};
  CHECK(claims.release_session(kS1) == expected);
  CHECK(claims.size() == 1);
  CHECK(claims.keys_of(kAlice).empty());
  CHECK(claims.keys_of(kBob) == std::vector<RouteKey>{tcp(1002)});
  CHECK(claims.release_session(kS1).empty());
}

TEST_CASE("malformed keys and service names are kInvalid and change nothing") {
  Claims claims;
  auto invalid = [&](const RouteKey& key, std::string_view service = "svc") {
    return claims.claim(kAlice, kS1, key, service).error == ClaimError::kInvalid;
  };
  CHECK(invalid(tcp(0)));
  CHECK(invalid(RouteKey{Kind::kTcp, 80, "a.test"}));
  CHECK(invalid(RouteKey{Kind::kHttp, 80, "a.test"}));
  CHECK(invalid(RouteKey{Kind::kTls, 443, "a.test"}));
  CHECK(invalid(http("")));
  CHECK(invalid(http("App.test")));   // not in normal form: normalize_host would change it
  CHECK(invalid(http("app.test.")));  // likewise
  CHECK(invalid(http("a..test")));
  CHECK(invalid(http("a_b.test")));
  CHECK(invalid(tls("*")));
  CHECK(invalid(tls("*.")));
  CHECK(invalid(tls("a.*.test")));
  CHECK(invalid(tls("*foo.test")));
  CHECK(invalid(http(std::string(254, 'a'))));
  CHECK(invalid(RouteKey{static_cast<Kind>(7), 0, "a.test"}));
  CHECK(invalid(http("a.test"), ""));
  CHECK(invalid(http("a.test"), std::string(kMaxServiceNameLength + 1, 's')));
  CHECK(claims.size() == 0);
  CHECK(claims.version() == 0);
  CHECK(claims.claim(kAlice, kS1, http("a.test"), std::string(kMaxServiceNameLength, 's')).ok());
  CHECK(claims.claim(kAlice, kS1, tcp(65535), "svc").ok());
}

TEST_CASE("kinds are separate namespaces: http host X and tls host X are different keys") {
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, http("shared.test"), "web").ok());
  REQUIRE(claims.claim(kBob, kS2, tls("shared.test"), "tls-web").ok());
  REQUIRE(claims.claim(kBob, kS2, tls("*.test"), "tls-wild").ok());
  auto table = claims.build();
  CHECK(service_of(table->find_host(Kind::kHttp, "shared.test")) == "web");
  CHECK(service_of(table->find_host(Kind::kTls, "shared.test")) == "tls-web");
  CHECK(service_of(table->find_host(Kind::kHttp, "other.test")) == "-");  // the tls wildcard is not http's
  CHECK(service_of(table->find_host(Kind::kTls, "other.test")) == "tls-wild");
  CHECK(table->find_host(Kind::kTcp, "shared.test") == nullptr);
}

TEST_CASE("tcp keys: find_tcp by port") {
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, tcp(22), "ssh").ok());
  REQUIRE(claims.claim(kBob, kS2, tcp(65535), "high").ok());
  REQUIRE(claims.claim(kBob, kS2, http("a.test"), "web").ok());
  auto table = claims.build();
  CHECK(service_of(table->find_tcp(22)) == "ssh");
  CHECK(service_of(table->find_tcp(65535)) == "high");
  CHECK(table->find_tcp(0) == nullptr);
  CHECK(table->find_tcp(23) == nullptr);
  CHECK(table->find_tcp(80) == nullptr);
  REQUIRE(table->find_tcp(22) != nullptr);
  CHECK(table->find_tcp(22)->sessions == std::vector<SessionRef>{kS1});
  CHECK(table->find(tcp(22)) == table->find_tcp(22));
}

TEST_CASE("wildcards: exact beats wildcard, the longest suffix wins, any depth, never the bare suffix") {
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, http("*.test"), "star-test").ok());
  REQUIRE(claims.claim(kAlice, kS1, http("*.b.test"), "star-b-test").ok());
  REQUIRE(claims.claim(kAlice, kS1, http("exact.b.test"), "exact").ok());
  REQUIRE(claims.claim(kAlice, kS1, http("*.x.y.z.example"), "deep").ok());
  auto table = claims.build();
  CHECK(service_of(table->find_host(Kind::kHttp, "a.test")) == "star-test");
  CHECK(service_of(table->find_host(Kind::kHttp, "b.test")) == "star-test");  // "*.b.test" needs a label before
  CHECK(service_of(table->find_host(Kind::kHttp, "x.b.test")) == "star-b-test");
  CHECK(service_of(table->find_host(Kind::kHttp, "a.x.b.test")) == "star-b-test");
  CHECK(service_of(table->find_host(Kind::kHttp, "exact.b.test")) == "exact");
  CHECK(service_of(table->find_host(Kind::kHttp, "a.exact.b.test")) == "star-b-test");
  CHECK(service_of(table->find_host(Kind::kHttp, "1.2.3.4.5.c.test")) == "star-test");
  CHECK(service_of(table->find_host(Kind::kHttp, "test")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "atest")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "a.test.other")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "q.x.y.z.example")) == "deep");
  CHECK(service_of(table->find_host(Kind::kHttp, "x.y.z.example")) == "-");
  // A wildcard is found by its own key, and a query spelled like a wildcard is not a host name.
  CHECK(service_of(table->find(http("*.b.test"))) == "star-b-test");
  CHECK(service_of(table->find_host(Kind::kHttp, "*.b.test")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "*.q.test")) == "-");
  // Lookups must not have changed anything they point at (find_host spells candidates in a scratch buffer).
  CHECK(table->find(http("*.test")) != nullptr);
  CHECK(table->find(http("exact.b.test"))->key.host == "exact.b.test");
}

TEST_CASE("lookups fold case, ignore one trailing dot, and refuse invalid names") {
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, http("app.example.com"), "app").ok());
  REQUIRE(claims.claim(kAlice, kS1, http("*.example.com"), "wild").ok());
  auto table = claims.build();
  CHECK(service_of(table->find_host(Kind::kHttp, "APP.Example.Com")) == "app");
  CHECK(service_of(table->find_host(Kind::kHttp, "app.example.com.")) == "app");
  CHECK(service_of(table->find_host(Kind::kHttp, "Other.EXAMPLE.com.")) == "wild");
  CHECK(service_of(table->find_host(Kind::kHttp, "app.example.com..")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, ".")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "a b.example.com")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "a..example.com")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "-a.example.com")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, "app.example.com:80")) == "-");
  CHECK(service_of(table->find_host(Kind::kHttp, std::string(64, 'a') + ".example.com")) == "-");
  std::string long_name;
  while (long_name.size() < 250) long_name += "abcdefghi.";
  long_name += "example.com";  // > 253: never found, however it ends
  CHECK(service_of(table->find_host(Kind::kHttp, long_name)) == "-");
  // find() is exact: the key as claimed, no folding.
  CHECK(table->find(http("APP.example.com")) == nullptr);
  CHECK(table->find(http("app.example.com")) != nullptr);
}

TEST_CASE("wildcard lookups reach the limits: a 253-byte name of 127 one-byte labels") {
  std::string name = "a";
  while (name.size() < 253) name += ".a";
  REQUIRE(name.size() == 253);
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, tls("*.a"), "shortest").ok());
  REQUIRE(claims.claim(kAlice, kS1, tls("*" + name.substr(1)), "longest").ok());  // "*.a.a...": 253 bytes
  auto table = claims.build();
  CHECK(service_of(table->find_host(Kind::kTls, name)) == "longest");
  CHECK(service_of(table->find_host(Kind::kTls, name.substr(2))) == "shortest");
  CHECK(service_of(table->find_host(Kind::kTls, "a.a")) == "shortest");
  CHECK(service_of(table->find_host(Kind::kTls, "a")) == "-");
}

TEST_CASE("snapshots are immutable: changing the claims after build() leaves an earlier table as it was") {
  Claims claims;
  REQUIRE(claims.claim(kAlice, kS1, http("a.test"), "one").ok());
  REQUIRE(claims.claim(kAlice, kS1, tcp(80), "port").ok());
  auto before = claims.build();
  REQUIRE(claims.claim(kAlice, kS2, http("a.test"), "two").ok());
  REQUIRE(claims.release(kAlice, tcp(80)));
  REQUIRE(claims.claim(kBob, kS2, http("b.test"), "three").ok());
  auto after = claims.build();

  CHECK(before->size() == 2);
  CHECK(service_of(before->find_host(Kind::kHttp, "a.test")) == "one");
  CHECK(before->find_host(Kind::kHttp, "a.test")->sessions == std::vector<SessionRef>{kS1});
  CHECK(service_of(before->find_tcp(80)) == "port");
  CHECK(before->find_host(Kind::kHttp, "b.test") == nullptr);

  CHECK(after->size() == 2);
  CHECK(service_of(after->find_host(Kind::kHttp, "a.test")) == "two");
  CHECK(after->find_tcp(80) == nullptr);
  CHECK(service_of(after->find_host(Kind::kHttp, "b.test")) == "three");
  CHECK(before->version() < after->version());

  // The snapshot outlives the claims that built it.
  std::shared_ptr<const Table> orphan;
  {
    Claims temporary;
    REQUIRE(temporary.claim(kAlice, kS1, http("*.test"), "wild").ok());
    orphan = temporary.build();
  }
  CHECK(service_of(orphan->find_host(Kind::kHttp, "q.test")) == "wild");
}

TEST_CASE("routes() is in claim order and the empty table finds nothing") {
  Claims claims;
  auto empty = claims.build();
  CHECK(empty->size() == 0);
  CHECK(empty->version() == 0);
  CHECK(empty->find_tcp(80) == nullptr);
  CHECK(empty->find_host(Kind::kHttp, "a.test") == nullptr);
  CHECK(empty->find(http("a.test")) == nullptr);

  REQUIRE(claims.claim(kBob, kS2, tls("c.test"), "c").ok());
  REQUIRE(claims.claim(kAlice, kS1, tcp(9), "a").ok());
  REQUIRE(claims.claim(kAlice, kS1, http("b.test"), "b").ok());
  auto table = claims.build();
  REQUIRE(table->routes().size() == 3);
  CHECK(table->routes()[0].key == tls("c.test"));
  CHECK(table->routes()[1].key == tcp(9));
  CHECK(table->routes()[2].key == http("b.test"));
  CHECK(table->routes()[0].owner == kBob);
}

TEST_CASE("version: bumped by every change, not by refusals or no-op re-claims; the table carries it") {
  Claims claims;
  std::uint64_t v = claims.version();
  auto bumped = [&] {
    bool up = claims.version() > v;
    v = claims.version();
    return up;
  };
  REQUIRE(claims.claim(kAlice, kS1, http("a.test"), "web").ok());
  CHECK(bumped());
  REQUIRE(claims.claim(kAlice, kS1, http("a.test"), "web").ok());  // identical: nothing to publish
  CHECK_FALSE(bumped());
  REQUIRE(claims.claim(kAlice, kS1, http("a.test"), "web2").ok());  // service renamed
  CHECK(bumped());
  REQUIRE(claims.claim(kAlice, kS2, http("a.test"), "web2").ok());  // session replaced
  CHECK(bumped());
  CHECK(claims.claim(kBob, kS1, http("a.test"), "x").error == ClaimError::kTaken);
  CHECK_FALSE(bumped());
  CHECK(claims.claim(kBob, kS1, http("A.test"), "x").error == ClaimError::kInvalid);
  CHECK_FALSE(bumped());
  CHECK_FALSE(claims.release(kBob, http("a.test")));
  CHECK_FALSE(bumped());
  CHECK(claims.release_session(kS1).empty());  // kS1 serves nothing any more
  CHECK_FALSE(bumped());
  auto table = claims.build();
  CHECK(table->version() == claims.version());
  CHECK(claims.build()->version() == table->version());  // nothing changed in between
  CHECK(claims.release_session(kS2) == std::vector<RouteKey>{http("a.test")});
  CHECK(bumped());
  REQUIRE(claims.claim(kAlice, kS1, tcp(1), "t").ok());
  CHECK(bumped());
  CHECK(claims.release(kAlice, tcp(1)));
  CHECK(bumped());
  CHECK(claims.build()->version() > table->version());
}

TEST_CASE("many routes: every key is found after the index is built") {
  Claims claims;
  for (std::uint16_t p = 1; p <= 3000; ++p) REQUIRE(claims.claim(kAlice, kS1, tcp(p), "t").ok());
  for (int i = 0; i < 3000; ++i) {
    REQUIRE(claims.claim(kBob, kS2, http("h" + std::to_string(i) + ".test"), "h" + std::to_string(i)).ok());
  }
  auto table = claims.build();
  CHECK(table->size() == 6000);
  for (std::uint16_t p = 1; p <= 3000; ++p) REQUIRE(table->find_tcp(p) != nullptr);
  CHECK(table->find_tcp(3001) == nullptr);
  for (int i = 0; i < 3000; ++i) {
    const std::string host = "h" + std::to_string(i) + ".test";
    REQUIRE(service_of(table->find_host(Kind::kHttp, host)) == "h" + std::to_string(i));
  }
  CHECK(table->find_host(Kind::kHttp, "h3000.test") == nullptr);
  CHECK(claims.release_session(kS1).size() == 3000);
  CHECK(claims.size() == 3000);
}

// ---------------------------------------------------------------------------------------------------------------
// host_allowed: which host keys a token's patterns let it claim

TEST_CASE("host_allowed: an exact pattern allows that name only") {
  const std::vector<std::string> patterns = {"app.example.com"};
  CHECK(host_allowed(patterns, "app.example.com"));
  CHECK_FALSE(host_allowed(patterns, "example.com"));
  CHECK_FALSE(host_allowed(patterns, "x.app.example.com"));
  CHECK_FALSE(host_allowed(patterns, "pp.example.com"));
  CHECK_FALSE(host_allowed(patterns, "app.example.co"));
  // A wildcard key matches names the exact pattern does not allow.
  CHECK_FALSE(host_allowed(patterns, "*.app.example.com"));
  CHECK_FALSE(host_allowed(patterns, "*.example.com"));
}

TEST_CASE("host_allowed: a wildcard pattern allows the names and wildcards below its suffix, at any depth") {
  const std::vector<std::string> patterns = {"*.test"};
  for (const char* key : {"a.test", "c.b.test", "x.y.z.test", "*.test", "*.b.test", "*.c.b.test"}) {
    CAPTURE(key);
    CHECK(host_allowed(patterns, key));
  }
  for (const char* key : {"test", "atest", "a.test.com", "b.atest", "*.atest", "*.com", "*.est", "est"}) {
    CAPTURE(key);
    CHECK_FALSE(host_allowed(patterns, key));
  }
}

TEST_CASE("host_allowed: no patterns allow nothing; several patterns allow what any one allows") {
  CHECK_FALSE(host_allowed({}, "a.test"));
  CHECK_FALSE(host_allowed({}, "*.test"));
  const std::vector<std::string> patterns = {"example.com", "*.apps.example.com", "*.b.test"};
  CHECK(host_allowed(patterns, "example.com"));
  CHECK(host_allowed(patterns, "one.apps.example.com"));
  CHECK(host_allowed(patterns, "*.apps.example.com"));
  CHECK(host_allowed(patterns, "a.b.test"));
  CHECK_FALSE(host_allowed(patterns, "apps.example.com"));
  CHECK_FALSE(host_allowed(patterns, "www.example.com"));
  // "*.example.com" would match www.example.com too, which no pattern allows.
  CHECK_FALSE(host_allowed(patterns, "*.example.com"));
  CHECK_FALSE(host_allowed(patterns, "*.test"));
  CHECK_FALSE(host_allowed(patterns, "b.test"));
}
