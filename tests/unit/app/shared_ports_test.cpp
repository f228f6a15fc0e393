// The settings of shared public ports: the gateway's --http-listen / --tls-listen and their timeouts, host-scoped
// tokens (--allow-hosts, tokens[].allow_hosts), the agent's http: and tls: services (--expose, "services" entries
// with "kind" and "host") and its upstream pool settings. Good values and each bad value's message.
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "app/config.hpp"
#include "app/settings.hpp"
#include "config_test_support.hpp"

using namespace ringtun;
using namespace ringtun::app;
using app::test::agent;
using app::test::contains;
using app::test::gateway;
using app::test::one_line;
using app::test::TempFile;

namespace {

const std::vector<std::string> kGatewayBase = {"--listen", "0.0.0.0:7000", "--token", "s3cret"};
const std::vector<std::string> kAgentHead = {"--gateway", "127.0.0.1:7000", "--token", "s3cret"};

std::vector<std::string> plus(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

test::Outcome<AgentConfig> agent_exposing(const std::vector<std::string>& exposes) {
  std::vector<std::string> args = kAgentHead;
  for (const std::string& e : exposes) {
    args.push_back("--expose");
    args.push_back(e);
  }
  return agent(args);
}

// The message without the "<path>: " prefix.
std::string after_path(const std::string& error, const TempFile& file) {
  REQUIRE_MESSAGE(error.rfind(file.path() + ": ", 0) == 0, error);
  return error.substr(file.path().size() + 2);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Gateway: shared listeners and their timeouts

TEST_CASE("gateway: the shared ports are off by default, with the documented timeouts") {
  auto r = gateway(kGatewayBase);
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().http_listen_text.empty());
  CHECK(r.config().tls_listen_text.empty());
  CHECK(r.config().http_head_timeout_ms == 10'000);
  CHECK(r.config().http_idle_timeout_ms == 60'000);
  CHECK(r.config().tls_hello_timeout_ms == 10'000);
  CHECK(r.config().tokens[0].hosts.empty());
}

TEST_CASE("gateway: --http-listen, --tls-listen and the timeouts, from flags and from the file") {
  auto r =
      gateway(plus(kGatewayBase, {"--http-listen", "0.0.0.0:8080", "--tls-listen=[::1]:8443", "--http-head-timeout-ms",
                                  "500", "--http-idle-timeout-ms=700", "--tls-hello-timeout-ms", "900"}));
  REQUIRE_MESSAGE(r.ok(), r.error);
  const GatewayConfig& c = r.config();
  CHECK(c.http_listen_text == "0.0.0.0:8080");
  CHECK(c.http_listen.port() == 8080);
  CHECK(c.http_listen.family() == AF_INET);
  CHECK(c.tls_listen_text == "[::1]:8443");
  CHECK(c.tls_listen.port() == 8443);
  CHECK(c.tls_listen.family() == AF_INET6);
  CHECK(c.http_head_timeout_ms == 500);
  CHECK(c.http_idle_timeout_ms == 700);
  CHECK(c.tls_hello_timeout_ms == 900);

  TempFile file(R"({"listen": "127.0.0.1:7000", "http_listen": "127.0.0.1:80", "tls_listen": ":443",
                    "http_head_timeout_ms": 1, "http_idle_timeout_ms": 2, "tls_hello_timeout_ms": 3,
                    "tokens": [{"token": "t"}]})");
  auto f = gateway({"--config", file.path()});
  REQUIRE_MESSAGE(f.ok(), f.error);
  CHECK(f.config().http_listen.port() == 80);
  CHECK(f.config().tls_listen.port() == 443);
  CHECK(f.config().http_head_timeout_ms == 1);
  CHECK(f.config().http_idle_timeout_ms == 2);
  CHECK(f.config().tls_hello_timeout_ms == 3);
}

TEST_CASE("gateway: --http-listen and --tls-listen take --listen's address syntax and its messages") {
  auto name = gateway(plus(kGatewayBase, {"--http-listen", "web.example.com:80"}));
  REQUIRE_FALSE(name.ok());
  CHECK(name.code() == Errc::kParse);
  CHECK(contains(name.error, "--http-listen: \"web.example.com:80\" is a host name; names are not resolved"));
  auto bad = gateway(plus(kGatewayBase, {"--tls-listen", "1.2.3:443"}));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error.rfind("--tls-listen: \"1.2.3:443\"", 0) == 0);
  CHECK(one_line(bad.error));
  auto zero = gateway(plus(kGatewayBase, {"--http-head-timeout-ms", "0"}));
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error == "--http-head-timeout-ms: \"0\" is not a number in 1..86400000");
}

TEST_CASE("gateway: the tunnel, HTTP and TLS listeners need addresses of their own") {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"--http-listen", "0.0.0.0:7000"},
       "--http-listen: \"0.0.0.0:7000\" is the same address and port as --listen \"0.0.0.0:7000\""},
      {{"--tls-listen", "127.0.0.1:7000"},  // 0.0.0.0 covers 127.0.0.1
       "--tls-listen: \"127.0.0.1:7000\" is the same address and port as --listen \"0.0.0.0:7000\""},
      {{"--http-listen", "[::]:7000"},  // [::] covers IPv4 too
       "--http-listen: \"[::]:7000\" is the same address and port as --listen \"0.0.0.0:7000\""},
      {{"--http-listen", "0.0.0.0:80", "--tls-listen", ":80"},
       "--tls-listen: \":80\" is the same address and port as --http-listen \"0.0.0.0:80\""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    auto r = gateway(plus(kGatewayBase, c.args));
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == Errc::kInvalidArgument);
    CHECK(contains(r.error, c.message));
    CHECK(contains(r.error, "(each listener needs a port of its own)"));
  }
  // Different ports, different hosts of one family, or port 0 (the kernel picks one for each) are fine.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--http-listen", "0.0.0.0:80", "--tls-listen", "0.0.0.0:443"},
           {"--listen", "127.0.0.1:7000", "--token", "t", "--http-listen", "127.0.0.2:7000"},
           {"--listen", "127.0.0.1:0", "--token", "t", "--http-listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"},
           {"--listen", "[::1]:7000", "--token", "t", "--http-listen", "127.0.0.1:7000"}}) {
    auto r = args.front() == "--listen" ? gateway(args) : gateway(plus(kGatewayBase, args));
    CHECK_MESSAGE(r.ok(), r.error);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Gateway: --allow-hosts and tokens[].allow_hosts

TEST_CASE("gateway: --allow-hosts binds to the --token just before it, normalized, without repeats") {
  auto r = gateway({"--listen", "0.0.0.0:7000", "--token", "a", "--allow-hosts", "App.Example.COM.,*.apps.test",
                    "--token", "b", "--token", "c", "--allow-ports", "80", "--allow-hosts", "x.test, *.x.test,x.test"});
  REQUIRE_MESSAGE(r.ok(), r.error);
  const auto& t = r.config().tokens;
  REQUIRE(t.size() == 3);
  CHECK(t[0].hosts == std::vector<std::string>{"app.example.com", "*.apps.test"});
  CHECK(t[1].hosts.empty());
  CHECK(t[2].hosts == std::vector<std::string>{"x.test", "*.x.test"});
  CHECK(t[2].port_low == 80);
}

TEST_CASE("gateway: --allow-hosts mistakes name the pattern") {
  auto before = gateway({"--allow-hosts", "a.test", "--listen", "0.0.0.0:7000", "--token", "a"});
  REQUIRE_FALSE(before.ok());
  CHECK(before.error == "--allow-hosts: comes before any --token (it applies to the --token just before it)");
  auto twice = gateway(plus(kGatewayBase, {"--allow-hosts", "a.test", "--allow-hosts", "b.test"}));
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error == "--allow-hosts: given twice for token 1 (one list per --token: PATTERN,PATTERN...)");
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"a_b.test", "--allow-hosts: \"a_b.test\" is not a host name or *.suffix (host name byte other than"},
      {"a.*.test", "--allow-hosts: \"a.*.test\" is not a host name or *.suffix ('*' only as the leading"},
      {"*.", "--allow-hosts: \"*.\" is not a host name or *.suffix ('*' only as the leading"},  // "*." reads as "*"
      {"good.test,-bad.test", "--allow-hosts: \"-bad.test\" is not a host name or *.suffix (label starts or ends"},
      {"a..test", "--allow-hosts: \"a..test\" is not a host name or *.suffix (empty label"},
      {"", "--allow-hosts: \"\" has an empty pattern (expected PATTERN[,PATTERN...]"},
      {"a.test,", "--allow-hosts: \"a.test,\" has an empty pattern"},
  };
  for (const Case& c : cases) {
    const std::string text = c.text;
    CAPTURE(text);
    auto r = gateway(plus(kGatewayBase, {"--allow-hosts=" + text}));
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error, c.message));
    CHECK(one_line(r.error));
  }
  std::string error;
  auto parsed = parse_allow_hosts("*.A.test,b.test", &error);
  REQUIRE_MESSAGE(parsed, error);
  CHECK(*parsed == std::vector<std::string>{"*.a.test", "b.test"});
  CHECK_FALSE(parse_allow_hosts("*", &error));
  CHECK(contains(error, "\"*\" is not a host name or *.suffix"));
}

