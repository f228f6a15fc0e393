// Command-line parsing of ringtun-gateway and ringtun-agent: flag forms, repeat rules, validation messages,
// --help / --version. The --config file is covered in config_json_test.cpp.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "app/config.hpp"
#include "app/options.hpp"
#include "ring/runtime.hpp"
#include "tunnel/handshake.hpp"

using namespace ringtun;
using namespace ringtun::app;
using app::test::agent;
using app::test::agent_exact;
using app::test::kTestFingerprint;
using app::test::contains;
using app::test::gateway;
using app::test::one_line;

namespace {
const std::vector<std::string> kGatewayBase = {"--listen", "0.0.0.0:7000", "--token", "s3cret"};
const std::vector<std::string> kAgentBase = {"--gateway", "127.0.0.1:7000", "--token",
                                             "s3cret",    "--expose",       "tcp:8080=127.0.0.1:80"};

std::vector<std::string> plus(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

std::string host_name() {
  char host[HOST_NAME_MAX + 1] = {};
  REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  return host;
}
}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// ringtun-gateway

TEST_CASE("gateway: the minimal command line gives the documented defaults") {
  auto r = gateway(kGatewayBase);
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.result->outcome == ParseOutcome::kRun);
  const GatewayConfig& c = r.config();
  CHECK(c.listen.port() == 7000);
  CHECK(c.listen.family() == AF_INET);
  CHECK(c.listen_text == "0.0.0.0:7000");
  REQUIRE(c.tokens.size() == 1);
  CHECK(c.tokens[0].secret == "s3cret");
  CHECK(c.tokens[0].port_low == 1);
  CHECK(c.tokens[0].port_high == 65535);
  CHECK(c.max_streams_per_connection == 1024);
  CHECK(c.common.threads == 0);
  CHECK(c.common.log_level == log::Level::kInfo);
  CHECK(c.common.heartbeat_ms == 5000);
  CHECK(c.common.dead_peer_ms == 15000);
  CHECK(c.common.drain_timeout_ms == 10000);
}

TEST_CASE("gateway: every flag in both --flag value and --flag=value form") {
  const std::vector<std::string> separate = {
      "--listen",       "[::1]:7001", "--token",        "a",    "--allow-ports",      "100-200",
      "--max-streams",  "77",         "--threads",      "3",    "--log-level",        "debug",
      "--heartbeat-ms", "1000",       "--dead-peer-ms", "4000", "--drain-timeout-ms", "0"};
  const std::vector<std::string> joined = {"--listen=[::1]:7001", "--token=a",           "--allow-ports=100-200",
                                           "--max-streams=77",    "--threads=3",         "--log-level=debug",
                                           "--heartbeat-ms=1000", "--dead-peer-ms=4000", "--drain-timeout-ms=0"};
  for (const auto& args : {separate, joined}) {
    auto r = gateway(args);
    REQUIRE_MESSAGE(r.ok(), r.error);
    const GatewayConfig& c = r.config();
    CHECK(c.listen.family() == AF_INET6);
    CHECK(c.listen.port() == 7001);
    REQUIRE(c.tokens.size() == 1);
    CHECK(c.tokens[0].port_low == 100);
    CHECK(c.tokens[0].port_high == 200);
    CHECK(c.max_streams_per_connection == 77);
    CHECK(c.common.threads == 3);
    CHECK(c.common.log_level == log::Level::kDebug);
    CHECK(c.common.heartbeat_ms == 1000);
    CHECK(c.common.dead_peer_ms == 4000);
    CHECK(c.common.drain_timeout_ms == 0);
  }
}

TEST_CASE("gateway: a value may contain '=' and may start with a single dash") {
  auto r = gateway({"--listen", "0.0.0.0:7000", "--token=a=b", "--token", "-dash"});
  REQUIRE_MESSAGE(r.ok(), r.error);
  REQUIRE(r.config().tokens.size() == 2);
  CHECK(r.config().tokens[0].secret == "a=b");
  CHECK(r.config().tokens[1].secret == "-dash");
  // A value that looks like a flag needs the = form.
  auto odd = gateway({"--listen", "0.0.0.0:7000", "--token=--odd"});
  REQUIRE_MESSAGE(odd.ok(), odd.error);
  CHECK(odd.config().tokens[0].secret == "--odd");
}

TEST_CASE("gateway: --token repeats and each --allow-ports binds to the --token just before it") {
  auto r = gateway({"--token", "a", "--allow-ports", "10000-20000", "--token", "b", "--listen", "0.0.0.0:7000",
                    "--token", "c", "--allow-ports", "443"});
  REQUIRE_MESSAGE(r.ok(), r.error);
  const auto& t = r.config().tokens;
  REQUIRE(t.size() == 3);
  CHECK(t[0].secret == "a");
  CHECK(t[0].port_low == 10000);
  CHECK(t[0].port_high == 20000);
  CHECK(t[1].secret == "b");
  CHECK(t[1].port_low == 1);
  CHECK(t[1].port_high == 65535);
  CHECK(t[2].secret == "c");
  CHECK(t[2].port_low == 443);
  CHECK(t[2].port_high == 443);
}

TEST_CASE("gateway: --allow-ports before any --token, or twice for one token, is an error") {
  auto before = gateway({"--allow-ports", "1-2", "--listen", "0.0.0.0:7000", "--token", "a"});
  REQUIRE_FALSE(before.ok());
  CHECK(before.code() == Errc::kInvalidArgument);
  CHECK(contains(before.error, "--allow-ports"));
  CHECK(contains(before.error, "before any --token"));
  auto twice = gateway(plus(kGatewayBase, {"--allow-ports", "1-2", "--allow-ports", "3-4"}));
  REQUIRE_FALSE(twice.ok());
  CHECK(contains(twice.error, "--allow-ports: given twice for token 1"));
}

TEST_CASE("gateway: required settings missing") {
  auto none = gateway({});
  REQUIRE_FALSE(none.ok());
  CHECK(none.code() == Errc::kInvalidArgument);
  CHECK(none.error == "--listen: missing (the tunnel port for agents, e.g. --listen 0.0.0.0:7000)");
  auto no_token = gateway({"--listen", "0.0.0.0:7000"});
  REQUIRE_FALSE(no_token.ok());
  CHECK(no_token.code() == Errc::kInvalidArgument);
  CHECK(no_token.error.rfind("--token: missing", 0) == 0);
}

