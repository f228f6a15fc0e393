// HttpClient: one public client connection on the shared HTTP port (see http_front.hpp for the behaviour).
//
// States:
//   kHead     reading a request head (or waiting for one on a keep-alive connection); head timeout / idle timeout
//   kExchange a request is on a stream: its body goes up as it arrives, its response comes down; bytes the client
//             sends after the request (pipelining) wait in `input_` and reading pauses until the exchange is over
//   kPipe     after 101: bytes both ways unchanged; FIN passed on each way
//   kClosing  the last answer is being written; then FIN, a short linger for the client's FIN, and close
// The object is also the StreamEnd of the exchange's stream (at most one at a time). It frees itself once its socket
// is closed and no stream refers to it (`depth_` keeps it alive while one of its entry points is on the stack).
// Thread rules: the core's loop thread.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/access_gate.hpp"
#include "gateway/http_front.hpp"
#include "gateway/traffic_table.hpp"
#include "http/body.hpp"
#include "http/message.hpp"
#include "http/response_reader.hpp"
#include "tunnel/byte_queue.hpp"

namespace ringtun::gateway {

class HttpClient final : public ring::SocketHandler, public tunnel::StreamEnd {
 public:
  // Takes `fd` (an accepted client).
  HttpClient(HttpFront& front, int fd);

  // The gateway is stopping: close now.
  void abort() noexcept;

  HttpClient* prev = nullptr;  // HttpFront's list
  HttpClient* next = nullptr;

 private:
  friend class HttpFront;
  enum class State : std::uint8_t { kHead, kExchange, kPipe, kClosing };

  // One request and its response, from routing to the response's last byte.
  struct Exchange {
    tunnel::TunnelConn* conn = nullptr;
    std::string host;            // as routed (for logs)
    http::BodyFramer request_body;
    http::ResponseReader response;
    bool upgrade_asked = false;
    bool request_done = false;   // the whole request is queued on the stream
    bool fin_sent = false;
    bool response_started = false;  // a head of the response went to the client
    bool response_done = false;
    bool stream_open = false;    // registered with conn
    int status = 0;
    TrafficEntry* entry = nullptr;  // the service's counters
    std::uint64_t client_in = 0;    // bytes of this request read from the client (head as sent, body)
    std::uint64_t client_out = 0;   // bytes of the response written to the client (head as rewritten, body)
    // For the access log (filled only when it is on).
    std::uint64_t start_ms = 0;
    std::string method;
    std::string target;
    // What the access policy let this request hold (a per-client and a per-service count), given back with it.
    Routing* routing = nullptr;
    AccessPass pass;
    Exchange() = default;
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;
    ~Exchange();
  };

  ~HttpClient() override;

  // ring::SocketHandler (the client socket)
  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override;
  void on_send(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_shutdown(ring::Loop& loop, ring::SocketId socket, int res) override;
  void on_close(ring::Loop& loop, ring::SocketId socket) override;

  // tunnel::StreamEnd (the exchange's stream)
  void deliver(std::span<const std::byte> bytes) noexcept override;
  void peer_fin() noexcept override;
  void peer_reset(frame::ErrorCode code) noexcept override;
  void stream_closed() noexcept override;
  void ingress_released(std::size_t bytes) noexcept override;

  void process_input() noexcept;
  void start_request() noexcept;
  void send_request_body(std::string_view bytes) noexcept;
  void request_complete() noexcept;
  void response_bytes(std::string_view bytes) noexcept;
  void response_complete() noexcept;
  void response_failed(int status, const char* reason) noexcept;
  void finish_exchange() noexcept;
  void maybe_finish_exchange() noexcept;
  void reject(int status, const char* reason, const std::string& host = {},
              const route::Route* route = nullptr, std::uint32_t retry_after_s = 0) noexcept;
  // One access log line for the request that ends now (with the access log on); the exchange, if any, gives the
  // service, the request line and the duration.
  void log_request(std::string_view host, int status, const char* outcome, const char* reason, std::uint64_t bytes_in,
                   std::uint64_t bytes_out) noexcept;
  void write_head_bytes(std::string_view bytes) noexcept;
  void write_body_bytes(std::string_view bytes) noexcept;
  void send_more() noexcept;
  void pause_reading() noexcept;
  void resume_reading() noexcept;
  void close_gracefully() noexcept;
  void close_now(bool abortive) noexcept;
  void drop_stream(frame::ErrorCode code) noexcept;
  void arm_timer(std::uint32_t ms) noexcept;
  void on_timer() noexcept;
  // A response with `status` reached the client: counted per core and, for the service answered for, in `entry`.
  void count_status(int status, TrafficEntry* entry) noexcept;
  void maybe_free() noexcept;

  static constexpr std::size_t kMaxIov = 16;
  static constexpr std::size_t kIngressLimit = 256 * 1024;  // request body bytes queued on the stream, not yet sent

  HttpFront& front_;
  ring::Loop& loop_;
  ring::SocketId socket_;
  ring::net::Address peer_;
  char peer_ip_[48] = {};      // the client's address as X-Forwarded-For writes it
  State state_ = State::kHead;
  std::string input_;          // client bytes not yet handled: a head being assembled, or what came after a request
  http::HeadScanner scanner_;
  std::unique_ptr<Exchange> exchange_;
  tunnel::ByteQueue out_;      // bytes for the client
  iovec iov_[kMaxIov];
  std::size_t in_flight_ = 0;
  std::size_t nocredit_ahead_ = 0;  // bytes at the front of out_ written by the gateway (heads), not stream payload
  std::size_t ingress_pending_ = 0;
  ring::Timer timer_;
  bool reading_ = false;
  bool read_paused_ = false;
  bool client_eof_ = false;
  bool close_after_ = false;   // no further request on this connection
  bool shutdown_sent_ = false;
  bool socket_closing_ = false;
  bool socket_closed_ = false;
  int depth_ = 0;
};

}  // namespace ringtun::gateway