TEST_CASE("json: tokens[].allow_hosts is an array of patterns") {
  TempFile file(R"({"listen": "0.0.0.0:7000", "tokens": [
                      {"token": "a", "allow_hosts": ["A.example.com", "*.apps.example.com", "a.example.com"]},
                      {"token": "b", "allow_hosts": []}, {"token": "c"}]})");
  auto r = gateway({"--config", file.path()});
  REQUIRE_MESSAGE(r.ok(), r.error);
  const auto& t = r.config().tokens;
  REQUIRE(t.size() == 3);
  CHECK(t[0].hosts == std::vector<std::string>{"a.example.com", "*.apps.example.com"});
  CHECK(t[1].hosts.empty());
  CHECK(t[2].hosts.empty());

  struct Case {
    const char* json;
    const char* message;
    Errc code;
  };
  const Case cases[] = {
      {R"({"tokens": [{"token": "a", "allow_hosts": "a.test"}]})",
       "tokens[0].allow_hosts: expected an array of host names or *.suffix patterns", Errc::kParse},
      {R"({"tokens": [{"token": "a", "allow_hosts": ["a.test", 5]}]})",
       "tokens[0].allow_hosts[1]: expected a string, got 5", Errc::kParse},
      {R"({"tokens": [{"token": "a"}, {"token": "b", "allow_hosts": ["ok.test", "bad host"]}]})",
       "tokens[1].allow_hosts[1]: \"bad host\" is not a host name or *.suffix (host name byte", Errc::kInvalidArgument},
      {R"({"tokens": [{"token": "a", "allow_hosts": ["*"]}]})",
       "tokens[0].allow_hosts[0]: \"*\" is not a host name or *.suffix", Errc::kInvalidArgument},
      {R"({"allow_hosts": ["a.test"]})", "unknown key \"allow_hosts\" at the top level (use \"tokens\"", Errc::kParse},
  };
  for (const Case& c : cases) {
    const std::string json = c.json;
    CAPTURE(json);
    TempFile bad(c.json);
    auto b = gateway({"--config", bad.path(), "--listen", "0.0.0.0:7000"});
    REQUIRE_FALSE(b.ok());
    CHECK(b.code() == c.code);
    CHECK_MESSAGE(contains(after_path(b.error, bad), c.message), b.error);
    CHECK(one_line(b.error));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Agent: http: and tls: services

TEST_CASE("parse_expose: http: and tls: services, with default names") {
  std::string error;
  auto http = parse_expose("http:App.Example.com=127.0.0.1:8080", &error);
  REQUIRE_MESSAGE(http, error);
  CHECK(http->kind == route::Kind::kHttp);
  CHECK(http->host == "app.example.com");
  CHECK(http->public_port == 0);
  CHECK(http->name == "http-app.example.com");
  CHECK(http->local_text == "127.0.0.1:8080");
  CHECK(http->local.port() == 8080);
  auto wildcard = parse_expose("tls:*.example.com.=[::1]:8443", &error);
  REQUIRE_MESSAGE(wildcard, error);
  CHECK(wildcard->kind == route::Kind::kTls);
  CHECK(wildcard->host == "*.example.com");
  CHECK(wildcard->name == "tls-wildcard.example.com");
  auto named = parse_expose("http:web@*.apps.test=localhost:3000", &error);
  REQUIRE_MESSAGE(named, error);
  CHECK(named->name == "web");
  CHECK(named->host == "*.apps.test");
  auto tcp = parse_expose("tcp:8080=127.0.0.1:80", &error);
  REQUIRE_MESSAGE(tcp, error);
  CHECK(tcp->kind == route::Kind::kTcp);
  CHECK(tcp->host.empty());
  // The longest default name that fits: "http-" + 59 characters.
  const std::string host59 = std::string(50, 'a') + ".example1";
  REQUIRE(host59.size() == 59);
  auto longest = parse_expose("http:" + host59 + "=127.0.0.1:80", &error);
  REQUIRE_MESSAGE(longest, error);
  CHECK(longest->name.size() == 64);
}

TEST_CASE("parse_expose: http: and tls: mistakes have their own messages") {
  struct Case {
    std::string text;
    std::string message;
    Errc code;
  };
  const std::string host60 = std::string(51, 'a') + ".example1";
  const Case cases[] = {
      {"http:a.test",
       "--expose \"http:a.test\": expected http:[NAME@]HOST=LOCAL_HOST:LOCAL_PORT (HOST: a host name "
       "or *.suffix)",
       Errc::kParse},
      {"tls:=127.0.0.1:80", "expected tls:[NAME@]HOST=LOCAL_HOST:LOCAL_PORT (HOST: a host name or *.suffix)",
       Errc::kParse},
      {"a.test=127.0.0.1:80",
       "expected tcp:[NAME@]PUBLIC_PORT=LOCAL_HOST:LOCAL_PORT, http:[NAME@]HOST=LOCAL_HOST:LOCAL_PORT or "
       "tls:[NAME@]HOST=LOCAL_HOST:LOCAL_PORT (HOST: a host name or *.suffix)",
       Errc::kParse},
      {"https:a.test=127.0.0.1:80", "service type \"https\" is not supported (tcp, http or tls)",
       Errc::kInvalidArgument},
      {"http:a_b.test=127.0.0.1:80", "host: \"a_b.test\" is not a host name or *.suffix (host name byte",
       Errc::kInvalidArgument},
      {"http:*=127.0.0.1:80", "host: \"*\" is not a host name or *.suffix", Errc::kInvalidArgument},
      {"tls:a.*.test=127.0.0.1:80", "host: \"a.*.test\" is not a host name or *.suffix ('*' only as the leading",
       Errc::kInvalidArgument},
      {"http:8080=127.0.0.1:80", "", Errc::kOk},  // digits only are a valid name: see below
      {"http:" + host60 + "=127.0.0.1:80",
       ": the default name \"http-" + host60 + "\" is longer than 64 characters; give the service a name: NAME@",
       Errc::kInvalidArgument},
      {"http:my app@a.test=127.0.0.1:80", "service name: \"my app\" is not a valid name", Errc::kInvalidArgument},
      {"http:a.test=app.internal:80", "local address: \"app.internal:80\" is a host name; names are not resolved",
       Errc::kParse},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string error;
    auto r = parse_expose(c.text, &error);
    if (c.code == Errc::kOk) {
      CHECK_MESSAGE(r, error);  // "8080" is a host name with one label: accepted, it is an agent's own business
      continue;
    }
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == c.code);
    CHECK_MESSAGE(contains(error, c.message), error);
    CHECK(error.rfind("--expose \"", 0) == 0);
    CHECK(one_line(error));
  }
}