TEST_CASE("gateway: empty, duplicate and control-character tokens are refused without echoing the secret") {
  for (const char* empty : {"--token=", ""}) {
    std::vector<std::string> args = {"--listen", "0.0.0.0:7000"};
    if (std::string(empty).empty()) {
      args.insert(args.end(), {"--token", ""});
    } else {
      args.emplace_back(empty);
    }
    auto r = gateway(args);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == Errc::kInvalidArgument);
    CHECK(r.error == "--token: empty");
  }
  auto dup = gateway({"--listen", "0.0.0.0:7000", "--token", "hunter2", "--token", "x", "--token", "hunter2"});
  REQUIRE_FALSE(dup.ok());
  CHECK(contains(dup.error, "--token: the same secret is given twice (tokens 1 and 3)"));
  CHECK_FALSE(contains(dup.error, "hunter2"));
  auto newline = gateway({"--listen", "0.0.0.0:7000", "--token", "hunter2\n"});
  REQUIRE_FALSE(newline.ok());
  CHECK(contains(newline.error, "control character"));
  CHECK_FALSE(contains(newline.error, "hunter2"));
}

TEST_CASE("gateway: --listen must be numeric, and a name gets a message saying names are not resolved") {
  auto name = gateway({"--listen", "gw.example.com:7000", "--token", "a"});
  REQUIRE_FALSE(name.ok());
  CHECK(name.code() == Errc::kParse);
  CHECK(contains(name.error, "--listen: \"gw.example.com:7000\""));
  CHECK(contains(name.error, "names are not resolved"));
  CHECK(contains(name.error, "use a numeric address"));
  auto port = gateway({"--listen", "1.2.3.4:99999", "--token", "a"});
  REQUIRE_FALSE(port.ok());
  CHECK(contains(port.error, "--listen: \"1.2.3.4:99999\" is not an address: port must be a number 0..65535"));
  auto v6 = gateway({"--listen", "::1:7000", "--token", "a"});
  REQUIRE_FALSE(v6.ok());
  CHECK(contains(v6.error, "IPv6 needs [brackets]"));
  // All interfaces, and port 0 (the kernel picks one), are fine for a listener.
  for (const char* ok : {":7000", "7000", "*:7000", "[::]:7000", "127.0.0.1:0", "localhost:7000"}) {
    CAPTURE(ok);
    auto r = gateway({"--listen", ok, "--token", "a"});
    CHECK_MESSAGE(r.ok(), r.error);
  }
}

TEST_CASE("gateway: numbers are checked against their ranges") {
  struct Case {
    const char* flag;
    const char* value;
    const char* message;  // empty: accepted
  };
  const Case cases[] = {
      {"--threads", "abc", "--threads: \"abc\" is not a number in 1..1024 (or 0 for all CPUs)"},
      {"--threads", "1025", "--threads: \"1025\" is not a number in 1..1024"},
      {"--threads", "-1", "--threads: \"-1\" is not a number in 1..1024"},
      {"--threads", "+1", "--threads: \"+1\" is not a number"},
      {"--threads", " 1", "--threads: \" 1\" is not a number"},
      {"--threads", "1.5", "--threads: \"1.5\" is not a number"},
      {"--threads", "99999999999999999999999", "--threads: \"99999999999999999999999\" is not a number"},
      {"--threads", "0", ""},
      {"--threads", "1", ""},
      {"--threads", "1024", ""},
      {"--max-streams", "0", "--max-streams: \"0\" is not a number in 1..1048576"},
      {"--max-streams", "1048576", ""},
      {"--heartbeat-ms", "0", "--heartbeat-ms: \"0\" is not a number in 1..86400000"},
      {"--heartbeat-ms", "86400001", "--heartbeat-ms: \"86400001\" is not a number in 1..86400000"},
      {"--drain-timeout-ms", "0", ""},
      {"--drain-timeout-ms", "86400000", ""},
      {"--drain-timeout-ms", "x", "--drain-timeout-ms: \"x\" is not a number in 0..86400000"},
      {"--dead-peer-ms", "", "--dead-peer-ms: \"\" is not a number in 1..86400000"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.flag);
    CAPTURE(c.value);
    auto r = gateway(plus(kGatewayBase, {c.flag, c.value}));
    if (std::string(c.message).empty()) {
      CHECK_MESSAGE(r.ok(), r.error);
    } else {
      REQUIRE_FALSE(r.ok());
      CHECK(contains(r.error, c.message));
      CHECK(one_line(r.error));
    }
  }
  // Not a number is a parse error; a number out of range is a semantic one.
  CHECK(gateway(plus(kGatewayBase, {"--threads", "abc"})).code() == Errc::kParse);
  CHECK(gateway(plus(kGatewayBase, {"--threads", "5000"})).code() == Errc::kInvalidArgument);
}

TEST_CASE("gateway: --log-level accepts the six levels and nothing else") {
  const std::pair<const char*, log::Level> levels[] = {{"trace", log::Level::kTrace}, {"debug", log::Level::kDebug},
                                                       {"info", log::Level::kInfo},   {"warn", log::Level::kWarn},
                                                       {"error", log::Level::kError}, {"off", log::Level::kOff}};
  for (const auto& [text, level] : levels) {
    auto r = gateway(plus(kGatewayBase, {"--log-level", text}));
    REQUIRE_MESSAGE(r.ok(), r.error);
    CHECK(r.config().common.log_level == level);
  }
  for (const char* bad : {"loud", "INFO", "", "info "}) {
    auto r = gateway(plus(kGatewayBase, {"--log-level", bad}));
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == Errc::kParse);
    CHECK(contains(r.error, "is not one of trace|debug|info|warn|error|off"));
  }
}

