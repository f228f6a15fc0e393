// ring::Resolve: names resolved off the loop, answered on it; timeouts and cancels leave nothing behind.
#include <arpa/inet.h>

#include <string>

#include "ring/resolver.hpp"
#include "test_support.hpp"

using namespace ringtun;

namespace {
struct Outcome {
  bool called = false;
  ring::Resolve::Answer answer;
};
void record(void* context, ring::Resolve::Answer&& answer) {
  auto* outcome = static_cast<Outcome*>(context);
  CHECK_FALSE(outcome->called);  // once
  outcome->called = true;
  outcome->answer = std::move(answer);
}
}  // namespace

TEST_CASE("resolve: numeric addresses and localhost need no lookup") {
  auto v4 = ring::net::numeric_address("192.0.2.7", 7000);
  REQUIRE(v4);
  CHECK(v4->to_string() == "192.0.2.7:7000");
  auto v6 = ring::net::numeric_address("::1", 443);
  REQUIRE(v6);
  CHECK(v6->to_string() == "[::1]:443");
  auto local = ring::net::numeric_address("localhost", 80);
  REQUIRE(local);
  CHECK(local->to_string() == "127.0.0.1:80");
  CHECK_FALSE(ring::net::numeric_address("gateway.example.com", 80));
  CHECK_FALSE(ring::net::numeric_address("", 80));
}

TEST_CASE("resolve: getaddrinfo's answer comes back on the loop, with the port set") {
  // Numeric hosts go through the same thread and socketpair as names, and resolve on any machine (a minimal one may
  // have no /etc/hosts and no DNS: names are exercised end to end by the gateway_names integration test).
  auto loop = test::make_loop();
  for (const char* host : {"127.0.0.1", "::1"}) {
    CAPTURE(host);
    Outcome outcome;
    ring::Resolve* r = ring::Resolve::start(*loop, host, 7123, 5000, 0, record, &outcome);
    REQUIRE(r != nullptr);
    CHECK_FALSE(outcome.called);  // never from inside start()
    REQUIRE(test::run_until(*loop, [&] { return outcome.called; }));
    REQUIRE_MESSAGE(outcome.answer.addresses.size() == 1, outcome.answer.error);
    CHECK(outcome.answer.addresses[0].port() == 7123);
    CHECK(outcome.answer.addresses[0].is_loopback());
  }
  // The Resolve freed itself once its socket was reaped: nothing stays open.
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
}

TEST_CASE("resolve: a name that does not resolve is an error, not a hang") {
  auto loop = test::make_loop();
  Outcome outcome;
  // RFC 2606 reserves .invalid: no answer exists. Without a reachable DNS server the lookup may only time out; either
  // way the caller hears back within the timeout.
  ring::Resolve* r = ring::Resolve::start(*loop, "no-such-host.invalid", 80, 3000, 0, record, &outcome);
  REQUIRE(r != nullptr);
  REQUIRE(test::run_until(*loop, [&] { return outcome.called; }, 6000));
  CHECK(outcome.answer.addresses.empty());
  CHECK_FALSE(outcome.answer.error.empty());
}

TEST_CASE("resolve: a cancelled lookup never reports, and frees itself") {
  auto loop = test::make_loop();
  Outcome outcome;
  ring::Resolve* r = ring::Resolve::start(*loop, "127.0.0.1", 80, 5000, 0, record, &outcome);
  REQUIRE(r != nullptr);
  r->cancel();
  REQUIRE(test::run_until(*loop, [&] { return loop->stats().sockets_open == 0; }));
  loop->run_once(50);
  CHECK_FALSE(outcome.called);
}
