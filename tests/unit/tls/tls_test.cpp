// tls::Session with two sessions wired back to back in memory: the client's ciphertext goes into the server's
// receive() and back, with no socket anywhere. The gateway's certificate is made at test time with
// tls::generate_self_signed (in a temporary directory, removed at exit) and the client pins its fingerprint.
// Deterministic: the payloads come from a seeded generator; only the handshake's own randomness varies.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tls/tls.hpp"

using namespace ringtun;
using namespace ringtun::tls;

namespace {

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string sha256_hex(std::span<const std::byte> bytes) {
  wc_Sha256 sha;
  REQUIRE(wc_InitSha256(&sha) == 0);
  REQUIRE(wc_Sha256Update(&sha, reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<unsigned>(bytes.size())) == 0);
  unsigned char digest[32];
  REQUIRE(wc_Sha256Final(&sha, digest) == 0);
  wc_Sha256Free(&sha);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// Seeded bytes (xorshift64): payloads differ by seed, and a lost or reordered piece changes the SHA-256.
std::vector<std::byte> pattern(std::size_t size, std::uint64_t seed) {
  std::vector<std::byte> out(size);
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < size; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    out[i] = static_cast<std::byte>(s >> 24);
  }
  return out;
}

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Two self-signed gateway certificates, made once per process; the directory is removed at exit.
struct TestCerts {
  std::string dir;
  std::string cert, key, fingerprint;                    // the gateway's
  std::string other_cert, other_key, other_fingerprint;  // an unrelated one, for the wrong pin

  TestCerts() {
    init_library();
    char tmpl[] = "/tmp/ringtun_tls_test_XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    REQUIRE(made != nullptr);
    dir = made;
    cert = dir + "/gateway-cert.pem";
    key = dir + "/gateway-key.pem";
    other_cert = dir + "/other-cert.pem";
    other_key = dir + "/other-key.pem";
    std::string error;
    REQUIRE_MESSAGE(generate_self_signed(cert, key, "localhost", 30, &error), error);
    REQUIRE_MESSAGE(generate_self_signed(other_cert, other_key, "localhost", 30, &error), error);
    auto fp = fingerprint_of_pem_file(cert, &error);
    REQUIRE_MESSAGE(fp, error);
    fingerprint = *fp;
    auto other_fp = fingerprint_of_pem_file(other_cert, &error);
    REQUIRE_MESSAGE(other_fp, error);
    other_fingerprint = *other_fp;
  }
  ~TestCerts() {
    for (const std::string* p : {&cert, &key, &other_cert, &other_key}) ::unlink(p->c_str());
    ::rmdir(dir.c_str());
  }
};

const TestCerts& certs() {
  static TestCerts instance;
  return instance;
}

std::shared_ptr<Context> server_context() {
  ServerSettings settings;
  settings.cert_file = certs().cert;
  settings.key_file = certs().key;
  std::string error;
  auto ctx = Context::server(settings, &error);
  REQUIRE_MESSAGE(ctx, error);
  return *ctx;
}

std::shared_ptr<Context> client_context(const std::string& pin) {
  ClientSettings settings;
  settings.fingerprint = pin;
  settings.server_name = "localhost";
  std::string error;
  auto ctx = Context::client(settings, &error);
  REQUIRE_MESSAGE(ctx, error);
  return *ctx;
}

std::unique_ptr<Session> new_session(std::shared_ptr<Context> ctx) {
  auto s = Session::create(std::move(ctx));
  REQUIRE(s);
  return std::move(*s);
}

// A client and a server session back to back. `chunk` cuts every delivery of ciphertext into receive() calls of at
// most that many bytes.
struct Wire {
  std::unique_ptr<Session> client;
  std::unique_ptr<Session> server;
  std::vector<std::byte> client_got;  // plaintext the client received
  std::vector<std::byte> server_got;
  std::string client_error;  // failure() after the first failed receive()
  std::string server_error;
  std::size_t chunk = std::numeric_limits<std::size_t>::max();
  bool mid_record_seen = false;  // mid_record() was true between two pieces of a delivery
  std::vector<std::byte> scratch = std::vector<std::byte>(Session::kScratchSize);
  std::vector<std::byte> write_scratch = std::vector<std::byte>(Session::kScratchSize);

