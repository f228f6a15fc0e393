// What both echo servers share: counters and their snapshots, thread pinning, engine names.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>

#include "echo/server.hpp"

namespace ringtun::echo {

void CoreCounters::publish_cpu_clock() noexcept {
  clockid_t clock{};
  if (pthread_getcpuclockid(pthread_self(), &clock) == 0) {
    cpu_clock = clock;
    cpu_clock_valid.store(true, std::memory_order_release);
  }
}

ServerSnapshot ServerSnapshot::operator-(const ServerSnapshot& earlier) const noexcept {
  ServerSnapshot d;
  d.accepted = accepted - earlier.accepted;
  d.closed = closed - earlier.closed;
  d.bytes = bytes - earlier.bytes;
  d.reads = reads - earlier.reads;
  d.writes = writes - earlier.writes;
  d.iterations = iterations - earlier.iterations;
  d.events = events - earlier.events;
  d.syscalls = syscalls - earlier.syscalls;
  d.paused = paused - earlier.paused;
  d.late_chunks = late_chunks - earlier.late_chunks;
  d.queue_high_water = queue_high_water;
  d.stale = stale - earlier.stale;
  d.enobufs = enobufs - earlier.enobufs;
  d.cpu_ns = cpu_ns - earlier.cpu_ns;
  return d;
}

ServerSnapshot sum_counters(const std::vector<std::unique_ptr<CoreCounters>>& cores) noexcept {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  ServerSnapshot s;
  for (const auto& c : cores) {
    s.accepted += c->accepted.load(kRelaxed);
    s.closed += c->closed.load(kRelaxed);
    s.bytes += c->bytes.load(kRelaxed);
    s.reads += c->reads.load(kRelaxed);
    s.writes += c->writes.load(kRelaxed);
    s.iterations += c->iterations.load(kRelaxed);
    s.events += c->events.load(kRelaxed);
    s.syscalls += c->syscalls.load(kRelaxed);
    s.paused += c->paused.load(kRelaxed);
    s.late_chunks += c->late_chunks.load(kRelaxed);
    s.queue_high_water = std::max<std::uint64_t>(s.queue_high_water, c->queue_high_water.load(kRelaxed));
    s.stale += c->stale.load(kRelaxed);
    s.enobufs += c->enobufs.load(kRelaxed);
    // The clock id stays readable while the worker thread lives; snapshots are only taken while servers run.
    if (c->cpu_clock_valid.load(std::memory_order_acquire)) {
      timespec ts{};
      if (clock_gettime(c->cpu_clock, &ts) == 0) {
        s.cpu_ns += static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
      }
    }
  }
  return s;
}

Status pin_current_thread(unsigned cpu) noexcept {
  return pin_current_thread(std::vector<unsigned>{cpu});
}

Status pin_current_thread(const std::vector<unsigned>& cpus) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned cpu : cpus) CPU_SET(cpu, &set);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set); err != 0) {
    return fail_errno(err, "pthread_setaffinity_np");
  }
  return {};
}

const char* engine_name(Engine engine) noexcept {
  return engine == Engine::kRing ? "ring" : "epoll";
}

Result<std::unique_ptr<EchoServer>> open_server(Engine engine, const ServerOptions& options) {
  return engine == Engine::kRing ? open_ring_server(options) : open_epoll_server(options);
}

}  // namespace ringtun::echo
