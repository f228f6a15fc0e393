// Secrets from files and the environment: --token-file on both programs, "token_file" in the agent's JSON,
// RINGTUN_TOKEN, the --token warning; and the example configs under dist/examples, which must load.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "app/config.hpp"
#include "app/secret_file.hpp"
#include "config_test_support.hpp"

namespace ringtun::app {
namespace {

using test::agent;
using test::gateway;
using test::TempFile;

// Sets RINGTUN_TOKEN (or clears it) for one test case, and puts back what was there.
class TokenVariable {
 public:
  explicit TokenVariable(const char* value) {
    if (const char* old = ::getenv("RINGTUN_TOKEN"); old != nullptr) old_ = old, had_ = true;
    if (value != nullptr) {
      ::setenv("RINGTUN_TOKEN", value, 1);
    } else {
      ::unsetenv("RINGTUN_TOKEN");
    }
  }
  ~TokenVariable() {
    if (had_) {
      ::setenv("RINGTUN_TOKEN", old_.c_str(), 1);
    } else {
      ::unsetenv("RINGTUN_TOKEN");
    }
  }
  TokenVariable(const TokenVariable&) = delete;
  TokenVariable& operator=(const TokenVariable&) = delete;

 private:
  std::string old_;
  bool had_ = false;
};

TEST_CASE("read_secret_file: trailing whitespace trimmed, empty / large / missing / directory refused") {
  std::string error;
  {
    TempFile file("s3cret \t\r\n\n");
    auto secret = read_secret_file(file.path(), "--token-file", &error);
    REQUIRE(secret.has_value());
    CHECK(*secret == "s3cret");
  }
  {
    TempFile file("  lead stays");  // only the end is trimmed: leading spaces would be a deliberate part
    auto secret = read_secret_file(file.path(), "--token-file", &error);
    REQUIRE(secret.has_value());
    CHECK(*secret == "  lead stays");
  }
  {
    TempFile file(" \n\n");
    CHECK_FALSE(read_secret_file(file.path(), "--token-file", &error).has_value());
    CHECK(error == "--token-file: " + file.path() + ": empty");
  }
  {
    TempFile file(std::string(kMaxSecretFileBytes, 'a'));  // exactly the cap: accepted
    CHECK(read_secret_file(file.path(), "--token-file", &error).has_value());
    TempFile big(std::string(kMaxSecretFileBytes + 1, 'a'));
    CHECK_FALSE(read_secret_file(big.path(), "--token-file", &error).has_value());
    CHECK(error == "--token-file: " + big.path() + ": larger than 4 KiB (not a secret file?)");
  }
  CHECK_FALSE(read_secret_file("/nonexistent/token", "--token-file", &error).has_value());
  CHECK(error == "--token-file: /nonexistent/token: cannot open: No such file or directory");
  CHECK_FALSE(read_secret_file("/tmp", "--admin-token-file", &error).has_value());
  CHECK(error == "--admin-token-file: /tmp: cannot read: Is a directory");
  CHECK_FALSE(read_secret_file("", "--token-file", &error).has_value());
  CHECK(error == "--token-file: expected a file name");
}

TEST_CASE("secret_lines: one per line, blanks and # comments skipped, CRLF accepted, line numbers kept") {
  auto lines = secret_lines("# tokens\n\nalpha\r\n  beta  \n\t# indented comment\ngamma");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].secret == "alpha");
  CHECK(lines[0].line == 3);
  CHECK(lines[1].secret == "beta");
  CHECK(lines[1].line == 4);
  CHECK(lines[2].secret == "gamma");
  CHECK(lines[2].line == 6);
  CHECK(secret_lines("").empty());
  CHECK(secret_lines("# only\n\n").empty());
}

TEST_CASE("agent --token-file: the token from the file; errors name the flag and the file") {
  TokenVariable env(nullptr);
  TempFile file("from-file\n");
  auto out = agent({"--gateway", "gw:7000", "--token-file", file.path(), "--expose", "tcp:8080=127.0.0.1:80"});
  REQUIRE(out.ok());
  CHECK(out.config().token == "from-file");
  CHECK(out.result->warnings.empty());

  out = agent({"--gateway", "gw:7000", "--token-file", "/nonexistent/t", "--expose", "tcp:8080=127.0.0.1:80"});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "--token-file: /nonexistent/t: cannot open: No such file or directory");

  TempFile empty("\n");
  out = agent({"--gateway", "gw:7000", "--token-file", empty.path(), "--expose", "tcp:8080=127.0.0.1:80"});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "--token-file: " + empty.path() + ": empty");

  TempFile control("two\nlines\n");  // a token has no control characters: a list file is not a token file
  out = agent({"--gateway", "gw:7000", "--token-file", control.path(), "--expose", "tcp:8080=127.0.0.1:80"});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "--token-file: " + control.path() + ": contains a control character (a stray newline?)");
}

