// Latency: ping-pong of `size` bytes on each connection, one request outstanding at a time. A request's bytes are
// generated for its (connection, sequence) so every echo is checked byte-exact; the next request leaves only once
// both the echo is complete and the send has been reported (one send in flight per socket). The first `warmup`
// round trips of each connection are not recorded.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "load/clients.hpp"
#include "load/driver.hpp"
#include "load/payload.hpp"

namespace ringtun::bench {
namespace {

using ring::Loop;
using ring::RecvBuffer;
using ring::SocketId;

class PingPong final : public ring::SocketHandler {
 public:
  PingPong(const LatencyOptions& options, std::uint64_t connection, std::uint32_t requests, std::uint32_t warmup,
           LatencyReport& report)
      : options_(options), connection_(connection), requests_(requests), warmup_(warmup), report_(report),
        sent_(options.size), got_(options.size) {}

  void start(Loop& loop) {
    auto id = loop.connect(options_.common.target.get(), options_.common.target.length,
                           options_.common.connect_timeout_ms, this);
    if (!id) return fail(loop, "connect", 0);
    id_ = *id;
  }

  bool done() const noexcept { return done_; }

  void on_connect(Loop& loop, SocketId, int res) override {
    if (res < 0) return fail(loop, "connect", res);
    (void)ring::net::set_nodelay(loop.fd(id_));
    if (!loop.recv_start(id_)) return fail(loop, "recv_start", 0);
    send_request(loop);
  }

  void on_send(Loop& loop, SocketId, int res) override {
    if (res < 0) return fail(loop, "send", res);
    send_pending_ = false;
    maybe_next(loop);
  }

  void on_recv(Loop& loop, SocketId, int res, const RecvBuffer& buffer) override {
    if (res <= 0) return fail(loop, res == 0 ? "closed by the server" : "recv", res);
    const std::size_t n = static_cast<std::size_t>(res);
    if (received_ + n > options_.size) {
      loop.recycle(buffer);
      ++report_.mismatches;
      return fail(loop, "more bytes echoed than sent", 0);
    }
    std::memcpy(got_.data() + received_, buffer.data, n);
    received_ += static_cast<std::uint32_t>(n);
    loop.recycle(buffer);
    if (received_ < options_.size) return;
    const std::uint64_t rtt = now_ns() - sent_at_;
    if (std::memcmp(got_.data(), sent_.data(), options_.size) != 0) {
      ++report_.mismatches;
      return fail(loop, "echo differs from the request", 0);
    }
    if (sequence_ >= warmup_) report_.histogram.record(rtt);
    ++sequence_;
    echo_pending_ = false;
    maybe_next(loop);
  }

 private:
  void send_request(Loop& loop) {
    fill_stream(sent_.data(), options_.size, connection_, std::uint64_t{sequence_} * options_.size);
    iov_ = iovec{sent_.data(), options_.size};
    received_ = 0;
    send_pending_ = true;
    echo_pending_ = true;
    sent_at_ = now_ns();
    if (!loop.send(id_, &iov_, 1)) fail(loop, "send", 0);
  }

  void maybe_next(Loop& loop) {
    if (send_pending_ || echo_pending_ || done_) return;
    if (sequence_ >= warmup_ + requests_) {
      done_ = true;
      loop.close(id_);
      return;
    }
    send_request(loop);
  }

  void fail(Loop& loop, const char* what, int res) {
    if (done_) return;
    done_ = true;
    ++report_.errors;
    note_error(report_.first_error, what, res);
    if (id_.valid()) loop.close(id_);
  }

  const LatencyOptions& options_;
  std::uint64_t connection_;
  std::uint32_t requests_;
  std::uint32_t warmup_;
  LatencyReport& report_;
  std::vector<std::uint8_t> sent_;
  std::vector<std::uint8_t> got_;
  SocketId id_;
  iovec iov_{};
  std::uint64_t sent_at_ = 0;
  std::uint32_t sequence_ = 0;
  std::uint32_t received_ = 0;
  bool send_pending_ = false;
  bool echo_pending_ = false;
  bool done_ = false;
};

}  // namespace

Result<LatencyReport> run_latency(const LatencyOptions& options) {
  if (options.size == 0 || options.requests == 0 || options.connections == 0) {
    return fail(Errc::kInvalidArgument, "latency: size, requests and connections must be > 0");
  }
  const unsigned threads = std::clamp<unsigned>(options.common.threads, 1, options.connections);
  std::vector<std::unique_ptr<LatencyReport>> per_thread;
  for (unsigned t = 0; t < threads; ++t) per_thread.push_back(std::make_unique<LatencyReport>());
  const std::uint64_t start = now_ns();
  auto status = run_client_threads(threads, [&](unsigned t, ClientLoop& client) {
    LatencyReport& report = *per_thread[t];
    std::vector<std::unique_ptr<PingPong>> conns;
    std::uint64_t connection = t;
    for (std::uint32_t i = 0; i < share(options.connections, threads, t); ++i, connection += threads) {
      const std::uint32_t c = static_cast<std::uint32_t>(connection);
      conns.push_back(std::make_unique<PingPong>(options, connection, share(options.requests, options.connections, c),
                                                 share(options.warmup, options.connections, c), report));
      conns.back()->start(client.loop());
    }
    // Bounded: every round trip may take up to the I/O timeout, but the whole run no more than 10 minutes.
    const std::uint64_t budget_ns = std::min<std::uint64_t>(
        600'000'000'000ULL, options.common.io_timeout_ms * 1'000'000ULL +
                                std::uint64_t{options.requests + options.warmup} * 10'000'000ULL);
    const bool finished = client.drive([&] {
      return std::all_of(conns.begin(), conns.end(), [](const auto& c) { return c->done(); });
    }, start + budget_ns);
    if (!finished) {
      ++report.errors;
      note_error(report.first_error, "timed out", 0);
    }
    client.finish();
  });
  if (!status) return Unexpected{status.error()};
  LatencyReport total = std::move(*per_thread[0]);
  for (unsigned t = 1; t < threads; ++t) {
    total.histogram.merge(per_thread[t]->histogram);
    total.errors += per_thread[t]->errors;
    total.mismatches += per_thread[t]->mismatches;
    if (total.first_error.empty()) total.first_error = per_thread[t]->first_error;
  }
  total.seconds = static_cast<double>(now_ns() - start) / 1e9;
  return total;
}

}  // namespace ringtun::bench
