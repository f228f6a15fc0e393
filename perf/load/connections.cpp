// Connection scenarios. Both open a connection, send one small request to the echo service and check the echo
// byte-exact:
// - connect-rate: `concurrency` workers each loop {connect, echo, close} until the time is up; each attempt has a
//   timeout, and failures are counted and followed by a new attempt.
// - hold: opens `connections` (at most `concurrency` at a time), verifies each, then keeps them all open until
//   told to stop; a held connection closed by the other side is counted as dropped.
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

constexpr std::uint32_t kMaxProbe = 256;

// One connection's open-and-verify step; what happens after it is up to the owner (on_verified/on_failed).
class Probe : public ring::SocketHandler {
 public:
  Probe(const CommonOptions& common, std::uint32_t size) : common_(common), size_(std::min(size, kMaxProbe)) {
    timer_.set_callback(&Probe::on_timeout, this);
  }

  void open(Loop& loop, std::uint64_t seed) {
    loop_ = &loop;
    state_ = State::kConnecting;
    received_ = 0;
    started_ns_ = now_ns();
    fill_stream(sent_, size_, seed, 0);
    auto id = loop.connect(common_.target.get(), common_.target.length, common_.connect_timeout_ms, this);
    if (!id) {
      id_ = SocketId{};
      state_ = State::kIdle;
      failed(loop, "connect", 0, false);
      return;
    }
    id_ = *id;
    loop.timers().schedule(timer_, common_.io_timeout_ms);
  }

  void on_connect(Loop& loop, SocketId, int res) override {
    if (res < 0) return fail(loop, "connect", res);
    (void)ring::net::set_nodelay(loop.fd(id_));
    if (!loop.recv_start(id_)) return fail(loop, "recv_start", 0);
    iov_ = iovec{sent_, size_};
    state_ = State::kVerifying;
    if (!loop.send(id_, &iov_, 1)) fail(loop, "send", 0);
  }

  void on_send(Loop& loop, SocketId, int res) override {
    if (res < 0) fail(loop, "send", res);
  }

  void on_recv(Loop& loop, SocketId, int res, const RecvBuffer& buffer) override {
    if (res <= 0) {
      if (state_ == State::kHeld) {
        state_ = State::kClosing;
        loop.close(id_);
        dropped(loop);
        return;
      }
      return fail(loop, res == 0 ? "closed before the echo" : "recv", res);
    }
    const std::size_t n = static_cast<std::size_t>(res);
    const bool overflow = state_ != State::kVerifying || received_ + n > size_;
    if (!overflow) std::memcpy(got_ + received_, buffer.data, n);
    loop.recycle(buffer);
    if (overflow) return fail(loop, "unexpected bytes from the echo service", 0);
    received_ += static_cast<std::uint32_t>(n);
    if (received_ < size_) return;
    if (std::memcmp(got_, sent_, size_) != 0) return fail(loop, "echo differs from the request", 0);
    loop.timers().cancel(timer_);
    state_ = State::kHeld;
    verified(loop, now_ns() - started_ns_);
  }

  // Closes a verified connection (connect-rate) or a held one (end of hold).
  void close(Loop& loop) {
    if (state_ == State::kIdle || state_ == State::kClosing) return;
    loop.timers().cancel(timer_);
    state_ = State::kClosing;
    loop.close(id_);
  }

  void on_close(Loop& loop, SocketId) override {
    state_ = State::kIdle;
    closed(loop);
  }

 protected:
  virtual void verified(Loop& loop, std::uint64_t elapsed_ns) = 0;
  // `closing`: on_close() (and so closed()) follows; false when no socket was ever made.
  virtual void failed(Loop& loop, const char* what, int res, bool closing) = 0;
  virtual void dropped(Loop&) {}
  virtual void closed(Loop&) {}

 private:
  enum class State { kIdle, kConnecting, kVerifying, kHeld, kClosing };

