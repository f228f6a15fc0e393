// ringtun-gateway: flags/config -> run_gateway().
#include "gateway/gateway.hpp"
#include "app/program.hpp"

namespace {

// main's argv, for SIGHUP's reload to parse the configuration again exactly as start-up did.
ringtun::gateway::ConfigSource g_source;

int run(const ringtun::app::GatewayConfig& config) { return ringtun::gateway::run_gateway(config, g_source); }

}  // namespace

int main(int argc, char** argv) {
  g_source = ringtun::gateway::ConfigSource{argc, argv};
  return ringtun::app::program_main<ringtun::app::GatewayConfig>("ringtun-gateway", argc, argv,
                                                                  ringtun::app::parse_gateway_args,
                                                                  ringtun::app::gateway_usage, run);
}