TEST_CASE("--cpus: lists and ranges of CPUs this process may use; every mistake named") {
  const std::vector<unsigned> allowed = ring::Runtime::allowed_cpus();
  REQUIRE_FALSE(allowed.empty());
  // Unset: the gateway pins to every allowed CPU, the agent does not pin (runtime_options decides; see options.cpp).
  CHECK(gateway(kGatewayBase).config().common.cpus.empty());
  auto one = gateway(plus(kGatewayBase, {"--cpus", std::to_string(allowed.front())}));
  REQUIRE_MESSAGE(one.ok(), one.error);
  CHECK(one.config().common.cpus == std::vector<unsigned>{allowed.front()});
  auto listed = agent(plus(kAgentBase, {"--cpus=" + std::to_string(allowed.back()) + "," +
                                        std::to_string(allowed.front())}));
  REQUIRE_MESSAGE(listed.ok(), listed.error);
  if (allowed.size() > 1) CHECK(listed.config().common.cpus == std::vector<unsigned>{allowed.back(), allowed.front()});

  CHECK(parse_cpu_list("0-3,6").value() == std::vector<unsigned>{0, 1, 2, 3, 6});
  CHECK(parse_cpu_list("5").value() == std::vector<unsigned>{5});
  CHECK(parse_cpu_list("2-2,0").value() == std::vector<unsigned>{2, 0});
  const std::pair<const char*, const char*> mistakes[] = {
      {"", "\"\": expected CPU numbers 0..1023 and ranges, like 0-3,6"},
      {"0,,1", "(\"\" is not one)"},
      {"a", "(\"a\" is not one)"},
      {"-1", "(\"-1\" is not one)"},
      {"1024", "(\"1024\" is not one)"},
      {"0-", "(\"0-\" is not one)"},
      {"0-1-2", "(\"0-1-2\" is not one)"},
      {" 1", "(\" 1\" is not one)"},
      {"3-1", "the range \"3-1\" runs backwards"},
      {"0,0", "CPU 0 is listed twice"},
      {"0-2,1", "CPU 1 is listed twice"},
  };
  for (const auto& [text, message] : mistakes) {
    std::string why;
    CHECK_FALSE(parse_cpu_list(text, &why));
    CHECK_MESSAGE(contains(why, message), text, " -> ", why);
    auto r = gateway(plus(kGatewayBase, {"--cpus", text}));
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == Errc::kInvalidArgument);
    CHECK_MESSAGE(contains(r.error, "--cpus: "), r.error);
  }
  // A CPU outside the affinity mask is refused at start-up, naming what the mask allows.
  unsigned outside = 0;
  while (std::find(allowed.begin(), allowed.end(), outside) != allowed.end()) ++outside;
  auto r = agent(plus(kAgentBase, {"--cpus", std::to_string(outside)}));
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(contains(r.error, "--cpus: CPU " + std::to_string(outside) +
                                      " is not one this process may run on (its affinity allows "),
                r.error);
}

TEST_CASE("--busy-poll-us: off unless asked for, on both programs; bounded") {
  CHECK(gateway(kGatewayBase).config().common.busy_poll_us == 0);
  CHECK(agent(kAgentBase).config().common.busy_poll_us == 0);
  CHECK(app::runtime_options(gateway(kGatewayBase).config().common, true).loop.busy_poll_us == 0);
  auto on = agent(plus(kAgentBase, {"--busy-poll-us", "50"}));
  REQUIRE_MESSAGE(on.ok(), on.error);
  CHECK(on.config().common.busy_poll_us == 50);
  CHECK(app::runtime_options(on.config().common, false).loop.busy_poll_us == 50);
  auto big = gateway(plus(kGatewayBase, {"--busy-poll-us=100001"}));
  REQUIRE_FALSE(big.ok());
  CHECK_MESSAGE(contains(big.error, "--busy-poll-us: \"100001\" is not a number in 0..100000"), big.error);
}

TEST_CASE("gateway: --dead-peer-ms must exceed --heartbeat-ms") {
  auto r = gateway(plus(kGatewayBase, {"--heartbeat-ms", "5000", "--dead-peer-ms", "5000"}));
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == Errc::kInvalidArgument);
  CHECK(contains(r.error, "--dead-peer-ms: 5000 must be greater than --heartbeat-ms (5000)"));
  // The default dead-peer time is checked too.
  auto slow = gateway(plus(kGatewayBase, {"--heartbeat-ms", "20000"}));
  REQUIRE_FALSE(slow.ok());
  CHECK(contains(slow.error, "--dead-peer-ms: 15000 must be greater than --heartbeat-ms (20000)"));
}

TEST_CASE("gateway: flag syntax errors") {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"--lisen", "0.0.0.0:7000", "--token", "a"}, "unknown flag --lisen (see --help)"},
      {{"--lisen=0.0.0.0:7000", "--token", "a"}, "unknown flag --lisen (see --help)"},
      {plus(kGatewayBase, {"--expose", "tcp:80=127.0.0.1:80"}),
       "unknown flag --expose (it is a ringtun-agent flag; see --help)"},
      {plus(kGatewayBase, {"-x"}), "unknown flag -x (see --help)"},
      {plus(kGatewayBase, {"stray"}), "unexpected argument \"stray\""},
      {plus(kGatewayBase, {"-"}), "unexpected argument \"-\""},
      {plus(kGatewayBase, {"--"}), "unexpected argument \"--\""},
      {plus(kGatewayBase, {"--listen"}), "--listen: missing value"},
      {{"--token", "--listen", "0.0.0.0:7000"}, "--token: missing value"},
      {plus(kGatewayBase, {"--listen", "0.0.0.0:7001"}), "--listen: given more than once"},
      {plus(kGatewayBase, {"--threads", "1", "--threads=2"}), "--threads: given more than once"},
      {plus(kGatewayBase, {"--help=yes"}), "--help takes no value"},
      {plus(kGatewayBase, {"--lis\nten"}), "unknown flag --lis\\x0aten (see --help)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    auto r = gateway(c.args);
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error, c.message));
    CHECK(one_line(r.error));
  }
  CHECK(gateway({"--lisen", "x"}).code() == Errc::kParse);
  CHECK(gateway(plus(kGatewayBase, {"--listen", "0.0.0.0:7001"})).code() == Errc::kInvalidArgument);
  // The first problem on the line is the one reported.
  CHECK(gateway({"--bogus", "--lisen"}).error == "unknown flag --bogus (see --help)");
}

