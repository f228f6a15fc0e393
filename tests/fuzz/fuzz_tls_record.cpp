// libFuzzer target over src/tls: hostile ciphertext through tls::Session's I/O callback into wolfSSL.
//
// Input layout: [control][bytes...]
//   control bits 0-1, the mode:
//     0  the bytes are what a peer sends to a fresh server session: ClientHello parsing, record headers, the
//        plaintext-preface check
//     1  a real handshake with an in-memory client first, then the bytes are records from the "gateway" to the client
//     2  the same, then the bytes are records from the "agent" to the server
//     3  the same, then the bytes are plaintext the server writes (as iovec pieces); the client must read them back
//        exactly (an integrity check of write() packing and record splitting)
//   control bits 2-7: the chunk size for receive() (and for the pieces in mode 3); 0 = everything in one call
// The certificate is generated once (LLVMFuzzerInitialize) into a temporary directory, which is removed again.
// Invariants trap; crashes, leaks (detect_leaks=1) and sanitizer reports are caught by the harness.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tls/tls.hpp"

namespace {

using namespace ringtun::tls;  // NOLINT

#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

std::shared_ptr<Context> g_server_ctx;
std::shared_ptr<Context> g_client_ctx;
std::vector<std::byte> g_scratch(Session::kScratchSize);
std::vector<std::byte> g_write_scratch(Session::kScratchSize);

[[noreturn]] void die(const char* what, const std::string& error) {
  std::fprintf(stderr, "fuzz_tls_record: %s: %s\n", what, error.c_str());
  std::abort();
}

// Delivers `bytes` to `to` in pieces of `chunk` (0 = all at once); every piece of plaintext goes to `got`.
void feed(Session& to, std::span<const std::byte> bytes, std::size_t chunk, std::vector<std::byte>* got) {
  if (chunk == 0) chunk = bytes.size() ? bytes.size() : 1;
  for (std::size_t off = 0; off < bytes.size(); off += chunk) {
    auto piece = bytes.subspan(off, std::min(chunk, bytes.size() - off));
    auto status = to.receive(piece, g_scratch, [&](std::span<const std::byte> plain) {
      FUZZ_CHECK(plain.size() <= Session::kMaxRecordPlaintext);
      FUZZ_CHECK(plain.data() >= g_scratch.data() &&
                 plain.data() + plain.size() <= g_scratch.data() + g_scratch.size());
      if (got) got->insert(got->end(), plain.begin(), plain.end());
    });
    if (!status) {
      FUZZ_CHECK(to.failed());
      FUZZ_CHECK(!to.failure().empty());
      FUZZ_CHECK(!to.open());
      return;
    }
  }
}

// Moves `from`'s pending ciphertext to `to`; returns the bytes moved.
std::size_t deliver(Session& from, Session& to, std::vector<std::byte>* got) {
  auto out = from.begin_send();
  std::size_t n = out.size();
  if (n) {
    feed(to, out, 0, got);
    from.send_done();
  }
  return n;
}

// Drains what a session produced (alerts, handshake flights) the way the ring would: one send, then done.
void drain(Session& s) {
  auto out = s.begin_send();
  if (!out.empty()) s.send_done();
}

std::unique_ptr<Session> new_session(const std::shared_ptr<Context>& ctx) {
  auto s = Session::create(ctx);
  FUZZ_CHECK(s.has_value());
  return std::move(*s);
}

void handshake(Session& client, Session& server) {
  FUZZ_CHECK(client.start().has_value());
  for (int round = 0; round < 64; ++round) {
    std::size_t moved = deliver(client, server, nullptr) + deliver(server, client, nullptr);
    if (moved == 0) break;
  }
  if (!client.open() || !server.open()) {
    std::fprintf(stderr, "handshake failed: client '%s', server '%s'\n", client.failure().c_str(),
                 server.failure().c_str());
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_library();
  char tmpl[] = "/tmp/ringtun_fuzz_tls_XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (!dir) die("mkdtemp", "failed");
  std::string cert = std::string(dir) + "/cert.pem";
  std::string key = std::string(dir) + "/key.pem";
  std::string error;
  if (!generate_self_signed(cert, key, "localhost", 30, &error)) die("generate_self_signed", error);
  auto fingerprint = fingerprint_of_pem_file(cert, &error);
  if (!fingerprint) die("fingerprint_of_pem_file", error);
  ServerSettings server;
  server.cert_file = cert;
  server.key_file = key;
  auto server_ctx = Context::server(server, &error);
  if (!server_ctx) die("Context::server", error);
  ClientSettings client;
  client.fingerprint = *fingerprint;
  client.server_name = "localhost";
  auto client_ctx = Context::client(client, &error);
  if (!client_ctx) die("Context::client", error);
  g_server_ctx = *server_ctx;
  g_client_ctx = *client_ctx;
  ::unlink(cert.c_str());
  ::unlink(key.c_str());
  ::rmdir(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const unsigned mode = data[0] & 3;
  const std::size_t chunk = data[0] >> 2;
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data + 1), size - 1);

  if (mode == 0) {
    auto server = new_session(g_server_ctx);
    FUZZ_CHECK(server->start().has_value());
    std::vector<std::byte> got;
    feed(*server, bytes, chunk, &got);
    FUZZ_CHECK(got.empty());  // nothing is plaintext before a handshake that no fuzz input can finish
    drain(*server);
    return 0;
  }

  auto client = new_session(g_client_ctx);
  auto server = new_session(g_server_ctx);
  handshake(*client, *server);
  std::vector<std::byte> got;
  if (mode == 1) {
    feed(*client, bytes, chunk, &got);
    drain(*client);
  } else if (mode == 2) {
    feed(*server, bytes, chunk, &got);
    drain(*server);
  } else {
    std::vector<iovec> pieces;
    const std::size_t piece = chunk ? chunk : bytes.size();
    for (std::size_t off = 0; off < bytes.size(); off += piece) {
      pieces.push_back({const_cast<std::byte*>(bytes.data() + off), std::min(piece, bytes.size() - off)});
    }
    FUZZ_CHECK(server->write(pieces, g_write_scratch).has_value());
    deliver(*server, *client, &got);
    FUZZ_CHECK(!client->failed());
    FUZZ_CHECK(!client->mid_record());
    FUZZ_CHECK(got.size() == bytes.size());
    FUZZ_CHECK(bytes.empty() || std::memcmp(got.data(), bytes.data(), bytes.size()) == 0);
  }
  return 0;
}
