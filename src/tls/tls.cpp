// tls::Context and tls::Session over wolfSSL. See tls.hpp for the model (memory in, memory out).
#include "tls/tls.hpp"
#include "tls/report.hpp"

// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>
// clang-format on

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

#include <unistd.h>

#include "common/assert.hpp"
#include "common/clock.hpp"

namespace ringtun::tls {

namespace {

// "RINGTUN" is the plaintext protocol's preface (frame/wire.hpp). It is repeated here rather than included so that
// this module stays beside frame/, not above it; it only sharpens an error message.
constexpr char kPlaintextMagic[] = "RINGTUN";
constexpr std::uint8_t kRecordHandshake = 0x16;

std::string wolfssl_error_text(int error) {
  char buf[WOLFSSL_MAX_ERROR_SZ];
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(error), buf, sizeof buf);
  return "wolfSSL error " + std::to_string(error) + ": " + buf;
}

// OpenSSL's X509_V_ERR_* codes: with OPENSSL_COMPATIBLE_DEFAULTS (Debian's build and ours), wolfSSL hands these,
// not its own codes, to the verify callback.
enum X509Error : int {
  kX509NotYetValid = 9, kX509Expired = 10, kX509NotBeforeField = 13, kX509NotAfterField = 14,
  kX509SelfSignedLeaf = 18, kX509SelfSignedInChain = 19, kX509NoLocalIssuer = 20, kX509LeafUnverifiable = 21,
  kX509HostnameMismatch = 62,
};

// A person-readable cause for the errors a user can do something about; wolfSSL's own text follows in brackets.
std::string describe(int error, const std::string& server_name) {
  switch (error) {
    case kX509Expired:
    case kX509NotAfterField:
    case ASN_AFTER_DATE_E: return "the certificate has expired";
    case kX509NotYetValid:
    case kX509NotBeforeField:
    case ASN_BEFORE_DATE_E: return "the certificate is not valid yet (check the clocks)";
    case kX509SelfSignedLeaf:
    case kX509SelfSignedInChain:
    case kX509NoLocalIssuer:
    case kX509LeafUnverifiable:
    case ASN_NO_SIGNER_E:
    case ASN_SELF_SIGNED_E: return "the certificate is not signed by a trusted CA (--ca)";
    case kX509HostnameMismatch:
    case DOMAIN_NAME_MISMATCH:
      return "the certificate's name does not match '" + server_name + "' (--server-name)";
    case VERIFY_MAC_ERROR:
    case DECRYPT_ERROR:
    case AES_GCM_AUTH_E:
    case MAC_CMP_FAILED_E: return "a TLS record failed authentication (corrupted or altered in transit)";
    case NO_PEER_CERT: return "the peer sent no certificate, and one is required (client certificate, mTLS)";
    case MATCH_SUITE_ERROR: return "no TLS 1.3 cipher suite in common";
    case VERSION_ERROR: return "the peer does not speak TLS 1.3";
    case UNKNOWN_RECORD_TYPE:
    case LENGTH_ERROR:
    case BUFFER_ERROR:
    case PARSE_ERROR: return "malformed TLS record";
    default: return {};
  }
}

// wolfSSL pulls ciphertext and pushes ciphertext through these; the context pointer is the Session.
int io_recv(WOLFSSL*, char* buf, int size, void* ctx) { return static_cast<Session*>(ctx)->io_read(buf, size); }
int io_send(WOLFSSL*, char* buf, int size, void* ctx) { return static_cast<Session*>(ctx)->io_write(buf, size); }

bool cpu_has_aesni() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("aes");
#else
  return false;
#endif
}

bool library_has_aesni() {
#ifdef WOLFSSL_AESNI
  return true;
#else
  return false;
#endif
}

// ChaCha20 unless AES-GCM has hardware behind it: Debian's wolfSSL does AES-GCM at ~180 MB/s, ChaCha20 at ~480.
const char* cipher_list() {
  if (library_has_aesni() && cpu_has_aesni()) {
    return "TLS13-AES128-GCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES256-GCM-SHA384";
  }
  return "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384";
}

bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

