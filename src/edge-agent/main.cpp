// ringtun-agent: flags/config -> run_agent().
#include "edge-agent/agent.hpp"
#include "tunnel/program.hpp"

int main(int argc, char** argv) {
  return ringtun::tunnel::program_main<ringtun::tunnel::AgentConfig>(
      "ringtun-agent", argc, argv, ringtun::tunnel::parse_agent_args, ringtun::tunnel::agent_usage,
      ringtun::agent::run_agent);
}