TEST_CASE("agent: the same kind and host twice, or one name twice, across --expose") {
  auto host = agent_exposing({"http:a.test=127.0.0.1:80", "http:other@A.TEST.=127.0.0.1:81"});
  REQUIRE_FALSE(host.ok());
  CHECK(host.code() == Errc::kInvalidArgument);
  CHECK(host.error ==
        "--expose \"http:other@A.TEST.=127.0.0.1:81\": http host a.test is already exposed by --expose "
        "\"http:a.test=127.0.0.1:80\"");
  auto name = agent_exposing({"http:web@a.test=127.0.0.1:80", "tls:web@b.test=127.0.0.1:81"});
  REQUIRE_FALSE(name.ok());
  CHECK(contains(name.error, "service name \"web\" is already used by --expose \"http:web@a.test=127.0.0.1:80\""));
  // One host under both kinds, a name and its wildcard, and a tcp port: all different things.
  auto ok = agent_exposing(
      {"http:a.test=127.0.0.1:80", "tls:a.test=127.0.0.1:443", "http:*.a.test=127.0.0.1:81", "tcp:8080=127.0.0.1:82"});
  REQUIRE_MESSAGE(ok.ok(), ok.error);
  const auto& s = ok.config().services;
  REQUIRE(s.size() == 4);
  CHECK(s[0].name == "http-a.test");
  CHECK(s[1].name == "tls-a.test");
  CHECK(s[2].name == "http-wildcard.a.test");
  CHECK(s[3].name == "tcp-8080");
  // A tcp port's duplicate keeps its message.
  auto port = agent_exposing({"tcp:8080=127.0.0.1:80", "tcp:x@8080=127.0.0.1:81"});
  REQUIRE_FALSE(port.ok());
  CHECK(contains(port.error, ": public port 8080 is already exposed by --expose \"tcp:8080=127.0.0.1:80\""));
}