Status load_identity(WOLFSSL_CTX* ctx, const std::string& cert, const std::string& key, const char* cert_flag,
                     const char* key_flag, std::string* error_text) {
  if (!readable(cert)) return detail::report(error_text, std::string(cert_flag) + " " + cert + ": cannot read the file");
  if (!readable(key)) return detail::report(error_text, std::string(key_flag) + " " + key + ": cannot read the file");
  if (wolfSSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != WOLFSSL_SUCCESS) {
    return detail::report(error_text, std::string(cert_flag) + " " + cert + ": no valid PEM certificate in the file");
  }
  if (wolfSSL_CTX_use_PrivateKey_file(ctx, key.c_str(), WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
    return detail::report(error_text, std::string(key_flag) + " " + key + ": no valid PEM private key in the file");
  }
  if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
    return detail::report(error_text, std::string(key_flag) + " " + key + ": the key does not belong to the certificate " +
                                        cert);
  }
  return {};
}

Status load_cas(WOLFSSL_CTX* ctx, const std::string& file, const char* flag, std::string* error_text) {
  if (!readable(file)) return detail::report(error_text, std::string(flag) + " " + file + ": cannot read the file");
  if (wolfSSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) != WOLFSSL_SUCCESS) {
    return detail::report(error_text, std::string(flag) + " " + file + ": no valid PEM CA certificate in the file");
  }
  return {};
}

struct CtxDeleter {
  void operator()(WOLFSSL_CTX* ctx) const { wolfSSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<WOLFSSL_CTX, CtxDeleter>;

Result<CtxPtr> new_ctx(bool server, std::string* error_text) {
  CtxPtr ctx(wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method()));
  if (!ctx) return detail::report(error_text, "TLS: cannot create a wolfSSL context (out of memory?)");
  if (wolfSSL_CTX_set_cipher_list(ctx.get(), cipher_list()) != WOLFSSL_SUCCESS) {
    return detail::report(error_text, std::string("TLS: wolfSSL rejects the cipher list ") + cipher_list());
  }
  wolfSSL_CTX_SetIORecv(ctx.get(), io_recv);
  wolfSSL_CTX_SetIOSend(ctx.get(), io_send);
  return ctx;
}

}  // namespace

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { wolfSSL_Init(); });
}

namespace {
// Per thread: when a handshake last finished here, and whether the ECC cache may hold tables since.
thread_local std::uint64_t t_last_handshake_ms = 0;
thread_local bool t_ecc_cache_warm = false;
}  // namespace

void release_thread_state() noexcept {
#ifdef FP_ECC
  wc_ecc_fp_free();
#endif
  t_ecc_cache_warm = false;
}

void release_idle_thread_state(std::uint64_t now_ms, std::uint64_t idle_ms) noexcept {
#ifdef HAVE_THREAD_LS  // without it the cache is one for the process, in use by other threads' handshakes
  if (t_ecc_cache_warm && now_ms - t_last_handshake_ms >= idle_ms) release_thread_state();
#else
  (void)now_ms;
  (void)idle_ms;
#endif
}

CryptoInfo crypto_info() {
  CryptoInfo info;
  info.library_has_aesni = library_has_aesni();
  info.cpu_has_aesni = cpu_has_aesni();
  info.library_version = wolfSSL_lib_version();
  info.cipher_list = cipher_list();
  return info;
}

Result<std::string> parse_fingerprint(const std::string& text, std::string* error_text) {
  constexpr std::string_view kPrefix = "sha256:";
  auto bad = [&](const std::string& why) {
    return detail::report(error_text, "\"" + text.substr(0, 120) + "\": " + why);
  };
  if (text.compare(0, kPrefix.size(), kPrefix) != 0) return bad("expected sha256:<64 hex digits>");
  std::string canonical(kPrefix);
  for (std::size_t i = kPrefix.size(); i < text.size(); ++i) {
    const char c = text[i];
    if (c == ':') continue;
    const bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    const bool upper = c >= 'A' && c <= 'F';
    if (!digit && !upper) return bad("'" + std::string(1, c) + "' is not a hex digit");
    canonical.push_back(upper ? static_cast<char>(c - 'A' + 'a') : c);
  }
  if (canonical.size() != kPrefix.size() + 2 * WC_SHA256_DIGEST_SIZE) {
    return bad("a SHA-256 fingerprint has 64 hex digits");
  }
  return canonical;
}

