// The --config JSON file: happy paths, flags overriding the file, every error class with its message (syntax with
// line and column, unknown and duplicate keys, wrong types, ranges, size), and hostile input.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../common/sample_configs.hpp"
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

using ringtun::samples::kAgentJson;
using ringtun::samples::kGatewayJson;

// Parses `json` as the gateway's --config, with `more` flags after it.
test::Outcome<GatewayConfig> gateway_file(const TempFile& file, std::vector<std::string> more = {}) {
  more.insert(more.begin(), {"--config", file.path()});
  return gateway(more);
}

test::Outcome<AgentConfig> agent_file(const TempFile& file, std::vector<std::string> more = {}) {
  more.insert(more.begin(), {"--config", file.path()});
  return agent(more);
}

// The message without the "<path>: " prefix, after checking the prefix is there.
std::string after_path(const std::string& error, const TempFile& file) {
  REQUIRE_MESSAGE(error.rfind(file.path() + ": ", 0) == 0, error);
  return error.substr(file.path().size() + 2);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Happy paths and overrides

TEST_CASE("json: a full gateway file") {
  TempFile file(kGatewayJson);
  auto r = gateway_file(file);
  REQUIRE_MESSAGE(r.ok(), r.error);
  const GatewayConfig& c = r.config();
  CHECK(c.listen_text == "0.0.0.0:7000");
  CHECK(c.listen.port() == 7000);
  REQUIRE(c.tokens.size() == 2);
  CHECK(c.tokens[0].secret == "s3cret");
  CHECK(c.tokens[0].port_low == 10000);
  CHECK(c.tokens[0].port_high == 20000);
  CHECK(c.tokens[1].secret == "other");
  CHECK(c.tokens[1].port_low == 1);
  CHECK(c.tokens[1].port_high == 65535);
  CHECK(c.max_streams_per_connection == 512);
  CHECK(c.common.threads == 2);
  CHECK(c.common.log_level == log::Level::kDebug);
  CHECK(c.common.heartbeat_ms == 1000);
  CHECK(c.common.dead_peer_ms == 3000);
  CHECK(c.common.drain_timeout_ms == 0);
}

TEST_CASE("json: a full agent file") {
  TempFile file(kAgentJson);
  auto r = agent_file(file);
  REQUIRE_MESSAGE(r.ok(), r.error);
  const AgentConfig& c = r.config();
  CHECK(c.gateway_text == "127.0.0.1:7000");
  CHECK(c.gateway_host == "127.0.0.1");
  CHECK(c.gateway_port == 7000);
  CHECK(c.token == "s3cret");
  CHECK(c.agent_id == "edge-1");
  REQUIRE(c.services.size() == 2);
  CHECK(c.services[0].name == "web");
  CHECK(c.services[0].public_port == 8080);
  CHECK(c.services[0].local_text == "127.0.0.1:80");
  CHECK(c.services[0].local.port() == 80);
  CHECK(c.services[1].name == "tcp-2222");
  CHECK(c.services[1].local.family() == AF_INET6);
  CHECK(c.reconnect_max_ms == 1000);
  CHECK(c.connect_timeout_ms == 200);
  CHECK(c.retry_refused_ms == 5000);
  CHECK(c.common.threads == 1);
  CHECK(c.common.log_level == log::Level::kError);
  CHECK(c.common.heartbeat_ms == 100);
  CHECK(c.common.dead_peer_ms == 1000);
  CHECK(c.common.drain_timeout_ms == 5);
}

TEST_CASE("json: the gateway by DNS name, and the server name it implies") {
  TempFile file(R"({"gateway": "gw.example.com:7000", "token": "t", "ca": "/etc/ca.pem",
                    "services": [{"public_port": 80, "local": "127.0.0.1:80"}]})");
  auto r = agent_file(file);
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().gateway_host == "gw.example.com");
  CHECK(r.config().gateway_port == 7000);
  CHECK(r.config().gateway_text == "gw.example.com:7000");
  CHECK(r.config().server_name == "gw.example.com");
}

