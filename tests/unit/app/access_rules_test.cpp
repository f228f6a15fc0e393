// The access-policy settings of a token: --allow-from, --deny-from, --conn-rate, --max-conns, --max-conns-per-client
// on the command line (refining the --token just before) and tokens[].allow_from ... in the JSON config.
#include <doctest/doctest.h>

#include "app/config.hpp"
#include "config_test_support.hpp"

namespace ringtun::app::test {
namespace {

TEST_CASE("gateway: access flags refine the --token just before them") {
  auto r = gateway({"--listen", "0.0.0.0:7000", "--token", "a", "--allow-from", "10.0.0.0/8, 2001:db8::/32",
                    "--deny-from", "10.1.0.0/16", "--conn-rate", "20", "--token", "b", "--max-conns", "100",
                    "--max-conns-per-client", "4"});
  REQUIRE_MESSAGE(r.ok(), r.error);
  const auto& t = r.config().tokens;
  REQUIRE(t.size() == 2);
  REQUIRE(t[0].access.allow.size() == 2);
  CHECK(t[0].access.allow[0].to_string() == "10.0.0.0/8");
  CHECK(t[0].access.allow[1].to_string() == "2001:db8::/32");
  REQUIRE(t[0].access.deny.size() == 1);
  CHECK(t[0].access.deny[0].to_string() == "10.1.0.0/16");
  CHECK(t[0].access.conn_rate == 20);
  CHECK(t[0].access.max_conns == 0);
  CHECK(t[1].access.allow.empty());
  CHECK(t[1].access.max_conns == 100);
  CHECK(t[1].access.max_conns_per_client == 4);
  CHECK(t[1].access.conn_rate == 0);
}

TEST_CASE("gateway: access flags apply to every key of a --token-file") {
  TempFile keys("first\nsecond\n");
  auto r = gateway({"--listen", "0.0.0.0:7000", "--token-file", keys.path(), "--deny-from", "192.0.2.0/24"});
  REQUIRE_MESSAGE(r.ok(), r.error);
  REQUIRE(r.config().tokens.size() == 2);
  for (const auto& token : r.config().tokens) {
    REQUIRE(token.access.deny.size() == 1);
    CHECK(token.access.deny[0].to_string() == "192.0.2.0/24");
  }
}

TEST_CASE("gateway: bad access flags say what is wrong") {
  const std::vector<std::string> base = {"--listen", "0.0.0.0:7000", "--token", "a"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args = base;
    args.insert(args.end(), more.begin(), more.end());
    return gateway(args);
  };
  auto before = gateway({"--allow-from", "10.0.0.0/8", "--listen", "0.0.0.0:7000", "--token", "a"});
  REQUIRE_FALSE(before.ok());
  CHECK(contains(before.error, "--allow-from: comes before any --token"));
  auto twice = with({"--conn-rate", "5", "--conn-rate", "6"});
  REQUIRE_FALSE(twice.ok());
  CHECK(contains(twice.error, "--conn-rate: given twice for token 1"));
  auto host_bits = with({"--allow-from", "10.0.0.1/8"});
  REQUIRE_FALSE(host_bits.ok());
  CHECK(contains(host_bits.error, "--allow-from: "));
  CHECK(contains(host_bits.error, "10.0.0.0/8"));
  auto garbage = with({"--deny-from", "example.com"});
  REQUIRE_FALSE(garbage.ok());
  CHECK(contains(garbage.error, "--deny-from: "));
  CHECK(contains(garbage.error, "example.com"));
  auto zero = with({"--max-conns", "0"});
  REQUIRE_FALSE(zero.ok());
  CHECK(contains(zero.error, "--max-conns: \"0\" is not a number of concurrent connections (1..10000000)"));
  auto huge = with({"--conn-rate", "1000001"});
  REQUIRE_FALSE(huge.ok());
  CHECK(contains(huge.error, "--conn-rate: \"1000001\" is not a number of new connections per second"));
}

TEST_CASE("gateway: tokens[] in the JSON config carry the access policy") {
  TempFile file(R"({"listen": "0.0.0.0:7000", "tokens": [
      {"token": "a", "allow_from": ["127.0.0.2", "::1"], "deny_from": "10.0.0.0/8,10.1.0.0/16",
       "conn_rate": 5, "max_conns": "7", "max_conns_per_client": 2}]})");
  auto r = gateway({"--config", file.path()});
  REQUIRE_MESSAGE(r.ok(), r.error);
  const auto& a = r.config().tokens.at(0).access;
  REQUIRE(a.allow.size() == 2);
  CHECK(a.allow[0].to_string() == "127.0.0.2/32");
  CHECK(a.allow[1].to_string() == "::1/128");
  CHECK(a.deny.size() == 2);
  CHECK(a.conn_rate == 5);
  CHECK(a.max_conns == 7);
  CHECK(a.max_conns_per_client == 2);

