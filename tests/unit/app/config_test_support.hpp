// Helpers for the config tests: argv building, temporary files under /tmp (mkstemp), and result unpacking.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <vector>

#include "app/config.hpp"

namespace ringtun::app::test {

// A file under /tmp holding `contents`; removed when the object dies.
class TempFile {
 public:
  explicit TempFile(std::string_view contents) {
    char name[] = "/tmp/ringtun_config_test_XXXXXX";
    int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    path_ = name;
    std::size_t done = 0;
    while (done < contents.size()) {
      ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
      REQUIRE(n > 0);
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One parse: the result, and the message if it failed.
template <typename Config>
struct Outcome {
  Result<Parsed<Config>> result;
  std::string error;

  bool ok() const { return result.has_value(); }
  Errc code() const { return result.has_value() ? Errc::kOk : result.error().code(); }
  const Config& config() const { return result->config; }
};

inline std::vector<const char*> make_argv(const char* program, const std::vector<std::string>& args) {
  std::vector<const char*> argv{program};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  argv.push_back(nullptr);  // as main() receives it
  return argv;
}

inline Outcome<GatewayConfig> gateway(const std::vector<std::string>& args) {
  auto argv = make_argv("ringtun-gateway", args);
  std::string error;
  auto result = parse_gateway_args(static_cast<int>(argv.size() - 1), argv.data(), &error);
  return Outcome<GatewayConfig>{std::move(result), std::move(error)};
}

inline constexpr char kTestFingerprint[] = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// Parses an agent command line. Lines that say nothing about TLS (or a --config file) get a pinned fingerprint, as
// every real agent needs one way to verify the gateway; agent_exact() leaves the line alone.
inline Outcome<AgentConfig> agent_exact(const std::vector<std::string>& args) {
  auto argv = make_argv("ringtun-agent", args);
  std::string error;
  auto result = parse_agent_args(static_cast<int>(argv.size() - 1), argv.data(), &error);
  return Outcome<AgentConfig>{std::move(result), std::move(error)};
}

inline Outcome<AgentConfig> agent(std::vector<std::string> args) {
  bool says_tls = false;
  for (const std::string& a : args) {
    for (const char* flag : {"--insecure-plaintext", "--ca", "--gateway-fingerprint", "--config", "--help", "-h",
                             "--version", "-V"}) {
      says_tls |= a == flag || a.rfind(std::string(flag) + "=", 0) == 0;
    }
  }
  if (!says_tls) {
    args.push_back("--gateway-fingerprint");
    args.push_back(kTestFingerprint);
  }
  return agent_exact(args);
}

inline bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Every message is one line: the caller prints "ringtun-gateway: <message>".
inline bool one_line(std::string_view text) {
  return !text.empty() && text.find('\n') == std::string_view::npos && text.find('\r') == std::string_view::npos;
}

}  // namespace ringtun::app::test