TEST_CASE("help and version win wherever they appear, even next to mistakes") {
  for (const char* flag : {"--help", "-h"}) {
    for (const auto& args : {std::vector<std::string>{flag}, plus(kGatewayBase, {flag}),
                             std::vector<std::string>{"--lisen", "x", flag, "--threads", "abc"}}) {
      auto r = gateway(args);
      REQUIRE_MESSAGE(r.ok(), r.error);
      CHECK(r.result->outcome == ParseOutcome::kHelp);
      auto a = agent(args);
      REQUIRE_MESSAGE(a.ok(), a.error);
      CHECK(a.result->outcome == ParseOutcome::kHelp);
    }
  }
  for (const char* flag : {"--version", "-V"}) {
    auto r = gateway({"--threads", "abc", flag});
    REQUIRE_MESSAGE(r.ok(), r.error);
    CHECK(r.result->outcome == ParseOutcome::kVersion);
    auto a = agent({flag});
    REQUIRE_MESSAGE(a.ok(), a.error);
    CHECK(a.result->outcome == ParseOutcome::kVersion);
  }
  // Whichever comes first.
  CHECK(gateway({"-V", "-h"}).result->outcome == ParseOutcome::kVersion);
  CHECK(gateway({"-h", "-V"}).result->outcome == ParseOutcome::kHelp);
  // A value that happens to read "--help" in = form is a value, not a request for help.
  auto value = gateway({"--listen", "0.0.0.0:7000", "--token=--help"});
  REQUIRE_MESSAGE(value.ok(), value.error);
  CHECK(value.result->outcome == ParseOutcome::kRun);
}

TEST_CASE("a null error_text pointer and a null argv entry are tolerated") {
  const char* argv[] = {"ringtun-gateway", "--lisen", nullptr};
  auto r = parse_gateway_args(2, argv, nullptr);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == Errc::kParse);
  const char* empty[] = {"ringtun-agent", nullptr};
  auto a = parse_agent_args(1, empty, nullptr);
  CHECK_FALSE(a.has_value());
  auto zero = parse_gateway_args(0, nullptr, nullptr);
  CHECK_FALSE(zero.has_value());
}

// ---------------------------------------------------------------------------------------------------------------
// ringtun-agent

TEST_CASE("agent: the minimal command line gives the documented defaults") {
  auto r = agent(kAgentBase);
  REQUIRE_MESSAGE(r.ok(), r.error);
  const AgentConfig& c = r.config();
  CHECK(c.gateway_host == "127.0.0.1");
  CHECK(c.gateway_port == 7000);
  CHECK(c.gateway_text == "127.0.0.1:7000");
  CHECK(c.token == "s3cret");
  CHECK(c.agent_id == host_name());
  REQUIRE(c.services.size() == 1);
  CHECK(c.services[0].name == "tcp-8080");
  CHECK(c.services[0].public_port == 8080);
  CHECK(c.services[0].local_text == "127.0.0.1:80");
  CHECK(c.services[0].local.port() == 80);
  CHECK(c.reconnect_max_ms == 30000);
  CHECK(c.connect_timeout_ms == 5000);
  CHECK(c.retry_refused_ms == 30000);
  CHECK(c.common.threads == 0);
  CHECK(c.common.heartbeat_ms == 5000);
}

TEST_CASE("agent: every flag in both forms, --expose repeated") {
  const std::vector<std::string> separate = {"--gateway",
                                             "[::1]:7000",
                                             "--token",
                                             "t",
                                             "--expose",
                                             "tcp:web@8080=127.0.0.1:80",
                                             "--expose",
                                             "tcp:ssh@2222=[::1]:22",
                                             "--expose",
                                             "tcp:9000=localhost:9001",
                                             "--agent-id",
                                             "edge-1",
                                             "--reconnect-max-ms",
                                             "60000",
                                             "--connect-timeout-ms",
                                             "2500",
                                             "--threads",
                                             "2",
                                             "--log-level",
                                             "warn",
                                             "--heartbeat-ms",
                                             "100",
                                             "--dead-peer-ms",
                                             "300",
                                             "--drain-timeout-ms",
                                             "50"};
  const std::vector<std::string> joined = {"--gateway=[::1]:7000",
                                           "--token=t",
                                           "--expose=tcp:web@8080=127.0.0.1:80",
                                           "--expose=tcp:ssh@2222=[::1]:22",
                                           "--expose=tcp:9000=localhost:9001",
                                           "--agent-id=edge-1",
                                           "--reconnect-max-ms=60000",
                                           "--connect-timeout-ms=2500",
                                           "--threads=2",
                                           "--log-level=warn",
                                           "--heartbeat-ms=100",
                                           "--dead-peer-ms=300",
                                           "--drain-timeout-ms=50"};
  for (const auto& args : {separate, joined}) {
    auto r = agent(args);
    REQUIRE_MESSAGE(r.ok(), r.error);
    const AgentConfig& c = r.config();
    CHECK(c.gateway_host == "::1");
    CHECK(c.gateway_port == 7000);
    CHECK(c.token == "t");
    CHECK(c.agent_id == "edge-1");
    REQUIRE(c.services.size() == 3);
    CHECK(c.services[0].name == "web");
    CHECK(c.services[0].public_port == 8080);
    CHECK(c.services[1].name == "ssh");
    CHECK(c.services[1].local.family() == AF_INET6);
    CHECK(c.services[1].local.port() == 22);
    CHECK(c.services[2].name == "tcp-9000");
    CHECK(c.services[2].local.is_loopback());
    CHECK(c.services[2].local.port() == 9001);
    CHECK(c.reconnect_max_ms == 60000);
    CHECK(c.connect_timeout_ms == 2500);
    CHECK(c.common.threads == 2);
    CHECK(c.common.log_level == log::Level::kWarn);
    CHECK(c.common.heartbeat_ms == 100);
    CHECK(c.common.dead_peer_ms == 300);
    CHECK(c.common.drain_timeout_ms == 50);
  }
}