TEST_CASE("json: a UTF-8 byte-order mark and non-ASCII text are accepted") {
  TempFile file("\xEF\xBB\xBF{\"listen\": \"0.0.0.0:7000\", \"tokens\": [{\"token\": \"p\xC3\xA4ss\\u00e9\"}]}");
  auto r = gateway_file(file);
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().tokens[0].secret == "p\xC3\xA4ss\xC3\xA9");
}

TEST_CASE("json: flags override the file whatever their position") {
  TempFile file(kGatewayJson);
  const std::vector<std::vector<std::string>> lines = {
      {"--threads", "4", "--config", file.path(), "--max-streams=9"},
      {"--config", file.path(), "--threads", "4", "--max-streams=9"},
      {"--max-streams=9", "--threads=4", "--config=" + file.path()},
  };
  for (const auto& line : lines) {
    auto r = gateway(line);
    REQUIRE_MESSAGE(r.ok(), r.error);
    CHECK(r.config().common.threads == 4);                     // flag
    CHECK(r.config().max_streams_per_connection == 9);         // flag
    CHECK(r.config().common.log_level == log::Level::kDebug);  // file
    CHECK(r.config().listen_text == "0.0.0.0:7000");           // file
    CHECK(r.config().tokens.size() == 2);                      // file
  }
  // The first --token replaces the file's tokens (no merging of two lists).
  auto tokens = gateway({"--token", "cli", "--allow-ports", "5-6", "--config", file.path()});
  REQUIRE_MESSAGE(tokens.ok(), tokens.error);
  REQUIRE(tokens.config().tokens.size() == 1);
  CHECK(tokens.config().tokens[0].secret == "cli");
  CHECK(tokens.config().tokens[0].port_low == 5);
  // --allow-ports still needs a --token on the command line, even when the file has tokens.
  auto orphan = gateway({"--config", file.path(), "--allow-ports", "5-6"});
  REQUIRE_FALSE(orphan.ok());
  CHECK(contains(orphan.error, "before any --token"));

  TempFile agent_json(kAgentJson);
  auto services = agent({"--expose", "tcp:9=127.0.0.1:9", "--config", agent_json.path(), "--agent-id", "x"});
  REQUIRE_MESSAGE(services.ok(), services.error);
  REQUIRE(services.config().services.size() == 1);
  CHECK(services.config().services[0].public_port == 9);
  CHECK(services.config().agent_id == "x");
  CHECK(services.config().token == "s3cret");
  // A flag's value is checked even though the file has a valid one.
  auto bad = agent({"--config", agent_json.path(), "--threads", "many"});
  REQUIRE_FALSE(bad.ok());
  CHECK(contains(bad.error, "--threads: \"many\" is not a number"));
}

TEST_CASE("json: a partial file is completed by flags, and checks run on the merged result") {
  TempFile file(R"({"tokens": [{"token": "a"}]})");
  auto missing = gateway_file(file);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error.rfind("--listen: missing", 0) == 0);
  auto completed = gateway_file(file, {"--listen", "127.0.0.1:7000"});
  REQUIRE_MESSAGE(completed.ok(), completed.error);
  TempFile empty_tokens(R"({"listen": "0.0.0.0:7000", "tokens": []})");
  auto no_tokens = gateway_file(empty_tokens);
  REQUIRE_FALSE(no_tokens.ok());
  CHECK(no_tokens.error.rfind("--token: missing", 0) == 0);
  TempFile timing(R"({"heartbeat_ms": 9000, "dead_peer_ms": 9000})");
  auto slow = gateway_file(timing, {"--listen", "0.0.0.0:7000", "--token", "a"});
  REQUIRE_FALSE(slow.ok());
  CHECK(contains(slow.error, "--dead-peer-ms: 9000 must be greater than --heartbeat-ms (9000)"));
}

// ---------------------------------------------------------------------------------------------------------------
// Errors in the content

struct ContentCase {
  const char* json;
  const char* message;  // after "<path>: "
  Errc code;
};

