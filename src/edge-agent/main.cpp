// ringtun-agent: flags/config -> run_agent().
#include "edge-agent/agent.hpp"
#include "app/program.hpp"

int main(int argc, char** argv) {
  return ringtun::app::program_main<ringtun::app::AgentConfig>(
      "ringtun-agent", argc, argv, ringtun::app::parse_agent_args, ringtun::app::agent_usage,
      ringtun::agent::run_agent);
}