TEST_CASE("agent: required settings missing") {
  auto none = agent({});
  REQUIRE_FALSE(none.ok());
  CHECK(none.code() == Errc::kInvalidArgument);
  CHECK(none.error.rfind("--gateway: missing (", 0) == 0);
  auto no_token = agent({"--gateway", "127.0.0.1:7000", "--expose", "tcp:80=127.0.0.1:80"});
  REQUIRE_FALSE(no_token.ok());
  CHECK(no_token.error.rfind("--token: missing", 0) == 0);
  auto no_service = agent({"--gateway", "127.0.0.1:7000", "--token", "t"});
  REQUIRE_FALSE(no_service.ok());
  CHECK(no_service.error.rfind("--expose: missing", 0) == 0);
  auto empty_token = agent({"--gateway", "127.0.0.1:7000", "--token=", "--expose", "tcp:80=127.0.0.1:80"});
  REQUIRE_FALSE(empty_token.ok());
  CHECK(empty_token.error == "--token: empty");
  auto twice = agent(plus(kAgentBase, {"--token", "other"}));
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error == "--token: given more than once");
}

TEST_CASE("a token the handshake could not carry is refused at start-up, not at connect time") {
  std::string error;
  const std::string long_token(tunnel::kMaxTokenLength + 1, 'k');
  const char* argv[] = {"ringtun-agent", "--gateway", "127.0.0.1:7000", "--token", long_token.c_str(),
                        "--expose", "tcp:8080=127.0.0.1:80"};
  auto r = parse_agent_args(7, argv, &error);
  REQUIRE_FALSE(r);
  CHECK(error.find("--token: longer than 1024 characters") != std::string::npos);
  CHECK(error.find(long_token) == std::string::npos);
}

TEST_CASE("agent: --gateway takes a DNS name, an IPv4 or [IPv6] address, or localhost, and a port") {
  struct Accepted {
    const char* text;
    const char* host;
    std::uint16_t port;
  };
  const std::string label63(63, 'a');
  const std::string longest = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');  // 253
  const Accepted accepted[] = {
      {"203.0.113.7:7000", "203.0.113.7", 7000},
      {"[2001:db8::7]:443", "2001:db8::7", 443},
      {"[::1]:1", "::1", 1},
      {"localhost:65535", "localhost", 65535},
      {"gw.example.com:7000", "gw.example.com", 7000},
      {"GW-1.Example.COM:7000", "GW-1.Example.COM", 7000},
      {"gateway:7000", "gateway", 7000},
      {"3com.example:80", "3com.example", 80},  // RFC 1123: a label may start with a digit
  };
  for (const Accepted& a : accepted) {
    CAPTURE(a.text);
    auto r = agent({"--gateway", a.text, "--token", "t", "--expose", "tcp:80=127.0.0.1:80"});
    REQUIRE_MESSAGE(r.ok(), r.error);
    CHECK(r.config().gateway_host == a.host);
    CHECK(r.config().gateway_port == a.port);
    CHECK(r.config().gateway_text == a.text);
  }
  auto at_limit = agent({"--gateway", longest + ":7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80"});
  REQUIRE_MESSAGE(at_limit.ok(), at_limit.error);
  CHECK(at_limit.config().gateway_host.size() == 253);
}

