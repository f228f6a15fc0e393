// LocalRegistry: sessions per owner (token + agent id), claims, and the snapshots it publishes.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "../route/route_keys.hpp"
#include "gateway/registry.hpp"

using namespace ringtun;
using namespace ringtun::gateway;

namespace {
SessionInfo info(std::uint32_t token, const char* id, const char* instance) {
  SessionInfo i;
  i.owner = route::Owner{token, id};
  i.instance = instance;
  i.peer = "192.0.2.1:1000";
  i.since_ms = 1'700'000'000'000;
  return i;
}

OpenResult open(Registry& registry, const SessionInfo& i) {
  OpenResult out;
  bool called = false;
  registry.open_session(i, [&](const OpenResult& r) {
    out = r;
    called = true;
  });
  REQUIRE(called);
  return out;
}

std::vector<route::ClaimResult> claim(Registry& registry, route::SessionRef session, std::vector<ClaimRequest> requests) {
  std::vector<route::ClaimResult> out;
  bool called = false;
  registry.claim(session, std::move(requests), [&](std::vector<route::ClaimResult> r) {
    out = std::move(r);
    called = true;
  });
  REQUIRE(called);
  return out;
}

using route::test::tcp;
}  // namespace

TEST_CASE("registry: one session per owner; the holder is named to a second instance; the id frees on close") {
  LocalRegistry registry;
  const OpenResult a = open(registry, info(0, "edge", "aaaa"));
  REQUIRE(a.ok);
  const OpenResult again = open(registry, info(0, "edge", "bbbb"));
  CHECK_FALSE(again.ok);
  CHECK(again.holder.instance == "aaaa");
  CHECK(again.holder.peer == "192.0.2.1:1000");
  // The same id under another token is another owner: no conflict, no view into the other tenant.
  const OpenResult other_tenant = open(registry, info(1, "edge", "cccc"));
  CHECK(other_tenant.ok);
  CHECK(registry.sessions().size() == 2);
  registry.close_session(a.session);
  const OpenResult b = open(registry, info(0, "edge", "bbbb"));
  REQUIRE(b.ok);
  CHECK_FALSE(b.session == a.session);  // the slot may be reused; the generation differs
  registry.close_session(a.session);     // stale: ignored
  CHECK(registry.sessions().size() == 2);
}

TEST_CASE("registry: claims per key, conflicts across owners, release on close, one snapshot per change") {
  LocalRegistry registry;
  std::vector<std::shared_ptr<const route::Table>> published;
  registry.watch([&](std::shared_ptr<const route::Table> t) { published.push_back(std::move(t)); });
  REQUIRE(published.size() == 1);  // the current one, at once
  CHECK(published.back()->size() == 0);

  const OpenResult a = open(registry, info(0, "a", "1111"));
  const OpenResult b = open(registry, info(1, "b", "2222"));
  auto results = claim(registry, a.session, {{tcp(8080), "web"}, {tcp(2222), "ssh"}});
  REQUIRE(results.size() == 2);
  CHECK(results[0].ok());
  CHECK(results[1].ok());
  CHECK(published.size() == 2);  // one snapshot for the whole batch
  CHECK(published.back()->find_tcp(8080)->service == "web");

  results = claim(registry, b.session, {{tcp(8080), "steal"}, {tcp(9090), "other"}});
  CHECK(results[0].error == route::ClaimError::kTaken);
  CHECK(results[0].holder.agent_id == "a");
  CHECK(results[1].ok());
  CHECK(published.back()->find_tcp(8080)->owner.agent_id == "a");
  CHECK(published.back()->find_tcp(9090)->owner.agent_id == "b");

  registry.release(a.session, {tcp(2222)});
  CHECK(published.back()->find_tcp(2222) == nullptr);
  registry.release(b.session, {tcp(8080)});  // not b's: nothing changes
  CHECK(published.back()->find_tcp(8080) != nullptr);

  const std::size_t before = published.size();
  registry.close_session(a.session);
  CHECK(published.size() == before + 1);
  CHECK(published.back()->find_tcp(8080) == nullptr);
  CHECK(published.back()->find_tcp(9090) != nullptr);
  // Now b may take the port.
  results = claim(registry, b.session, {{tcp(8080), "web-b"}});
  CHECK(results[0].ok());
  // A claim for a session that is gone is refused, not applied.
  results = claim(registry, a.session, {{tcp(7070), "late"}});
  CHECK_FALSE(results[0].ok());
  CHECK(registry.table()->find_tcp(7070) == nullptr);
}
