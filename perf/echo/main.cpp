// ringtun-echo: the ring's echo demo and the ring-vs-epoll echo benchmark.
//
//   ringtun-echo demo      a ring echo server and a client on loopback, showing traffic going through (README)
//   ringtun-echo serve     an echo server, --engine ring|epoll
//   ringtun-echo latency   64-byte ping-pong round trips against a server: p50/p90/p99/p99.9/max
//   ringtun-echo rps       requests/s with many connections, one request outstanding on each
//   ringtun-echo compare   both servers in this process, latency and rps against each, interleaved; a markdown table
//
// Output meant for people goes to stdout; logs and errors go to stderr.
#include <cstdio>
#include <cstring>

#include "common/log.hpp"
#include "echo/cli.hpp"
#include "echo/client.hpp"
#include "echo/server.hpp"

namespace ringtun::echo {
namespace {

constexpr const char* kUsage = R"(usage: ringtun-echo <command> [options]

commands:
  demo      Start an io_uring echo server on 127.0.0.1 (a free port), send a few messages through it,
            check every echo, print a short latency figure and stop.
              --requests N       messages to send (default 5)
              --forever          keep serving after the demo until Ctrl-C
              --threads N        server loops (default 1)
              --listen HOST:PORT (default 127.0.0.1:0, any free port)
              --timeout-s N      fail if the scripted part takes longer (default 30)
  serve     Run an echo server until Ctrl-C / SIGTERM.
              --engine ring|epoll   (default ring)
              --listen HOST:PORT    (default 127.0.0.1:7007)
              --threads N           loops / worker threads, one per core (default 1)
              --ring-buffers N      ring: provided buffers per loop, a power of two (default 1024)
              --ring-buffer-size B  ring: bytes per provided buffer (default 16384)
  latency   One connection, ping-pong: round-trip time percentiles in microseconds.
              --target HOST:PORT  --size 64  --requests 10000  --warmup 1000
  rps       Requests per second: many connections, one request outstanding on each.
              --target HOST:PORT  --connections 100  --size 64  --seconds 5  --warmup-ms 500
              --client-threads 1
  compare   Both servers in this process; latency and rps against each, interleaved over rounds;
            prints a markdown table (medians, min-max, ring/epoll ratio).
              --rounds 3  --seconds 3  --threads 1 (server loops; the client gets the other CPUs)
              --size 64  --requests 10000  --warmup 1000  --connections 100  --client-threads 1
              --ring-buffers 1024  --ring-buffer-size 16384
  help      This text.

common options: --log trace|debug|info|warn|error (default warn)
)";

Result<Engine> parse_engine(const std::string& name) {
  if (name == "ring") return Engine::kRing;
  if (name == "epoll") return Engine::kEpoll;
  return fail(Errc::kParse, "--engine must be ring or epoll");
}

}  // namespace

int run_serve_command(Args& args) {
  auto engine_name_text = args.text("engine", "ring");
  if (!engine_name_text) return report_error("serve", engine_name_text.error(), args.last_error_detail());
  auto engine = parse_engine(*engine_name_text);
  if (!engine) return report_error("serve", engine.error(), *engine_name_text);
  ServerOptions options;
  auto listen = args.address("listen", "127.0.0.1:7007");
  if (!listen) return report_error("serve", listen.error(), args.last_error_detail());
  auto threads = args.u32("threads", 1, 1, 1024);
  if (!threads) return report_error("serve", threads.error(), args.last_error_detail());
  auto buffers = args.u32("ring-buffers", 1024, 1, 32768);
  auto buffer_size = args.u32("ring-buffer-size", 16384, 64, 1u << 20);
  if (!buffers || !buffer_size) {
    return report_error("serve", !buffers ? buffers.error() : buffer_size.error(), args.last_error_detail());
  }
  options.ring_buffers = *buffers;
  options.ring_buffer_size = *buffer_size;
  if (auto done = args.finish(); !done) return report_error("serve", done.error(), args.last_error_detail());
  options.listen = *listen;
  options.threads = *threads;
  options.handle_signals = true;

  block_stop_signals();  // before any thread exists: only the server's run() takes SIGINT/SIGTERM
  auto server = open_server(*engine, options);
  if (!server) return report_error("serve", server.error(), listen->to_string());
  std::printf("ringtun-echo: %s echo server listening on %s with %u thread%s; Ctrl-C stops it\n", engine_name(*engine),
              (*server)->address().to_string().c_str(), *threads, *threads == 1 ? "" : "s");
  std::fflush(stdout);
  auto code = (*server)->run();
  if (!code) return report_error("serve", code.error());
  const ServerSnapshot s = (*server)->snapshot();
  std::printf("ringtun-echo: stopped (%s): %llu connections, %llu bytes echoed; receiving paused %llu times",
              (*server)->describe().c_str(), static_cast<unsigned long long>(s.accepted),
              static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(s.paused));
  if (*engine == Engine::kRing) {
    std::printf(
        ", %llu chunks arrived after recv_stop, most queued on one connection %llu, -ENOBUFS %llu, "
        "stale completions %llu",
        static_cast<unsigned long long>(s.late_chunks), static_cast<unsigned long long>(s.queue_high_water),
        static_cast<unsigned long long>(s.enobufs), static_cast<unsigned long long>(s.stale));
  }
  std::printf("\n");
  return *code;
}

