// ringtun-gateway: flags/config -> run_gateway().
#include "gateway/gateway.hpp"
#include "tunnel/program.hpp"

int main(int argc, char** argv) {
  return ringtun::tunnel::program_main<ringtun::tunnel::GatewayConfig>(
      "ringtun-gateway", argc, argv, ringtun::tunnel::parse_gateway_args, ringtun::tunnel::gateway_usage,
      ringtun::gateway::run_gateway);
}
