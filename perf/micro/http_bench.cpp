// http_bench: single-core cost of src/http on the gateway's per-request path.
//
//   scan request head      HeadScanner over a ~500-byte browser request head with 10 fields, given whole
//   parse request head     parse_request_head of that head
//   scan + parse, 1 B/call the scanner fed the head a byte at a time (worst-case arrival), then the parse
//   write upstream head    write_upstream_request of the parsed head (X-Forwarded-*, hop-by-hop dropped)
//   parse response head    scan + parse_response_head of a ~250-byte typical response head (8 fields)
//   write client head      write_client_response of that parsed response
//   chunked 4 KiB chunks   BodyFramer over a 1 MiB chunked body in 4 KiB chunks, fed in 16 KiB reads, MB/s
//   chunked 64 B chunks    the same with 64-byte chunks (framing-heavy), MB/s
// Each figure is the median of 7 runs (min and max shown). Usage: http_bench [--quick]
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "http/body.hpp"
#include "http/forward.hpp"
#include "http/message.hpp"

namespace {

using namespace ringtun::http;  // NOLINT
using ringtun::bench::Clock;
using ringtun::bench::seconds_since;
using ringtun::bench::Stats;
using ringtun::bench::summarize;

volatile std::uint64_t g_sink = 0;
constexpr int kRuns = 7;

const std::string kRequest =
    "GET /assets/js/app.bundle.min.js?v=20240611 HTTP/1.1\r\n"
    "Host: app.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Referer: https://app.example.com/dashboard\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=4f9c2a7d81e34b0c9a1f6e2d; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n"
    "Sec-Fetch-Dest: script\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "\r\n";

const std::string kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Date: Tue, 11 Jun 2024 10:00:00 GMT\r\n"
    "Server: nginx/1.24.0\r\n"
    "Content-Type: application/javascript; charset=utf-8\r\n"
    "Content-Length: 48213\r\n"
    "Last-Modified: Mon, 10 Jun 2024 08:12:44 GMT\r\n"
    "ETag: \"66670c6c-bc55\"\r\n"
    "Cache-Control: public, max-age=31536000\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

// ns per call of `op` for about `budget_s`.
template <typename Op>
double time_ns(const Op& op, double budget_s) {
  constexpr int kBatch = 4096;
  std::uint64_t calls = 0;
  std::uint64_t sink = 0;
  auto t0 = Clock::now();
  double s = 0;
  do {
    for (int i = 0; i < kBatch; ++i) sink += op();
    calls += kBatch;
    s = seconds_since(t0);
  } while (s < budget_s);
  g_sink = g_sink + sink;
  return s * 1e9 / static_cast<double>(calls);
}

std::string chunked_body(std::size_t total, std::size_t chunk) {
  std::string body;
  char line[32];
  for (std::size_t sent = 0; sent < total; sent += chunk) {
    std::snprintf(line, sizeof line, "%zx;ext=1\r\n", chunk);
    body += line;
    body.append(chunk, 'x');
    body += "\r\n";
  }
  body += "0\r\nX-Checksum: 1234\r\n\r\n";
  return body;
}

// MB/s of the framer over `body`, fed in 16 KiB reads as the ring's buffers would deliver it.
double framer_mbps(const std::string& body, double budget_s) {
  constexpr std::size_t kRead = 16 * 1024;
  std::uint64_t bytes = 0;
  BodyFramer framer;
  auto t0 = Clock::now();
  double s = 0;
  do {
    framer.start(BodyKind::kChunked);
    for (std::size_t at = 0; at < body.size(); at += kRead) {
      const std::size_t n = body.size() - at < kRead ? body.size() - at : kRead;
      const BodyFramer::Step step = framer.feed(std::string_view(body).substr(at, n));
      bytes += step.used;
      if (step.error != nullptr) {
        std::fprintf(stderr, "http_bench: framer error %s\n", step.error);
        return 0;
      }
    }
    if (!framer.done()) std::fprintf(stderr, "http_bench: body not done\n");
    s = seconds_since(t0);
  } while (s < budget_s);
  return static_cast<double>(bytes) / s / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const double budget = quick ? 0.02 : 0.2;

  auto request = std::make_unique<RequestHead>();
  auto response = std::make_unique<ResponseHead>();
  std::array<char, kMaxForwardedHead> out;
  if (parse_request_head(kRequest, request.get()) || request->fields.count != 10 ||
      parse_response_head(kResponse, false, response.get())) {
    std::fprintf(stderr, "http_bench: the sample heads do not parse\n");
    return 1;
  }
  const Forwarding fwd{"203.0.113.77", "https"};
  const std::string body_4k = chunked_body(1 << 20, 4096);
  const std::string body_64 = chunked_body(1 << 20, 64);

  std::vector<double> scan_ns, parse_ns, bytewise_ns, write_ns, resp_ns, write_resp_ns, mbps_4k, mbps_64;
  for (int r = 0; r < kRuns; ++r) {
    scan_ns.push_back(time_ns(
        [&] {
          HeadScanner s;
          return static_cast<std::uint64_t>(s.scan(kRequest)) + s.head_length();
        },
        budget));
    parse_ns.push_back(
        time_ns([&] { return parse_request_head(kRequest, request.get()).status + request->host.size(); }, budget));
    bytewise_ns.push_back(time_ns(
        [&] {
          HeadScanner s;
          std::size_t n = 0;
          while (s.scan(std::string_view(kRequest).substr(0, ++n)) == HeadScanner::State::kNeedMore) {
          }
          return parse_request_head(std::string_view(kRequest).substr(0, s.head_length()), request.get()).status + n;
        },
        budget / 4));
    write_ns.push_back(time_ns([&] { return write_upstream_request(*request, fwd, out); }, budget));
    resp_ns.push_back(time_ns(
        [&] {
          HeadScanner s;
          (void)s.scan(kResponse);
          return parse_response_head(std::string_view(kResponse).substr(0, s.head_length()), false, response.get())
                     .status +
                 response->content_length;
        },
        budget));
    write_resp_ns.push_back(time_ns([&] { return write_client_response(*response, false, out); }, budget));
    mbps_4k.push_back(framer_mbps(body_4k, budget));
    mbps_64.push_back(framer_mbps(body_64, budget));
  }

  std::printf(
      "http_bench: request head %zu bytes (%zu fields), response head %zu bytes, single core, median of %d runs "
      "[min..max]\n\n",
      kRequest.size(), request->fields.count, kResponse.size(), kRuns);
  std::printf("%-46s %12s %20s\n", "case", "median", "range");
  auto row = [](const char* name, const std::vector<double>& v, const char* unit) {
    Stats s = summarize(v);
    std::printf("%-46s %9.1f %-4s %9.1f..%-9.1f %s\n", name, s.median, unit, s.min, s.max, unit);
  };
  row("scan request head (whole)", scan_ns, "ns");
  row("parse_request_head", parse_ns, "ns");
  row("scan 1 byte per call + parse", bytewise_ns, "ns");
  row("write_upstream_request", write_ns, "ns");
  row("scan + parse_response_head", resp_ns, "ns");
  row("write_client_response", write_resp_ns, "ns");
  row("chunked framer, 4 KiB chunks, 16 KiB reads", mbps_4k, "MB/s");
  row("chunked framer, 64 B chunks, 16 KiB reads", mbps_64, "MB/s");
  return 0;
}
