#include "edge-agent/health.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/log.hpp"
#include "edge-agent/agent.hpp"
#include "http/response_reader.hpp"
#include "tunnel/proxy_header.hpp"

namespace ringtun::agent {

// One service's checks: a probe every interval, one socket at a time. A socket's late callbacks (after the probe
// closed it, or after a newer probe began) are told apart by its id. The probe keeps its own copy of the service's
// settings: a reload may free the set they came from.
class HealthChecks::Probe final : public ring::SocketHandler {
 public:
  Probe(HealthChecks& owner, const app::ServiceConfig& config) : owner_(owner), config_(config) {
    timer_.set_callback([](void* self) { static_cast<Probe*>(self)->on_timer(); }, this);
  }
  ~Probe() override { loop().timers().cancel(timer_); }

  void schedule(std::uint32_t delay_ms) { loop().timers().schedule(timer_, delay_ms); }
  void stop() {
    loop().timers().cancel(timer_);
    in_flight_ = false;
    close();
  }
  // Stopped for good: true if no socket of it is left, else the owner frees it in on_close of the last.
  bool retire() {
    retired_ = true;
    stop();
    return sockets_ == 0;
  }

  const app::ServiceConfig& config() const noexcept { return config_; }
  std::uint32_t fails = 0;
  bool up = true;

 private:
  ring::Loop& loop() const noexcept { return owner_.core_.loop(); }
  const app::AgentConfig& settings() const noexcept { return owner_.core_.agent().config; }

  void on_timer() {
    if (in_flight_) {
      end("no answer within --health-timeout-ms");
      return;
    }
    begin();
  }

  void begin() {
    reader_.start(/*request_was_head=*/false);
    auto socket = loop().connect(config_.local.get(), config_.local.length, settings().health_timeout_ms, this);
    if (!socket) {
      end("could not open a socket");
      return;
    }
    socket_ = *socket;
    ++sockets_;
    in_flight_ = true;
    loop().timers().schedule(timer_, settings().health_timeout_ms);
  }

  void on_connect(ring::Loop&, ring::SocketId socket, int res) override {
    if (!(socket == socket_) || !in_flight_) return;
    if (res < 0) {
      end(res == -ETIMEDOUT ? "connect timed out" : std::strerror(-res));
      return;
    }
    if (owner_.spec_.kind == app::HealthSpec::Kind::kTcp) {
      end(nullptr);
      return;
    }
    request_.clear();
    std::array<std::byte, tunnel::kMaxProxyHeader> header{};
    const std::size_t header_length =
        tunnel::write_proxy_header(config_.proxy_protocol, ring::net::Address{}, 0, header);
    request_.append(reinterpret_cast<const char*>(header.data()), header_length);
    // The service's own name where it has one (a virtual host may answer only to it), else its address.
    const bool named = config_.kind != route::Kind::kTcp && config_.host.rfind("*.", 0) != 0;
    request_ += "GET " + owner_.spec_.path + " HTTP/1.1\r\nHost: " +
                (named ? config_.host : config_.local.to_string()) +
                "\r\nUser-Agent: ringtun-agent-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    iov_ = iovec{request_.data(), request_.size()};
    if (!loop().send(socket_, &iov_, 1) || !loop().recv_start(socket_, tunnel::kEdgePool)) {
      end("could not send the request");
    }
  }

  void on_close(ring::Loop&, ring::SocketId) override {
    --sockets_;
    if (retired_ && sockets_ == 0) owner_.reap(*this);  // frees this probe: nothing may follow
  }

  void on_send(ring::Loop&, ring::SocketId socket, int res) override {
    if (socket == socket_ && in_flight_ && res < 0) end(std::strerror(-res));
  }

  void on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) override {
    const bool current = socket == socket_ && in_flight_;
    const char* why = nullptr;
    bool done = false;
    if (res > 0 && current) {
      std::string_view input(reinterpret_cast<const char*>(buffer.data), static_cast<std::size_t>(res));
      done = read_answer(input, &why);
    }
    if (res > 0) loop.recycle(buffer);
    if (!current) return;
    if (res <= 0) {
      end(res == 0 ? "the service closed the connection before answering" : std::strerror(-res));
      return;
    }
    if (done) end(why);
  }

  // Feeds the answer's bytes to the reader: true once the final status is known (*why: null for 2xx).
  bool read_answer(std::string_view input, const char** why) {
    while (!input.empty() || !reader_.wants_input()) {
      const http::ResponseReader::Step step = reader_.feed(input);
      input.remove_prefix(step.used);
      switch (step.event) {
        case http::ResponseReader::Event::kNeedMore:
          return false;
        case http::ResponseReader::Event::kHead: {
          const int status = reader_.head().status;
          if (status < 200) continue;  // interim: the final answer follows
          if (status > 299) {
            std::snprintf(why_, sizeof why_, "answered %d", status);
            *why = why_;
          }
          return true;
        }
        case http::ResponseReader::Event::kError:
          *why = "the answer is not HTTP";
          return true;
        default:  // a body, an end or an upgrade before any final head: not what a check expects
          *why = "the answer is not HTTP";
          return true;
      }
    }
    return false;
  }

