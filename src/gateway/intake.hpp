// Intake: the gateway's door for agents. Accepts tunnel connections on one core, reads each one's TLS handshake and
// hello (HandshakeReader), checks the token there, and hands the connection to the core the hello names.
//
// The door must stay open for real agents whatever anyone else sends it:
//  * Handshakes in progress are bounded per core (kMaxPending) and per client address (kMaxPendingPerAddress per
//    core; IPv6 by /64): one address that opens thousands of idle connections holds a few slots, and its further
//    connections are closed at once.
//  * When a core's slots are all taken, the newcomer is admitted and the handshake that has made the least progress
//    for the longest is dropped (an idle connection that never sent a byte goes first); a real agent, which sends
//    its TLS ClientHello at once, is not the one dropped.
//  * Under pressure (half the slots taken) a handshake that made no progress for kPressureIdleMs is dropped; without
//    pressure it may take the whole --dead-peer-ms.
//  * A TLS session (tens of KB) is made only when a connection's first byte arrives.
// The hello is parsed once, here, and the token checked before anything crosses cores: a refused connection is
// handed to this core's gateway only to be told why.
// Thread rules: one core's loop thread. Readers delete themselves; the intake outlives them (stop() abandons them).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/counter.hpp"
#include "ring/loop.hpp"
#include "ring/net.hpp"
#include "ring/timer_wheel.hpp"
#include "tls/tls.hpp"
#include "tunnel/handshake.hpp"

namespace ringtun::gateway {

class HandshakeReader;
struct Gateway;

// A tunnel connection whose hello was read: what the serving core needs to take it over.
struct Arrival {
  Arrival() = default;
  Arrival(const Arrival&) = delete;
  Arrival& operator=(const Arrival&) = delete;
  ~Arrival();  // closes `fd` if nobody took it (e.g. a hand-off that its core never ran)

  int fd = -1;
  ring::net::Address peer;
  std::unique_ptr<tls::Session> tls;  // the open TLS session (null: plaintext)
  std::string replay;                 // every plaintext byte read so far but the hello frame (parsed above)
  tunnel::Hello hello;
  std::uint32_t token = 0;            // index of the token rule that matched
  std::optional<tunnel::Refusal> refusal;  // set: tell the agent this and close
};

// Tunnel connections that never became an agent's, by why (for /metrics). Written by the core, read by any thread.
enum class HandshakeFailure : std::uint8_t {
  kTls,         // the TLS handshake failed (certificate, protocol, cut short)
  kBadPreface,  // not a ringtun agent, or a protocol version we do not speak
  kBadHello,    // malformed frames or hello, or too large
  kToken,       // the token was refused
  kTimeout,     // no hello within the handshake time
  kClosed,      // the peer closed or an I/O error
  kShed,        // closed to make room: too many handshakes in progress (per address or per core)
  kCount
};
const char* handshake_failure_name(HandshakeFailure failure) noexcept;  // "tls", "bad_preface", ...
// The failure a HandshakeReader's reason text (its fixed messages) stands for.
HandshakeFailure classify_handshake_failure(const char* reason, bool tls_started) noexcept;

class Intake final : public ring::SocketHandler {
 public:
  static constexpr std::size_t kMaxPending = 256;
  static constexpr std::size_t kMaxPendingPerAddress = 32;
  static constexpr std::uint32_t kPressureIdleMs = 1'000;
  static constexpr std::uint32_t kSweepMs = 100;

  // Called with each connection whose hello was read (or that is refused): on this core's thread.
  using OnArrival = void (*)(void* context, std::unique_ptr<Arrival> arrival);

  Intake(Gateway& gateway, ring::Loop& loop, OnArrival on_arrival, void* context);
  ~Intake() override;

  // Adopts this core's tunnel listener and starts accepting.
  Status start(int listener_fd);
  // Closes the listener and abandons every handshake in progress (the gateway is stopping).
  void stop();
  std::size_t pending() const noexcept { return readers_.size(); }
  const Counter& failures(HandshakeFailure failure) const noexcept { return failures_[static_cast<int>(failure)]; }
  void count_failure(HandshakeFailure failure) noexcept { ++failures_[static_cast<int>(failure)]; }

  // ---- for HandshakeReader ----
  void hello_read(HandshakeReader& reader, std::unique_ptr<Arrival> arrival);
  void reader_gone(HandshakeReader& reader);
  // The scratch buffer TLS decrypts into during a call (shared by the core's readers: used synchronously).
  std::vector<std::byte>& tls_scratch() noexcept { return tls_scratch_; }

 private:
  Counter failures_[static_cast<int>(HandshakeFailure::kCount)];
  void on_accept(ring::Loop& loop, ring::SocketId listener, int res) override;
  void admit(int fd);
  void evict_one();
  void sweep();
  void remove(HandshakeReader& reader);
  void log_drops();
  // Why the hello is refused, or nothing (and *token is the matching rule's index).
  std::optional<tunnel::Refusal> check_hello(const tunnel::Hello& hello, std::uint32_t* token) const;

  // Handshakes per client address (IPv4 address, or IPv6 /64 prefix).
  struct AddressKey {
    std::uint64_t high = 0;
    std::uint64_t low = 0;
    friend bool operator==(const AddressKey&, const AddressKey&) = default;
  };
  struct AddressHash {
    std::size_t operator()(const AddressKey& k) const noexcept { return k.high * 0x9E3779B97F4A7C15ULL ^ k.low; }
  };
  static AddressKey key_of(const ring::net::Address& address) noexcept;

  Gateway& gateway_;
  ring::Loop& loop_;
  OnArrival on_arrival_;
  void* context_;
  ring::SocketId listener_;
  std::vector<HandshakeReader*> readers_;
  std::unordered_map<AddressKey, std::uint32_t, AddressHash> per_address_;
  std::vector<std::byte> tls_scratch_;
  ring::Timer sweep_timer_;
  bool stopped_ = false;
  // Drops are counted and logged at most once a second per core: a flood must not become a flood of log lines.
  std::uint64_t drop_log_ms_ = 0;
  std::uint64_t dropped_per_address_ = 0;
  std::uint64_t dropped_evicted_ = 0;
  std::uint64_t dropped_idle_ = 0;
};

}  // namespace ringtun::gateway
