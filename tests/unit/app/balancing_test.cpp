// The agent's load-balancing settings: --group, --health and its timings, on the command line and in the JSON file.
#include <doctest/doctest.h>

#include "app/config.hpp"
#include "config_test_support.hpp"

namespace ringtun::app::test {
namespace {

const std::vector<std::string> kBase = {"--gateway", "127.0.0.1:7000", "--token", "s3cret", "--expose",
                                        "tcp:8080=127.0.0.1:80"};

std::vector<std::string> with(const std::vector<std::string>& more) {
  std::vector<std::string> args = kBase;
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST_CASE("agent: --group and --health with their timings; defaults are no group and no checks") {
  auto plain = agent(kBase);
  REQUIRE_MESSAGE(plain.ok(), plain.error);
  CHECK(plain.config().group.empty());
  CHECK(plain.config().health.empty());
  CHECK(plain.config().health_interval_ms == 2000);
  CHECK(plain.config().health_timeout_ms == 1000);
  CHECK(plain.config().health_fails == 3);

  auto r = agent(with({"--group", "blue-1", "--health", "http:/healthz?full=1", "--health-interval-ms", "100",
                       "--health-timeout-ms", "50", "--health-fails", "1"}));
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().group == "blue-1");
  CHECK(r.config().health == "http:/healthz?full=1");
  CHECK(r.config().health_interval_ms == 100);
  CHECK(r.config().health_timeout_ms == 50);
  CHECK(r.config().health_fails == 1);
  CHECK(contains(agent_usage(), "--group KEY"));
  CHECK(contains(agent_usage(), "--health CHECK"));
  CHECK_FALSE(contains(gateway_usage(), "--health"));
}

TEST_CASE("agent: bad --group and --health values each say what is wrong") {
  auto expect = [](const std::vector<std::string>& more, const std::string& message) {
    auto r = agent(with(more));
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == Errc::kInvalidArgument);
    CHECK_MESSAGE(contains(r.error, message), r.error);
    CHECK(one_line(r.error));
  };
  expect({"--group", "a b"}, "--group: \"a b\" is not a valid name");
  expect({"--group", std::string(65, 'g')}, "is not a valid name");
  expect({"--health", "udp"}, "--health: expected tcp or http:/PATH");
  expect({"--health", "http:"}, "--health: the PATH of http:/PATH starts with '/'");
  expect({"--health", "http:health"}, "the PATH of http:/PATH starts with '/'");
  expect({"--health", "http:/a b"}, "--health: the PATH may hold no spaces, control or non-ASCII characters");
  expect({"--health", "http:/" + std::string(300, 'p')}, "at most 256 characters");
  expect({"--health-interval-ms", "99"}, "--health-interval-ms: \"99\" is not a number in 100..86400000");
  expect({"--health-fails", "0"}, "--health-fails: \"0\" is not a number in 1..100");
}

TEST_CASE("agent: the same settings in the JSON config, with their place in errors") {
  TempFile file(R"({"group": "green", "health": "tcp", "health_interval_ms": 500, "health_fails": 5})");
  auto r = agent({"--gateway", "127.0.0.1:7000", "--token", "s3cret", "--expose", "tcp:8080=127.0.0.1:80",
                  "--config", file.path(), "--gateway-fingerprint", kTestFingerprint});
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().group == "green");
  CHECK(r.config().health == "tcp");
  CHECK(r.config().health_interval_ms == 500);
  CHECK(r.config().health_fails == 5);

  TempFile bad(R"({"health": "http://example.com/"})");
  auto b = agent({"--gateway", "127.0.0.1:7000", "--token", "s3cret", "--expose", "tcp:8080=127.0.0.1:80",
                  "--config", bad.path(), "--gateway-fingerprint", kTestFingerprint});
  REQUIRE_FALSE(b.ok());
  CHECK_MESSAGE(contains(b.error, "health"), b.error);
  CHECK_MESSAGE(contains(b.error, "the PATH is a path on the local service (http:/healthz), not a URL"), b.error);
}

TEST_CASE("parse_health_spec") {
  std::string error;
  auto none = parse_health_spec("", &error);
  REQUIRE(none);
  CHECK(none->kind == HealthSpec::Kind::kNone);
  auto tcp = parse_health_spec("tcp", &error);
  REQUIRE(tcp);
  CHECK(tcp->kind == HealthSpec::Kind::kTcp);
  auto http = parse_health_spec("http:/", &error);
  REQUIRE(http);
  CHECK(http->kind == HealthSpec::Kind::kHttp);
  CHECK(http->path == "/");
  CHECK_FALSE(parse_health_spec("TCP", &error));
  CHECK_FALSE(parse_health_spec("http:/\x7f", &error));
}

}  // namespace
}  // namespace ringtun::app::test