TEST_CASE("json: gateway keys, types and ranges") {
  const ContentCase cases[] = {
      {R"({"lisen": "0.0.0.0:7000"})", "unknown key \"lisen\" at the top level", Errc::kParse},
      {R"({"max-streams": 5})", "unknown key \"max-streams\" at the top level (keys use _ where flags use -)",
       Errc::kParse},
      {R"({"gateway": "1.2.3.4:7000"})", "unknown key \"gateway\" at the top level (it is a ringtun-agent setting)",
       Errc::kParse},
      {R"({"token": "a"})", "unknown key \"token\" at the top level (use \"tokens\"", Errc::kParse},
      {R"({"config": "other.json"})", "unknown key \"config\" at the top level", Errc::kParse},
      {R"({"help": true})", "unknown key \"help\" at the top level", Errc::kParse},
      {R"({"listen": "0.0.0.0:7000", "listen": "0.0.0.0:7001"})", "duplicate key \"listen\" at the top level",
       Errc::kParse},
      {R"({"threads": "2"})", "threads: expected an integer 1..1024 (or 0 for all CPUs), got a string", Errc::kParse},
      {R"({"threads": 2.0})", "threads: expected an integer 1..1024 (or 0 for all CPUs), got a number with a fraction",
       Errc::kParse},
      {R"({"threads": 1e2})", "got a number with a fraction or exponent", Errc::kParse},
      {R"({"threads": null})", "threads: expected an integer 1..1024 (or 0 for all CPUs), got null", Errc::kParse},
      {R"({"threads": true})", "threads: expected an integer 1..1024 (or 0 for all CPUs), got true", Errc::kParse},
      {R"({"threads": []})", "threads: expected an integer 1..1024 (or 0 for all CPUs), got an array", Errc::kParse},
      {R"({"threads": {}})", "threads: expected an integer 1..1024 (or 0 for all CPUs), got an object", Errc::kParse},
      {R"({"threads": -1})", "threads: expected an integer 1..1024 (or 0 for all CPUs), got -1",
       Errc::kInvalidArgument},
      {R"({"threads": 5000})", "threads: expected an integer 1..1024 (or 0 for all CPUs), got 5000",
       Errc::kInvalidArgument},
      {R"({"threads": 18446744073709551615})", "got 18446744073709551615", Errc::kInvalidArgument},
      {R"({"threads": -9223372036854775808})", "got -9223372036854775808", Errc::kInvalidArgument},
      {R"({"max_streams": 0})", "max_streams: expected an integer 1..1048576, got 0", Errc::kInvalidArgument},
      {R"({"heartbeat_ms": 0})", "heartbeat_ms: expected an integer 1..86400000, got 0", Errc::kInvalidArgument},
      {R"({"listen": 7000})", "listen: expected a string, got 7000", Errc::kParse},
      {R"({"listen": "gw.example.com:7000"})",
       "listen: \"gw.example.com:7000\" is a host name; names are not resolved: use a numeric address", Errc::kParse},
      {R"({"log_level": "loud"})", "log_level: \"loud\" is not one of trace|debug|info|warn|error|off", Errc::kParse},
      {R"({"tokens": "a"})", "tokens: expected an array [{\"token\": ...", Errc::kParse},
      {R"({"tokens": {"token": "a"}})", "tokens: expected an array", Errc::kParse},
      {R"({"tokens": ["a"]})",
       "tokens[0]: expected an object {\"token\": ..., \"allow_ports\": ..., \"allow_hosts\": [...], \"allow_from\": "
       "[...], ...}, got a string",
       Errc::kParse},
      {R"({"tokens": [{"token": "a", "allow_port": "1-2"}]})", "unknown key \"allow_port\" in tokens[0]", Errc::kParse},
      {R"({"tokens": [{"token": "a"}, {"token": "b", "token": "c"}]})", "duplicate key \"token\" in tokens[1]",
       Errc::kParse},
      {R"({"tokens": [{"allow_ports": "1-2"}]})", "tokens[0]: missing \"token\"", Errc::kInvalidArgument},
      {R"({"tokens": [{"token": ""}]})", "tokens[0].token: empty", Errc::kInvalidArgument},
      {R"({"tokens": [{"token": 5}]})", "tokens[0].token: expected a string, got 5", Errc::kParse},
      {R"({"tokens": [{"token": "a"}, {"token": "b"}, {"token": "a"}]})",
       "tokens[2].token: the same secret as tokens[0]", Errc::kInvalidArgument},
      {R"({"tokens": [{"token": "a", "allow_ports": "20000-10000"}]})",
       "tokens[0].allow_ports: \"20000-10000\" is not a valid range: low port 20000 is above high port 10000",
       Errc::kInvalidArgument},
      {R"({"tokens": [{"token": "a", "allow_ports": "1-99999"}]})",
       "tokens[0].allow_ports: \"1-99999\" is not a port range", Errc::kParse},
      {R"({"tokens": [{"token": "a", "allow_ports": 80}]})", "tokens[0].allow_ports: expected a string, got 80",
       Errc::kParse},
      {R"([])", "expected a JSON object {...} at the top level, got an array", Errc::kParse},
      {R"("listen")", "expected a JSON object {...} at the top level, got a string", Errc::kParse},
      {R"(42)", "expected a JSON object {...} at the top level, got 42", Errc::kParse},
  };
  for (const ContentCase& c : cases) {
    std::string json(c.json);
    CAPTURE(json);
    TempFile file(c.json);
    auto r = gateway_file(file, {"--listen", "0.0.0.0:7000", "--token", "t"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == c.code);
    CHECK_MESSAGE(contains(after_path(r.error, file), c.message), r.error);
    CHECK(one_line(r.error));
  }
  // The secret never appears in a message.
  TempFile dup(R"({"tokens": [{"token": "hunter2"}, {"token": "hunter2"}]})");
  CHECK_FALSE(contains(gateway_file(dup).error, "hunter2"));
}

TEST_CASE("json: agent keys, types and ranges") {
  const ContentCase cases[] = {
      {R"({"services": [{"public_port": 80, "local": "127.0.0.1:80"}, {"public_port": 70000, "local": "127.0.0.1:81"}]})",
       "services[1].public_port: expected an integer 1..65535, got 70000", Errc::kInvalidArgument},
      {R"({"services": [{"public_port": "8080", "local": "127.0.0.1:80"}]})",
       "services[0].public_port: expected an integer 1..65535, got a string", Errc::kParse},
      {R"({"services": [{"public_port": 0, "local": "127.0.0.1:80"}]})",
       "services[0].public_port: expected an integer 1..65535, got 0", Errc::kInvalidArgument},
      {R"({"services": [{"local": "127.0.0.1:80"}]})", "services[0]: missing \"public_port\"", Errc::kInvalidArgument},
      {R"({"services": [{"public_port": 80}]})", "services[0]: missing \"local\"", Errc::kInvalidArgument},
      {R"({"services": [{"public_port": 80, "local": "127.0.0.1:80", "type": "udp"}]})",
       "services[0].type: \"udp\" is not supported (\"tcp\", \"http\" or \"tls\")", Errc::kInvalidArgument},
      {R"({"services": [{"public_port": 80, "local": "127.0.0.1:80", "type": 6}]})",
       "services[0].type: expected a string, got 6", Errc::kParse},
      {R"({"services": [{"public_port": 80, "local": "127.0.0.1:80", "name": "a b"}]})",
       "services[0].name: \"a b\" is not a valid name (1..64 of A-Z a-z 0-9 . _ -)", Errc::kInvalidArgument},
      {R"({"services": [{"public_port": 80, "local": "web:80"}]})",
       "services[0].local: \"web:80\" is a host name; names are not resolved", Errc::kParse},
      {R"({"services": [{"public_port": 80, "local": "127.0.0.1:0"}]})",
       "services[0].local: \"127.0.0.1:0\" needs a port 1..65535", Errc::kInvalidArgument},
      {R"({"services": [{"public_port": 80, "local": 80}]})", "services[0].local: expected a string, got 80",
       Errc::kParse},
      {R"({"services": [{"name": "web", "public_port": 8080, "local": "127.0.0.1:80"}, {"name": "api", "public_port": 8080, "local": "127.0.0.1:81"}]})",
       "services[1].public_port: 8080 is already used by services[0]", Errc::kInvalidArgument},
      {R"({"services": [{"name": "web", "public_port": 8080, "local": "127.0.0.1:80"}, {"name": "web", "public_port": 8081, "local": "127.0.0.1:81"}]})",
       "services[1].name: \"web\" is already used by services[0]", Errc::kInvalidArgument},
      {R"({"services": [{"name": "tcp-81", "public_port": 8080, "local": "127.0.0.1:80"}, {"public_port": 81, "local": "127.0.0.1:81"}]})",
       "services[1]: default name \"tcp-81\" is already used by services[0]", Errc::kInvalidArgument},
      {R"({"services": [{"public_port": 80, "local": "127.0.0.1:80", "port": 1}]})",
       "unknown key \"port\" in services[0]", Errc::kParse},
      {R"({"services": [{"public_port": 80, "public_port": 81, "local": "127.0.0.1:80"}]})",
       "duplicate key \"public_port\" in services[0]", Errc::kParse},
      {R"({"services": [80]})", "services[0]: expected an object", Errc::kParse},
      {R"({"services": "tcp:80=127.0.0.1:80"})", "services: expected an array", Errc::kParse},
      {R"({"expose": ["tcp:80=127.0.0.1:80"]})", "unknown key \"expose\" at the top level (use \"services\"",
       Errc::kParse},
      {R"({"listen": "0.0.0.0:7000"})", "unknown key \"listen\" at the top level (it is a ringtun-gateway setting)",
       Errc::kParse},
      {R"({"gateway": "gw_1.example.com:7000"})",
       "gateway: \"gw_1.example.com:7000\": the host name has a character that is not allowed: \"_\"", Errc::kParse},
      {R"({"gateway": "gw.example.com"})", "gateway: \"gw.example.com\" has no port", Errc::kParse},
      {R"({"gateway": "0.0.0.0:7000"})", "gateway: \"0.0.0.0:7000\" has no host to connect to", Errc::kInvalidArgument},
      {R"({"token": ""})", "token: empty", Errc::kInvalidArgument},
      {R"({"token": ["a"]})", "token: expected a string, got an array", Errc::kParse},
      {R"({"agent_id": "edge/1"})", "agent_id: \"edge/1\" is not a valid name", Errc::kInvalidArgument},
      {R"({"reconnect_max_ms": 0})", "reconnect_max_ms: expected an integer 1..86400000, got 0",
       Errc::kInvalidArgument},
      {R"({"connect_timeout_ms": 1.5})", "connect_timeout_ms: expected an integer 1..86400000", Errc::kParse},
      {R"({"retry_refused_ms": 99})", "retry_refused_ms: expected an integer 100..86400000, got 99",
       Errc::kInvalidArgument},
  };
  for (const ContentCase& c : cases) {
    std::string json(c.json);
    CAPTURE(json);
    TempFile file(c.json);
    auto r = agent_file(file, {"--gateway", "127.0.0.1:7000", "--token", "t", "--expose", "tcp:1=127.0.0.1:1"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == c.code);
    CHECK_MESSAGE(contains(after_path(r.error, file), c.message), r.error);
    CHECK(one_line(r.error));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Syntax errors: line, column and reason

TEST_CASE("json: syntax errors name line, column and the reason") {
  struct Case {
    const char* json;
    const char* message;  // after "<path>: "
  };
  const Case cases[] = {
      {"{\n  \"listen\": \"0.0.0.0:7000\",\n  \"threads\": 2,\n}",
       "line 4, column 1: invalid JSON (trailing comma before '}')"},
      {"{\"tokens\": [{\"token\": \"a\"},]}", "line 1, column 28: invalid JSON (trailing comma before ']')"},
      {"{\n  \"listen\": \"0.0.0.0:7000\"\n  \"threads\": 2\n}",
       "line 3, column 3: invalid JSON (expected ',' or '}' after a member (missing comma?))"},
      {"{\"tokens\": [{\"token\": \"a\"} {\"token\": \"b\"}]}",
       "line 1, column 28: invalid JSON (expected ',' or ']' after an element (missing comma?))"},
      {"{\"threads\" 2}", "line 1, column 12: invalid JSON (expected ':' after the key)"},
      {"{\n  \"listen\": \"0.0.0.0:7000\n}", "line 2, column 13: invalid JSON (unterminated string"},
      {"{\"listen\": \"0.0.0.0:7000", "line 1, column 12: invalid JSON (unterminated string)"},
      {"{'listen': 1}", "line 1, column 2: invalid JSON (strings need double quotes, not single quotes)"},
      {"{\"threads\": 'x'}", "line 1, column 13: invalid JSON (strings need double quotes, not single quotes)"},
      {"{listen: 1}", "line 1, column 2: invalid JSON (expected a key in double quotes)"},
      {"{\n  // the port\n  \"listen\": \"0.0.0.0:7000\"\n}",
       "line 2, column 3: invalid JSON (comments are not allowed in JSON)"},
      {"", "line 1, column 1: invalid JSON (the document is empty)"},
      {"  \n\t ", "line 2, column 3: invalid JSON (the document is empty)"},
      {"{} {}", "line 1, column 4: invalid JSON (unexpected content after the end of the document)"},
      {"{\"threads\": 1}\n,", "line 2, column 1: invalid JSON (unexpected content after the end of the document)"},
      {"{\"threads\": 01}", "line 1, column 13: invalid JSON (invalid number: numbers cannot have leading zeros)"},
      {"{\"threads\": 1.}", "line 1, column 13: invalid JSON (invalid number: expected a digit after '.')"},
      {"{\"threads\": -}", "line 1, column 13: invalid JSON (invalid number: expected a digit after '-')"},
      {"{\"threads\": 1e}", "line 1, column 13: invalid JSON (invalid number: expected a digit in the exponent)"},
      {"{\"threads\": 123456789012345678901234}",
       "line 1, column 13: invalid JSON (invalid number: number out of range)"},
      {"{\"threads\": -9223372036854775809}", "line 1, column 13: invalid JSON (invalid number: number out of range)"},
      {"{\"threads\": 1e400}", "line 1, column 13: invalid JSON (invalid number: number out of range)"},
      {"{\"threads\": +1}", "line 1, column 13: invalid JSON (expected a value"},
      {"{\"threads\": True}", "line 1, column 13: invalid JSON (expected a value (true, false and null are lower case"},
      {"{\"threads\": nul}", "line 1, column 13: invalid JSON (expected a value (true, false and null"},
      {"{\"listen\": localhost}", "line 1, column 12: invalid JSON (expected a value (strings need double quotes))"},
      {"{\"threads\": NULL}", "line 1, column 13: invalid JSON (expected a value (true, false and null"},
      {"{\"listen\": \"a\\x\"}", "line 1, column 14: invalid JSON (invalid escape"},
      {"{\"listen\": \"\\u12\"}", "line 1, column 13: invalid JSON (\\u needs four hex digits)"},
      {"{\"listen\": \"\\ud800\"}", "line 1, column 13: invalid JSON (unpaired UTF-16 surrogate escape)"},
      {"{\"listen\": \"\\udc00\\ud800\"}", "line 1, column 13: invalid JSON (unpaired UTF-16 surrogate escape)"},
      {"{\"listen\": \"a\tb\"}", "line 1, column 14: invalid JSON (control character 0x09 inside a string"},
      {"{\"listen\": \"\xC3\xA9\", x}", "line 1, column 17: invalid JSON (expected a key in double quotes)"},
      {"{\"listen\": \"a\xFF\"}", "line 1, column 14: invalid JSON (invalid UTF-8)"},
      {"{\"listen\": \"\xC0\xAF\"}", "line 1, column 13: invalid JSON (invalid UTF-8)"},          // overlong '/'
      {"{\"listen\": \"\xED\xA0\x80\"}", "line 1, column 13: invalid JSON (invalid UTF-8)"},      // encoded surrogate
      {"{\"listen\": \"\xF4\x90\x80\x80\"}", "line 1, column 13: invalid JSON (invalid UTF-8)"},  // above U+10FFFF
      {"{\"li\xFFsten\": 1}", "line 1, column 5: invalid JSON (invalid UTF-8)"},
      {"{\"threads\": 1", "line 1, column 14: invalid JSON (unexpected end of the document: missing '}')"},
      {"{\"tokens\": [", "line 1, column 13: invalid JSON (unexpected end of the document"},
      {"{\"threads\":", "line 1, column 12: invalid JSON (unexpected end of the document)"},
      {"}", "line 1, column 1: invalid JSON (expected a value"},
  };
  for (const Case& c : cases) {
    std::string json(c.json);
    CAPTURE(json);
    TempFile file(c.json);
    auto r = gateway_file(file);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == Errc::kParse);
    CHECK_MESSAGE(contains(after_path(r.error, file), c.message), r.error);
    CHECK(one_line(r.error));
  }
  // A NUL byte in the middle of the file.
  TempFile nul(std::string("{\"threads\": 1\0}", 15));
  auto r = gateway_file(nul);
  REQUIRE_FALSE(r.ok());
  CHECK(contains(after_path(r.error, nul), "line 1, column 14: invalid JSON (expected ',' or '}'"));
}

TEST_CASE("json: a long path is named whole in the message, not cut") {
  // A deep checkout or state directory is ordinary: the message must still say which file.
  std::string dir = "/tmp/ringtun_config_test_" + std::string(120, 'd');
  REQUIRE((::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST));
  const std::string path = dir + "/agent.json";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("{\n  \"threads\": 2,\n  oops\n}\n", f);
    std::fclose(f);
  }
  auto r = gateway({"--config", path});
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(contains(r.error, path + ": line 3, column 3: invalid JSON"), r.error);
}

// ---------------------------------------------------------------------------------------------------------------
// The file itself, and hostile input

TEST_CASE("json: unreadable, missing and repeated --config") {
  auto missing = gateway({"--config", "/tmp/ringtun-config-test-no-such-file.json"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.code() == Errc::kSystem);
  CHECK(missing.error == "/tmp/ringtun-config-test-no-such-file.json: cannot open: No such file or directory");
  auto dir = gateway({"--config", "/tmp"});
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.error == "/tmp: cannot read: Is a directory");
  auto empty = gateway({"--config="});
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error == "--config: expected a file name");
  TempFile file(kGatewayJson);
  auto twice = gateway({"--config", file.path(), "--config", file.path()});
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error == "--config: given more than once");
}

