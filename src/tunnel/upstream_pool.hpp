// UpstreamPool: idle connections from the agent to its local HTTP services, kept between requests so that a request
// does not pay a new TCP connect (and the service does not pay an accept).
//
// Connections are filed under a key the agent chooses per route (one per service: a connection made for one
// service never serves another, even when two services share a local address). A key's low kKeyIndexBits bits file
// it; the bits above are a generation the agent changes when the service's local address changes (a reload): take()
// with another generation than the pool holds for that index closes the idle connections of the old one and adopts
// the new one, and put() with another generation refuses, so that a request that began before the change does not
// file its connection (to the old address) for the requests after it. Per key at most `max_idle`, newest
// first: take() hands out the one used last (warm in every cache), and the oldest ones time out after `idle_ms`.
// An idle connection keeps its multishot recv armed, so a service that closes it (or, wrongly, sends bytes between
// responses) has it dropped at once instead of failing the next request.
// Ownership: the pool is the sockets' handler while they are idle; take() gives one back with its recv still armed
// and the caller sets its own handler. Thread rules: one core's loop thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ring/loop.hpp"
#include "ring/timer_wheel.hpp"

namespace ringtun::tunnel {

class UpstreamPool final : public ring::SocketHandler {
 public:
  UpstreamPool(ring::Loop& loop, std::uint32_t max_idle, std::uint32_t idle_ms);
  ~UpstreamPool() override;
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  static constexpr unsigned kKeyIndexBits = 16;

  // An idle connection for `key`, or nothing. Its handler is still the pool: set yours at once.
  std::optional<ring::SocketId> take(std::uint32_t key) noexcept;
  // Keeps `socket` (connected, no response pending, nothing unsent). False when the pool will not keep it (the key
  // is full, max_idle is 0, the pool is closing): the caller still owns it.
  bool put(std::uint32_t key, ring::SocketId socket) noexcept;
  // Closes the idle connections filed under `key`'s index and refuses put() under `key` from now on (its service is
  // gone, or points elsewhere).
  void retire(std::uint32_t key) noexcept;
  // Closes every idle connection; put() refuses from now on.
  void close_all() noexcept;

  struct Stats {
    std::uint64_t reused = 0;    // take() found one
    std::uint64_t kept = 0;      // put() kept one
    std::uint64_t expired = 0;   // closed after idle_ms
    std::uint64_t dropped = 0;   // closed by the service, or it sent bytes while idle
    std::uint32_t idle = 0;
  };
  const Stats& stats() const noexcept { return stats_; }

 private:
  struct Idle {
    ring::SocketId socket;
    std::uint64_t since_ms = 0;
  };

  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;
  void drop(ring::SocketId socket) noexcept;
  void close_idle(std::uint32_t index) noexcept;
  void sweep() noexcept;
  void arm_sweep() noexcept;

  ring::Loop& loop_;
  std::uint32_t max_idle_;
  std::uint32_t idle_ms_;
  std::vector<std::vector<Idle>> by_key_;      // by key index, oldest first
  std::vector<std::uint32_t> generation_;      // by key index: the generation filed there now
  std::vector<std::uint32_t> key_of_slot_;     // socket slot index -> key index + 1 while idle here (0: not here)
  ring::Timer sweep_timer_;
  bool sweep_armed_ = false;
  bool closing_ = false;
  Stats stats_;
};

}  // namespace ringtun::tunnel