  explicit Wire(const std::string& pin = certs().fingerprint) : Wire(client_context(pin)) {}
  explicit Wire(std::shared_ptr<Context> client_ctx)
      : client(new_session(std::move(client_ctx))), server(new_session(server_context())) {}

  // Hands `from`'s pending ciphertext to `to`; returns how many bytes moved.
  std::size_t deliver(Session& from, Session& to, std::vector<std::byte>& got, std::string& error) {
    auto out = from.begin_send();
    if (out.empty()) return 0;
    REQUIRE(from.send_in_flight());
    for (std::size_t off = 0; off < out.size() && !to.failed(); off += chunk) {
      auto piece = out.subspan(off, std::min(chunk, out.size() - off));
      Status st = to.receive(piece, scratch, [&](std::span<const std::byte> p) {
        REQUIRE(p.size() <= Session::kMaxRecordPlaintext);
        got.insert(got.end(), p.begin(), p.end());
      });
      if (!st) {
        CHECK(to.failed());
        CHECK_FALSE(to.failure().empty());
        error = to.failure();
      } else if (off + piece.size() < out.size() && to.mid_record()) {
        mid_record_seen = true;
      }
    }
    from.send_done();
    CHECK_FALSE(from.send_in_flight());
    return out.size();
  }

  // Shuttles ciphertext both ways until neither side has anything left to send.
  void pump() {
    for (int round = 0; round < 100000; ++round) {
      std::size_t moved = deliver(*client, *server, server_got, server_error);
      moved += deliver(*server, *client, client_got, client_error);
      if (moved == 0) return;
    }
    FAIL("the sessions never went quiet");
  }

  // The client refuses the server during the handshake: neither side opens. Returns the client's failure().
  std::string refused_handshake() {
    REQUIRE(client->start());
    pump();
    CHECK(client->failed());
    CHECK_FALSE(client->open());
    CHECK_FALSE(server->open());  // never got the client's Finished
    return client->failure();
  }

  // The server's pending ciphertext, copied out and marked sent: for tests that cut or damage it before delivery.
  std::vector<std::byte> take_server_output() {
    auto out = server->begin_send();
    std::vector<std::byte> copy(out.begin(), out.end());
    server->send_done();
    return copy;
  }

  // A receive() sink that appends the client's plaintext to client_got.
  auto client_sink() {
    return [this](std::span<const std::byte> p) { client_got.insert(client_got.end(), p.begin(), p.end()); };
  }

  void handshake() {
    REQUIRE(client->start());
    REQUIRE(server->start());  // a server's start() waits for the peer: no output
    CHECK_FALSE(server->has_output());
    CHECK(client->has_output());
    pump();
    REQUIRE_MESSAGE(client->open(), client->failure());
    REQUIRE_MESSAGE(server->open(), server->failure());
  }

  // Writes `data` from `from` through write(iovec) in pieces whose sizes cycle through `plan`, at most 64 pieces and
  // 256 KiB per call, pumping after each call (as the ring does once per loop turn).
  void send(Session& from, std::span<const std::byte> data, const std::vector<std::size_t>& plan) {
    std::size_t off = 0;
    std::size_t next = 0;
    while (off < data.size()) {
      std::vector<iovec> pieces;
      std::size_t batch = 0;
      while (off < data.size() && pieces.size() < 64 && batch < 256 * kKiB) {
        std::size_t n = std::min(plan[next++ % plan.size()], data.size() - off);
        pieces.push_back({const_cast<std::byte*>(data.data() + off), n});
        off += n;
        batch += n;
      }
      Status st = from.write(pieces, write_scratch);
      REQUIRE_MESSAGE(st, from.failure());
      pump();
    }
  }
};

}  // namespace