TEST_CASE("json: the 1 MiB cap") {
  const std::string body = R"({"listen": "0.0.0.0:7000", "tokens": [{"token": "a"}]})";
  std::string exact(app::detail::kMaxConfigFileBytes - body.size(), ' ');
  exact += body;
  REQUIRE(exact.size() == 1u << 20);
  TempFile at_cap(exact);
  auto ok = gateway_file(at_cap);
  CHECK_MESSAGE(ok.ok(), ok.error);

  TempFile over(" " + exact);
  auto r = gateway_file(over);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == Errc::kInvalidArgument);
  CHECK(contains(after_path(r.error, over), "config too large (over 1 MiB"));

  std::string two_mib = "{\"tokens\": [";
  while (two_mib.size() < (2u << 20)) two_mib += "{\"token\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},";
  two_mib += "{\"token\": \"end\"}]}";
  TempFile huge(two_mib);
  auto big = gateway_file(huge);
  REQUIRE_FALSE(big.ok());
  CHECK(contains(big.error, "config too large"));

  // A device that never ends.
  auto zero = gateway({"--config", "/dev/zero"});
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error == "/dev/zero: config too large (over 1 MiB; a config is a few hundred bytes)");
}

TEST_CASE("json: many entries just under the cap load in linear time") {
  std::string doc = "{\"listen\": \"0.0.0.0:7000\", \"tokens\": [";
  int count = 0;
  while (doc.size() < app::detail::kMaxConfigFileBytes - 100) {
    if (count > 0) doc += ',';
    doc += "{\"token\": \"t" + std::to_string(count++) + "\"}";
  }
  doc += "]}";
  TempFile file(doc);
  auto r = gateway_file(file);
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().tokens.size() == static_cast<std::size_t>(count));
  CHECK(count > 40000);
}

