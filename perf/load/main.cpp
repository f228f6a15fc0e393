// ringtun-bench: the load generator and the services it measures against (see README "Benchmarks" and
// perf/run_loopback.sh, which drives it).
//
//   ringtun-bench serve [--echo HOST:PORT] [--sink HOST:PORT] [--threads N] [--max-seconds S]
//   ringtun-bench throughput   --target HOST:PORT [--streams N] [--bytes B] [--verify] [--chunk B]
//   ringtun-bench latency      --target HOST:PORT [--size S] [--requests C] [--warmup W] [--connections N]
//   ringtun-bench connect-rate --target HOST:PORT [--seconds T] [--concurrency N] [--size S]
//   ringtun-bench hold         --target HOST:PORT [--connections N] [--concurrency N] [--max-seconds S]
//   common: [--threads N] [--connect-timeout-ms MS] [--io-timeout-ms MS] [--label TEXT]
//
// Each client run prints one JSON object on stdout and one readable line on stderr, and exits 1 if anything
// failed verification or errored. hold prints {"event":"hold_ready",...} once every connection is verified and
// then holds until SIGINT/SIGTERM (or --max-seconds).
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "load/clients.hpp"
#include "load/driver.hpp"
#include "load/report.hpp"
#include "load/server.hpp"

namespace {

using namespace ringtun;
using namespace ringtun::bench;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr,
               "ringtun-bench: %s\n"
               "usage: ringtun-bench serve|throughput|latency|connect-rate|hold [options] (see perf/load/main.cpp)\n",
               problem);
  std::exit(2);
}

class Args {
 public:
  Args(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Walks the flags after the mode; `handle(name, value)` returns false for an unknown flag. Boolean flags are
  // listed in `switches` and take no value.
  template <typename Handle>
  void parse(std::initializer_list<std::string_view> switches, Handle&& handle) {
    for (int i = 2; i < argc_; ++i) {
      std::string_view name = argv_[i];
      bool is_switch = false;
      for (auto s : switches) is_switch = is_switch || s == name;
      std::string_view value;
      if (!is_switch) {
        if (i + 1 >= argc_) usage((std::string("missing value for ") + std::string(name)).c_str());
        value = argv_[++i];
      }
      if (!handle(name, value)) usage((std::string("unknown flag ") + std::string(name)).c_str());
    }
  }

 private:
  int argc_;
  char** argv_;
};

std::uint64_t to_u64(std::string_view text, std::string_view name) {
  char* end = nullptr;
  const std::string s(text);
  const double v = std::strtod(s.c_str(), &end);  // accepts 1e8 for byte counts
  if (end == s.c_str() || *end != '\0' || v < 0) usage((std::string("bad number for ") + std::string(name)).c_str());
  return static_cast<std::uint64_t>(v);
}

double to_double(std::string_view text, std::string_view name) {
  char* end = nullptr;
  const std::string s(text);
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || v < 0) usage((std::string("bad number for ") + std::string(name)).c_str());
  return v;
}

ring::net::Address to_address(std::string_view text) {
  auto a = ring::net::parse_address(text);
  if (!a) usage((std::string("bad address ") + std::string(text)).c_str());
  return *a;
}

// Flags every client mode takes; returns false if `name` is not one of them.
bool common_flag(CommonOptions& c, std::string& label, std::string_view name, std::string_view value, bool& has_target) {
  if (name == "--target") {
    c.target = to_address(value);
    has_target = true;
  } else if (name == "--threads") {
    c.threads = static_cast<unsigned>(to_u64(value, name));
  } else if (name == "--connect-timeout-ms") {
    c.connect_timeout_ms = static_cast<std::uint32_t>(to_u64(value, name));
  } else if (name == "--io-timeout-ms") {
    c.io_timeout_ms = static_cast<std::uint32_t>(to_u64(value, name));
  } else if (name == "--label") {
    label = value;
  } else {
    return false;
  }
  return true;
}

