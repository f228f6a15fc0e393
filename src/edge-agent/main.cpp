// ringtun-agent: flags/config -> run_agent(). argv is kept for SIGHUP, which parses it (and --config) again.
#include "edge-agent/agent.hpp"
#include "app/program.hpp"

namespace {

int g_argc = 0;
const char* const* g_argv = nullptr;

ringtun::Result<ringtun::app::Parsed<ringtun::app::AgentConfig>> reparse(std::string* error) {
  return ringtun::app::parse_agent_args(g_argc, g_argv, error);
}

int run(const ringtun::app::AgentConfig& config) { return ringtun::agent::run_agent(config, reparse); }

}  // namespace

int main(int argc, char** argv) {
  g_argc = argc;
  g_argv = argv;
  return ringtun::app::program_main<ringtun::app::AgentConfig>("ringtun-agent", argc, argv,
                                                               ringtun::app::parse_agent_args,
                                                               ringtun::app::agent_usage, run);
}