  void fail(Loop& loop, const char* what, int res) {
    if (state_ == State::kIdle || state_ == State::kClosing) return;
    loop.timers().cancel(timer_);
    state_ = State::kClosing;
    loop.close(id_);
    failed(loop, what, res, true);
  }

  static void on_timeout(void* context) {
    auto* self = static_cast<Probe*>(context);
    self->fail(*self->loop_, "timed out", 0);
  }

  const CommonOptions& common_;
  std::uint32_t size_;
  Loop* loop_ = nullptr;
  SocketId id_;
  State state_ = State::kIdle;
  ring::Timer timer_;
  iovec iov_{};
  std::uint64_t started_ns_ = 0;
  std::uint32_t received_ = 0;
  std::uint8_t sent_[kMaxProbe];
  std::uint8_t got_[kMaxProbe];
};

// ---- connect-rate ----

struct RateShared {
  std::uint64_t deadline_ns = 0;
  std::uint64_t seed = 0;
  ConnectRateReport* report = nullptr;
  unsigned active = 0;  // workers still cycling
};

class RateWorker final : public Probe {
 public:
  RateWorker(const ConnectRateOptions& options, RateShared& shared)
      : Probe(options.common, options.size), shared_(shared) {
    retry_.set_callback(&RateWorker::on_retry, this);
  }

  void cycle(Loop& loop) {
    if (now_ns() >= shared_.deadline_ns) {
      --shared_.active;
      return;
    }
    open(loop, shared_.seed++);
  }

 private:
  void verified(Loop& loop, std::uint64_t elapsed_ns) override {
    ok_ = true;
    started_ = elapsed_ns;
    close(loop);
  }
  void failed(Loop& loop, const char* what, int res, bool closing) override {
    ++shared_.report->errors;
    note_error(shared_.report->first_error, what, res);
    ok_ = false;
    if (!closing) {
      retry_loop_ = &loop;
      loop.timers().schedule(retry_, 1);  // no socket, so no on_close(): try again after a tick
    }
  }
  void closed(Loop& loop) override {
    if (ok_) {
      ++shared_.report->completed;
      shared_.report->histogram.record(started_);
      ok_ = false;
    }
    cycle(loop);
  }
  static void on_retry(void* context) {
    auto* self = static_cast<RateWorker*>(context);
    self->cycle(*self->retry_loop_);
  }

  RateShared& shared_;
  ring::Timer retry_;
  Loop* retry_loop_ = nullptr;
  std::uint64_t started_ = 0;
  bool ok_ = false;
};

// ---- hold ----

struct HoldShared {
  const HoldOptions* options = nullptr;
  HoldReport* report = nullptr;
  std::uint32_t next = 0;         // connections started so far
  std::uint32_t in_progress = 0;
  std::uint32_t settled = 0;      // verified or failed
  std::vector<class HoldConn*>* all = nullptr;
};

class HoldConn final : public Probe {
 public:
  HoldConn(const HoldOptions& options, HoldShared& shared, std::uint64_t seed)
      : Probe(options.common, options.size), shared_(shared), seed_(seed) {}

  void begin(Loop& loop) {
    ++shared_.in_progress;
    open(loop, seed_);
  }

 private:
  void verified(Loop& loop, std::uint64_t) override {
    ++shared_.report->opened;
    settle(loop);
  }
  void failed(Loop& loop, const char* what, int res, bool) override {
    ++shared_.report->errors;
    note_error(shared_.report->first_error, what, res);
    settle(loop);
  }
  void dropped(Loop&) override { ++shared_.report->dropped; }

  void settle(Loop& loop) {
    --shared_.in_progress;
    ++shared_.settled;
    while (shared_.in_progress < shared_.options->concurrency && shared_.next < shared_.all->size()) {
      (*shared_.all)[shared_.next++]->begin(loop);
    }
  }

  HoldShared& shared_;
  std::uint64_t seed_;
};

}  // namespace

