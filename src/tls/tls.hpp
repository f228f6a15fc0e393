// TLS 1.3 for tunnel connections, with wolfSSL, and without any I/O of its own.
//
// A tls::Session is a memory-to-memory TLS endpoint: the caller hands it ciphertext as it arrives from a socket
// (receive()) and gets plaintext back through a sink; plaintext to send goes in with write(), and the ciphertext it
// produces collects in the session's output buffer, which the caller sends in one piece per loop turn
// (begin_send() / send_done()). That keeps wolfSSL off the socket: it never blocks and never makes a system call,
// and the same code runs under a fuzzer, in unit tests with two sessions wired back to back, and on the ring.
//
// Memory: the output buffer is double-buffered (one half in flight, one filling) and grows only to what the caller
// lets pile up: call write() only while pending_output() is below its budget. Plaintext comes out through a scratch
// buffer the caller owns (one per core is enough: receive() uses it synchronously).
//
// Verification (client side): by CA file (chain, validity dates and name) or by a pinned SHA-256 fingerprint of the
// gateway's certificate (validity dates checked too), or both. Failures say which, in failure().
// Thread rules: a Context is built before the loops start and then only read (wolfSSL_CTX is safe to share for
// creating sessions). A Session is used by one thread at a time; it may move to another core between loop turns
// (the gateway does its handshake on the accepting core, then hands the session over).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

struct WOLFSSL_CTX;
struct WOLFSSL;
struct WOLFSSL_X509;

namespace ringtun::tls {

// Calls wolfSSL_Init once per process; every other function here needs it first.
void init_library();
// Frees the calling thread's wolfSSL caches (the ECC fixed-point cache is per thread). Call before a thread that
// ran sessions exits.
void release_thread_state() noexcept;
// The same, once no handshake has finished on this thread for `idle_ms`: the ECC fixed-point tables make the
// handshakes of a burst (agents reconnecting) cheaper, but building them costs more than one signature, and kept
// they are 2-3 MB per thread of an otherwise idle process. Call it now and then (a tunnel's heartbeat does).
void release_idle_thread_state(std::uint64_t now_ms, std::uint64_t idle_ms) noexcept;

// What the linked wolfSSL can do fast on this CPU, and hence the cipher order both ends offer.
struct CryptoInfo {
  bool library_has_aesni = false;  // wolfSSL built with --enable-aesni
  bool cpu_has_aesni = false;
  const char* library_version = "";
  const char* cipher_list = "";  // the TLS 1.3 suites in preference order
};
CryptoInfo crypto_info();

struct ServerSettings {
  std::string cert_file;       // PEM certificate (chain)
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // when set: clients must present a certificate signed by it (mTLS)
};

// `--ca system`: the operating system's trust store (/etc/ssl/certs), for a gateway with a publicly signed
// certificate. A file named "system" is given as ./system.
inline constexpr std::string_view kSystemCas = "system";

struct ClientSettings {
  std::string ca_file;         // verify the chain, dates and name against these CAs; kSystemCas: the OS trust store
  std::string fingerprint;     // "sha256:<64 hex>" (colons allowed): pin the gateway's certificate
  std::string server_name;     // SNI, and the name checked with ca_file
  std::string cert_file;       // client certificate for mTLS (with key_file)
  std::string key_file;
};

class Context {
 public:
  // Errors name the file and what is wrong with it ("--cert /x.pem: no PEM certificate in the file").
  static Result<std::shared_ptr<Context>> server(const ServerSettings& settings, std::string* error_text);
  static Result<std::shared_ptr<Context>> client(const ClientSettings& settings, std::string* error_text);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Server: "sha256:<64 hex>" of the certificate it presents (what agents pin). Empty for a client.
  const std::string& fingerprint() const noexcept { return fingerprint_; }

 private:
  friend class Session;
  Context(WOLFSSL_CTX* ctx, bool server) : ctx_(ctx), server_(server) {}
  WOLFSSL_CTX* ctx_;
  bool server_;
  std::string fingerprint_;  // server: of its own certificate
  std::string pin_;  // the pinned certificate's fingerprint, canonical (client), empty if none
  std::string server_name_;
  bool ca_ = false;  // the client verifies the chain and name against CAs
};

class Session {
 public:
  static constexpr std::size_t kMaxRecordPlaintext = 16 * 1024;
  // Plaintext buffers handed to receive() must hold at least one record.
  static constexpr std::size_t kScratchSize = kMaxRecordPlaintext;
  // Below this a piece is cheaper to copy than to give a record of its own (a record costs both ends a cipher setup,
  // a tag and a call through wolfSSL: about what copying a few KiB costs).
  static constexpr std::size_t kDirectPiece = 4096;

  static Result<std::unique_ptr<Session>> create(std::shared_ptr<const Context> context);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Client: produces the ClientHello (in the output). Servers wait for the peer.
  Status start() noexcept;

  // Ciphertext in. Drives the handshake, then decrypts every complete record, calling sink(std::span<const
  // std::byte>) for each piece of plaintext (valid during the call; `scratch` holds it). Every byte of `ciphertext` is
  // consumed (a partial record waits inside wolfSSL). On failure the session is dead and failure() says why.
  template <typename Sink>
  Status receive(std::span<const std::byte> ciphertext, std::span<std::byte> scratch, Sink&& sink) noexcept;

  // Plaintext out: encrypts the gathered bytes into records of up to 16 KiB. Pieces of kDirectPiece bytes or more
  // (payloads) are encrypted from where they are; smaller ones (frame headers, control frames) are packed together
  // via `scratch`, so that a run of them makes one record, not one each. Only once open().
  Status write(std::span<const iovec> pieces, std::span<std::byte> scratch) noexcept;
  Status write(std::span<const std::byte> bytes) noexcept;