TEST_CASE("handshake completes with a pinned fingerprint; the client sees the gateway's certificate") {
  Wire w;
  w.handshake();
  MESSAGE("negotiated: " << w.client->description());
  // "TLSv1.3 TLS13-CHACHA20-POLY1305-SHA256" (wolfSSL's own version string) or "TLS1.3 ...".
  CHECK(w.client->description().find("1.3") != std::string::npos);
  CHECK(w.client->description().find("TLS13-") != std::string::npos);
  CHECK(w.server->description() == w.client->description());
  CHECK(w.client->peer_fingerprint() == certs().fingerprint);
  CHECK_FALSE(w.client->mid_record());
  CHECK_FALSE(w.server->mid_record());
  CHECK(w.client_got.empty());
  CHECK(w.server_got.empty());
}

TEST_CASE("fingerprint_of_pem_file and a server Context agree on sha256:<64 hex>; parse_fingerprint reads it") {
  const std::string& fp = certs().fingerprint;
  REQUIRE(fp.size() == 7 + 64);
  CHECK(fp.rfind("sha256:", 0) == 0);
  CHECK(std::all_of(fp.begin() + 7, fp.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); }));
  CHECK(fp != certs().other_fingerprint);
  CHECK(server_context()->fingerprint() == fp);  // of the certificate as loaded (what the gateway logs)
  std::string error;
  auto canonical = parse_fingerprint(fp, &error);
  REQUIRE_MESSAGE(canonical, error);
  CHECK(*canonical == fp);
}

TEST_CASE("data round-trips both ways, SHA-256 equal: 1 byte to 1 MiB, written in tiny and large pieces") {
  const std::vector<std::size_t> sizes = {
      1, 2, 15, 16, 17, 1000, 16 * kKiB - 1, 16 * kKiB, 16 * kKiB + 1, 64 * kKiB + 7, 1 * kMiB};
  const std::vector<std::vector<std::size_t>> plans = {{1}, {16, 1, 4096}, {3, 16 * kKiB, 7}, {100000}, {1 * kMiB}};
  Wire w;
  w.handshake();
  std::uint64_t seed = 1;
  for (std::size_t size : sizes) {
    for (const auto& plan : plans) {
      if (plan[0] == 1 && size > 64 * kKiB + 7) continue;  // a million 1-byte iovecs adds nothing but time
      CAPTURE(size);
      CAPTURE(plan[0]);
      auto up = pattern(size, seed++);
      auto down = pattern(size, seed++);
      w.client_got.clear();
      w.server_got.clear();
      w.send(*w.client, up, plan);
      w.send(*w.server, down, plan);
      w.pump();
      REQUIRE(w.server_got.size() == size);
      REQUIRE(w.client_got.size() == size);
      CHECK(sha256_hex(w.server_got) == sha256_hex(up));
      CHECK(sha256_hex(w.client_got) == sha256_hex(down));
    }
  }
  // The contiguous overload, 1 MiB at once, both ways before any delivery.
  auto up = pattern(kMiB, 1001);
  auto down = pattern(kMiB, 1002);
  w.client_got.clear();
  w.server_got.clear();
  REQUIRE(w.client->write(up));
  REQUIRE(w.server->write(down));
  CHECK(w.client->pending_output() > kMiB);  // framing and tags on top of the plaintext
  w.pump();
  CHECK(sha256_hex(w.server_got) == sha256_hex(up));
  CHECK(sha256_hex(w.client_got) == sha256_hex(down));
  CHECK(w.client_error.empty());
  CHECK(w.server_error.empty());
}