TEST_CASE("agent: --token and --token-file together are refused, on the line and in the file") {
  TokenVariable env(nullptr);
  TempFile file("from-file\n");
  auto out =
      agent({"--gateway", "gw:7000", "--token", "a", "--token-file", file.path(), "--expose", "tcp:8080=127.0.0.1:80"});
  CHECK_FALSE(out.ok());
  CHECK(out.code() == Errc::kInvalidArgument);
  CHECK(out.error == "--token-file: cannot be combined with --token (give the value one way)");

  TempFile both_keys("{\"token\": \"a\", \"token_file\": \"" + file.path() + "\"}");
  out = agent({"--config", both_keys.path(), "--gateway", "gw:7000", "--expose", "tcp:8080=127.0.0.1:80"});
  CHECK_FALSE(out.ok());
  CHECK(out.error == both_keys.path() + ": token_file: cannot be combined with \"token\" (give the value one way)");

  // One source each: the command line overrides the file, as for every setting.
  TempFile token_key("{\"token\": \"in-json\"}");
  out = agent({"--config", token_key.path(), "--token-file", file.path(), "--gateway", "gw:7000", "--expose",
               "tcp:8080=127.0.0.1:80", "--insecure-plaintext"});
  REQUIRE(out.ok());
  CHECK(out.config().token == "from-file");

  TempFile file_key("{\"token_file\": \"" + file.path() + "\"}");
  out = agent({"--config", file_key.path(), "--gateway", "gw:7000", "--expose", "tcp:8080=127.0.0.1:80",
               "--insecure-plaintext"});
  REQUIRE(out.ok());
  CHECK(out.config().token == "from-file");
  TempFile bad_key("{\"token_file\": \"/nonexistent/t\"}");
  out = agent({"--config", bad_key.path(), "--gateway", "gw:7000", "--expose", "tcp:8080=127.0.0.1:80"});
  CHECK_FALSE(out.ok());
  CHECK(out.error == bad_key.path() + ": token_file: /nonexistent/t: cannot open: No such file or directory");
}

TEST_CASE("agent: RINGTUN_TOKEN when no token is given otherwise; --token warns") {
  TokenVariable env("from-env");
  auto out = agent({"--gateway", "gw:7000", "--expose", "tcp:8080=127.0.0.1:80"});
  REQUIRE(out.ok());
  CHECK(out.config().token == "from-env");
  CHECK(out.result->warnings.empty());

  out = agent({"--gateway", "gw:7000", "--token", "flag", "--expose", "tcp:8080=127.0.0.1:80"});
  REQUIRE(out.ok());
  CHECK(out.config().token == "flag");  // the flag wins
  REQUIRE(out.result->warnings.size() == 1);
  CHECK(out.result->warnings[0].find("visible") != std::string::npos);
  CHECK(out.result->warnings[0].find("--token-file") != std::string::npos);

  TokenVariable empty("");
  out = agent({"--gateway", "gw:7000", "--expose", "tcp:8080=127.0.0.1:80"});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "RINGTUN_TOKEN: empty");

  TokenVariable none(nullptr);
  out = agent({"--gateway", "gw:7000", "--expose", "tcp:8080=127.0.0.1:80"});
  CHECK_FALSE(out.ok());
  CHECK(out.error.find("--token: missing") == 0);
}

TEST_CASE("gateway --token-file: one token per line, each with the default rules, refined as a group") {
  TokenVariable env(nullptr);
  TempFile file("# agents of team A\nalpha\n\nbeta\n");
  auto out = gateway({"--listen", "0.0.0.0:7000", "--token-file", file.path()});
  REQUIRE(out.ok());
  REQUIRE(out.config().tokens.size() == 2);
  CHECK(out.config().tokens[0].secret == "alpha");
  CHECK(out.config().tokens[1].secret == "beta");
  CHECK(out.config().tokens[1].port_low == 1);
  CHECK(out.config().tokens[1].port_high == 65535);
  CHECK(out.config().tokens[1].hosts.empty());
  CHECK(out.result->warnings.empty());

  // --allow-ports / --allow-hosts after the file apply to each of its tokens, not to a later --token.
  out = gateway({"--listen", "0.0.0.0:7000", "--token", "solo", "--token-file", file.path(), "--allow-ports",
                 "10000-10010", "--allow-hosts", "*.a.example", "--token", "last"});
  REQUIRE(out.ok());
  REQUIRE(out.config().tokens.size() == 4);
  CHECK(out.config().tokens[0].port_high == 65535);
  for (int i : {1, 2}) {
    CHECK(out.config().tokens[i].port_low == 10000);
    CHECK(out.config().tokens[i].port_high == 10010);
    REQUIRE(out.config().tokens[i].hosts.size() == 1);
    CHECK(out.config().tokens[i].hosts[0] == "*.a.example");
  }
  CHECK(out.config().tokens[3].secret == "last");
  CHECK(out.config().tokens[3].hosts.empty());
  CHECK(out.result->warnings.size() == 1);  // --token on the line: one warning, not one per token

  // The file's tokens replace the --config file's "tokens", as a --token does.
  TempFile config("{\"listen\": \"0.0.0.0:7000\", \"tokens\": [{\"token\": \"json\"}]}");
  out = gateway({"--config", config.path(), "--token-file", file.path()});
  REQUIRE(out.ok());
  REQUIRE(out.config().tokens.size() == 2);
  CHECK(out.config().tokens[0].secret == "alpha");
}

