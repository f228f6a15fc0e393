// `ringtun-echo demo`: the project's first runnable job until the gateway exists (the README's first command).
//
// Starts the ring echo server on 127.0.0.1 with a port the kernel picks, connects a client from a second thread,
// sends a few human-readable messages and checks each echo byte for byte, measures a short latency figure, then
// stops the server and exits 0. Any mismatch, early close or timeout makes it exit 1; a watchdog bounds the whole
// demo (--timeout-s), so a hung ring fails the integration test instead of stalling it. With --forever the server
// keeps serving after the demo until SIGINT/SIGTERM.
// Thread rules: the server runs on the main thread (it takes the signals); the client on its own thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "echo/cli.hpp"
#include "echo/client.hpp"
#include "echo/payload.hpp"
#include "echo/server.hpp"

namespace ringtun::echo {
namespace {

constexpr const char* kMessages[] = {
    "hello from the ringtun echo demo",
    "this line went through io_uring and came back",
    "a multishot recv lent it a buffer from the per-core pool",
    "and one gather send returned it",
    "one event loop per core, nothing shared between cores",
};
constexpr std::size_t kMessageCount = sizeof kMessages / sizeof kMessages[0];

// Ends the process if the demo has not finished in time: a hung loop must fail the test, not stall it.
class Watchdog {
 public:
  explicit Watchdog(std::uint32_t seconds) : thread_([this, seconds] { watch(seconds); }) {}
  ~Watchdog() {
    disarm();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void disarm() {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    cv_.notify_all();
  }

 private:
  void watch(std::uint32_t seconds) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) return;
    std::fprintf(stderr, "demo FAILED: not finished after %u s (the echo server or client hung)\n", seconds);
    std::fflush(stdout);
    std::_Exit(1);
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

struct DemoPlan {
  std::uint32_t messages = 5;
  bool forever = false;
};

// The client side; returns the exit code. Prints what it sends and what comes back.
int run_demo_client(EchoServer& server, const DemoPlan& plan, const std::atomic<bool>& server_returned) {
  const net::Address& target = server.address();
  // Wait for the loops to run, so the first RTT shown is a round trip and not the runtime's start-up.
  while (!server.serving()) {
    if (server_returned.load()) return 1;  // it failed to start; main reports why
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  PingPongConnection conn;
  if (auto ok = conn.connect(target, 5000); !ok) return report_error("demo: connect", ok.error(), target.to_string());
  auto local = net::local_address(conn.fd());
  std::printf("client  connected from %s\n", local ? local->to_string().c_str() : "?");

  std::string echo;
  for (std::uint32_t i = 0; i < plan.messages; ++i) {
    char message[128];
    std::snprintf(message, sizeof message, "#%u %s", i + 1, kMessages[i % kMessageCount]);
    const auto size = static_cast<std::uint32_t>(std::strlen(message));
    echo.assign(size, '\0');
    std::printf("  sent    \"%s\"\n", message);
    auto rtt = conn.round_trip(reinterpret_cast<const std::uint8_t*>(message), size,
                               reinterpret_cast<std::uint8_t*>(echo.data()));
    if (!rtt) return report_error("demo: echo", rtt.error(), message);
    const std::uint32_t sum = checksum32(reinterpret_cast<const std::uint8_t*>(echo.data()), size);
    std::printf("  echoed  \"%s\" (%u bytes, checksum %08x ok, RTT %.0f us)\n", echo.c_str(), size, sum,
                static_cast<double>(*rtt) / 1000.0);
  }
  conn.close();

  LatencyOptions latency;
  latency.target = target;
  latency.size = 64;
  latency.requests = 2000;
  latency.warmup = 200;
  auto figure = run_latency(latency);
  if (!figure) return report_error("demo: latency", figure.error(), target.to_string());
  std::printf("latency %llu round trips of 64 bytes on a new connection: p50 %.0f us, p99 %.0f us, max %.0f us\n",
              static_cast<unsigned long long>(figure->requests), figure->p50_us, figure->p99_us, figure->max_us);

  const ServerSnapshot s = server.snapshot();
  std::printf("server  %s: %llu connections, %llu bytes echoed\n", server.describe().c_str(),
              static_cast<unsigned long long>(s.accepted), static_cast<unsigned long long>(s.bytes));
  if (plan.forever) {
    std::printf("serving on %s until Ctrl-C (try: nc %s %u)\n", target.to_string().c_str(),
                target.family() == AF_INET6 ? "::1" : "127.0.0.1", target.port());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int run_demo_command(Args& args) {
  auto messages = args.u32("requests", 5, 1, 100'000);
  auto threads = args.u32("threads", 1, 1, 1024);
  auto timeout = args.u32("timeout-s", 30, 1, 3600);
  auto listen = args.address("listen", "127.0.0.1:0");
  const bool forever = args.flag("forever");
  if (!messages || !threads || !timeout || !listen) {
    const Error& e = !messages  ? messages.error()
                     : !threads ? threads.error()
                     : !timeout ? timeout.error()
                                : listen.error();
    return report_error("demo", e, args.last_error_detail());
  }
  if (auto done = args.finish(); !done) return report_error("demo", done.error(), args.last_error_detail());

  block_stop_signals();  // before any thread: the server's runtime alone takes SIGINT/SIGTERM
  ServerOptions options;
  options.listen = *listen;
  options.threads = *threads;
  options.handle_signals = true;
  auto server = open_server(Engine::kRing, options);
  if (!server) return report_error("demo: start the echo server", server.error(), listen->to_string());
  EchoServer& srv = **server;
  std::printf("ringtun-echo demo: an echo server on the ring (io_uring) and a client, over loopback\n");
  std::printf("server  listening on %s (%u loop%s; Ctrl-C stops it)\n", srv.address().to_string().c_str(), *threads,
              *threads == 1 ? "" : "s");
  std::fflush(stdout);

  DemoPlan plan;
  plan.messages = *messages;
  plan.forever = forever;
  int client_code = 0;
  std::atomic<bool> server_returned{false};
  Watchdog watchdog(*timeout);
  std::thread client([&] {
    client_code = run_demo_client(srv, plan, server_returned);
    watchdog.disarm();  // the scripted part is over; --forever keeps serving without a deadline
    if (client_code != 0 || !plan.forever) srv.stop(client_code);
  });
  auto code = srv.run();
  server_returned.store(true);
  client.join();
  if (!code) return report_error("demo: echo server", code.error());
  const ServerSnapshot s = srv.snapshot();
  if (client_code != 0 || *code != 0) {
    std::fprintf(stderr, "demo FAILED (exit %d)\n", client_code != 0 ? client_code : *code);
    return client_code != 0 ? client_code : *code;
  }
  if (s.open_connections() != 0 || s.stale != 0) {
    std::fprintf(stderr, "demo FAILED: the server stopped with %llu connections open, %llu stale completions\n",
                 static_cast<unsigned long long>(s.open_connections()), static_cast<unsigned long long>(s.stale));
    return 1;
  }
  std::printf("demo ok: every echo matched byte for byte; the server stopped cleanly\n");
  return 0;
}

}  // namespace ringtun::echo
