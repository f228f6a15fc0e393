// Settings -> run-time options. See options.hpp.
#include "app/options.hpp"

#include "tls/tls.hpp"

namespace ringtun::app {

ring::RuntimeOptions runtime_options(const CommonConfig& config, bool pin_by_default) {
  ring::RuntimeOptions options;
  options.threads = config.threads;  // 0: the runtime takes as many as --cpus lists, else every CPU
  options.cpus = config.cpus;
  options.pin_threads = pin_by_default || !config.cpus.empty();
  options.loop.recv_pools[tunnel::kTunnelPool] = {256, 16384};  // recycled right after each feed: few needed
  options.loop.recv_pools[tunnel::kEdgePool] = {1024, 16384};   // 16 MiB per core at most, resident as used
  // Nothing in the programs sends from registered buffers: the slab (64 x 64 KiB per core by default) would be
  // pinned, resident memory doing nothing (issue 13's idle RSS).
  options.loop.fixed_buffers = 0;
  options.loop.busy_poll_us = config.busy_poll_us;
  options.on_thread_exit = tls::release_thread_state;
  return options;
}

tunnel::TunnelOptions tunnel_options(const CommonConfig& config, std::uint32_t max_streams) {
  tunnel::TunnelOptions options;
  options.heartbeat_ms = config.heartbeat_ms;
  options.dead_peer_ms = config.dead_peer_ms;
  // Both directions of the limit: streams the peer may open to us, and streams we open (the peer's own
  // advertised limit caps the latter too).
  options.session.max_concurrent_streams = max_streams;
  options.session.max_local_streams = max_streams;
  return options;
}

}  // namespace ringtun::app