TEST_CASE("gateway --token-file: errors name the file and the line") {
  TokenVariable env(nullptr);
  TempFile comments("# nothing yet\n\n");
  auto out = gateway({"--listen", "0.0.0.0:7000", "--token-file", comments.path()});
  CHECK_FALSE(out.ok());
  CHECK(out.error ==
        "--token-file: " + comments.path() + ": no token in it (one per line; lines starting with # are comments)");

  TempFile twice("alpha\nbeta\nalpha\n");
  out = gateway({"--listen", "0.0.0.0:7000", "--token-file", twice.path()});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "--token-file: " + twice.path() + ": line 3: the same secret is given twice (tokens 1 and 3)");

  TempFile listed("alpha\n");
  out = gateway({"--listen", "0.0.0.0:7000", "--token", "alpha", "--token-file", listed.path()});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "--token-file: " + listed.path() + ": line 1: the same secret is given twice (tokens 1 and 2)");

  TempFile long_line(std::string(1100, 'x') + "\n");  // over tunnel::kMaxTokenLength
  out = gateway({"--listen", "0.0.0.0:7000", "--token-file", long_line.path()});
  CHECK_FALSE(out.ok());
  CHECK(out.error.find("--token-file: " + long_line.path() + ": line 1: longer than") == 0);

  out = gateway({"--listen", "0.0.0.0:7000", "--token-file", "/nonexistent/tokens"});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "--token-file: /nonexistent/tokens: cannot open: No such file or directory");

  // The list cap is larger than one secret's: 64 KiB.
  std::string many;
  for (int i = 0; i < 500; ++i) many += "token-number-" + std::to_string(i) + "\n";
  TempFile big_list(many);
  out = gateway({"--listen", "0.0.0.0:7000", "--token-file", big_list.path()});
  REQUIRE(out.ok());
  CHECK(out.config().tokens.size() == 500);
  TempFile too_big(std::string(kMaxTokenListFileBytes + 1, 'a'));
  out = gateway({"--listen", "0.0.0.0:7000", "--token-file", too_big.path()});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "--token-file: " + too_big.path() + ": larger than 64 KiB (not a secret file?)");
}

TEST_CASE("gateway: RINGTUN_TOKEN only when no token is given otherwise") {
  TokenVariable env("from-env");
  auto out = gateway({"--listen", "0.0.0.0:7000"});
  REQUIRE(out.ok());
  REQUIRE(out.config().tokens.size() == 1);
  CHECK(out.config().tokens[0].secret == "from-env");
  CHECK(out.config().tokens[0].hosts.empty());

  out = gateway({"--listen", "0.0.0.0:7000", "--token", "flag"});
  REQUIRE(out.ok());
  REQUIRE(out.config().tokens.size() == 1);
  CHECK(out.config().tokens[0].secret == "flag");

  TempFile config("{\"listen\": \"0.0.0.0:7000\", \"tokens\": [{\"token\": \"json\"}]}");
  out = gateway({"--config", config.path()});
  REQUIRE(out.ok());
  REQUIRE(out.config().tokens.size() == 1);
  CHECK(out.config().tokens[0].secret == "json");

  TokenVariable bad("has\nnewline");
  out = gateway({"--listen", "0.0.0.0:7000"});
  CHECK_FALSE(out.ok());
  CHECK(out.error == "RINGTUN_TOKEN: contains a control character (a stray newline?)");
}

// The examples installed to share/doc/ringtun/examples load as the systemd units start them: with --token-file.
TEST_CASE("dist/examples: gateway.json and agent.json load") {
  TokenVariable env(nullptr);
  TempFile token("example-token\n");
  const std::string root = RINGTUN_SOURCE_ROOT;
  auto gw = gateway({"--config", root + "/dist/examples/gateway.json", "--token-file", token.path()});
  INFO(gw.error);
  REQUIRE(gw.ok());
  CHECK(gw.config().listen_text == "0.0.0.0:7000");
  CHECK(gw.config().tokens.size() == 1);
  auto ag = test::agent_exact({"--config", root + "/dist/examples/agent.json", "--token-file", token.path()});
  INFO(ag.error);
  REQUIRE(ag.ok());
  CHECK(ag.config().token == "example-token");
  CHECK(ag.config().services.size() == 2);
}

}  // namespace
}  // namespace ringtun::app
