// frame_bench: single-core throughput of src/frame, next to loopback TCP for scale.
//
//   codec 64 B    frames encoded (headers into a FrameBatch, payload referenced) + decoded (incremental decoder over
//                 64 KiB receive chunks) per second
//   codec 16 KiB  the same in GB/s of payload
//   session 16 KiB  a gateway Session streaming to an agent Session: scheduler, flow control, credit, release
//                 callbacks, plus one memcpy of every wire byte standing in for the kernel's copy
//   tcp loopback  one blocking TCP stream over 127.0.0.1, 16 KiB writes for ~2 s (the reader runs on a second
//                 thread; the machine's other core)
// Each figure is the median of 5 runs (min and max shown). Usage: frame_bench [--quick]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "frame/decoder.hpp"
#include "frame/encoder.hpp"
#include "frame/session.hpp"
#include "frame/wire.hpp"

namespace {

using namespace ringtun::frame;  // NOLINT
using ringtun::bench::Clock;
using ringtun::bench::seconds_since;
using ringtun::bench::Stats;
using ringtun::bench::summarize;

volatile std::uint64_t g_sink = 0;

// Encodes `frames_per_batch` frames of `payload` bytes into a batch, repeatedly; and decodes a pre-serialized stream
// of the same frames in 64 KiB chunks. Returns payload bytes and frames per second for encode+decode together.
struct CodecResult {
  double frames_per_s;
  double bytes_per_s;
};
CodecResult run_codec(std::size_t payload, double budget_s) {
  const std::size_t per_batch = std::min<std::size_t>(FrameBatch::kMaxFrames, (256 * 1024) / (payload + kHeaderSize) + 1);
  std::vector<std::byte> data(payload, std::byte{0x42});
  auto batch = std::make_unique<FrameBatch>();

  // Wire image for the decoder: ~4 MiB of frames.
  std::vector<std::byte> wire;
  std::size_t wire_frames = std::max<std::size_t>(64, (4u << 20) / (payload + kHeaderSize));
  wire.reserve(wire_frames * (payload + kHeaderSize));
  for (std::size_t i = 0; i < wire_frames; ++i) {
    std::byte h[kHeaderSize];
    encode_header(FrameHeader{FrameType::kData, 0, 0, static_cast<StreamId>(1 + 2 * (i % 8)),
                              static_cast<std::uint32_t>(payload), 0}, h);
    wire.insert(wire.end(), h, h + kHeaderSize);
    wire.insert(wire.end(), data.begin(), data.end());
  }

  // Encode.
  std::uint64_t enc_frames = 0;
  auto t0 = Clock::now();
  double enc_s = 0;
  do {
    for (int rep = 0; rep < 64; ++rep) {
      batch->clear();
      for (std::size_t i = 0; i < per_batch; ++i) {
        batch->add_frame(FrameHeader{FrameType::kData, 0, 0, static_cast<StreamId>(1 + 2 * (i % 8)),
                                     static_cast<std::uint32_t>(payload), 0},
                         data);
      }
      g_sink = g_sink + batch->bytes() + batch->iov_count();
      enc_frames += per_batch;
    }
    enc_s = seconds_since(t0);
  } while (enc_s < budget_s / 2);

  // Decode.
  std::uint64_t dec_frames = 0;
  std::uint64_t dec_bytes = 0;
  t0 = Clock::now();
  double dec_s = 0;
  Decoder decoder(kDefaultMaxFrameSize);
  do {
    for (std::size_t pos = 0; pos < wire.size(); pos += 64 * 1024) {
      std::span<const std::byte> chunk(wire.data() + pos, std::min<std::size_t>(64 * 1024, wire.size() - pos));
      DecodedFrame f;
      for (;;) {
        auto r = decoder.next(chunk, f);
        if (!r || !*r) break;
        dec_bytes += f.payload.size();
        dec_frames += f.last ? 1 : 0;
      }
    }
    dec_s = seconds_since(t0);
  } while (dec_s < budget_s / 2);
  g_sink = g_sink + dec_bytes;

  double per_frame = enc_s / static_cast<double>(enc_frames) + dec_s / static_cast<double>(dec_frames);
  return {1.0 / per_frame, static_cast<double>(payload) / per_frame};
}

// Two sessions; the gateway streams 16 KiB segments on `streams` streams to the agent, which consumes at once.
class BenchHandler : public SessionHandler {
 public:
  Session* session = nullptr;
  std::uint64_t received = 0;
  std::uint64_t released = 0;
  void on_open(StreamHandle, StreamId, std::span<const std::byte>) override {}
  void on_data(StreamHandle h, std::span<const std::byte> bytes) override {
    received += bytes.size();
    (void)session->consumed(h, bytes.size());
  }
  void on_fin(StreamHandle) override {}
  void on_reset(StreamHandle, ErrorCode) override {}
  void on_closed(StreamHandle) override {}
  void on_goaway(StreamId, ErrorCode) override {}
  void on_control(std::span<const std::byte>) override {}
  void on_send_released(std::uint64_t) override { ++released; }
};

double run_session(double budget_s, int streams) {
  BenchHandler gh;
  BenchHandler ah;
  SessionOptions go;
  go.role = Role::kGateway;
  SessionOptions ao;
  ao.role = Role::kAgent;
  auto gw = std::make_unique<Session>(go, gh);
  auto ag = std::make_unique<Session>(ao, ah);
  gh.session = gw.get();
  ah.session = ag.get();
  auto gb = std::make_unique<FrameBatch>();
  auto ab = std::make_unique<FrameBatch>();
  std::vector<std::byte> source(1 << 20, std::byte{0x17});
  std::vector<std::byte> net(1 << 20);  // the "kernel": one copy of every wire byte

  auto pump = [&](Session& from, FrameBatch& batch, Session& to) {
    from.build_batch(batch);
    std::size_t n = 0;
    for (std::size_t i = 0; i < batch.iov_count(); ++i) {
      std::memcpy(net.data() + n, batch.iov()[i].iov_base, batch.iov()[i].iov_len);
      n += batch.iov()[i].iov_len;
    }
    from.sent(n);
    for (std::size_t pos = 0; pos < n; pos += 64 * 1024) {
      (void)to.feed(std::span<const std::byte>(net.data() + pos, std::min<std::size_t>(64 * 1024, n - pos)));
    }
    return n;
  };

  std::vector<StreamHandle> hs;
  for (int i = 0; i < streams; ++i) hs.push_back(*gw->open_stream({}));
  std::vector<std::size_t> offset(hs.size(), 0);
  std::uint64_t queued = 0;
  auto t0 = Clock::now();
  double s = 0;
  std::uint64_t start_bytes = 0;
  bool warm = false;
  do {
    for (int rep = 0; rep < 16; ++rep) {
      // Keep ~1 MiB queued per stream (the source buffer is reused; the bytes' content does not matter).
      for (std::size_t i = 0; i < hs.size(); ++i) {
        while (queued - gh.released < hs.size() * 64) {
          (void)gw->queue_data(hs[i], std::span<const std::byte>(source.data() + offset[i], 16384), queued);
          offset[i] = (offset[i] + 16384) % source.size();
          ++queued;
        }
      }
      pump(*gw, *gb, *ag);
      pump(*ag, *ab, *gw);
    }
    if (!warm && seconds_since(t0) > 0.05) {
      warm = true;
      t0 = Clock::now();
      start_bytes = ah.received;
    }
    s = seconds_since(t0);
  } while (!warm || s < budget_s);
  return static_cast<double>(ah.received - start_bytes) / s;
}

double run_tcp(double seconds) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0) {
    std::perror("tcp setup");
    return 0;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::atomic<std::uint64_t> received{0};
  std::thread reader([&] {
    int fd = ::accept(listener, nullptr, nullptr);
    std::vector<char> buf(256 * 1024);
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n <= 0) break;
      received.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    ::close(fd);
  });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::perror("connect");
  std::vector<char> chunk(16384, 'x');
  auto t0 = Clock::now();
  std::uint64_t start = 0;
  bool warm = false;
  double s = 0;
  for (;;) {
    if (::write(fd, chunk.data(), chunk.size()) <= 0) break;
    s = seconds_since(t0);
    if (!warm && s > 0.1) {
      warm = true;
      t0 = Clock::now();
      start = received.load();
      s = 0;
    }
    if (warm && s >= seconds) break;
  }
  double rate = static_cast<double>(received.load() - start) / s;
  ::shutdown(fd, SHUT_WR);
  reader.join();
  ::close(fd);
  ::close(listener);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int runs = 5;
  const double budget = quick ? 0.05 : 0.4;
  const double tcp_seconds = quick ? 0.3 : 2.0;

  std::vector<double> small_fps, small_bps, big_bps, sess1, sess8, tcp;
  for (int r = 0; r < runs; ++r) {
    auto small = run_codec(64, budget);
    small_fps.push_back(small.frames_per_s);
    small_bps.push_back(small.bytes_per_s);
    big_bps.push_back(run_codec(16384, budget).bytes_per_s);
    sess1.push_back(run_session(budget, 1));
    sess8.push_back(run_session(budget, 8));
  }
  for (int r = 0; r < runs; ++r) tcp.push_back(run_tcp(tcp_seconds));

  auto sf = summarize(small_fps);
  auto sb = summarize(small_bps);
  auto bb = summarize(big_bps);
  auto s1 = summarize(sess1);
  auto s8 = summarize(sess8);
  auto tc = summarize(tcp);
  const double g = 1e9;
  std::printf("frame_bench: single core, median of %d runs [min..max]\n\n", runs);
  std::printf("%-44s %14s %22s\n", "case", "median", "range");
  std::printf("%-44s %10.2f Mf/s %9.2f..%-9.2f Mf/s\n", "codec 64 B frames (encode+decode)", sf.median / 1e6,
              sf.min / 1e6, sf.max / 1e6);
  std::printf("%-44s %10.3f GB/s %9.3f..%-9.3f GB/s\n", "codec 64 B payload", sb.median / g, sb.min / g, sb.max / g);
  std::printf("%-44s %10.2f GB/s %9.2f..%-9.2f GB/s\n", "codec 16 KiB payload (encode+decode)", bb.median / g,
              bb.min / g, bb.max / g);
  std::printf("%-44s %10.2f GB/s %9.2f..%-9.2f GB/s\n", "session pair 16 KiB, 1 stream (+1 memcpy)", s1.median / g,
              s1.min / g, s1.max / g);
  std::printf("%-44s %10.2f GB/s %9.2f..%-9.2f GB/s\n", "session pair 16 KiB, 8 streams (+1 memcpy)", s8.median / g,
              s8.min / g, s8.max / g);
  std::printf("%-44s %10.2f GB/s %9.2f..%-9.2f GB/s\n", "tcp loopback, 1 stream, 16 KiB writes", tc.median / g,
              tc.min / g, tc.max / g);
  std::printf("\ncodec 16 KiB / tcp = %.1fx (requirement >= 5x); session 1 stream / tcp = %.1fx\n",
              bb.median / tc.median, s1.median / tc.median);
  return bb.median >= 5 * tc.median ? 0 : 1;
}