  // Ciphertext out. begin_send() hands over everything pending (empty if nothing is, or a send is in flight); the
  // bytes stay valid and untouched until send_done(). Output made meanwhile collects for the next send.
  std::span<const std::byte> begin_send() noexcept;
  void send_done() noexcept;
  bool send_in_flight() const noexcept { return in_flight_; }
  std::size_t pending_output() const noexcept { return out_[fill_].size(); }
  bool has_output() const noexcept { return !in_flight_ && !out_[fill_].empty(); }
  // Gives back output buffer capacity beyond what an idle connection needs (after a burst, the buffers keep their
  // high-water capacity). Call when the connection is idle; does nothing while a send is in flight.
  void trim() noexcept;
  // Bytes the output buffers hold reserved (memory accounting, tests).
  std::size_t output_capacity() const noexcept { return out_[0].capacity() + out_[1].capacity(); }

  bool open() const noexcept { return state_ == State::kOpen; }
  bool failed() const noexcept { return state_ == State::kFailed; }
  // True when the last ciphertext ended inside a record: an EOF now means the peer's stream was cut short.
  bool mid_record() const noexcept { return record_left_ != 0 || header_have_ != 0; }
  // Why the peer's end of stream now is not a clean close (cut inside a record, or before the handshake finished);
  // null when it is.
  const char* cut_short_reason() const noexcept;
  // Why the session failed (or empty). One line, for logs.
  const std::string& failure() const noexcept { return failure_; }
  // After the handshake: "TLSv1.3 TLS13-CHACHA20-POLY1305-SHA256" and the peer certificate's fingerprint.
  std::string description() const;
  const std::string& peer_fingerprint() const noexcept { return peer_fingerprint_; }  // client side

  // The I/O callbacks' view (wolfSSL calls them from inside receive()/write()/start()).
  int io_read(char* buf, int size) noexcept;
  int io_write(const char* buf, int size) noexcept;
  // The certificate verification callback's view: wolfSSL's verdict on one certificate of the chain; true to accept.
  bool verify_certificate(bool preverified, int error, int depth, WOLFSSL_X509* cert) noexcept;

 private:
  enum class State : std::uint8_t { kHandshaking, kOpen, kFailed };
  explicit Session(std::shared_ptr<const Context> context);
  Status handshake() noexcept;
  // False (and failed) if the peer's first bytes are not a TLS handshake, e.g. our plaintext protocol.
  bool inspect_first_bytes(std::span<const std::byte> ciphertext) noexcept;
  Status write_record(const std::byte* data, std::size_t size) noexcept;
  // One wolfSSL_read into `scratch`: bytes of plaintext, 0 when it needs more ciphertext.
  Result<std::size_t> read_some(std::span<std::byte> scratch) noexcept;
  Status fail(int wolfssl_error, const char* during) noexcept;
  Status fail_with(std::string reason) noexcept;
  void track_records(std::span<const std::byte> bytes) noexcept;

  std::shared_ptr<const Context> context_;
  WOLFSSL* ssl_ = nullptr;
  State state_ = State::kHandshaking;
  std::span<const std::byte> input_;  // ciphertext not yet taken by wolfSSL (during receive())
  std::vector<std::byte> out_[2];     // ciphertext: out_[fill_] collects, the other may be in flight
  unsigned fill_ = 0;
  bool in_flight_ = false;
  bool first_bytes_seen_ = false;
  // Record boundary tracking, for telling a truncated stream from a clean close.
  std::uint8_t header_[5] = {};
  std::uint8_t header_have_ = 0;
  std::uint32_t record_left_ = 0;
  std::string failure_;
  std::string peer_fingerprint_;
};

// Self-signed ECDSA P-256 certificate for a first run: writes `key_path` (mode 0600) and `cert_path` (PEM), with
// `common_name` as CN and DNS name, valid for `days` from yesterday.
Status generate_self_signed(const std::string& cert_path, const std::string& key_path, const std::string& common_name,
                            unsigned days, std::string* error_text);
// "sha256:<hex>" of the first certificate in a PEM file.
Result<std::string> fingerprint_of_pem_file(const std::string& path, std::string* error_text);
// Parses "sha256:AB:CD..." or "sha256:abcd..." into the canonical "sha256:<64 lowercase hex>", or an error message
// ("\"TEXT\": why") for the caller to prefix with where the text came from.
Result<std::string> parse_fingerprint(const std::string& text, std::string* error_text);
// "sha256:<64 lowercase hex>" of a DER certificate.
std::string fingerprint_of_der(std::span<const std::uint8_t> der);

// ---- implementation of the template ----

template <typename Sink>
Status Session::receive(std::span<const std::byte> ciphertext, std::span<std::byte> scratch, Sink&& sink) noexcept {
  if (state_ == State::kFailed) return ringtun::fail(Errc::kClosed, "TLS session failed");
  if (!inspect_first_bytes(ciphertext)) return ringtun::fail(Errc::kProtocol, "not TLS");
  track_records(ciphertext);
  input_ = ciphertext;
  if (state_ == State::kHandshaking) {
    Status status = handshake();
    if (!status || state_ == State::kHandshaking) {
      input_ = {};
      return status;
    }
  }
  while (true) {
    auto n = read_some(scratch);
    if (!n) {
      input_ = {};
      return Unexpected{n.error()};
    }
    if (*n == 0) break;
    sink(std::span<const std::byte>(scratch.data(), *n));
  }
  input_ = {};
  return {};
}

}  // namespace ringtun::tls