// Plaintext sizes of the application-data records in a run of TLS 1.3 ciphertext (each record carries one byte of
// inner content type and a 16-byte tag on top of its plaintext).
std::vector<std::size_t> record_plaintext_sizes(std::span<const std::byte> ciphertext) {
  std::vector<std::size_t> sizes;
  std::size_t off = 0;
  while (off + 5 <= ciphertext.size()) {
    const std::size_t length =
        std::to_integer<std::size_t>(ciphertext[off + 3]) << 8 | std::to_integer<std::size_t>(ciphertext[off + 4]);
    REQUIRE(length >= 17);
    sizes.push_back(length - 17);
    off += 5 + length;
  }
  REQUIRE(off == ciphertext.size());
  return sizes;
}

TEST_CASE("write(iovec): payloads become records of their own, small pieces share one; the peer gets it all") {
  Wire w;
  w.handshake();
  auto data = pattern(16 + 16 * kKiB + 16 + 5000 + 16 + 8 + 16 + 100 + 20 * kKiB, 77);
  // As a tunnel batch gathers them: frame headers, two payloads of kDirectPiece bytes or more, small control frames
  // and a short payload, and a payload longer than a record.
  const std::vector<std::size_t> plan = {16, 16 * kKiB, 16, 5000, 16, 8, 16, 100, 20 * kKiB};
  std::vector<iovec> pieces;
  std::size_t off = 0;
  for (std::size_t n : plan) {
    pieces.push_back({data.data() + off, n});
    off += n;
  }
  REQUIRE(w.client->write(pieces, w.write_scratch));
  auto out = w.client->begin_send();
  // The payloads are encrypted from where they are (no copy to pack a 16-byte header in front); the header and
  // small pieces between two payloads are packed into one record.
  CHECK(record_plaintext_sizes(out) ==
        std::vector<std::size_t>{16, 16 * kKiB, 16, 5000, 16 + 8 + 16 + 100, 16 * kKiB, 4 * kKiB});
  // Delivered: the bytes arrive whole and in order.
  REQUIRE(w.server->receive(out, w.scratch, [&](std::span<const std::byte> p) {
    w.server_got.insert(w.server_got.end(), p.begin(), p.end());
  }));
  w.client->send_done();
  CHECK(sha256_hex(w.server_got) == sha256_hex(data));
}

TEST_CASE("ciphertext delivered one byte at a time: the handshake and every record still come through") {
  Wire w;
  w.chunk = 1;
  w.handshake();
  CHECK(w.mid_record_seen);
  auto up = pattern(40000, 7);
  auto down = pattern(40000, 8);
  w.send(*w.client, up, {5, 17000, 1});
  w.send(*w.server, down, {40000});
  w.pump();
  CHECK(sha256_hex(w.server_got) == sha256_hex(up));
  CHECK(sha256_hex(w.client_got) == sha256_hex(down));
  CHECK_FALSE(w.client->mid_record());
  CHECK_FALSE(w.server->mid_record());
}

TEST_CASE("a wrong pinned fingerprint fails the client's handshake, and failure() says fingerprint") {
  Wire w(certs().other_fingerprint);
  const std::string failure = w.refused_handshake();
  INFO("client failure: " << failure);
  CHECK(lower(failure).find("fingerprint") != std::string::npos);
  // A dead session stays dead.
  const std::byte nothing[1] = {};
  CHECK_FALSE(w.client->receive(std::span<const std::byte>(nothing, 1), w.scratch, [](std::span<const std::byte>) {}));
}

TEST_CASE("a malformed fingerprint in the client settings is refused with a message") {
  ClientSettings settings;
  settings.fingerprint = "sha256:not-hex";
  std::string error;
  auto ctx = Context::client(settings, &error);
  CHECK_FALSE(ctx);
  CHECK_FALSE(error.empty());
}

TEST_CASE("--ca system loads the OS trust store, and a self-signed gateway is not signed by a trusted CA") {
  ClientSettings settings;
  settings.ca_file = std::string(kSystemCas);
  settings.server_name = "localhost";
  std::string error;
  auto ctx = Context::client(settings, &error);
  REQUIRE_MESSAGE(ctx, error);  // scripts/lib.sh installs ca-certificates
  Wire w(*ctx);
  const std::string failure = w.refused_handshake();
  INFO("client failure: " << failure);
  CHECK(failure.find("not signed by a trusted CA") != std::string::npos);
}

