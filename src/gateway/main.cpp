// ringtun-gateway: flags/config -> run_gateway().
#include "gateway/gateway.hpp"
#include "app/program.hpp"

int main(int argc, char** argv) {
  return ringtun::app::program_main<ringtun::app::GatewayConfig>(
      "ringtun-gateway", argc, argv, ringtun::app::parse_gateway_args, ringtun::app::gateway_usage,
      ringtun::gateway::run_gateway);
}