TEST_CASE("json: services with \"kind\" and \"host\", and the older \"type\"") {
  TempFile file(R"({"gateway": "127.0.0.1:7000", "token": "t", "insecure_plaintext": true, "services": [
      {"name": "web", "type": "tcp", "public_port": 8080, "local": "127.0.0.1:80"},
      {"public_port": 2222, "local": "127.0.0.1:22"},
      {"kind": "http", "host": "App.Example.com", "local": "127.0.0.1:3000"},
      {"kind": "tls", "host": "*.example.com", "local": "127.0.0.1:8443"},
      {"name": "api", "type": "http", "host": "api.example.com", "local": "127.0.0.1:3001"},
      {"kind": "tcp", "public_port": 8081, "local": "127.0.0.1:81"}]})");
  auto r = agent({"--config", file.path()});
  REQUIRE_MESSAGE(r.ok(), r.error);
  const auto& s = r.config().services;
  REQUIRE(s.size() == 6);
  CHECK(s[0].kind == route::Kind::kTcp);
  CHECK(s[0].name == "web");
  CHECK(s[1].name == "tcp-2222");
  CHECK(s[2].kind == route::Kind::kHttp);
  CHECK(s[2].host == "app.example.com");
  CHECK(s[2].name == "http-app.example.com");
  CHECK(s[2].public_port == 0);
  CHECK(s[3].kind == route::Kind::kTls);
  CHECK(s[3].name == "tls-wildcard.example.com");
  CHECK(s[4].kind == route::Kind::kHttp);
  CHECK(s[4].name == "api");
  CHECK(s[5].public_port == 8081);
}