TEST_CASE("json: deep nesting is refused cleanly") {
  struct Case {
    std::string json;
    const char* message;
  };
  std::string objects = "{\"listen\": ";
  for (int i = 0; i < 10000; ++i) objects += "{\"a\": ";
  const Case cases[] = {
      {std::string(10000, '['), "line 1, column 33: invalid JSON (nested deeper than 32 levels)"},
      {std::string(10000, '[') + std::string(10000, ']'), "line 1, column 33: invalid JSON (nested deeper than 32"},
      {objects, "line 1, column 198: invalid JSON (nested deeper than 32 levels)"},
      {std::string(10000, ']'), "line 1, column 1: invalid JSON (expected a value"},
      {std::string(10000, '{'), "line 1, column 2: invalid JSON (expected a key in double quotes)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    TempFile file(c.json);
    auto r = gateway_file(file);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == Errc::kParse);
    CHECK_MESSAGE(contains(after_path(r.error, file), c.message), r.error);
  }
}

TEST_CASE("json: seeded binary garbage gives a clean one-line parse error") {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string junk(1 + rng() % 8192, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (round % 4 == 0) junk[0] = '{';  // get past the first byte sometimes
    TempFile file(junk);
    auto r = gateway_file(file);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == Errc::kParse);
    CHECK(one_line(r.error));
    CHECK(r.error.size() < 400);
  }
}