  void end(const char* why) {
    in_flight_ = false;
    close();
    // The next probe counts from this one's end: a slow service is not probed back to back.
    loop().timers().schedule(timer_, settings().health_interval_ms);
    owner_.finished(*this, why);
  }

  void close() {
    if (socket_.valid()) loop().close(socket_);
    socket_ = {};
    reader_.release();
  }

  HealthChecks& owner_;
  const app::ServiceConfig config_;
  ring::Timer timer_;
  ring::SocketId socket_;
  unsigned sockets_ = 0;  // opened and not yet reaped by the loop (on_close)
  bool in_flight_ = false;
  bool retired_ = false;
  std::string request_;
  iovec iov_{};
  http::ResponseReader reader_;
  char why_[32] = {};
};

HealthChecks::HealthChecks(AgentCore& core, app::HealthSpec spec) : core_(core), spec_(std::move(spec)) {}

HealthChecks::~HealthChecks() = default;

void HealthChecks::set_services(const ServiceSet& services) {
  if (stopped_) return;
  const std::uint32_t interval = core_.agent().config.health_interval_ms;
  std::vector<std::unique_ptr<Probe>> next;
  next.reserve(services.size());
  for (std::size_t i = 0; i < services.size(); ++i) {
    const app::ServiceConfig& config = services[i].config;
    auto it = std::find_if(probes_.begin(), probes_.end(),
                           [&](const auto& probe) { return probe != nullptr && probe->config().name == config.name; });
    std::unique_ptr<Probe> was = it != probes_.end() ? std::move(*it) : nullptr;
    const app::ServiceConfig* old = was != nullptr ? &was->config() : nullptr;
    // The kind and host count too: an http check names the host in its request.
    if (old != nullptr && same_local(*old, config) && old->kind == config.kind && old->host == config.host) {
      next.push_back(std::move(was));  // checked the same way as before: its rhythm goes on
      continue;
    }
    // New probes (all of them at start) are spread over one interval: many services are not checked in one burst.
    auto probe = std::make_unique<Probe>(*this, config);
    if (was != nullptr) {
      probe->up = was->up;  // the gateway still holds this state: the new address's checks change it
      probe->fails = was->fails;
      retire(std::move(was));
    }
    probe->schedule(1 + static_cast<std::uint32_t>(interval * i / services.size()));
    next.push_back(std::move(probe));
  }
  for (auto& probe : probes_) {
    if (probe != nullptr) retire(std::move(probe));
  }
  probes_ = std::move(next);
}

void HealthChecks::retire(std::unique_ptr<Probe> probe) {
  if (!probe->retire()) retired_.push_back(std::move(probe));
}

void HealthChecks::reap(Probe& probe) {
  auto it = std::find_if(retired_.begin(), retired_.end(), [&](const auto& p) { return p.get() == &probe; });
  if (it != retired_.end()) retired_.erase(it);
}

void HealthChecks::stop() {
  stopped_ = true;
  for (auto& probe : probes_) probe->stop();
}

void HealthChecks::finished(Probe& probe, const char* why) {
  if (stopped_) return;
  const app::ServiceConfig& config = probe.config();
  if (why == nullptr) {
    probe.fails = 0;
    if (probe.up) return;
    probe.up = true;
    LOG_INFO("service '%s' (%s) is up again: its health check passed", config.name.c_str(),
             config.local_text.c_str());
    send({tunnel::ServiceHealth{config.name, true}});
    return;
  }
  const std::uint32_t needed = core_.agent().config.health_fails;
  if (++probe.fails < needed || !probe.up) {
    if (probe.up) {
      LOG_DEBUG("service '%s': health check failed (%s), %u of %u", config.name.c_str(), why, probe.fails, needed);
    }
    return;
  }
  probe.up = false;
  LOG_WARN("service '%s' (%s) is down: %u health check(s) in a row failed, the last: %s", config.name.c_str(),
           config.local_text.c_str(), probe.fails, why);
  send({tunnel::ServiceHealth{config.name, false}});
}

void HealthChecks::report_down() {
  std::vector<tunnel::ServiceHealth> down;
  for (const auto& probe : probes_) {
    if (!probe->up) down.push_back(tunnel::ServiceHealth{probe->config().name, false});
  }
  if (!down.empty()) send(down);
}

void HealthChecks::send(const std::vector<tunnel::ServiceHealth>& changes) {
  // Connection 0 down: its reconnect claims every service again, and the answers bring report_down().
  (void)core_.send_on_first(tunnel::encode_health(changes));
}

}  // namespace ringtun::agent