TEST_CASE("agent: each malformed --gateway has its own message") {
  const std::string label64(64, 'a');
  const std::string too_long = std::string(63, 'a') + "." + std::string(63, 'a') + "." + std::string(63, 'a') + "." +
                               std::string(62, 'b');  // 254
  struct Case {
    std::string text;
    std::string message;  // after "--gateway: "
    Errc code;
  };
  const Case cases[] = {
      // No host.
      {":7000", "\":7000\" has no host to connect to", Errc::kInvalidArgument},
      {"7000", "\"7000\" has no host to connect to", Errc::kInvalidArgument},
      {"0.0.0.0:7000", "\"0.0.0.0:7000\" has no host to connect to", Errc::kInvalidArgument},
      {"[::]:7000", "\"[::]:7000\" has no host to connect to", Errc::kInvalidArgument},
      {"*:7000", "\"*:7000\" has no host to connect to", Errc::kInvalidArgument},
      // The port.
      {"gw.example.com", "\"gw.example.com\" has no port: expected HOST:PORT", Errc::kParse},
      {"gw.example.com:", "\"gw.example.com:\" has no port: expected HOST:PORT", Errc::kParse},
      {"[::1]", "\"[::1]\" has no port: expected HOST:PORT", Errc::kParse},
      {"10.0.0.1:0", "\"10.0.0.1:0\" needs a port 1..65535, not \"0\"", Errc::kInvalidArgument},
      {"10.0.0.1:65536", "\"10.0.0.1:65536\" needs a port 1..65535, not \"65536\"", Errc::kInvalidArgument},
      {"gw:http", "\"gw:http\" needs a port 1..65535, not \"http\"", Errc::kParse},
      {"gw:-1", "\"gw:-1\" needs a port 1..65535, not \"-1\"", Errc::kParse},
      // IPv6.
      {"::1:7000", "\"::1:7000\" is not an address: IPv6 needs [brackets]", Errc::kParse},
      {"2001:db8::7:7000", "IPv6 needs [brackets]", Errc::kParse},
      {"[::1:7000", "\"[::1:7000\" is not an address: '[' without ']'", Errc::kParse},
      {"[::1]7000", "\"[::1]7000\" is not an address: expected ':' and a port after ']'", Errc::kParse},
      {"[gw.example.com]:7000", "\"gw.example.com\" is not an IPv6 address (brackets are for IPv6", Errc::kParse},
      {"[10.0.0.1]:7000", "\"10.0.0.1\" is not an IPv6 address", Errc::kParse},
      // IPv4: digits and dots are never a name.
      {"10.0.0:7000", "\"10.0.0:7000\": \"10.0.0\" is not an IPv4 address", Errc::kParse},
      {"256.1.1.1:7000", "\"256.1.1.1\" is not an IPv4 address", Errc::kParse},
      {"1.2.3.4.5:7000", "\"1.2.3.4.5\" is not an IPv4 address", Errc::kParse},
      // Host names (RFC 1123).
      {"gw_1.example.com:7000",
       "\"gw_1.example.com:7000\": the host name has a character that is not allowed: \"_\" (a host name has "
       "letters, digits, '-' and dots)",
       Errc::kParse},
      {"gw example:7000", "not allowed: \" \"", Errc::kParse},
      {"gw\texample:7000", "not allowed: \"\\x09\"", Errc::kParse},
      {"caf\xC3\xA9.example:7000", "the host name is not ASCII (write an internationalized name in its xn-- form)",
       Errc::kParse},
      {"gw..example.com:7000", "the host name has an empty label (a dot at the start or end, or two in a row)",
       Errc::kParse},
      {".example.com:7000", "the host name has an empty label", Errc::kParse},
      {"example.com.:7000", "the host name has an empty label", Errc::kParse},
      {"-gw.example.com:7000", "the host name's label \"-gw\" starts or ends with '-'", Errc::kParse},
      {"gw-.example.com:7000", "the host name's label \"gw-\" starts or ends with '-'", Errc::kParse},
      {label64 + ".example.com:7000", "the host name's label \"" + label64 + "\" is longer than 63 characters",
       Errc::kInvalidArgument},
      {too_long + ":7000", "the host name is longer than 253 characters", Errc::kInvalidArgument},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto r = agent({"--gateway", c.text, "--token", "t", "--expose", "tcp:80=127.0.0.1:80"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == c.code);
    CHECK_MESSAGE(r.error.rfind("--gateway: ", 0) == 0, r.error);
    CHECK_MESSAGE(contains(r.error, c.message), r.error);
    CHECK(one_line(r.error));
  }
}

TEST_CASE("agent: the TLS server name defaults to the host of --gateway, a DNS name included") {
  for (const auto& [gateway_text, host] : {std::pair{"gw.example.com:7000", "gw.example.com"},
                                           std::pair{"[2001:db8::7]:7000", "2001:db8::7"},
                                           std::pair{"203.0.113.7:7000", "203.0.113.7"},
                                           std::pair{"localhost:7000", "localhost"}}) {
    CAPTURE(gateway_text);
    auto r = agent_exact({"--gateway", gateway_text, "--token", "t", "--expose", "tcp:80=127.0.0.1:80", "--ca",
                          "/etc/ca.pem"});
    REQUIRE_MESSAGE(r.ok(), r.error);
    CHECK(r.config().server_name == host);
  }
  auto given = agent_exact({"--gateway", "gw.example.com:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80",
                            "--ca", "/etc/ca.pem", "--server-name", "other.example"});
  REQUIRE_MESSAGE(given.ok(), given.error);
  CHECK(given.config().server_name == "other.example");
}

TEST_CASE("agent: --retry-refused-ms, from the command line and the file") {
  auto r = agent(plus(kAgentBase, {"--retry-refused-ms", "100"}));
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().retry_refused_ms == 100);
  auto most = agent(plus(kAgentBase, {"--retry-refused-ms=86400000"}));
  REQUIRE_MESSAGE(most.ok(), most.error);
  CHECK(most.config().retry_refused_ms == 86400000);
  auto low = agent(plus(kAgentBase, {"--retry-refused-ms", "99"}));
  REQUIRE_FALSE(low.ok());
  CHECK(low.code() == Errc::kInvalidArgument);
  CHECK(low.error == "--retry-refused-ms: \"99\" is not a number in 100..86400000");
  test::TempFile file(R"({"retry_refused_ms": 2500})");
  auto json = agent(plus(kAgentBase, {"--config", file.path(), "--gateway-fingerprint", kTestFingerprint}));
  REQUIRE_MESSAGE(json.ok(), json.error);
  CHECK(json.config().retry_refused_ms == 2500);
  auto gateway_flag = gateway(plus(kGatewayBase, {"--retry-refused-ms", "1000"}));
  REQUIRE_FALSE(gateway_flag.ok());
  CHECK(gateway_flag.error == "unknown flag --retry-refused-ms (it is a ringtun-agent flag; see --help)");
  CHECK(contains(agent_usage(), "--retry-refused-ms N"));
  CHECK(contains(agent_usage(), "ask the gateway again this often for services it refused for now"));
  CHECK_FALSE(contains(gateway_usage(), "--retry-refused-ms"));
}

TEST_CASE("agent: --agent-id is checked like a service name") {
  auto bad = agent(plus(kAgentBase, {"--agent-id", "edge 1"}));
  REQUIRE_FALSE(bad.ok());
  CHECK(contains(bad.error, "--agent-id: \"edge 1\" is not a valid name (1..64 of A-Z a-z 0-9 . _ -)"));
  CHECK_FALSE(agent(plus(kAgentBase, {"--agent-id="})).ok());
  CHECK_FALSE(agent(plus(kAgentBase, {"--agent-id", std::string(65, 'a')})).ok());
  auto longest = agent(plus(kAgentBase, {"--agent-id", std::string(64, 'a')}));
  REQUIRE_MESSAGE(longest.ok(), longest.error);
  CHECK(longest.config().agent_id == std::string(64, 'a'));
}

TEST_CASE("agent: duplicate public ports and service names across --expose") {
  auto port = agent({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:web@8080=127.0.0.1:80", "--expose",
                     "tcp:api@8080=127.0.0.1:81"});
  REQUIRE_FALSE(port.ok());
  CHECK(port.code() == Errc::kInvalidArgument);
  CHECK(port.error ==
        "--expose \"tcp:api@8080=127.0.0.1:81\": public port 8080 is already exposed by --expose "
        "\"tcp:web@8080=127.0.0.1:80\"");
  auto name = agent({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:web@8080=127.0.0.1:80", "--expose",
                     "tcp:web@8081=127.0.0.1:81"});
  REQUIRE_FALSE(name.ok());
  CHECK(contains(name.error, "service name \"web\" is already used by --expose \"tcp:web@8080=127.0.0.1:80\""));
  // A default name can collide with an explicit one.
  auto implied = agent({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:tcp-81@8080=127.0.0.1:80",
                        "--expose", "tcp:81=127.0.0.1:81"});
  REQUIRE_FALSE(implied.ok());
  CHECK(contains(implied.error, "service name \"tcp-81\" is already used"));
}