TEST_CASE("json: hostile keys and values are escaped and cut in messages") {
  TempFile control(R"({"a\u0000\nb\"": 1})");
  auto r = gateway_file(control);
  REQUIRE_FALSE(r.ok());
  CHECK(contains(after_path(r.error, control), "unknown key \"a\\x00\\x0ab\\\"\" at the top level"));
  CHECK(one_line(r.error));

  TempFile long_key("{\"" + std::string(100000, 'k') + "\": 1}");
  auto l = gateway_file(long_key);
  REQUIRE_FALSE(l.ok());
  CHECK(contains(l.error, "unknown key \"kkkk"));
  CHECK(l.error.size() < 300);

  TempFile long_value("{\"listen\": \"" + std::string(100000, '9') + "\"}");
  auto v = gateway_file(long_value);
  REQUIRE_FALSE(v.ok());
  CHECK(v.error.size() < 400);
  CHECK(one_line(v.error));
}

TEST_CASE("json: TLS settings") {
  TempFile file(kAgentJson);
  auto r = agent_file(file);
  REQUIRE_MESSAGE(r.ok(), r.error);
  CHECK(r.config().gateway_fingerprint ==
        "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");  // canonical: lower case

  TempFile plain(R"({"gateway": "127.0.0.1:7000", "token": "t", "insecure_plaintext": true,
                     "services": [{"public_port": 80, "local": "127.0.0.1:80"}]})");
  auto p = agent_file(plain);
  REQUIRE_MESSAGE(p.ok(), p.error);
  CHECK(p.config().common.insecure_plaintext);

  TempFile wrong_type(R"({"listen": "0.0.0.0:7000", "tokens": [{"token": "t"}], "insecure_plaintext": "yes"})");
  auto w = gateway_file(wrong_type);
  REQUIRE_FALSE(w.ok());
  CHECK(contains(w.error, "insecure_plaintext: expected true or false"));

  TempFile certs(R"({"listen": "0.0.0.0:7000", "tokens": [{"token": "t"}], "cert": "/c.pem", "key": "/k.pem",
                     "client_ca": "/ca.pem", "state_dir": "/tmp/x"})");
  auto c = gateway_file(certs);
  REQUIRE_MESSAGE(c.ok(), c.error);
  CHECK(c.config().common.key_file == "/k.pem");
  CHECK(c.config().state_dir == "/tmp/x");
}
