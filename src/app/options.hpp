// What the programs' settings become at run time: the runtime's options (one loop per core with a receive pool for
// tunnel sockets and one for edge sockets) and the tunnel connections' options (heartbeat, stream limits).
// The tunnel module keeps TunnelOptions and its defaults and knows nothing of the settings; this is the one place
// that maps one onto the other.
// Thread rules: start-up, before the runtime exists.
#pragma once

#include <cstdint>

#include "app/config.hpp"
#include "ring/runtime.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::app {

// `pin_by_default`: pin the loops to the CPUs the process may use when --cpus is not given (the gateway: it owns its
// box); the agent passes false (it shares its box with the services it serves, which the scheduler should be free
// to place beside it). With --cpus both pin to the CPUs given.
ring::RuntimeOptions runtime_options(const CommonConfig& config, bool pin_by_default);
// `max_streams`: both directions of the per-connection stream limit (the gateway's --max-streams; the agent's own
// bound).
tunnel::TunnelOptions tunnel_options(const CommonConfig& config, std::uint32_t max_streams);

}  // namespace ringtun::app
