// ringtun-agent: flags/config -> run_agent(). Bad flags or config: one line on stderr, exit code 2.
#include <cstdio>
#include <string>

#include "common/log.hpp"
#include "edge-agent/agent.hpp"
#include "tunnel/config.hpp"

int main(int argc, char** argv) {
  std::string error;
  auto parsed = ringtun::tunnel::parse_agent_args(argc, argv, &error);
  if (!parsed) {
    std::fprintf(stderr, "ringtun-agent: %s\n", error.c_str());
    return 2;
  }
  if (parsed->outcome == ringtun::tunnel::ParseOutcome::kHelp) {
    std::fwrite(ringtun::tunnel::agent_usage().data(), 1, ringtun::tunnel::agent_usage().size(), stdout);
    return 0;
  }
  if (parsed->outcome == ringtun::tunnel::ParseOutcome::kVersion) {
    std::printf("ringtun-agent %s\n", RINGTUN_VERSION);
    return 0;
  }
  ringtun::log::set_level(parsed->config.common.log_level);
  return ringtun::agent::run_agent(parsed->config);
}
