// TrafficTable: one entry per (token, agent, service) across snapshots, and a bound on entries.
#include <doctest/doctest.h>

#include "../route/route_keys.hpp"
#include "gateway/traffic_table.hpp"

namespace ringtun::gateway {
namespace {

route::SessionRef session(std::uint32_t slot) { return {slot, 1}; }

using route::test::tcp;

TEST_CASE("traffic entries are keyed by owner and service name, not by snapshot") {
  route::Claims claims;
  REQUIRE(claims.claim({0, "edge-1"}, session(0), tcp(8080), "web").ok());
  REQUIRE(claims.claim({1, "edge-1"}, session(1), tcp(8081), "web").ok());  // same id, another token
  auto first = claims.build();
  TrafficTable table;
  TrafficEntry& a = table.entry(*first, first->routes()[0]);
  TrafficEntry& b = table.entry(*first, first->routes()[1]);
  CHECK(&a != &b);
  CHECK(a.agent == "edge-1");
  CHECK(a.service == "web");
  CHECK(a.port == 8080);
  CHECK(b.token == 1);
  a.traffic.bytes_from_edge += 10;
  CHECK(&table.entry(*first, first->routes()[0]) == &a);  // cached per snapshot

  // A reconnect: a new session and a new snapshot; the counters carry on.
  REQUIRE(claims.claim({0, "edge-1"}, session(2), tcp(8080), "web").ok());
  auto second = claims.build();
  const route::Route* route = second->find_tcp(8080);
  REQUIRE(route != nullptr);
  TrafficEntry& again = table.entry(*second, *route);
  CHECK(&again == &a);
  CHECK(again.traffic.bytes_from_edge.get() == 10);
  CHECK(table.size() == 2);
}

TEST_CASE("past kMaxEntries, new services share one overflow entry") {
  TrafficTable table;
  route::Claims claims;
  REQUIRE(claims.claim({0, "edge-1"}, session(0), tcp(1), "svc0").ok());
  const auto snapshot = claims.build();
  // Routes that are not the snapshot's are looked up by their key alone: an agent renaming its service in a loop.
  for (std::size_t i = 0; i < TrafficTable::kMaxEntries + 10; ++i) {
    route::Route route;
    route.key = tcp(1);
    route.service = "svc" + std::to_string(i);
    route.owner = {0, "edge-1"};
    route.sessions = {session(0)};
    (void)table.entry(*snapshot, route);
  }
  CHECK(table.size() == TrafficTable::kMaxEntries);
  const TrafficEntry& last = table.at(TrafficTable::kMaxEntries - 1);
  CHECK(last.service == "_other");
  CHECK(table.at(0).service == "svc0");
}

}  // namespace
}  // namespace ringtun::gateway