int finish(const Result<std::string>& json, bool ok) {
  if (!json) {
    std::fprintf(stderr, "ringtun-bench: %s\n", describe(json.error()).c_str());
    return 1;
  }
  std::printf("%s\n", json->c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

int serve(Args& args) {
  ServiceOptions o;
  args.parse({}, [&](std::string_view name, std::string_view value) {
    if (name == "--echo") {
      o.echo = to_address(value);
      o.has_echo = true;
    } else if (name == "--sink") {
      o.sink = to_address(value);
      o.has_sink = true;
    } else if (name == "--threads") {
      o.threads = static_cast<unsigned>(to_u64(value, name));
    } else if (name == "--max-seconds") {
      o.max_seconds = static_cast<std::uint32_t>(to_u64(value, name));
    } else {
      return false;
    }
    return true;
  });
  if (!o.has_echo && !o.has_sink) usage("serve needs --echo and/or --sink");
  if (o.threads == 0) usage("--threads must be >= 1");
  auto code = run_services(o);
  if (!code) {
    std::fprintf(stderr, "ringtun-bench serve: %s\n", describe(code.error()).c_str());
    return 1;
  }
  return *code;
}

int client(std::string_view mode, Args& args) {
  std::string label;
  bool has_target = false;
  if (mode == "throughput") {
    ThroughputOptions o;
    args.parse({"--verify"}, [&](std::string_view name, std::string_view value) {
      if (common_flag(o.common, label, name, value, has_target)) return true;
      if (name == "--streams") o.streams = static_cast<std::uint32_t>(to_u64(value, name));
      else if (name == "--bytes") o.bytes = to_u64(value, name);
      else if (name == "--chunk") o.chunk = static_cast<std::uint32_t>(to_u64(value, name));
      else if (name == "--verify") o.verify = true;
      else return false;
      return true;
    });
    if (!has_target) usage("--target is required");
    auto r = run_throughput(o);
    if (!r) return finish(Unexpected{r.error()}, false);
    return finish(throughput_json(o, *r, label), r->errors == 0 && r->streams_ok == o.streams);
  }
  if (mode == "latency") {
    LatencyOptions o;
    args.parse({}, [&](std::string_view name, std::string_view value) {
      if (common_flag(o.common, label, name, value, has_target)) return true;
      if (name == "--size") o.size = static_cast<std::uint32_t>(to_u64(value, name));
      else if (name == "--requests") o.requests = static_cast<std::uint32_t>(to_u64(value, name));
      else if (name == "--warmup") o.warmup = static_cast<std::uint32_t>(to_u64(value, name));
      else if (name == "--connections") o.connections = static_cast<std::uint32_t>(to_u64(value, name));
      else return false;
      return true;
    });
    if (!has_target) usage("--target is required");
    auto r = run_latency(o);
    if (!r) return finish(Unexpected{r.error()}, false);
    return finish(latency_json(o, *r, label), r->errors == 0 && r->mismatches == 0);
  }
  if (mode == "connect-rate") {
    ConnectRateOptions o;
    args.parse({}, [&](std::string_view name, std::string_view value) {
      if (common_flag(o.common, label, name, value, has_target)) return true;
      if (name == "--seconds") o.seconds = to_double(value, name);
      else if (name == "--concurrency") o.concurrency = static_cast<std::uint32_t>(to_u64(value, name));
      else if (name == "--size") o.size = static_cast<std::uint32_t>(to_u64(value, name));
      else return false;
      return true;
    });
    if (!has_target) usage("--target is required");
    auto r = run_connect_rate(o);
    if (!r) return finish(Unexpected{r.error()}, false);
    return finish(connect_rate_json(o, *r, label), r->errors == 0 && r->completed > 0);
  }
  if (mode == "hold") {
    HoldOptions o;
    args.parse({}, [&](std::string_view name, std::string_view value) {
      if (common_flag(o.common, label, name, value, has_target)) return true;
      if (name == "--connections") o.connections = static_cast<std::uint32_t>(to_u64(value, name));
      else if (name == "--concurrency") o.concurrency = static_cast<std::uint32_t>(to_u64(value, name));
      else if (name == "--max-seconds") o.max_seconds = to_double(value, name);
      else if (name == "--size") o.size = static_cast<std::uint32_t>(to_u64(value, name));
      else return false;
      return true;
    });
    if (!has_target) usage("--target is required");
    o.stop = &g_stop;
    auto r = run_hold(o, [](const HoldReport& so_far) {
      std::printf("{\"event\":\"hold_ready\",\"opened\":%u,\"errors\":%u,\"pending\":%u,\"open_seconds\":%.3f}\n",
                  so_far.opened, so_far.errors, so_far.pending, so_far.open_seconds);
      std::fflush(stdout);
    });
    if (!r) return finish(Unexpected{r.error()}, false);
    return finish(hold_json(o, *r, label), r->errors == 0 && r->dropped == 0 && r->opened == o.connections);
  }
  usage("unknown mode");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("no mode given");
  const std::string_view mode = argv[1];
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  if (mode != "serve") {  // serve: the Runtime takes the signals itself
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  }
  (void)ring::net::raise_fd_limit();
  Args args(argc, argv);
  if (mode == "serve") return serve(args);
  return client(mode, args);
}
