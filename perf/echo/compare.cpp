// `ringtun-echo compare`: the ring and the epoll echo server side by side in one process, measured interleaved.
//
// Both servers start once, each with `--threads` workers pinned to the first allowed CPUs; the client (latency on
// this thread, rps on its own threads) is pinned to the remaining CPUs, so on a 2-CPU machine with --threads 1 the
// server has one core and the client the other. Each round runs latency then rps against the ring server, then the
// same against the epoll server; the idle server sleeps in the kernel meanwhile. Latency is measured twice: with
// the client on its own CPU (every round trip needs two cross-core wake-ups, which in a VM costs an IPI and a
// halt exit) and with the client moved onto the server's CPU (no cross-core wake-up). Between runs we wait until the
// server has closed every connection of the previous run. Server-side counters (CPU time of the worker threads,
// loop turns or epoll_wait returns, completions or events) are sampled around each rps run to explain the result.
// Output: progress on stderr, then a markdown report on stdout (what docs/perf/echo.md cites).
// Thread rules: main thread; the servers run on their own threads.
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>

#include "common/clock.hpp"
#include "echo/cli.hpp"
#include "echo/client.hpp"
#include "echo/server.hpp"
#include "ring/runtime.hpp"

#ifndef RINGTUN_ECHO_BUILD_INFO
#define RINGTUN_ECHO_BUILD_INFO "unknown build"
#endif