TEST_CASE("json: each mistake in an http or tls service has its own message") {
  struct Case {
    std::string json;
    std::string message;
    Errc code;
  };
  const std::string host60 = std::string(51, 'a') + ".example1";
  const Case cases[] = {
      {R"([{"kind": "http", "local": "127.0.0.1:80"}])",
       "services[0]: missing \"host\" (the host name or *.suffix an http service is found by)", Errc::kInvalidArgument},
      {R"([{"kind": "tls", "host": "a.test", "public_port": 443, "local": "127.0.0.1:80"}])",
       "services[0].public_port: only for tcp services (an tls service has \"host\")", Errc::kInvalidArgument},
      {R"([{"host": "a.test", "public_port": 80, "local": "127.0.0.1:80"}])",
       "services[0].host: only for http and tls services (a tcp service has \"public_port\")", Errc::kInvalidArgument},
      {R"([{"kind": "http", "type": "http", "host": "a.test", "local": "127.0.0.1:80"}])",
       "services[0]: \"kind\" and \"type\" are one setting (\"type\" is its older name): give one", Errc::kParse},
      {R"([{"kind": "udp", "public_port": 53, "local": "127.0.0.1:53"}])",
       "services[0].kind: \"udp\" is not supported (\"tcp\", \"http\" or \"tls\")", Errc::kInvalidArgument},
      {R"([{"kind": 1, "public_port": 53, "local": "127.0.0.1:53"}])", "services[0].kind: expected a string, got 1",
       Errc::kParse},
      {R"([{"kind": "http", "host": "a b", "local": "127.0.0.1:80"}])",
       "services[0].host: \"a b\" is not a host name or *.suffix (host name byte", Errc::kInvalidArgument},
      {R"([{"kind": "http", "host": 5, "local": "127.0.0.1:80"}])", "services[0].host: expected a string, got 5",
       Errc::kParse},
      {R"([{"kind": "http", "host": "a.test"}])", "services[0]: missing \"local\"", Errc::kInvalidArgument},
      {R"([{"kind": "http", "host": ")" + host60 + R"(", "local": "127.0.0.1:80"}])",
       "services[0]: the default name \"http-" + host60 +
           "\" is longer than 64 characters; give the service a \"name\"",
       Errc::kInvalidArgument},
      {R"([{"kind": "http", "host": "a.test", "local": "127.0.0.1:80"}, {"kind": "http", "host": "A.test", "name": "x", "local": "127.0.0.1:81"}])",
       "services[1].host: http host a.test is already used by services[0]", Errc::kInvalidArgument},
      {R"([{"kind": "tls", "host": "*.test", "local": "127.0.0.1:80"}, {"name": "tls-wildcard.test", "public_port": 1, "local": "127.0.0.1:81"}])",
       "services[1].name: \"tls-wildcard.test\" is already used by services[0]", Errc::kInvalidArgument},
      {R"([{"name": "http-a.test", "public_port": 1, "local": "127.0.0.1:81"}, {"kind": "http", "host": "a.test", "local": "127.0.0.1:80"}])",
       "services[1]: default name \"http-a.test\" is already used by services[0]", Errc::kInvalidArgument},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json);
    TempFile file("{\"services\": " + c.json + "}");
    auto r = agent({"--config", file.path(), "--gateway", "127.0.0.1:7000", "--token", "t"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == c.code);
    CHECK_MESSAGE(contains(after_path(r.error, file), c.message), r.error);
    CHECK(one_line(r.error));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Agent: the upstream pool

TEST_CASE("agent: --upstream-max-idle and --upstream-idle-ms") {
  auto defaults = agent_exposing({"http:a.test=127.0.0.1:80"});
  REQUIRE_MESSAGE(defaults.ok(), defaults.error);
  CHECK(defaults.config().upstream_max_idle == 32);
  CHECK(defaults.config().upstream_idle_ms == 30'000);
  auto set = agent(plus(
      kAgentHead, {"--expose", "http:a.test=127.0.0.1:80", "--upstream-max-idle", "0", "--upstream-idle-ms=1500"}));
  REQUIRE_MESSAGE(set.ok(), set.error);
  CHECK(set.config().upstream_max_idle == 0);
  CHECK(set.config().upstream_idle_ms == 1500);
  auto too_many = agent(plus(kAgentHead, {"--expose", "tcp:80=127.0.0.1:80", "--upstream-max-idle", "1025"}));
  REQUIRE_FALSE(too_many.ok());
  CHECK(too_many.error == "--upstream-max-idle: \"1025\" is not a number in 0..1024");
  TempFile file(R"({"upstream_max_idle": 4, "upstream_idle_ms": 0})");
  auto json = agent(plus(kAgentHead, {"--expose", "tcp:80=127.0.0.1:80", "--config", file.path()}));
  REQUIRE_FALSE(json.ok());
  CHECK(contains(json.error, "upstream_idle_ms: expected an integer 1..86400000, got 0"));
  // A gateway setting in the agent's file, and the other way round, say whose they are.
  TempFile wrong(R"({"http_listen": "0.0.0.0:80"})");
  auto w = agent(plus(kAgentHead, {"--expose", "tcp:80=127.0.0.1:80", "--config", wrong.path()}));
  REQUIRE_FALSE(w.ok());
  CHECK(contains(w.error, "unknown key \"http_listen\" at the top level (it is a ringtun-gateway setting)"));
  auto flag = gateway(plus(kGatewayBase, {"--upstream-max-idle", "3"}));
  REQUIRE_FALSE(flag.ok());
  CHECK(contains(flag.error, "unknown flag --upstream-max-idle (it is a ringtun-agent flag; see --help)"));
}