TEST_CASE("parse_expose: accepted forms") {
  std::string error;
  auto plain = parse_expose("tcp:8080=127.0.0.1:80", &error);
  REQUIRE_MESSAGE(plain, error);
  CHECK(plain->name == "tcp-8080");
  CHECK(plain->public_port == 8080);
  CHECK(plain->local_text == "127.0.0.1:80");
  CHECK(plain->local.port() == 80);
  auto named = parse_expose("tcp:web.v2_A-1@1=[::1]:65535", &error);
  REQUIRE_MESSAGE(named, error);
  CHECK(named->name == "web.v2_A-1");
  CHECK(named->public_port == 1);
  CHECK(named->local.family() == AF_INET6);
  CHECK(named->local.port() == 65535);
  auto top = parse_expose("tcp:65535=localhost:1", &error);
  REQUIRE_MESSAGE(top, error);
  CHECK(top->local.is_loopback());
  auto longest = parse_expose("tcp:" + std::string(64, 'n') + "@80=127.0.0.1:80", &error);
  CHECK_MESSAGE(longest, error);
}

TEST_CASE("parse_expose: each mistake has its own message") {
  const std::string kFormat = ": expected tcp:[NAME@]PUBLIC_PORT=LOCAL_HOST:LOCAL_PORT";
  struct Case {
    std::string text;
    std::string message;
    Errc code;
  };
  const Case cases[] = {
      {"tcp:80", "--expose \"tcp:80\"" + kFormat, Errc::kParse},
      {"", "--expose \"\"" + kFormat, Errc::kParse},
      {"8080=127.0.0.1:80", "--expose \"8080=127.0.0.1:80\"" + kFormat, Errc::kParse},
      {"tcp:8080=80", "--expose \"tcp:8080=80\"" + kFormat, Errc::kParse},
      {"tcp:=127.0.0.1:80", "--expose \"tcp:=127.0.0.1:80\"" + kFormat, Errc::kParse},
      {"tcp:8080=", "--expose \"tcp:8080=\"" + kFormat, Errc::kParse},
      {"tcp:web@=127.0.0.1:80", "--expose \"tcp:web@=127.0.0.1:80\"" + kFormat, Errc::kParse},
      {"udp:53=127.0.0.1:53", "service type \"udp\" is not supported (tcp, http or tls)", Errc::kInvalidArgument},
      {"tcp:0=127.0.0.1:80", "public port \"0\" is not a number in 1..65535", Errc::kInvalidArgument},
      {"tcp:65536=127.0.0.1:80", "public port \"65536\" is not a number in 1..65535", Errc::kInvalidArgument},
      {"tcp:http=127.0.0.1:80", "public port \"http\" is not a number in 1..65535", Errc::kInvalidArgument},
      {"tcp:@80=127.0.0.1:80", "service name: \"\" is not a valid name", Errc::kInvalidArgument},
      {"tcp:my web@80=127.0.0.1:80", "service name: \"my web\" is not a valid name", Errc::kInvalidArgument},
      {"tcp:" + std::string(65, 'n') + "@80=127.0.0.1:80", "is not a valid name (1..64 of", Errc::kInvalidArgument},
      {"tcp:80=web.internal:80", "local address: \"web.internal:80\" is a host name; names are not resolved",
       Errc::kParse},
      {"tcp:80=127.0.0.1:0", "local address: \"127.0.0.1:0\" needs a port 1..65535", Errc::kInvalidArgument},
      {"tcp:80=127.0.0.1:99999", "local address: \"127.0.0.1:99999\" is not an address", Errc::kParse},
      {"tcp:80=:80", "local address: \":80\" has no host to connect to", Errc::kInvalidArgument},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string error;
    auto r = parse_expose(c.text, &error);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == c.code);
    CHECK(contains(error, c.message));
    CHECK(error.rfind("--expose \"", 0) == 0);
    CHECK(one_line(error));
  }
  // Through the command line, the same message.
  auto r = agent({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:80"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error == "--expose \"tcp:80\"" + kFormat);
}

TEST_CASE("parse_port_range: ranges, single ports and mistakes") {
  std::string error;
  auto range = parse_port_range("10000-20000", &error);
  REQUIRE_MESSAGE(range, error);
  CHECK(range->port_low == 10000);
  CHECK(range->port_high == 20000);
  auto single = parse_port_range("443", &error);
  REQUIRE_MESSAGE(single, error);
  CHECK(single->port_low == 443);
  CHECK(single->port_high == 443);
  auto full = parse_port_range("1-65535", &error);
  REQUIRE_MESSAGE(full, error);
  CHECK(full->port_low == 1);
  CHECK(full->port_high == 65535);
  CHECK(parse_port_range("7-7", &error));

  auto reversed = parse_port_range("20000-10000", &error);
  REQUIRE_FALSE(reversed);
  CHECK(reversed.error().code() == Errc::kInvalidArgument);
  CHECK(error == "--allow-ports: \"20000-10000\" is not a valid range: low port 20000 is above high port 10000");
  for (const char* bad : {"", "abc", "-", "1-", "-5", "0-5", "0", "1-65536", "1-2-3", "1 - 2", "80,443", "65536"}) {
    CAPTURE(bad);
    auto r = parse_port_range(bad, &error);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::kParse);
    CHECK(contains(error, "is not a port range (expected LO-HI or PORT, ports 1..65535)"));
  }
  auto via_flag = gateway(plus(kGatewayBase, {"--allow-ports", "9-1"}));
  REQUIRE_FALSE(via_flag.ok());
  CHECK(contains(via_flag.error, "low port 9 is above high port 1"));
}

TEST_CASE("quoted values in messages are cut and escaped") {
  std::string huge(10'000, 'x');
  auto r = gateway({"--listen", "0.0.0.0:7000", "--token", "t", "--threads", huge});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.size() < 200);
  CHECK(contains(r.error, "...\""));
  auto ctl = gateway({"--listen", "0.0.0.0:7000", "--token", "t", "--log-level", "a\tb\"c\\"});
  REQUIRE_FALSE(ctl.ok());
  CHECK(contains(ctl.error, "\"a\\x09b\\\"c\\\\\""));
}

// ---------------------------------------------------------------------------------------------------------------
// Help texts

