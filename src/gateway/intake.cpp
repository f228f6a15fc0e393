#include "gateway/intake.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/log.hpp"
#include "gateway/gateway.hpp"
#include "gateway/handshake_reader.hpp"

namespace ringtun::gateway {

const char* handshake_failure_name(HandshakeFailure failure) noexcept {
  switch (failure) {
    case HandshakeFailure::kTls: return "tls";
    case HandshakeFailure::kBadPreface: return "bad_preface";
    case HandshakeFailure::kBadHello: return "bad_hello";
    case HandshakeFailure::kToken: return "token";
    case HandshakeFailure::kTimeout: return "timeout";
    case HandshakeFailure::kClosed: return "closed";
    case HandshakeFailure::kShed: return "shed";
    case HandshakeFailure::kCount: break;
  }
  return "other";
}

HandshakeFailure classify_handshake_failure(const char* reason, bool tls_started) noexcept {
  const std::string_view text(reason);
  if (text.find("timed out") != std::string_view::npos) return HandshakeFailure::kTimeout;
  if (text.find("not a ringtun agent") != std::string_view::npos ||
      text.find("protocol version") != std::string_view::npos ||
      text.find("--insecure-plaintext") != std::string_view::npos) {
    return HandshakeFailure::kBadPreface;
  }
  if (text.find("frame") != std::string_view::npos || text.find("larger than") != std::string_view::npos ||
      text.find("hello") != std::string_view::npos) {
    return HandshakeFailure::kBadHello;
  }
  if (text.find("peer closed") != std::string_view::npos || text.find("error") != std::string_view::npos ||
      text.find("stopping") != std::string_view::npos || text.find("could not") != std::string_view::npos) {
    return HandshakeFailure::kClosed;
  }
  return tls_started ? HandshakeFailure::kTls : HandshakeFailure::kClosed;
}

namespace {

// Compares without leaking where the first difference is (or, for equal lengths, whether there is one).
bool constant_time_equal(const std::string& a, const std::string& b) noexcept {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace

Arrival::~Arrival() {
  if (fd >= 0) ::close(fd);
}

Intake::Intake(Gateway& gateway, ring::Loop& loop, OnArrival on_arrival, void* context)
    : gateway_(gateway),
      loop_(loop),
      on_arrival_(on_arrival),
      context_(context),
      tls_scratch_(tls::Session::kScratchSize) {
  sweep_timer_.set_callback([](void* self) { static_cast<Intake*>(self)->sweep(); }, this);
}

Intake::~Intake() = default;

Status Intake::start(int listener_fd) {
  auto listener = loop_.adopt_listener(listener_fd, this);
  if (!listener) return Unexpected{listener.error()};
  listener_ = *listener;
  return {};
}

void Intake::stop() {
  stopped_ = true;
  if (listener_.valid()) loop_.close(listener_);
  loop_.timers().cancel(sweep_timer_);
  for (HandshakeReader* reader : std::vector<HandshakeReader*>(readers_)) {
    reader->abandon("gateway stopping");
    remove(*reader);
  }
}

Intake::AddressKey Intake::key_of(const ring::net::Address& address) noexcept {
  AddressKey key;
  if (address.family() == AF_INET) {
    key.low = reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr.s_addr;
  } else if (address.family() == AF_INET6) {
    // One IPv6 client usually holds a whole /64: counting single addresses would let it open 2^64 slots' worth.
    std::memcpy(&key.high, &reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr, 8);
    key.low = 6;
  }
  return key;
}

void Intake::on_accept(ring::Loop&, ring::SocketId, int res) {
  if (res < 0) {
    LOG_WARN("accept on the tunnel port: %s", std::strerror(-res));
    return;
  }
  if (stopped_) {
    ::close(res);
    return;
  }
  admit(res);
}

void Intake::admit(int fd) {
  auto peer = ring::net::peer_address(fd);
  if (!peer) {  // reset before we got to it
    ::close(fd);
    return;
  }
  const AddressKey key = key_of(*peer);
  if (auto held = per_address_.find(key); held != per_address_.end() && held->second >= kMaxPendingPerAddress) {
    ::close(fd);
    ++dropped_per_address_;
    count_failure(HandshakeFailure::kShed);
    log_drops();
    return;
  }
  // Evicting may remove this address's own entry (its last handshake): the count is looked up again below.
  if (readers_.size() >= kMaxPending) evict_one();
  auto socket = loop_.adopt(fd, this);
  if (!socket) return;
  // The reader is its socket's handler from here on; it deletes itself when done.
  auto* reader = new HandshakeReader(*this, loop_, *socket, *peer, gateway_.tls.load(), loop_.now_ms());
  (void)loop_.set_handler(*socket, reader);
  ++per_address_[key];
  readers_.push_back(reader);
  if (!sweep_timer_.armed()) loop_.timers().schedule(sweep_timer_, kSweepMs);
  log_drops();
}

// The least progress (stage), then the oldest progress: a connection that never sent a byte goes before one whose
// TLS handshake is under way, and among equals the one idle the longest.
void Intake::evict_one() {
  HandshakeReader* victim = nullptr;
  for (HandshakeReader* reader : readers_) {
    if (reader->closing()) continue;  // on its way out already: evicting it frees nothing
    if (victim == nullptr || reader->stage() < victim->stage() ||
        (reader->stage() == victim->stage() && reader->last_progress_ms() < victim->last_progress_ms())) {
      victim = reader;
    }
  }
  if (victim == nullptr) return;
  ++dropped_evicted_;
  count_failure(HandshakeFailure::kShed);
  victim->abandon(nullptr);
  remove(*victim);
}

void Intake::sweep() {
  const std::uint64_t now = loop_.now_ms();
  const std::uint64_t deadline = gateway_.config.common.dead_peer_ms;
  const bool pressure = readers_.size() >= kMaxPending / 2;
  for (HandshakeReader* reader : std::vector<HandshakeReader*>(readers_)) {
    // A peer that says nothing for --dead-peer-ms is as dead during the handshake as after it.
    if (now - reader->started_ms() >= deadline) {
      const bool tls_pending = gateway_.tls.load() != nullptr && reader->stage() < HandshakeReader::Stage::kTlsOpen;
      reader->abandon(tls_pending ? "TLS handshake timed out" : "handshake timed out");
      remove(*reader);
    } else if (pressure && now - reader->last_progress_ms() >= kPressureIdleMs) {
      ++dropped_idle_;
      count_failure(HandshakeFailure::kShed);
      reader->abandon(nullptr);
      remove(*reader);
    }
  }
  log_drops();
  if (!readers_.empty() && !stopped_) loop_.timers().schedule(sweep_timer_, kSweepMs);
}

void Intake::log_drops() {
  if (dropped_per_address_ + dropped_evicted_ + dropped_idle_ == 0) return;
  const std::uint64_t now = loop_.now_ms();
  if (now - drop_log_ms_ < 1000) return;
  drop_log_ms_ = now;
  LOG_WARN("tunnel port: closed %llu connection(s) from addresses with %zu handshakes in progress, evicted %llu "
           "(%zu handshakes in progress on this core), dropped %llu idle for %u ms under pressure",
           static_cast<unsigned long long>(dropped_per_address_), kMaxPendingPerAddress,
           static_cast<unsigned long long>(dropped_evicted_), kMaxPending,
           static_cast<unsigned long long>(dropped_idle_), kPressureIdleMs);
  dropped_per_address_ = dropped_evicted_ = dropped_idle_ = 0;
}

void Intake::remove(HandshakeReader& reader) {
  auto it = std::find(readers_.begin(), readers_.end(), &reader);
  if (it == readers_.end()) return;
  readers_.erase(it);
  auto count = per_address_.find(key_of(reader.peer()));
  if (count != per_address_.end() && --count->second == 0) per_address_.erase(count);
}

void Intake::reader_gone(HandshakeReader& reader) { remove(reader); }

std::optional<tunnel::Refusal> Intake::check_hello(const tunnel::Hello& hello, std::uint32_t* token) const {
  // Loaded once per hello: a reload publishes a new table whole (revoked slots keep their index, their secret empty).
  const std::shared_ptr<const TokenTable> table = gateway_.tokens.load(std::memory_order_acquire);
  const auto& slots = table->slots;
  std::size_t match = slots.size();
  for (std::size_t i = 0; i < slots.size(); ++i) {  // every rule, so timing does not tell which one matched
    if (constant_time_equal(slots[i].rule.secret, hello.token) && !slots[i].revoked && match == slots.size()) match = i;
  }
  if (match == slots.size()) return tunnel::Refusal{tunnel::RefusalCode::kBadToken, "token refused by the gateway"};
  *token = static_cast<std::uint32_t>(match);
  if (hello.conn_index >= gateway_.core_count) {
    return tunnel::Refusal{tunnel::RefusalCode::kIndexOutOfRange,
                           "connection index " + std::to_string(hello.conn_index) + " but the gateway has " +
                               std::to_string(gateway_.core_count) + " cores"};
  }
  return std::nullopt;
}

void Intake::hello_read(HandshakeReader& reader, std::unique_ptr<Arrival> arrival) {
  remove(reader);
  if (!arrival->refusal) {
    arrival->refusal = check_hello(arrival->hello, &arrival->token);
    if (arrival->refusal && arrival->refusal->code == tunnel::RefusalCode::kBadToken) {
      count_failure(HandshakeFailure::kToken);
      LOG_WARN("agent '%s' at %s: token refused", arrival->hello.agent_id.c_str(), arrival->peer.to_string().c_str());
    }
  }
  on_arrival_(context_, std::move(arrival));
}

}  // namespace ringtun::gateway