int run_latency_command(Args& args) {
  LatencyOptions options;
  auto target = args.address("target", "127.0.0.1:7007");
  if (!target) return report_error("latency", target.error(), args.last_error_detail());
  auto size = args.u32("size", 64, 1, 1u << 20);
  auto requests = args.u32("requests", 10000, 1, 100'000'000);
  auto warmup = args.u32("warmup", 1000, 0, 100'000'000);
  if (!size || !requests || !warmup) {
    const Error& e = !size ? size.error() : !requests ? requests.error() : warmup.error();
    return report_error("latency", e, args.last_error_detail());
  }
  if (auto done = args.finish(); !done) return report_error("latency", done.error(), args.last_error_detail());
  options.target = *target;
  options.size = *size;
  options.requests = *requests;
  options.warmup = *warmup;
  auto r = run_latency(options);
  if (!r) return report_error("latency", r.error(), target->to_string());
  std::printf(
      "latency %s: %llu round trips of %u bytes after %u warm-up (us): p50 %.1f  p90 %.1f  p99 %.1f  "
      "p99.9 %.1f  max %.1f  mean %.1f\n",
      target->to_string().c_str(), static_cast<unsigned long long>(r->requests), options.size, options.warmup,
      r->p50_us, r->p90_us, r->p99_us, r->p999_us, r->max_us, r->mean_us);
  return 0;
}

int run_rps_command(Args& args) {
  RpsOptions options;
  auto target = args.address("target", "127.0.0.1:7007");
  if (!target) return report_error("rps", target.error(), args.last_error_detail());
  auto connections = args.u32("connections", 100, 1, 100'000);
  auto size = args.u32("size", 64, 1, 1u << 20);
  auto seconds = args.number("seconds", 5, 0.1, 3600);
  auto warmup = args.u32("warmup-ms", 500, 0, 600'000);
  auto threads = args.u32("client-threads", 1, 1, 256);
  if (!connections || !size || !seconds || !warmup || !threads) {
    const Error& e = !connections ? connections.error()
                     : !size      ? size.error()
                     : !seconds   ? seconds.error()
                     : !warmup    ? warmup.error()
                                  : threads.error();
    return report_error("rps", e, args.last_error_detail());
  }
  if (auto done = args.finish(); !done) return report_error("rps", done.error(), args.last_error_detail());
  options.target = *target;
  options.connections = *connections;
  options.size = *size;
  options.seconds = *seconds;
  options.warmup_ms = *warmup;
  options.threads = *threads;
  auto r = run_rps(options);
  if (!r) return report_error("rps", r.error(), target->to_string());
  std::printf("rps %s: %u connections, %u-byte requests, %.1f s: %llu requests, %.0f requests/s\n",
              target->to_string().c_str(), options.connections, options.size, r->seconds,
              static_cast<unsigned long long>(r->requests), r->rps);
  return 0;
}

}  // namespace ringtun::echo

int main(int argc, char** argv) {
  using namespace ringtun::echo;
  if (argc < 2 || std::strcmp(argv[1], "help") == 0 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  Args args = Args::parse(argc, argv, 2);
  auto level_text = args.text("log", "warn");
  ringtun::log::Level level{};
  if (!level_text || !ringtun::log::parse_level(level_text->c_str(), &level)) {
    std::fprintf(stderr, "ringtun-echo: --log must be trace|debug|info|warn|error|off\n");
    return 2;
  }
  ringtun::log::set_level(level);

  const char* command = argv[1];
  if (std::strcmp(command, "demo") == 0) return run_demo_command(args);
  if (std::strcmp(command, "serve") == 0) return run_serve_command(args);
  if (std::strcmp(command, "latency") == 0) return run_latency_command(args);
  if (std::strcmp(command, "rps") == 0) return run_rps_command(args);
  if (std::strcmp(command, "compare") == 0) return run_compare_command(args);
  std::fprintf(stderr, "ringtun-echo: unknown command '%s'\n\n%s", command, kUsage);
  return 2;
}