TEST_CASE("a byte flipped in a record after the handshake makes receive() fail with a reason") {
  for (std::size_t where : {std::size_t{5}, std::size_t{1000}, std::size_t{5000 + 5 + 16}}) {
    CAPTURE(where);
    Wire w;
    w.handshake();
    auto data = pattern(5000, 3);
    REQUIRE(w.server->write(data));
    std::vector<std::byte> record = w.take_server_output();
    REQUIRE(record.size() > where);  // 5-byte header, 5000 + content type, 16-byte tag
    record[where] ^= std::byte{0x40};
    Status st = w.client->receive(record, w.scratch, w.client_sink());
    CHECK_FALSE(st);
    CHECK(w.client->failed());
    CHECK(w.client_got.empty());  // nothing of a forged record is delivered
    MESSAGE("corrupt record: " << w.client->failure());
    CHECK_FALSE(w.client->failure().empty());
  }
}

TEST_CASE("mid_record() is true while a record is cut, false at a record boundary") {
  Wire w;
  w.handshake();
  auto data = pattern(1000, 4);
  REQUIRE(w.server->write(data));
  std::vector<std::byte> records = w.take_server_output();
  auto sink = w.client_sink();
  std::span<const std::byte> all(records);
  CHECK_FALSE(w.client->mid_record());
  REQUIRE(w.client->receive(all.subspan(0, 3), w.scratch, sink));  // inside the header
  CHECK(w.client->mid_record());
  REQUIRE(w.client->receive(all.subspan(3, 10), w.scratch, sink));  // inside the body
  CHECK(w.client->mid_record());
  CHECK(w.client_got.empty());
  REQUIRE(w.client->receive(all.subspan(13), w.scratch, sink));
  CHECK_FALSE(w.client->mid_record());
  CHECK(sha256_hex(w.client_got) == sha256_hex(data));

  // During the handshake too: half a ClientHello.
  Wire h;
  REQUIRE(h.client->start());
  auto hello = h.client->begin_send();
  REQUIRE(hello.size() > 10);
  REQUIRE(h.server->receive(hello.subspan(0, hello.size() / 2), h.scratch, [](std::span<const std::byte>) {}));
  CHECK(h.server->mid_record());
  CHECK_FALSE(h.server->failed());
}

TEST_CASE("a plaintext ringtun preface sent to a TLS server fails, naming plaintext") {
  auto server = new_session(server_context());
  REQUIRE(server->start());
  std::string preface("RINGTUN\x01", 8);
  preface.append(16, '\0');  // and the start of a SETTINGS frame
  std::vector<std::byte> scratch(Session::kScratchSize);
  Status st = server->receive(as_bytes(preface), scratch, [](std::span<const std::byte>) {});
  CHECK_FALSE(st);
  CHECK(server->failed());
  INFO("server failure: " << server->failure());
  CHECK(lower(server->failure()).find("plaintext") != std::string::npos);
}

