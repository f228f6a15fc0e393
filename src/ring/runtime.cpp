#include "ring/runtime.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "common/log.hpp"

namespace ringtun::ring {

std::vector<unsigned> Runtime::allowed_cpus() {
  std::vector<unsigned> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

Runtime::Runtime(RuntimeOptions options) : options_(std::move(options)) {
  thread_count_ = options_.threads != 0 ? options_.threads
                  : options_.cpus.empty() ? static_cast<unsigned>(allowed_cpus().size())
                                          : static_cast<unsigned>(options_.cpus.size());
}

Runtime::~Runtime() {
  stop(0);
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void Runtime::stop(int exit_code) noexcept {
  bool expected = false;
  if (stop_requested_.compare_exchange_strong(expected, true)) exit_code_.store(exit_code);
  // Loops may not exist yet (stop during start-up); run() checks the flag before and after starting them.
  std::lock_guard lock(loops_mutex_);
  for (auto& loop : loops_) {
    if (loop) loop->request_stop();
  }
}

Result<int> Runtime::run(const LoopInit& init) {
  // Signals are taken by this thread alone (sigtimedwait below); loop threads inherit the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (options_.on_reload) sigaddset(&signals, SIGHUP);
  sigset_t previous;
  if (options_.handle_signals) pthread_sigmask(SIG_BLOCK, &signals, &previous);
  signal(SIGPIPE, SIG_IGN);  // MSG_NOSIGNAL covers sends; this covers everything else

  const std::vector<unsigned> cpus = options_.cpus.empty() ? allowed_cpus() : options_.cpus;
  const unsigned n = thread_count_;
  std::vector<std::unique_ptr<Loop>> created(n);
  std::vector<Error> errors(n);
  std::vector<bool> failed(n, false);
  std::mutex mutex;
  std::condition_variable cv;
  unsigned ready = 0;
  bool go = false;

  threads_.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    threads_.emplace_back([&, i] {
      static thread_local char tag[24];
      std::snprintf(tag, sizeof tag, "core %u", i);
      log::set_thread_tag(tag);
      char name[16];  // the kernel keeps 15 characters: what top -H, perf and /proc show
      std::snprintf(name, sizeof name, "ringtun-loop%u", i);
      pthread_setname_np(pthread_self(), name);
      if (options_.pin_threads) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus[i % cpus.size()], &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) LOG_WARN("could not pin to a CPU");
      }
      auto loop = Loop::create(options_.loop, i, n);
      Loop* self = nullptr;  // ownership moves to loops_ once every loop exists
      {
        std::unique_lock lock(mutex);
        if (loop) {
          created[i] = std::move(*loop);
          self = created[i].get();
        } else {
          failed[i] = true;
          errors[i] = loop.error();
        }
        ++ready;
        cv.notify_all();
        cv.wait(lock, [&] { return go; });
      }
      if (self == nullptr) return;
      if (!stop_requested_.load()) {
        auto status = init(*self);
        if (!status) {
          char buf[256];
          LOG_ERROR("start-up failed: %s", status.error().describe(buf, sizeof buf));
          stop(1);
        }
        self->run();
      }
      if (options_.on_thread_exit != nullptr) options_.on_thread_exit();
    });
  }

  bool start_failed = false;
  Error first_error;
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return ready == n; });
    for (unsigned i = 0; i < n; ++i) {
      if (failed[i] && !start_failed) {
        start_failed = true;
        first_error = errors[i];
      }
    }
    if (!start_failed) {
      std::vector<Loop*> peers;
      for (auto& loop : created) peers.push_back(loop.get());
      for (auto& loop : created) loop->set_peers(peers);
      std::lock_guard loops_lock(loops_mutex_);
      loops_ = std::move(created);
    } else {
      stop_requested_.store(true);
    }
    go = true;
    cv.notify_all();
  }
  if (!start_failed) {
    LOG_DEBUG("runtime: %u loop(s), io_uring mode %s", n, loops_[0]->features().mode);
    if (stop_requested_.load()) stop(exit_code_.load());  // a stop that raced with start-up
  }

  if (!start_failed && options_.handle_signals) {
    timespec tick{0, 50'000'000};
    while (!stop_requested_.load()) {
      int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        LOG_INFO("%s received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        stop(0);
      } else if (sig == SIGHUP) {
        LOG_INFO("SIGHUP received: reloading");
        options_.on_reload();
      }
    }
  }
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  {
    std::lock_guard lock(loops_mutex_);
    loops_.clear();
  }
  if (options_.handle_signals) pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (start_failed) return Unexpected{first_error};
  return exit_code_.load();
}

}  // namespace ringtun::ring