  TempFile bad(R"({"listen": "0.0.0.0:7000", "tokens": [{"token": "a", "allow_from": ["127.0.0.2", 7]}]})");
  auto wrong_type = gateway({"--config", bad.path()});
  REQUIRE_FALSE(wrong_type.ok());
  CHECK(contains(wrong_type.error, "tokens[0].allow_from[1]"));
  TempFile empty(R"({"listen": "0.0.0.0:7000", "tokens": [{"token": "a", "deny_from": []}]})");
  auto empty_list = gateway({"--config", empty.path()});
  REQUIRE_FALSE(empty_list.ok());
  CHECK(contains(empty_list.error, "tokens[0].deny_from: an empty list"));
  TempFile top(R"({"listen": "0.0.0.0:7000", "allow_from": ["127.0.0.2"], "tokens": [{"token": "a"}]})");
  auto top_level = gateway({"--config", top.path()});
  REQUIRE_FALSE(top_level.ok());
  CHECK(contains(top_level.error, "unknown key \"allow_from\" at the top level (use \"tokens\""));
}

TEST_CASE("agent: --expose takes ,proxy-protocol=v1|v2; JSON has proxy_protocol") {
  auto v1 = parse_expose("tcp:app@8080=127.0.0.1:80,proxy-protocol=v1", nullptr);
  REQUIRE(v1.has_value());
  CHECK(v1->proxy_protocol == tunnel::ProxyProtocol::kV1);
  CHECK(v1->local_text == "127.0.0.1:80");
  auto v2 = parse_expose("http:web.test=127.0.0.1:8080,proxy-protocol=v2", nullptr);
  REQUIRE(v2.has_value());
  CHECK(v2->proxy_protocol == tunnel::ProxyProtocol::kV2);
  auto none = parse_expose("tcp:8080=127.0.0.1:80", nullptr);
  REQUIRE(none.has_value());
  CHECK(none->proxy_protocol == tunnel::ProxyProtocol::kNone);
  std::string error;
  CHECK_FALSE(parse_expose("tcp:8080=127.0.0.1:80,proxy-protocol=v3", &error).has_value());
  CHECK(contains(error, "\"proxy-protocol=v3\": the PROXY protocol version is v1 or v2"));
  CHECK_FALSE(parse_expose("tcp:8080=127.0.0.1:80,fast=yes", &error).has_value());
  CHECK(contains(error, "unknown option \"fast=yes\" (known: proxy-protocol=v1|v2)"));

  TempFile file(R"({"gateway": "127.0.0.1:7000", "token": "s3cret", "insecure_plaintext": true, "services": [
      {"kind": "tcp", "public_port": 9000, "local": "127.0.0.1:9", "proxy_protocol": "v2"}]})");
  auto r = agent({"--config", file.path()});
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().services.at(0).proxy_protocol == tunnel::ProxyProtocol::kV2);
  TempFile bad(R"({"gateway": "127.0.0.1:7000", "token": "s3cret", "services": [
      {"kind": "tcp", "public_port": 9000, "local": "127.0.0.1:9", "proxy_protocol": "v9"}]})");
  auto wrong = agent({"--config", bad.path()});
  REQUIRE_FALSE(wrong.ok());
  CHECK(contains(wrong.error, "services[0].proxy_protocol: \"v9\" is not \"v1\" or \"v2\""));
}

}  // namespace
}  // namespace ringtun::app::test