TEST_CASE("parse_fingerprint: the documented forms give the canonical one; malformed ones get a message") {
  std::vector<std::uint8_t> want(32);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = static_cast<std::uint8_t>(i * 37 + 5);
  static const char kLowerHex[] = "0123456789abcdef";
  static const char kUpperHex[] = "0123456789ABCDEF";
  std::string lower_hex, upper_hex, colons;
  for (std::size_t i = 0; i < want.size(); ++i) {
    lower_hex += kLowerHex[want[i] >> 4];
    lower_hex += kLowerHex[want[i] & 15];
    upper_hex += kUpperHex[want[i] >> 4];
    upper_hex += kUpperHex[want[i] & 15];
    if (i) colons += ':';
    colons += kUpperHex[want[i] >> 4];
    colons += kUpperHex[want[i] & 15];
  }
  for (const std::string& good : {"sha256:" + lower_hex, "sha256:" + upper_hex, "sha256:" + colons}) {
    CAPTURE(good);
    std::string error;
    auto r = parse_fingerprint(good, &error);
    REQUIRE_MESSAGE(r, error);
    CHECK(*r == "sha256:" + lower_hex);  // canonical: lowercase, no colons
  }
  const std::vector<std::string> bad = {
      "",
      "sha256:",
      "sha256:" + lower_hex.substr(0, 62),        // 31 bytes
      "sha256:" + lower_hex.substr(0, 63),        // an odd number of digits
      "sha256:" + lower_hex + "00",               // 33 bytes
      "sha256:" + lower_hex.substr(0, 63) + "g",  // not hex
      "sha1:" + lower_hex.substr(0, 40),          // another hash
      "md5:" + lower_hex,
      "sha256:" + lower_hex.substr(0, 30) + " " + lower_hex.substr(30, 34),
  };
  for (const std::string& text : bad) {
    CAPTURE(text);
    std::string error;
    auto r = parse_fingerprint(text, &error);
    CHECK_FALSE(r);
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("begin_send/send_done: output made while a send is in flight waits for the next send") {
  Wire w;
  w.handshake();
  CHECK_FALSE(w.server->has_output());
  CHECK(w.server->pending_output() == 0);

  auto first = pattern(3000, 11);
  REQUIRE(w.server->write(first));
  CHECK(w.server->has_output());
  auto in_flight = w.server->begin_send();
  REQUIRE_FALSE(in_flight.empty());
  CHECK(w.server->send_in_flight());
  CHECK(w.server->pending_output() == 0);
  std::vector<std::byte> snapshot(in_flight.begin(), in_flight.end());

  auto second = pattern(70000, 12);  // several records: enough to make a growing buffer move
  REQUIRE(w.server->write(second));
  CHECK(w.server->pending_output() > second.size());
  CHECK_FALSE(w.server->has_output());    // something is pending, but a send is in flight
  CHECK(w.server->begin_send().empty());  // so nothing more is handed over
  CHECK(w.server->send_in_flight());
  // The bytes in flight were not touched by the second write.
  REQUIRE(in_flight.size() == snapshot.size());
  CHECK(std::memcmp(in_flight.data(), snapshot.data(), snapshot.size()) == 0);

  auto sink = w.client_sink();
  REQUIRE(w.client->receive(in_flight, w.scratch, sink));
  w.server->send_done();
  CHECK_FALSE(w.server->send_in_flight());
  CHECK(sha256_hex(w.client_got) == sha256_hex(first));

  CHECK(w.server->has_output());
  auto next = w.server->begin_send();
  CHECK(next.size() > second.size());
  REQUIRE(w.client->receive(next, w.scratch, sink));
  w.server->send_done();
  CHECK(w.server->pending_output() == 0);
  std::vector<std::byte> both(first);
  both.insert(both.end(), second.begin(), second.end());
  CHECK(sha256_hex(w.client_got) == sha256_hex(both));
}

TEST_CASE("Context errors name the file that is wrong") {
  init_library();
  ServerSettings settings;
  settings.cert_file = "/nonexistent/ringtun-cert.pem";
  settings.key_file = certs().key;
  std::string error;
  auto ctx = Context::server(settings, &error);
  CHECK_FALSE(ctx);
  INFO("error: " << error);
  CHECK(error.find("/nonexistent/ringtun-cert.pem") != std::string::npos);

  ServerSettings swapped;  // a key where the certificate should be
  swapped.cert_file = certs().key;
  swapped.key_file = certs().cert;
  error.clear();
  CHECK_FALSE(Context::server(swapped, &error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("a fatal alert with a description wolfSSL has no name for fails the session with a message") {
  // Found by fuzz_tls_record: a record header, then alert level 2 (fatal), description 0xff. wolfSSL has no text for
  // that code (wolfSSL_alert_desc_string_long returns NULL), and the failure message must not depend on one.
  const std::uint8_t input[] = {0x16, 0xf6, 0xfe, 0x00, 0x11, 0x01, 0x00, 0x00, 0xea, 0x03, 0x03,
                                0x6b, 0x15, 0x00, 0x03, 0x03, 0x23, 0x00, 0x03, 0x03, 0x6b, 0x00,
                                0x15, 0x03, 0x23, 0x00, 0x02, 0x02, 0xff, 0x00, 0xfd};
  for (std::uint8_t code : {std::uint8_t{0xff}, std::uint8_t{0xfe}, std::uint8_t{200}}) {
    CAPTURE(int{code});
    auto server = new_session(server_context());
    REQUIRE(server->start());
    std::vector<std::uint8_t> bytes(std::begin(input), std::end(input));
    bytes[28] = code;
    std::vector<std::byte> scratch(Session::kScratchSize);
    Status st =
        server->receive(std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()),
                        scratch, [](std::span<const std::byte>) {});
    CHECK_FALSE(st);
    CHECK(server->failed());
    MESSAGE("failure: " << server->failure());
    CHECK_FALSE(server->failure().empty());
  }
  // The same from the gateway's side: an alert with an unknown code after the client's ClientHello.
  Wire w;
  REQUIRE(w.client->start());
  w.client->begin_send();
  w.client->send_done();
  const std::uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0xff};
  Status st = w.client->receive(std::span<const std::byte>(reinterpret_cast<const std::byte*>(alert), sizeof alert),
                                w.scratch, [](std::span<const std::byte>) {});
  CHECK_FALSE(st);
  CHECK(w.client->failed());
  MESSAGE("client failure: " << w.client->failure());
  CHECK_FALSE(w.client->failure().empty());
}

TEST_CASE("a pinned certificate that has expired is refused, saying expired (the pin does not waive the dates)") {
  // generate_self_signed's validity starts yesterday and lasts `days`: with 0 it ends now, so in 2 s it has expired.
  char tmpl[] = "/tmp/ringtun_tls_expired_XXXXXX";
  const char* made = ::mkdtemp(tmpl);
  REQUIRE(made != nullptr);
  const std::string dir = made;
  const std::string cert = dir + "/cert.pem";
  const std::string key = dir + "/key.pem";
  std::string error;
  REQUIRE_MESSAGE(generate_self_signed(cert, key, "localhost", 0, &error), error);
  auto pin = fingerprint_of_pem_file(cert, &error);
  REQUIRE_MESSAGE(pin, error);
  ::sleep(2);
  ServerSettings settings;
  settings.cert_file = cert;
  settings.key_file = key;
  auto server_ctx = Context::server(settings, &error);
  ::unlink(cert.c_str());
  ::unlink(key.c_str());
  ::rmdir(dir.c_str());
  REQUIRE_MESSAGE(server_ctx, error);
  Wire w(*pin);
  w.server = new_session(*server_ctx);
  const std::string failure = w.refused_handshake();
  INFO("client failure: " << failure);
  CHECK(lower(failure).find("expired") != std::string::npos);
}

TEST_CASE("trim() gives back output capacity after a burst, and the session keeps working") {
  Wire w;
  w.handshake();
  auto burst = pattern(2 * 1024 * kKiB, 21);
  REQUIRE(w.server->write(burst));  // 2 MiB of ciphertext pending at once
  CHECK(w.server->output_capacity() >= burst.size());
  auto out = w.server->begin_send();
  w.server->trim();  // a send is in flight: nothing may move
  CHECK(w.server->begin_send().empty());
  auto sink = w.client_sink();
  REQUIRE(w.client->receive(out, w.scratch, sink));
  w.server->send_done();
  w.server->trim();
  CHECK(w.server->output_capacity() <= 64 * kKiB);
  auto after = pattern(100 * kKiB, 22);
  REQUIRE(w.server->write(after));
  w.pump();
  std::vector<std::byte> both(burst);
  both.insert(both.end(), after.begin(), after.end());
  CHECK(sha256_hex(w.client_got) == sha256_hex(both));
}
