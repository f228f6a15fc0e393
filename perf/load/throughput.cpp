// Throughput: N streams, each one connection to a sink, sending a request header and B bytes, then waiting for
// the sink's reply (count and hash). The clock runs from the first connect to the last verified reply, so every
// byte counted reached the sink. Without verify the streams send one pre-filled buffer over and over (no
// generation cost on the client); with verify each chunk is generated for its offset and hashed as it is sent.
#include <netinet/tcp.h>

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

struct ThreadResult {
  std::uint64_t bytes = 0;
  std::uint32_t ok = 0;
  std::uint32_t errors = 0;
  std::uint32_t verify_failures = 0;
  std::uint64_t last_reply_ns = 0;
  std::string first_error;
};

class SinkStream final : public ring::SocketHandler {
 public:
  SinkStream(const ThroughputOptions& options, std::uint64_t stream, const std::uint8_t* shared_chunk,
             ThreadResult& result)
      : options_(options), stream_(stream), shared_chunk_(shared_chunk), result_(result) {
    if (options_.verify) own_chunk_.resize(options_.chunk);
  }

  void start(Loop& loop) {
    auto id = loop.connect(options_.common.target.get(), options_.common.target.length,
                           options_.common.connect_timeout_ms, this);
    if (!id) {
      fail(loop, "connect", 0);
      done_ = true;
      return;
    }
    id_ = *id;
  }

  bool done() const noexcept { return done_; }

  void on_connect(Loop& loop, SocketId, int res) override {
    if (res < 0) return fail(loop, "connect", res);
    (void)ring::net::set_nodelay(loop.fd(id_));
    if (!loop.recv_start(id_)) return fail(loop, "recv_start", 0);
    encode_request(SinkRequest{options_.verify ? kSinkFlagVerify : 0, options_.bytes}, header_);
    send_next(loop);
  }

  void on_send(Loop& loop, SocketId, int res) override {
    if (res < 0) return fail(loop, "send", res);
    if (sent_ < options_.bytes) send_next(loop);
  }

  void on_recv(Loop& loop, SocketId, int res, const RecvBuffer& buffer) override {
    if (res <= 0) return fail(loop, res == 0 ? "closed before the sink replied" : "recv", res);
    const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(res), kSinkReplySize - reply_got_);
    std::memcpy(reply_ + reply_got_, buffer.data, take);
    reply_got_ += take;
    loop.recycle(buffer);
    if (reply_got_ < kSinkReplySize || finished_) return;
    finished_ = true;
    const auto reply = decode_reply(reply_);
    if (!reply || reply->received != options_.bytes) return fail(loop, "sink reply: wrong byte count", 0);
    if (options_.verify && reply->hash != hasher_.digest()) {
      ++result_.verify_failures;
      return fail(loop, "sink reply: hash mismatch (corrupted data)", 0);
    }
    result_.bytes += options_.bytes;
    ++result_.ok;
    result_.last_reply_ns = now_ns();
    done_ = true;
    loop.close(id_);
  }

 private:
  void send_next(Loop& loop) {
    unsigned n = 0;
    if (sent_ == 0) {
      iov_[n++] = iovec{header_, sizeof header_};
    }
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(options_.chunk, options_.bytes - sent_));
    if (options_.verify) {
      fill_stream(own_chunk_.data(), len, stream_, sent_);
      hasher_.update(own_chunk_.data(), len);
      iov_[n++] = iovec{own_chunk_.data(), len};
    } else {
      iov_[n++] = iovec{const_cast<std::uint8_t*>(shared_chunk_), len};
    }
    sent_ += len;
    if (!loop.send(id_, iov_, n)) fail(loop, "send", 0);
  }

  void fail(Loop& loop, const char* what, int res) {
    if (done_) return;
    done_ = true;
    ++result_.errors;
    note_error(result_.first_error, what, res);
    if (id_.valid()) loop.close(id_);
  }

  const ThroughputOptions& options_;
  std::uint64_t stream_;
  const std::uint8_t* shared_chunk_;
  ThreadResult& result_;
  std::vector<std::uint8_t> own_chunk_;
  StreamHasher hasher_;
  SocketId id_;
  std::uint8_t header_[kSinkRequestSize];
  std::uint8_t reply_[kSinkReplySize];
  std::size_t reply_got_ = 0;
  iovec iov_[2];
  std::uint64_t sent_ = 0;
  bool done_ = false;
  bool finished_ = false;
};

}  // namespace

Result<ThroughputReport> run_throughput(const ThroughputOptions& options) {
  if (options.streams == 0 || options.bytes == 0 || options.chunk == 0) {
    return fail(Errc::kInvalidArgument, "throughput: streams, bytes and chunk must be > 0");
  }
  std::vector<std::uint8_t> shared(options.chunk);
  fill_stream(shared.data(), shared.size(), 0, 0);
  const unsigned threads = std::min<unsigned>(options.common.threads, options.streams);
  std::vector<ThreadResult> results(threads);
  const std::uint64_t start = now_ns();
  auto status = run_client_threads(threads, [&](unsigned t, ClientLoop& client) {
    std::vector<std::unique_ptr<SinkStream>> streams;
    std::uint64_t stream_id = t;
    for (std::uint32_t i = 0; i < share(options.streams, threads, t); ++i, stream_id += threads) {
      streams.push_back(std::make_unique<SinkStream>(options, stream_id, shared.data(), results[t]));
      streams.back()->start(client.loop());
    }
    // Generous bound: 10 MB/s at least, plus the I/O timeout.
    const std::uint64_t budget_ns = options.common.io_timeout_ms * 1'000'000ULL +
                                    options.bytes * options.streams * 100ULL;
    const bool finished = client.drive([&] {
      return std::all_of(streams.begin(), streams.end(), [](const auto& s) { return s->done(); });
    }, start + budget_ns);
    if (!finished) {
      for (const auto& s : streams) {
        if (!s->done()) ++results[t].errors;
      }
      note_error(results[t].first_error, "timed out", 0);
    }
    client.finish();
  });
  if (!status) return Unexpected{status.error()};
  ThroughputReport report;
  std::uint64_t last = start;
  for (const auto& r : results) {
    report.bytes += r.bytes;
    report.streams_ok += r.ok;
    report.errors += r.errors;
    report.verify_failures += r.verify_failures;
    last = std::max(last, r.last_reply_ns);
    if (report.first_error.empty()) report.first_error = r.first_error;
  }
  report.seconds = static_cast<double>(last - start) / 1e9;
  report.mb_per_s = report.seconds > 0 ? static_cast<double>(report.bytes) / 1e6 / report.seconds : 0;
  return report;
}

}  // namespace ringtun::bench
