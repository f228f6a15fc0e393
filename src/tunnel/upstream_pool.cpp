// UpstreamPool: see upstream_pool.hpp.
#include "tunnel/upstream_pool.hpp"

#include <algorithm>

#include "tunnel/tunnel_conn.hpp"

namespace ringtun::tunnel {

namespace {
constexpr std::uint32_t kSweepMs = 1'000;
constexpr std::uint32_t kIndexMask = (1U << UpstreamPool::kKeyIndexBits) - 1;
}  // namespace

UpstreamPool::UpstreamPool(ring::Loop& loop, std::uint32_t max_idle, std::uint32_t idle_ms)
    : loop_(loop), max_idle_(max_idle), idle_ms_(idle_ms) {
  sweep_timer_.set_callback([](void* self) { static_cast<UpstreamPool*>(self)->sweep(); }, this);
}

UpstreamPool::~UpstreamPool() { loop_.timers().cancel(sweep_timer_); }

std::optional<ring::SocketId> UpstreamPool::take(std::uint32_t key) noexcept {
  const std::uint32_t index = key & kIndexMask;
  if (index >= by_key_.size()) return std::nullopt;
  if (generation_[index] != key >> kKeyIndexBits) {
    close_idle(index);
    generation_[index] = key >> kKeyIndexBits;
    return std::nullopt;
  }
  auto& idle = by_key_[index];
  while (!idle.empty()) {
    const ring::SocketId socket = idle.back().socket;
    idle.pop_back();
    key_of_slot_[socket.index] = 0;
    --stats_.idle;
    if (!loop_.alive(socket)) continue;
    ++stats_.reused;
    return socket;
  }
  return std::nullopt;
}

bool UpstreamPool::put(std::uint32_t key, ring::SocketId socket) noexcept {
  if (closing_ || max_idle_ == 0 || !loop_.alive(socket)) return false;
  const std::uint32_t index = key & kIndexMask;
  if (index >= by_key_.size()) {
    by_key_.resize(index + 1);
    generation_.resize(index + 1, 0);
    generation_[index] = key >> kKeyIndexBits;
  }
  if (generation_[index] != key >> kKeyIndexBits) return false;  // made for what the key's service was before
  auto& idle = by_key_[index];
  if (idle.size() >= max_idle_) return false;
  // Watch it while idle: a close by the service must find the pool, not the stream that used it last.
  if (!loop_.set_handler(socket, this) || !loop_.recv_start(socket, kEdgePool)) return false;
  if (socket.index >= key_of_slot_.size()) key_of_slot_.resize(socket.index + 1, 0);
  key_of_slot_[socket.index] = index + 1;
  idle.push_back(Idle{socket, loop_.now_ms()});
  ++stats_.idle;
  ++stats_.kept;
  arm_sweep();
  return true;
}

void UpstreamPool::on_recv(ring::Loop& loop, ring::SocketId socket, int res, const ring::RecvBuffer& buffer) {
  // Bytes between responses are a protocol error of the service, EOF or an error its close: either way the
  // connection cannot carry another request.
  if (res > 0) loop.recycle(buffer);
  ++stats_.dropped;
  drop(socket);
}

void UpstreamPool::on_close(ring::Loop&, ring::SocketId) {}

void UpstreamPool::drop(ring::SocketId socket) noexcept {
  if (socket.index < key_of_slot_.size() && key_of_slot_[socket.index] != 0) {
    auto& idle = by_key_[key_of_slot_[socket.index] - 1];
    key_of_slot_[socket.index] = 0;
    const auto it = std::find_if(idle.begin(), idle.end(), [&](const Idle& i) { return i.socket == socket; });
    if (it != idle.end()) {
      idle.erase(it);
      --stats_.idle;
    }
  }
  loop_.close(socket);
}

void UpstreamPool::arm_sweep() noexcept {
  if (sweep_armed_) return;
  sweep_armed_ = true;
  loop_.timers().schedule(sweep_timer_, kSweepMs);
}

void UpstreamPool::sweep() noexcept {
  sweep_armed_ = false;
  const std::uint64_t now = loop_.now_ms();
  bool any = false;
  for (auto& idle : by_key_) {
    std::size_t expired = 0;
    while (expired < idle.size() && now - idle[expired].since_ms >= idle_ms_) ++expired;
    for (std::size_t i = 0; i < expired; ++i) {
      key_of_slot_[idle[i].socket.index] = 0;
      loop_.close(idle[i].socket);
    }
    if (expired > 0) {
      idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(expired));
      stats_.expired += expired;
      stats_.idle -= static_cast<std::uint32_t>(expired);
    }
    any = any || !idle.empty();
  }
  if (any) arm_sweep();
}

void UpstreamPool::close_idle(std::uint32_t index) noexcept {
  auto& idle = by_key_[index];
  for (const Idle& i : idle) {
    key_of_slot_[i.socket.index] = 0;
    loop_.close(i.socket);
  }
  stats_.idle -= static_cast<std::uint32_t>(idle.size());
  idle.clear();
}

void UpstreamPool::retire(std::uint32_t key) noexcept {
  const std::uint32_t index = key & kIndexMask;
  if (index >= by_key_.size()) return;
  close_idle(index);
  // Any generation but the key's: its put() refuses, and the next take() (the service back, under a generation of
  // its own) adopts what it brings.
  generation_[index] = (key >> kKeyIndexBits) + 1;
}

void UpstreamPool::close_all() noexcept {
  closing_ = true;
  for (auto& idle : by_key_) {
    for (const Idle& i : idle) {
      key_of_slot_[i.socket.index] = 0;
      loop_.close(i.socket);
    }
    idle.clear();
  }
  stats_.idle = 0;
}

}  // namespace ringtun::tunnel
