// ringtun-gateway: flags/config -> run_gateway(). Bad flags or config: one line on stderr, exit code 2.
#include <cstdio>
#include <string>

#include "common/log.hpp"
#include "gateway/gateway.hpp"
#include "tunnel/config.hpp"

int main(int argc, char** argv) {
  std::string error;
  auto parsed = ringtun::tunnel::parse_gateway_args(argc, argv, &error);
  if (!parsed) {
    std::fprintf(stderr, "ringtun-gateway: %s\n", error.c_str());
    return 2;
  }
  if (parsed->outcome == ringtun::tunnel::ParseOutcome::kHelp) {
    std::fwrite(ringtun::tunnel::gateway_usage().data(), 1, ringtun::tunnel::gateway_usage().size(), stdout);
    return 0;
  }
  if (parsed->outcome == ringtun::tunnel::ParseOutcome::kVersion) {
    std::printf("ringtun-gateway %s\n", RINGTUN_VERSION);
    return 0;
  }
  ringtun::log::set_level(parsed->config.common.log_level);
  return ringtun::gateway::run_gateway(parsed->config);
}