Result<ConnectRateReport> run_connect_rate(const ConnectRateOptions& options) {
  if (options.concurrency == 0 || options.seconds <= 0) {
    return fail(Errc::kInvalidArgument, "connect-rate: concurrency and seconds must be > 0");
  }
  const unsigned threads = std::clamp<unsigned>(options.common.threads, 1, options.concurrency);
  std::vector<std::unique_ptr<ConnectRateReport>> per_thread;
  for (unsigned t = 0; t < threads; ++t) per_thread.push_back(std::make_unique<ConnectRateReport>());
  const std::uint64_t start = now_ns();
  const std::uint64_t deadline = start + static_cast<std::uint64_t>(options.seconds * 1e9);
  auto status = run_client_threads(threads, [&](unsigned t, ClientLoop& client) {
    RateShared shared;
    shared.deadline_ns = deadline;
    shared.seed = std::uint64_t{t} << 40;
    shared.report = per_thread[t].get();
    std::vector<std::unique_ptr<RateWorker>> workers;
    for (std::uint32_t i = 0; i < share(options.concurrency, threads, t); ++i) {
      workers.push_back(std::make_unique<RateWorker>(options, shared));
      ++shared.active;
    }
    for (auto& w : workers) w->cycle(client.loop());
    // Attempts started before the deadline may finish up to one I/O timeout later.
    (void)client.drive([&] { return shared.active == 0; },
                        deadline + options.common.io_timeout_ms * 1'000'000ULL + 1'000'000'000ULL);
    client.finish();
  });
  if (!status) return Unexpected{status.error()};
  ConnectRateReport total = std::move(*per_thread[0]);
  for (unsigned t = 1; t < threads; ++t) {
    total.completed += per_thread[t]->completed;
    total.errors += per_thread[t]->errors;
    total.histogram.merge(per_thread[t]->histogram);
    if (total.first_error.empty()) total.first_error = per_thread[t]->first_error;
  }
  total.seconds = static_cast<double>(now_ns() - start) / 1e9;
  total.per_second = total.seconds > 0 ? static_cast<double>(total.completed) / total.seconds : 0;
  return total;
}

Result<HoldReport> run_hold(const HoldOptions& options, void (*ready)(const HoldReport& so_far)) {
  if (options.connections == 0 || options.concurrency == 0) {
    return fail(Errc::kInvalidArgument, "hold: connections and concurrency must be > 0");
  }
  // Idle connections cost a client nothing: one loop holds them all.
  auto client = ClientLoop::create();
  if (!client) return Unexpected{client.error()};
  HoldReport report;
  std::vector<std::unique_ptr<HoldConn>> owned;
  std::vector<HoldConn*> all;
  HoldShared shared;
  shared.options = &options;
  shared.report = &report;
  shared.all = &all;
  for (std::uint32_t i = 0; i < options.connections; ++i) {
    owned.push_back(std::make_unique<HoldConn>(options, shared, i));
    all.push_back(owned.back().get());
  }
  const std::uint64_t start = now_ns();
  const std::uint64_t deadline = start + static_cast<std::uint64_t>(options.max_seconds * 1e9);
  while (shared.next < all.size() && shared.in_progress < options.concurrency) all[shared.next++]->begin(client->loop());
  auto stopped = [&] { return options.stop != nullptr && options.stop->load(std::memory_order_relaxed); };
  (void)client->drive([&] { return shared.settled == options.connections || stopped(); }, deadline);
  report.open_seconds = static_cast<double>(now_ns() - start) / 1e9;
  report.pending = options.connections - shared.settled;
  if (ready != nullptr) ready(report);
  const std::uint64_t held_from = now_ns();
  (void)client->drive(stopped, deadline);
  report.held_seconds = static_cast<double>(now_ns() - held_from) / 1e9;
  for (auto* conn : all) conn->close(client->loop());
  client->finish();
  return report;
}

}  // namespace ringtun::bench