namespace ringtun::echo {
namespace {

struct RunResult {
  LatencyReport latency;           // the client on its own CPU: every round trip crosses cores
  LatencyReport latency_same_cpu;  // the client on the server's (first) CPU
  RpsReport rps;
  ServerSnapshot server;       // counter deltas over the rps run (connect, warm-up and window)
  double rps_wall_s = 0;       // how long that run took
  double server_requests = 0;  // echoes the server completed in the rps run (bytes / size)
};

struct Spread {
  double median = 0, min = 0, max = 0;
};

Spread spread(std::vector<double> values) {
  Spread s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  s.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  s.min = values.front();
  s.max = values.back();
  return s;
}

double ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}
double per(double a, double b) {
  return b > 0 ? a / b : 0;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// How this process is scheduled: benchmarks on a shared machine may run under `chrt -f`, and the report says so.
std::string scheduling() {
  const int policy = sched_getscheduler(0);
  sched_param param{};
  sched_getparam(0, &param);
  if (policy == SCHED_FIFO) return "SCHED_FIFO priority " + std::to_string(param.sched_priority) + " (chrt -f)";
  if (policy == SCHED_RR) return "SCHED_RR priority " + std::to_string(param.sched_priority) + " (chrt -r)";
  return "normal (SCHED_OTHER)";
}

std::string cpu_list(const std::vector<unsigned>& cpus) {
  std::string s;
  for (unsigned c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s.empty() ? "any" : s;
}

// The server closes a connection when it sees the client's FIN; wait for that so runs do not overlap.
void wait_for_idle(const EchoServer& server) {
  const std::uint64_t deadline = monotonic_ms() + 3000;
  while (server.snapshot().open_connections() != 0 && monotonic_ms() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // The ring server publishes loop counters every 20 ms: let the last ones land.
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
}

struct CompareConfig {
  unsigned rounds = 3;
  unsigned threads = 1;
  LatencyOptions latency;
  RpsOptions rps;
  std::vector<unsigned> server_cpus;
  std::vector<unsigned> client_cpus;  // empty: the client is not pinned
  std::vector<unsigned> all_cpus;
};

Result<RunResult> measure(EchoServer& server, const CompareConfig& cfg) {
  const LatencyOptions& latency = cfg.latency;
  const RpsOptions& rps = cfg.rps;
  RunResult r;
  auto lat = run_latency(latency);
  if (!lat) return Unexpected{lat.error()};
  r.latency = *lat;
  wait_for_idle(server);
  // The same ping-pong with the client on the server's CPU: no cross-core wake-up in the round trip.
  (void)pin_current_thread(cfg.server_cpus.front());
  lat = run_latency(latency);
  (void)pin_current_thread(cfg.client_cpus.empty() ? cfg.all_cpus : cfg.client_cpus);
  if (!lat) return Unexpected{lat.error()};
  r.latency_same_cpu = *lat;
  wait_for_idle(server);
  const ServerSnapshot before = server.snapshot();
  const std::uint64_t start = monotonic_ns();
  auto load = run_rps(rps);
  const std::uint64_t end = monotonic_ns();
  if (!load) return Unexpected{load.error()};
  r.rps = *load;
  r.rps_wall_s = static_cast<double>(end - start) / 1e9;
  wait_for_idle(server);
  r.server = server.snapshot() - before;
  r.server_requests = static_cast<double>(r.server.bytes) / rps.size;
  return r;
}

void print_report(const CompareConfig& cfg, const std::vector<RunResult> (&runs)[2], const std::string (&describe)[2],
                  const char* command_line, const std::string& load_before) {
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  utsname uts{};
  uname(&uts);
  std::printf("## ringtun-echo compare\n\n");
  std::printf("- date: %s\n", date);
  std::printf("- command: `%s`\n", command_line);
  std::printf("- machine: %ld CPUs online (%s), kernel %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu_model().c_str(),
              uts.release);
  std::printf("- build: %s\n", RINGTUN_ECHO_BUILD_INFO);
  std::printf("- load average (1/5/15 min) before: %s, after: %s\n", load_before.c_str(), load_average().c_str());
  std::printf("- scheduling: %s\n", scheduling().c_str());
  std::printf("- server: %u worker%s pinned to CPU %s; client pinned to CPU %s\n", cfg.threads,
              cfg.threads == 1 ? "" : "s", cpu_list(cfg.server_cpus).c_str(), cpu_list(cfg.client_cpus).c_str());
  std::printf("- ring: %s\n- epoll: %s\n", describe[0].c_str(), describe[1].c_str());
  std::printf(
      "- %u rounds, each: ring then epoll; latency = %u round trips of %u B after %u warm-up on one connection, "
      "once from the client CPU and once from the server's CPU; rps = %u connections x 1 outstanding %u-B request, "
      "%.1f s measured after %u ms warm-up, %u client thread%s\n\n",
      cfg.rounds, cfg.latency.requests, cfg.latency.size, cfg.latency.warmup, cfg.rps.connections, cfg.rps.size,
      cfg.rps.seconds, cfg.rps.warmup_ms, cfg.rps.threads, cfg.rps.threads == 1 ? "" : "s");

  struct Row {
    const char* name;
    double (*get)(const RunResult&);
    int decimals;
    const char* better;
  };
  const Row rows[] = {
      {"latency p50 (us), client on another CPU", [](const RunResult& r) { return r.latency.p50_us; }, 1, "lower"},
      {"latency p99 (us), client on another CPU", [](const RunResult& r) { return r.latency.p99_us; }, 1, "lower"},
      {"latency p99.9 (us), client on another CPU", [](const RunResult& r) { return r.latency.p999_us; }, 1, "lower"},
      {"latency p50 (us), client on the server's CPU", [](const RunResult& r) { return r.latency_same_cpu.p50_us; }, 1,
       "lower"},
      {"latency p99 (us), client on the server's CPU", [](const RunResult& r) { return r.latency_same_cpu.p99_us; }, 1,
       "lower"},
      {"requests/s (rps run)", [](const RunResult& r) { return r.rps.rps; }, 0, "higher"},
      {"server CPU busy in rps (%)",
       [](const RunResult& r) { return 100.0 * static_cast<double>(r.server.cpu_ns) / 1e9 / r.rps_wall_s; }, 0, "-"},
      {"client CPU busy in rps (%)", [](const RunResult& r) { return 100.0 * r.rps.client_busy; }, 0, "-"},
      {"server CPU per request (us)",
       [](const RunResult& r) { return per(static_cast<double>(r.server.cpu_ns) / 1000.0, r.server_requests); }, 2,
       "lower"},
      {"server syscalls per request",
       [](const RunResult& r) { return per(static_cast<double>(r.server.syscalls), r.server_requests); }, 3, "lower"},
      {"server wake-ups per request",
       [](const RunResult& r) { return per(static_cast<double>(r.server.iterations), r.server_requests); }, 3, "-"},
      {"completions/events per wake-up",
       [](const RunResult& r) {
         return per(static_cast<double>(r.server.events), static_cast<double>(r.server.iterations));
       },
       1, "-"},
      {"recv chunks per send",
       [](const RunResult& r) {
         return per(static_cast<double>(r.server.reads), static_cast<double>(r.server.writes));
       },
       2, "-"},
  };
  std::printf("| metric | ring: median (min-max) | epoll: median (min-max) | ring/epoll | better |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const Row& row : rows) {
    Spread s[2];
    for (int e = 0; e < 2; ++e) {
      std::vector<double> v;
      for (const RunResult& r : runs[e]) v.push_back(row.get(r));
      s[e] = spread(v);
    }
    char cell[2][128];
    for (int e = 0; e < 2; ++e) {
      std::snprintf(cell[e], sizeof cell[e], "%.*f (%.*f-%.*f)", row.decimals, s[e].median, row.decimals, s[e].min,
                    row.decimals, s[e].max);
    }
    std::printf("| %s | %s | %s | %.2f | %s |\n", row.name, cell[0], cell[1], ratio(s[0].median, s[1].median),
                row.better);
  }

  // Rounds interleave the engines, so slow drift on a shared machine hits both sides of a round alike: the
  // per-round (paired) ratios are the fairer view when the spread between rounds is wide.
  std::vector<double> rps_ring, rps_epoll, paired_rps, paired_cpu;
  for (unsigned i = 0; i < cfg.rounds; ++i) {
    const RunResult& ring_run = runs[0][i];
    const RunResult& epoll_run = runs[1][i];
    rps_ring.push_back(ring_run.rps.rps);
    rps_epoll.push_back(epoll_run.rps.rps);
    paired_rps.push_back(ratio(ring_run.rps.rps, epoll_run.rps.rps));
    paired_cpu.push_back(ratio(per(static_cast<double>(ring_run.server.cpu_ns), ring_run.server_requests),
                               per(static_cast<double>(epoll_run.server.cpu_ns), epoll_run.server_requests)));
  }
  const double rps_ratio = ratio(spread(rps_ring).median, spread(rps_epoll).median);
  const Spread paired = spread(paired_rps);
  const Spread paired_cost = spread(paired_cpu);
  unsigned ring_wins = 0;
  for (double r : paired_rps) ring_wins += r >= 1.0 ? 1 : 0;
  std::printf("\n**ring/epoll requests/s at %u connections: %.2f** (ratio of the medians; %s)\n", cfg.rps.connections,
              rps_ratio, rps_ratio >= 1.0 ? "the ring does not lose" : "THE RING LOSES: see the per-request counters");
  std::printf(
      "\nPer-round (paired) ring/epoll: requests/s %.2f (%.2f-%.2f), ring ahead in %u of %u rounds; "
      "server CPU per request %.2f (%.2f-%.2f)\n",
      paired.median, paired.min, paired.max, ring_wins, cfg.rounds, paired_cost.median, paired_cost.min,
      paired_cost.max);

  std::printf("\nPer run (rps counters are server-side deltas over the whole rps run):\n\n");
  std::printf(
      "| round | engine | p50 us | p99 us | same-CPU p50 us | req/s | server CPU %% | client CPU %% | CPU us/req | "
      "wake-ups/req | events/wake-up | late chunks | stale CQEs |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (unsigned i = 0; i < cfg.rounds; ++i) {
    for (int e = 0; e < 2; ++e) {
      const RunResult& r = runs[e][i];
      std::printf("| %u | %s | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f | %.2f | %.3f | %.1f | %llu | %llu |\n", i + 1,
                  e == 0 ? "ring" : "epoll", r.latency.p50_us, r.latency.p99_us, r.latency_same_cpu.p50_us, r.rps.rps,
                  100.0 * static_cast<double>(r.server.cpu_ns) / 1e9 / r.rps_wall_s, 100.0 * r.rps.client_busy,
                  per(static_cast<double>(r.server.cpu_ns) / 1000.0, r.server_requests),
                  per(static_cast<double>(r.server.iterations), r.server_requests),
                  per(static_cast<double>(r.server.events), static_cast<double>(r.server.iterations)),
                  static_cast<unsigned long long>(r.server.late_chunks),
                  static_cast<unsigned long long>(r.server.stale));
    }
  }
}

}  // namespace

int run_compare_command(Args& args) {
  CompareConfig cfg;
  auto rounds = args.u32("rounds", 3, 1, 1000);
  auto seconds = args.number("seconds", 3, 0.1, 3600);
  auto threads = args.u32("threads", 1, 1, 1024);
  auto size = args.u32("size", 64, 1, 1u << 20);
  auto requests = args.u32("requests", 10000, 1, 100'000'000);
  auto warmup = args.u32("warmup", 1000, 0, 100'000'000);
  auto connections = args.u32("connections", 100, 1, 100'000);
  auto client_threads = args.u32("client-threads", 1, 1, 256);
  auto host = args.text("host", "127.0.0.1");
  auto ring_buffers = args.u32("ring-buffers", 1024, 1, 32768);
  auto ring_buffer_size = args.u32("ring-buffer-size", 16384, 64, 1u << 20);
  if (!rounds || !seconds || !threads || !size || !requests || !warmup || !connections || !client_threads || !host ||
      !ring_buffers || !ring_buffer_size) {
    return report_error("compare", Error(Errc::kInvalidArgument, "bad option"), args.last_error_detail());
  }
  if (auto done = args.finish(); !done) return report_error("compare", done.error(), args.last_error_detail());
  cfg.rounds = *rounds;
  cfg.threads = *threads;

  const std::string load_before = load_average();
  const std::vector<unsigned> cpus = ring::Runtime::allowed_cpus();
  cfg.all_cpus = cpus;
  for (std::size_t i = 0; i < cpus.size(); ++i)
    (i < cfg.threads ? cfg.server_cpus : cfg.client_cpus).push_back(cpus[i]);
  if (cfg.client_cpus.empty()) {
    std::fprintf(stderr, "compare: no CPU left for the client (%zu allowed, %u for the server): it is not pinned\n",
                 cpus.size(), cfg.threads);
  }

  auto listen = net::parse_address(*host + ":0");
  if (!listen) return report_error("compare", listen.error(), *host);
  ServerOptions server_options;
  server_options.listen = *listen;
  server_options.threads = cfg.threads;
  server_options.handle_signals = false;  // Ctrl-C simply ends a benchmark
  server_options.ring_buffers = *ring_buffers;
  server_options.ring_buffer_size = *ring_buffer_size;
  std::unique_ptr<EchoServer> servers[2];
  const Engine engines[2] = {Engine::kRing, Engine::kEpoll};
  for (int e = 0; e < 2; ++e) {
    auto s = open_server(engines[e], server_options);
    if (!s) return report_error("compare: open server", s.error(), engine_name(engines[e]));
    servers[e] = std::move(*s);
  }
  std::thread server_threads[2];
  std::atomic<int> server_failures{0};
  for (int e = 0; e < 2; ++e) {
    server_threads[e] = std::thread([&, e] {
      auto code = servers[e]->run();
      if (!code) {
        report_error(engine_name(engines[e]), code.error());
        ++server_failures;
      }
    });
  }
  for (int e = 0; e < 2; ++e) {
    const std::uint64_t deadline = monotonic_ms() + 5000;
    while (!servers[e]->serving() && monotonic_ms() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The servers' threads pinned themselves; from here on this thread (and the rps threads) run on the client CPUs.
  if (!cfg.client_cpus.empty()) (void)pin_current_thread(cfg.client_cpus.front());

  cfg.latency.size = *size;
  cfg.latency.requests = *requests;
  cfg.latency.warmup = *warmup;
  cfg.rps.connections = *connections;
  cfg.rps.size = *size;
  cfg.rps.seconds = *seconds;
  cfg.rps.threads = *client_threads;
  cfg.rps.cpus = cfg.client_cpus;

  std::vector<RunResult> runs[2];
  int exit_code = 0;
  for (unsigned round = 0; round < cfg.rounds && exit_code == 0; ++round) {
    for (int e = 0; e < 2 && exit_code == 0; ++e) {
      cfg.latency.target = servers[e]->address();
      cfg.rps.target = servers[e]->address();
      auto r = measure(*servers[e], cfg);
      if (!r) {
        exit_code = report_error(engine_name(engines[e]), r.error());
        break;
      }
      std::fprintf(stderr,
                   "round %u/%u %-5s: latency p50/p99 %.1f/%.1f us (same CPU %.1f/%.1f us) | %.0f requests/s, "
                   "server CPU %.0f%%, client CPU %.0f%%\n",
                   round + 1, cfg.rounds, engine_name(engines[e]), r->latency.p50_us, r->latency.p99_us,
                   r->latency_same_cpu.p50_us, r->latency_same_cpu.p99_us, r->rps.rps,
                   100.0 * static_cast<double>(r->server.cpu_ns) / 1e9 / r->rps_wall_s, 100.0 * r->rps.client_busy);
      runs[e].push_back(*r);
    }
  }
  const std::string describe[2] = {servers[0]->describe(), servers[1]->describe()};
  for (int e = 0; e < 2; ++e) servers[e]->stop(0);
  for (auto& t : server_threads) t.join();
  if (server_failures != 0 && exit_code == 0) exit_code = 1;
  if (exit_code != 0) return exit_code;

  print_report(cfg, runs, describe, args.command_line().c_str(), load_before);
  return 0;
}

}  // namespace ringtun::echo
