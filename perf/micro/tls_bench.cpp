// tls_bench: single-core cost of src/tls on the tunnel's data path, with the wolfSSL this build links.
//
//   encrypt  Session::write() of frame-shaped input (a 16-byte header + a 16 KiB payload, gathered as a tunnel batch
//            is) into records, in MB/s of plaintext
//   decrypt  Session::receive() of those records in 16 KiB chunks (as recv completions deliver them), MB/s
//   pair     both, on one core: what one tunnel direction costs a gateway and an agent together
//   handshake  full TLS 1.3 handshakes (ECDHE P-256, ECDSA P-256 certificate, pinned) per second, both ends on one
//            core: the time a loop spends inline on a new tunnel connection
// Each figure is the median of 5 runs (min and max shown). Usage: tls_bench [--quick]
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tls/tls.hpp"

using namespace ringtun;
using Clock = std::chrono::steady_clock;

namespace {

struct Pair {
  std::unique_ptr<tls::Session> client, server;
};

void pump(tls::Session& from, tls::Session& to, std::vector<std::byte>& scratch, std::size_t* delivered) {
  auto out = from.begin_send();
  if (out.empty()) return;
  for (std::size_t off = 0; off < out.size(); off += 16384) {
    const std::size_t n = std::min<std::size_t>(16384, out.size() - off);
    if (!to.receive(out.subspan(off, n), scratch, [&](std::span<const std::byte> p) { *delivered += p.size(); })) {
      std::fprintf(stderr, "receive failed: %s\n", to.failure().c_str());
      std::exit(1);
    }
  }
  from.send_done();
}

struct Contexts {
  std::shared_ptr<tls::Context> server, client;
};

Contexts make_contexts(const std::string& dir) {
  std::string error;
  const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  if (!tls::generate_self_signed(cert, key, "bench", 30, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(1);
  }
  auto server_ctx = tls::Context::server({cert, key, ""}, &error);
  auto fp = tls::fingerprint_of_pem_file(cert, &error);
  tls::ClientSettings cs;
  cs.fingerprint = *fp;
  auto client_ctx = tls::Context::client(cs, &error);
  if (!server_ctx || !client_ctx) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(1);
  }
  return {*server_ctx, *client_ctx};
}

Pair connect(const Contexts& contexts) {
  auto client = tls::Session::create(contexts.client);
  auto server = tls::Session::create(contexts.server);
  if (!client || !server) std::exit(1);
  Pair p;
  p.client = std::move(*client);
  p.server = std::move(*server);
  std::vector<std::byte> scratch(tls::Session::kScratchSize);
  std::size_t sink = 0;
  (void)p.client->start();
  for (int i = 0; i < 8 && !(p.client->open() && p.server->open()); ++i) {
    pump(*p.client, *p.server, scratch, &sink);
    pump(*p.server, *p.client, scratch, &sink);
  }
  if (!p.client->open() || !p.server->open()) {
    std::fprintf(stderr, "handshake did not complete\n");
    std::exit(1);
  }
  return p;
}

struct Figures {
  double encrypt_mbs, decrypt_mbs, pair_mbs;
};

Figures run_once(Pair& p, std::size_t total) {
  std::vector<std::byte> header(16, std::byte{1}), payload(16384, std::byte{7});
  std::vector<std::byte> packing(tls::Session::kScratchSize), plain(tls::Session::kScratchSize);
  iovec iov[32];
  for (int i = 0; i < 32; i += 2) {
    iov[i] = {header.data(), header.size()};
    iov[i + 1] = {payload.data(), payload.size()};
  }
  const std::size_t batch = 16 * (16 + 16384);
  double encrypt_s = 0, decrypt_s = 0;
  std::size_t done = 0, delivered = 0;
  while (done < total) {
    auto t0 = Clock::now();
    if (!p.server->write({iov, 32}, packing)) std::exit(1);
    auto t1 = Clock::now();
    pump(*p.server, *p.client, plain, &delivered);
    auto t2 = Clock::now();
    encrypt_s += std::chrono::duration<double>(t1 - t0).count();
    decrypt_s += std::chrono::duration<double>(t2 - t1).count();
    done += batch;
  }
  if (delivered != done) {
    std::fprintf(stderr, "delivered %zu of %zu bytes\n", delivered, done);
    std::exit(1);
  }
  const double mb = static_cast<double>(done) / 1e6;
  return {mb / encrypt_s, mb / decrypt_s, mb / (encrypt_s + decrypt_s)};
}

void print(const char* name, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("  %-8s %8.0f MB/s  (min %.0f, max %.0f)\n", name, v[v.size() / 2], v.front(), v.back());
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  char dir[] = "/tmp/ringtun-tls-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 1;
  const Contexts contexts = make_contexts(dir);
  Pair p = connect(contexts);
  const tls::CryptoInfo info = tls::crypto_info();
  std::printf("tls_bench: wolfSSL %s, %s AES-NI in the library, %s in the CPU; negotiated %s\n", info.library_version,
              info.library_has_aesni ? "with" : "without", info.cpu_has_aesni ? "present" : "absent",
              p.client->description().c_str());
  std::vector<double> enc, dec, pair;
  for (int r = 0; r < 5; ++r) {
    Figures f = run_once(p, quick ? (64u << 20) : (512u << 20));
    enc.push_back(f.encrypt_mbs);
    dec.push_back(f.decrypt_mbs);
    pair.push_back(f.pair_mbs);
  }
  print("encrypt", enc);
  print("decrypt", dec);
  print("pair", pair);
  std::vector<double> rates;
  for (int r = 0; r < 5; ++r) {
    const int n = quick ? 20 : 100;
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) (void)connect(contexts);
    rates.push_back(n / std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(rates.begin(), rates.end());
  std::printf("  %-8s %8.0f /s    (min %.0f, max %.0f), both ends on one core\n", "handshake", rates[2], rates[0],
              rates[4]);
  std::string cleanup = std::string("rm -rf ") + dir;
  return std::system(cleanup.c_str()) == 0 ? 0 : 1;
}