// ---------------------------------------------------------------- Context

Context::~Context() { wolfSSL_CTX_free(ctx_); }

Result<std::shared_ptr<Context>> Context::server(const ServerSettings& settings, std::string* error_text) {
  init_library();
  auto made = new_ctx(true, error_text);
  if (!made) return Unexpected{made.error()};
  CtxPtr ctx = std::move(*made);
  RINGTUN_TRY(load_identity(ctx.get(), settings.cert_file, settings.key_file, "--cert", "--key", error_text));
  if (!settings.client_ca_file.empty()) {
    RINGTUN_TRY(load_cas(ctx.get(), settings.client_ca_file, "--client-ca", error_text));
    wolfSSL_CTX_set_verify(ctx.get(), WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    wolfSSL_CTX_set_verify(ctx.get(), WOLFSSL_VERIFY_NONE, nullptr);
  }
  // Tunnels are long-lived: resumption buys nothing, and tickets would be one more message after the handshake.
  wolfSSL_CTX_no_ticket_TLSv13(ctx.get());
  // The fingerprint of the certificate as loaded, not of the file read again: a file replaced meanwhile (a renewal
  // racing a reload) must not be logged as what is served.
  int size = 0;
  WOLFSSL_X509* leaf = wolfSSL_CTX_get0_certificate(ctx.get());
  const unsigned char* der = leaf != nullptr ? wolfSSL_X509_get_der(leaf, &size) : nullptr;
  if (der == nullptr || size <= 0) {
    return detail::report(error_text, "--cert " + settings.cert_file + ": wolfSSL kept no certificate to present");
  }
  auto context = std::shared_ptr<Context>(new Context(ctx.release(), true));
  context->fingerprint_ = fingerprint_of_der({der, static_cast<std::size_t>(size)});
  return context;
}

namespace {

// Called for every certificate of the gateway's chain (WOLFSSL_ALWAYS_VERIFY_CB), with wolfSSL's own verdict.
// It records the leaf's fingerprint, enforces the pin, and leaves a reason for the session's failure message.
int verify_gateway(int preverified, WOLFSSL_X509_STORE_CTX* store) {
  auto* ssl = static_cast<WOLFSSL*>(
      wolfSSL_X509_STORE_CTX_get_ex_data(store, wolfSSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) return preverified;
  auto* session = static_cast<Session*>(wolfSSL_GetIOReadCtx(ssl));
  return session->verify_certificate(preverified, wolfSSL_X509_STORE_CTX_get_error(store),
                                     wolfSSL_X509_STORE_CTX_get_error_depth(store),
                                     wolfSSL_X509_STORE_CTX_get_current_cert(store))
             ? 1
             : 0;
}

}  // namespace

Result<std::shared_ptr<Context>> Context::client(const ClientSettings& settings, std::string* error_text) {
  init_library();
  if (settings.ca_file.empty() && settings.fingerprint.empty()) {
    return detail::report(error_text, "TLS: the gateway cannot be verified: give --gateway-fingerprint or --ca");
  }
  std::string pin;
  if (!settings.fingerprint.empty()) {
    std::string why;
    auto parsed = parse_fingerprint(settings.fingerprint, &why);
    if (!parsed) return detail::report(error_text, "--gateway-fingerprint: " + why);
    pin = std::move(*parsed);
  }
  auto made = new_ctx(false, error_text);
  if (!made) return Unexpected{made.error()};
  CtxPtr ctx = std::move(*made);
  if (settings.ca_file == kSystemCas) {
    if (wolfSSL_CTX_load_system_CA_certs(ctx.get()) != WOLFSSL_SUCCESS) {
      return detail::report(error_text,
                            "--ca system: no CA certificate found in the system's trust store (/etc/ssl/certs; "
                            "install the ca-certificates package, or give --ca FILE)");
    }
  } else if (!settings.ca_file.empty()) {
    RINGTUN_TRY(load_cas(ctx.get(), settings.ca_file, "--ca", error_text));
  }
  if (!settings.cert_file.empty() || !settings.key_file.empty()) {
    if (settings.cert_file.empty() || settings.key_file.empty()) {
      return detail::report(error_text, "--cert and --key: a client certificate needs both");
    }
    RINGTUN_TRY(load_identity(ctx.get(), settings.cert_file, settings.key_file, "--cert", "--key", error_text));
  }
  wolfSSL_CTX_set_verify(ctx.get(), WOLFSSL_VERIFY_PEER, verify_gateway);
  auto context = std::shared_ptr<Context>(new Context(ctx.release(), false));
  context->pin_ = std::move(pin);
  context->server_name_ = settings.server_name;
  context->ca_ = !settings.ca_file.empty();
  return context;
}

// ---------------------------------------------------------------- Session

Session::Session(std::shared_ptr<const Context> context) : context_(std::move(context)) {}

Session::~Session() {
  if (ssl_ != nullptr) wolfSSL_free(ssl_);
}

Result<std::unique_ptr<Session>> Session::create(std::shared_ptr<const Context> context) {
  std::unique_ptr<Session> session(new Session(std::move(context)));
  session->ssl_ = wolfSSL_new(session->context_->ctx_);
  if (session->ssl_ == nullptr) return ringtun::fail(Errc::kExhausted, "wolfSSL_new failed");
  wolfSSL_SetIOReadCtx(session->ssl_, session.get());
  wolfSSL_SetIOWriteCtx(session->ssl_, session.get());
  const Context& ctx = *session->context_;
  if (!ctx.server_ && !ctx.server_name_.empty()) {
    (void)wolfSSL_UseSNI(session->ssl_, WOLFSSL_SNI_HOST_NAME, ctx.server_name_.data(),
                         static_cast<unsigned short>(ctx.server_name_.size()));
    if (ctx.ca_ && wolfSSL_check_domain_name(session->ssl_, ctx.server_name_.c_str()) != WOLFSSL_SUCCESS) {
      return ringtun::fail(Errc::kExhausted, "wolfSSL_check_domain_name failed");
    }
  }
  return session;
}

Status Session::start() noexcept {
  if (context_->server_) return {};
  return handshake();
}

bool Session::verify_certificate(bool preverified, int error, int depth, WOLFSSL_X509* cert) noexcept {
  const Context& ctx = *context_;
  if (depth == 0 && cert != nullptr) {
    int size = 0;
    const unsigned char* der = wolfSSL_X509_get_der(cert, &size);
    peer_fingerprint_ = der != nullptr && size > 0
                            ? fingerprint_of_der({der, static_cast<std::size_t>(size)})
                            : std::string("sha256:(none)");
    if (!ctx.pin_.empty() && peer_fingerprint_ != ctx.pin_) {
      failure_ = "the gateway's certificate fingerprint does not match --gateway-fingerprint: it presented " +
                 peer_fingerprint_ + " (a different gateway, a new certificate, or someone in between)";
      return false;
    }
  }
  if (depth == 0 && cert != nullptr && !ctx.ca_) {
    // With a pin and no CA, the pin replaces the signer, and the dates are checked here: wolfSSL reports a date
    // problem of an unsigned certificate only as "no signer", if at all.
    const int before = wolfSSL_X509_cmp_current_time(wolfSSL_X509_get_notBefore(cert));
    const int after = wolfSSL_X509_cmp_current_time(wolfSSL_X509_get_notAfter(cert));
    if (before > 0 || after < 0) {
      failure_ = "cannot verify the gateway: " + describe(after < 0 ? kX509Expired : kX509NotYetValid, "") +
                 " (pinned " + peer_fingerprint_ + ")";
      return false;
    }
  }
  if (preverified) return true;
  if (!ctx.ca_) return true;  // the pin matched (or this is a chain certificate above the pinned leaf)
  std::string why = describe(error, ctx.server_name_);
  failure_ = "cannot verify the gateway: " + (why.empty() ? wolfssl_error_text(error) : why) +
             (depth > 0 ? " (certificate " + std::to_string(depth) + " of the chain)" : "");
  return false;
}

Status Session::fail_with(std::string reason) noexcept {
  state_ = State::kFailed;
  if (failure_.empty()) failure_ = std::move(reason);
  return ringtun::fail(Errc::kProtocol, "TLS failure");
}

Status Session::fail(int error, const char* during) noexcept {
  if (!failure_.empty()) return fail_with({});  // the verify callback already said why
  std::string why = describe(error, context_->server_name_);
  if (error == FATAL_ERROR) {
    WOLFSSL_ALERT_HISTORY history{};
    (void)wolfSSL_get_alert_history(ssl_, &history);
    const char* name = wolfSSL_alert_desc_string_long(history.last_rx.code);  // null for codes it does not know
    constexpr int kCertificateRequired = 116;  // TLS 1.3's alert; wolfSSL 5.5.4 has no name for it
    why = "the peer sent a fatal alert: " +
          (name != nullptr                                  ? std::string(name)
           : history.last_rx.code == kCertificateRequired ? std::string(
                                                                "certificate required (the gateway wants a client "
                                                                "certificate: give --cert and --key)")
                                                          : "code " + std::to_string(history.last_rx.code));
    if (context_->server_ && history.last_rx.code == bad_certificate) {
      why += " (the agent does not trust this gateway's certificate)";
    }
  }
  if (why.empty()) why = wolfssl_error_text(error);
  else why += " [" + wolfssl_error_text(error) + "]";
  return fail_with(std::string("TLS ") + during + ": " + why);
}

Status Session::handshake() noexcept {
  // Any step may sign or verify (and a failed handshake may have): the cache counts as warm from here.
  t_last_handshake_ms = monotonic_ms();
  t_ecc_cache_warm = true;
  const int r = wolfSSL_negotiate(ssl_);
  if (r == WOLFSSL_SUCCESS) {
    state_ = State::kOpen;
    return {};
  }
  const int error = wolfSSL_get_error(ssl_, r);
  if (error == WOLFSSL_ERROR_WANT_READ || error == WOLFSSL_ERROR_WANT_WRITE) return {};
  return fail(error, "handshake failed");
}

Result<std::size_t> Session::read_some(std::span<std::byte> scratch) noexcept {
  const int r = wolfSSL_read(ssl_, scratch.data(), static_cast<int>(std::min(scratch.size(), kMaxRecordPlaintext)));
  if (r > 0) return static_cast<std::size_t>(r);
  const int error = wolfSSL_get_error(ssl_, r);
  if (error == WOLFSSL_ERROR_WANT_READ || error == WOLFSSL_ERROR_WANT_WRITE) return std::size_t{0};
  if (error == WOLFSSL_ERROR_ZERO_RETURN) {
    RINGTUN_TRY(fail_with("the peer closed the TLS session (close_notify)"));
  }
  RINGTUN_TRY(fail(error, "record rejected"));
  return std::size_t{0};
}

bool Session::inspect_first_bytes(std::span<const std::byte> ciphertext) noexcept {
  if (first_bytes_seen_ || ciphertext.empty()) return true;
  first_bytes_seen_ = true;
  const std::size_t n = std::min(ciphertext.size(), sizeof kPlaintextMagic - 1);
  if (std::memcmp(ciphertext.data(), kPlaintextMagic, n) == 0) {
    (void)fail_with(context_->server_
                        ? "the agent speaks plaintext (--insecure-plaintext) but this gateway requires TLS"
                        : "the gateway speaks plaintext (--insecure-plaintext) but this agent requires TLS");
    return false;
  }
  if (static_cast<std::uint8_t>(ciphertext[0]) != kRecordHandshake) {
    (void)fail_with("the peer's first bytes are not TLS");
    return false;
  }
  return true;
}

void Session::track_records(std::span<const std::byte> bytes) noexcept {
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (record_left_ == 0) {
      header_[header_have_++] = static_cast<std::uint8_t>(bytes[i++]);
      if (header_have_ == sizeof header_) {
        record_left_ = static_cast<std::uint32_t>(header_[3]) << 8 | header_[4];
        header_have_ = 0;
      }
      continue;
    }
    const std::size_t take = std::min<std::size_t>(record_left_, bytes.size() - i);
    record_left_ -= static_cast<std::uint32_t>(take);
    i += take;
  }
}

const char* Session::cut_short_reason() const noexcept {
  if (mid_record()) return "connection cut in the middle of a TLS record (truncated)";
  if (state_ != State::kOpen) return "peer closed the connection during the TLS handshake";
  return nullptr;
}

int Session::io_read(char* buf, int size) noexcept {
  if (input_.empty()) return WOLFSSL_CBIO_ERR_WANT_READ;
  const std::size_t n = std::min(input_.size(), static_cast<std::size_t>(size));
  std::memcpy(buf, input_.data(), n);
  input_ = input_.subspan(n);
  return static_cast<int>(n);
}

int Session::io_write(const char* buf, int size) noexcept {
  auto& out = out_[fill_];
  const auto* bytes = reinterpret_cast<const std::byte*>(buf);
  out.insert(out.end(), bytes, bytes + size);
  return size;
}

Status Session::write_record(const std::byte* data, std::size_t size) noexcept {
  const int r = wolfSSL_write(ssl_, data, static_cast<int>(size));
  if (r == static_cast<int>(size)) return {};
  return fail(wolfSSL_get_error(ssl_, r), "write failed");
}

Status Session::write(std::span<const std::byte> bytes) noexcept {
  if (state_ != State::kOpen) return ringtun::fail(Errc::kClosed, "TLS session not open");
  while (!bytes.empty()) {
    const std::size_t n = std::min(bytes.size(), kMaxRecordPlaintext);
    RINGTUN_TRY(write_record(bytes.data(), n));
    bytes = bytes.subspan(n);
  }
  return {};
}

Status Session::write(std::span<const iovec> pieces, std::span<std::byte> scratch) noexcept {
  if (state_ != State::kOpen) return ringtun::fail(Errc::kClosed, "TLS session not open");
  RINGTUN_ASSERT(scratch.size() >= kScratchSize, "scratch smaller than a record");
  std::size_t packed = 0;
  for (const iovec& piece : pieces) {
    std::span<const std::byte> bytes(static_cast<const std::byte*>(piece.iov_base), piece.iov_len);
    if (bytes.size() >= kDirectPiece) {
      // Encrypted from where it is, after what was packed ahead of it (a frame header): one more short record
      // costs less than copying a bulk payload to join it.
      if (packed != 0) RINGTUN_TRY(write_record(scratch.data(), std::exchange(packed, 0)));
      RINGTUN_TRY(write(bytes));
      continue;
    }
    while (!bytes.empty()) {
      const std::size_t n = std::min(bytes.size(), kMaxRecordPlaintext - packed);
      std::memcpy(scratch.data() + packed, bytes.data(), n);
      packed += n;
      bytes = bytes.subspan(n);
      if (packed == kMaxRecordPlaintext) RINGTUN_TRY(write_record(scratch.data(), std::exchange(packed, 0)));
    }
  }
  if (packed != 0) RINGTUN_TRY(write_record(scratch.data(), packed));
  return {};
}

std::span<const std::byte> Session::begin_send() noexcept {
  if (in_flight_ || out_[fill_].empty()) return {};
  in_flight_ = true;
  const auto& out = out_[fill_];
  fill_ ^= 1;
  return {out.data(), out.size()};
}

void Session::send_done() noexcept {
  RINGTUN_ASSERT(in_flight_, "send_done() without begin_send()");
  out_[fill_ ^ 1].clear();
  in_flight_ = false;
}

void Session::trim() noexcept {
  constexpr std::size_t kIdleCapacity = 64 * 1024;
  if (in_flight_) return;
  for (auto& out : out_) {
    if (out.empty() && out.capacity() > kIdleCapacity) std::vector<std::byte>().swap(out);
  }
}

std::string Session::description() const {
  if (state_ != State::kOpen) return "handshaking";
  return std::string(wolfSSL_get_version(ssl_)) + " " + wolfSSL_get_cipher_name(ssl_);
}

}  // namespace ringtun::tls
