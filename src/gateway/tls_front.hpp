// The shared TLS port (--tls-listen): public clients speak TLS to their service's host name, and the gateway routes
// each connection by the server_name (SNI) of its ClientHello to the tls: service that claimed that name, then
// passes every byte through unchanged: TLS is terminated at the edge, end to end with the client, and the gateway
// never holds a key for it.
//
// TlsClient reads the first bytes (at most a 16 KiB ClientHello, src/tls/client_hello.hpp), routes, and hands the
// socket with the bytes read so far to a stream (TunnelConn::open_stream with a prefix): from there it is a raw
// TCP stream like a tcp: service's. A name nobody serves, or no name at all, gets a TLS unrecognized_name alert, then
// close; a ClientHello that is malformed or not complete within --tls-hello-timeout-ms is closed with a logged
// reason.
// Thread rules: one core's loop thread.
#pragma once

#include <cstdint>
#include <vector>

#include "common/counter.hpp"
#include "common/log.hpp"
#include "ring/loop.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::gateway {

class Routing;
class TlsClient;

struct TlsStats {
  Counter connections;
  Counter routed;
  Counter unknown_name;  // no SNI, or a name nobody serves (alert sent)
  Counter malformed;
  Counter timed_out;
  Counter no_tunnel;     // the service's agent has no connection here, or no free stream
  Counter over_limit;    // closed at accept: kMaxReading ClientHellos were being read already
  Counter reading;       // connections whose ClientHello is being read now
};

class TlsFront final : public ring::SocketHandler {
 public:
  static constexpr std::uint32_t kMaxReading = 4096;  // per core
  static constexpr unsigned kLogLinesPerSecond = 10;
  TlsFront(tunnel::TunnelCore& core, Routing& routing, std::uint32_t hello_timeout_ms);
  ~TlsFront() override;
  TlsFront(const TlsFront&) = delete;
  TlsFront& operator=(const TlsFront&) = delete;

  // Adopts this core's listener of the --tls-listen group and accepts on it. Takes the fd in every case.
  Status listen(int fd);
  void stop();

  const TlsStats& stats() const noexcept { return stats_; }

 private:
  friend class TlsClient;
  void on_accept(ring::Loop& loop, ring::SocketId listener, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;

  tunnel::TunnelCore& core_;
  ring::Loop& loop_;
  Routing& routing_;
  std::uint32_t hello_timeout_ms_;
  ring::SocketId listener_;
  std::uint16_t port_ = 0;
  std::vector<std::byte> scratch_;  // the ClientHello reader's defragmentation buffer, for every client of the core
  TlsClient* clients_ = nullptr;    // those still reading their ClientHello
  bool stopped_ = false;
  TlsStats stats_;
  log::LineBudget log_budget_;         // problems of clients: at most kLogLinesPerSecond lines a second
  std::uint64_t over_limit_logged_ = 0;
};

}  // namespace ringtun::gateway