TEST_CASE("help texts list every flag with its default and an example") {
  std::string_view g = gateway_usage();
  for (const char* part : {"ringtun-gateway " RINGTUN_VERSION,
                           "Usage: ringtun-gateway",
                           "--listen ADDR:PORT",
                           "--token SECRET",
                           "--allow-ports LO-HI",
                           "default 1-65535",
                           "--allow-hosts PATTERN[,PATTERN...]",
                           "--http-listen ADDR:PORT",
                           "--tls-listen ADDR:PORT",
                           "--http-head-timeout-ms N",
                           "--http-idle-timeout-ms N",
                           "default 60000",
                           "--tls-hello-timeout-ms N",
                           "--http-listen 0.0.0.0:80",
                           "\"allow_hosts\"",
                           "--max-streams N",
                           "default 1024",
                           "--config FILE",
                           "--threads N",
                           "default 0",
                           "--log-level LEVEL",
                           "default info",
                           "--heartbeat-ms N",
                           "default 5000",
                           "--dead-peer-ms N",
                           "default 15000",
                           "--drain-timeout-ms N",
                           "default 10000",
                           "-h, --help",
                           "-V, --version",
                           "--flag=value",
                           "Example:",
                           "ringtun-gateway --listen 0.0.0.0:7000 --token s3cret",
                           "\"tokens\""}) {
    CAPTURE(part);
    CHECK(contains(g, part));
  }
  std::string_view a = agent_usage();
  for (const char* part : {"ringtun-agent " RINGTUN_VERSION,
                           "Usage: ringtun-agent",
                           "--gateway HOST:PORT",
                           "--token SECRET",
                           "--expose KIND:[NAME@]PUBLIC=HOST:PORT",
                           "tcp:[NAME@]PORT=HOST:PORT",
                           "http:[NAME@]DOMAIN=HOST:PORT",
                           "tls:[NAME@]DOMAIN=HOST:PORT",
                           "default tcp-PORT",
                           "--upstream-max-idle N",
                           "default 32",
                           "--upstream-idle-ms N",
                           "--expose http:app.example.com=127.0.0.1:3000",
                           "--agent-id ID",
                           "default: the host name",
                           "--reconnect-max-ms N",
                           "default 30000",
                           "--connect-timeout-ms N",
                           "default 5000",
                           "--config FILE",
                           "--threads N",
                           "--log-level LEVEL",
                           "--heartbeat-ms N",
                           "--dead-peer-ms N",
                           "--drain-timeout-ms N",
                           "-h, --help",
                           "-V, --version",
                           "Example:",
                           "--expose tcp:web@8080=127.0.0.1:80",
                           "\"services\""}) {
    CAPTURE(part);
    CHECK(contains(a, part));
  }
  CHECK(g.back() == '\n');
  CHECK(a.back() == '\n');
  // The same storage every time (string_view into a static).
  CHECK(gateway_usage().data() == g.data());
}

TEST_CASE("the version comes from meson's project version") {
  CHECK(std::string(RINGTUN_VERSION) == "0.1.0");
}

// ---------------------------------------------------------------- TLS settings

TEST_CASE("tls: the agent must know how to verify the gateway") {
  auto r = agent_exact({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80"});
  REQUIRE_FALSE(r.ok());
  CHECK(contains(r.error, "--gateway-fingerprint or --ca: missing"));
  CHECK(contains(r.error, "--insecure-plaintext"));

  auto pinned = agent_exact({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80",
                             "--gateway-fingerprint", "SHA256:00"});
  REQUIRE_FALSE(pinned.ok());
  CHECK(contains(pinned.error, "--gateway-fingerprint"));

  auto colons = agent_exact({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80",
                             "--gateway-fingerprint",
                             "sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:"
                             "bb:cc:dd:ee:ff"});
  REQUIRE_MESSAGE(colons.ok(), colons.error);
  CHECK(colons.config().gateway_fingerprint == kTestFingerprint);
  CHECK(colons.config().server_name == "127.0.0.1");  // default: --gateway's host

  auto short_pin = agent_exact({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80",
                                "--gateway-fingerprint", "sha256:0011"});
  REQUIRE_FALSE(short_pin.ok());
  CHECK(contains(short_pin.error, "64 hex digits"));

  auto plain = agent_exact({"--gateway", "[::1]:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80",
                            "--insecure-plaintext"});
  REQUIRE_MESSAGE(plain.ok(), plain.error);
  CHECK(plain.config().common.insecure_plaintext);

  auto ca = agent_exact({"--gateway", "[::1]:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80", "--ca",
                         "/etc/ca.pem"});
  REQUIRE_MESSAGE(ca.ok(), ca.error);
  CHECK(ca.config().server_name == "::1");
}

TEST_CASE("tls: contradictory settings are refused with a message") {
  auto both = agent({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80",
                     "--insecure-plaintext", "--ca", "/x.pem"});
  REQUIRE_FALSE(both.ok());
  CHECK(contains(both.error, "--insecure-plaintext: cannot be combined"));

  auto value = agent({"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:80=127.0.0.1:80",
                      "--insecure-plaintext=yes"});
  REQUIRE_FALSE(value.ok());
  CHECK(contains(value.error, "--insecure-plaintext takes no value"));

  auto half = gateway({"--listen", "0.0.0.0:7000", "--token", "t", "--cert", "/c.pem"});
  REQUIRE_FALSE(half.ok());
  CHECK(contains(half.error, "--cert: given without --key"));

  auto plain_cert = gateway({"--listen", "0.0.0.0:7000", "--token", "t", "--cert", "/c.pem", "--key", "/k.pem",
                             "--insecure-plaintext"});
  REQUIRE_FALSE(plain_cert.ok());
  CHECK(contains(plain_cert.error, "cannot be combined"));

  auto agent_flag = gateway({"--listen", "0.0.0.0:7000", "--token", "t", "--ca", "/c.pem"});
  REQUIRE_FALSE(agent_flag.ok());
  CHECK(contains(agent_flag.error, "ringtun-agent flag"));

  auto ok = gateway({"--listen", "0.0.0.0:7000", "--token", "t", "--cert", "/c.pem", "--key", "/k.pem",
                     "--client-ca", "/ca.pem", "--state-dir", "/var/lib/x"});
  REQUIRE_MESSAGE(ok.ok(), ok.error);
  CHECK(ok.config().common.cert_file == "/c.pem");
  CHECK(ok.config().client_ca_file == "/ca.pem");
}
