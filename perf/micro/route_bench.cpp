// route_bench: the route table's data-path lookups and its registry-side costs, single core.
//
//   table         10,000 routes: 2,000 tcp ports, 6,000 exact http hosts ("svcN.tM.example.com"), 2,000 http
//                 wildcards ("*.wN.apps.example.net"), held by 100 owners
//   find_tcp hit          a claimed port
//   exact host hit        a claimed name, as claimed; and again in mixed case with a trailing dot
//   wildcard hit          "a.wN.apps.example.net" and "b.a.wN.apps.example.net": the exact probe misses, then the
//                         first or second wildcard candidate (longest first) hits; 2-3 probes
//   miss                  "missN.example.com": the exact probe and both candidates ("*.example.com", "*.com") miss
//   build                 Claims::build() of the 10,000 routes (copy + index), µs
//   claim 1,000           1,000 http names claimed for one owner and session in a fresh Claims, µs
//   release_session 1,000 the same session's end releasing them all, µs
//   hosts-only table      a second table of 10,100 http routes: 10,000 exact hosts ("hostN.bench.test") and 100
//                         wildcards ("*.zN.bench.test"), as a gateway whose shared HTTP port serves 10,000 names;
//                         an exact hit, a wildcard hit ("a.zN.bench.test", 2 probes) and a miss
// Lookups cycle over 4,096 pre-built queries (no allocation in the timed loop); each result feeds a volatile sink.
// Each figure is the median of 7 runs (min and max shown). Usage: route_bench [--quick]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "route/route.hpp"

namespace {

using namespace ringtun::route;  // NOLINT
using ringtun::bench::Clock;
using ringtun::bench::seconds_since;
using ringtun::bench::Stats;
using ringtun::bench::summarize;

volatile std::uintptr_t g_sink = 0;

constexpr int kRuns = 7;
constexpr std::size_t kQueries = 4096;  // a power of two: the loop indexes with a mask
constexpr int kTcpRoutes = 2000;
constexpr int kExactRoutes = 6000;
constexpr int kWildcardRoutes = 2000;
constexpr std::uint16_t kFirstPort = 10000;
constexpr int kHostsOnlyExact = 10000;
constexpr int kHostsOnlyWildcards = 100;

// A small deterministic generator (xorshift64*): the same tables and queries on every run and machine.
struct Rng {
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  std::uint64_t next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dULL;
  }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
};

// Appended piece by piece: g++ 12 warns falsely (-Wrestrict) on "literal" + std::string&& in release builds.
std::string exact_host(int i) {
  std::string host = "svc";
  host += std::to_string(i);
  host += ".t";
  host += std::to_string(i % 100);
  host += ".example.com";
  return host;
}
std::string wildcard_suffix(int i) {
  std::string suffix = "w";
  suffix += std::to_string(i);
  suffix += ".apps.example.net";
  return suffix;
}

void fill(Claims& claims) {
  auto owner = [](int i) { return Owner{static_cast<std::uint32_t>(i % 4), "agent-" + std::to_string(i % 100)}; };
  auto session = [](int i) { return SessionRef{static_cast<std::uint32_t>(i % 100), 1}; };
  int n = 0;
  auto claim = [&](const RouteKey& key) {
    ClaimResult r = claims.claim(owner(n), session(n), key, "service-" + std::to_string(n));
    if (!r.ok()) std::fprintf(stderr, "route_bench: claim of %s refused\n", key.describe().c_str());
    ++n;
  };
  for (int i = 0; i < kTcpRoutes; ++i) claim(RouteKey{Kind::kTcp, static_cast<std::uint16_t>(kFirstPort + i), {}});
  for (int i = 0; i < kExactRoutes; ++i) claim(RouteKey{Kind::kHttp, 0, exact_host(i)});
  for (int i = 0; i < kWildcardRoutes; ++i) claim(RouteKey{Kind::kHttp, 0, "*." + wildcard_suffix(i)});
}

// The hosts-only table: 10,000 exact names and 100 wildcards, all http.
std::string bench_host(int i) {
  std::string host = "host";
  host += std::to_string(i);
  host += ".bench.test";
  return host;
}
std::string bench_wildcard_suffix(int i) {
  std::string suffix = "z";
  suffix += std::to_string(i);
  suffix += ".bench.test";
  return suffix;
}

void fill_hosts_only(Claims& claims) {
  int n = 0;
  auto claim = [&](const RouteKey& key) {
    const Owner owner{static_cast<std::uint32_t>(n % 4), "agent-" + std::to_string(n % 100)};
    const SessionRef session{static_cast<std::uint32_t>(n % 100), 1};
    ClaimResult r = claims.claim(owner, session, key, "service-" + std::to_string(n));
    if (!r.ok()) std::fprintf(stderr, "route_bench: claim of %s refused\n", key.describe().c_str());
    ++n;
  };
  for (int i = 0; i < kHostsOnlyExact; ++i) claim(RouteKey{Kind::kHttp, 0, bench_host(i)});
  for (int i = 0; i < kHostsOnlyWildcards; ++i) claim(RouteKey{Kind::kHttp, 0, "*." + bench_wildcard_suffix(i)});
}

// ns per call of `lookup` over the queries, for about `budget_s`. A template, so the lookup inlines into the loop
// as it would at a call site on the data path.
template <typename Lookup>
double time_lookups(const Lookup& lookup, double budget_s) {
  constexpr std::size_t kBatch = 64 * 1024;
  std::uint64_t calls = 0;
  std::uintptr_t sink = 0;
  auto t0 = Clock::now();
  double s = 0;
  do {
    for (std::size_t i = 0; i < kBatch; ++i) sink += reinterpret_cast<std::uintptr_t>(lookup(i & (kQueries - 1)));
    calls += kBatch;
    s = seconds_since(t0);
  } while (s < budget_s);
  g_sink = g_sink + sink;
  return s * 1e9 / static_cast<double>(calls);
}

std::string mixed_case_dotted(const std::string& host) {
  std::string s = host;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    if (s[i] >= 'a' && s[i] <= 'z') s[i] = static_cast<char>(s[i] - 'a' + 'A');
  }
  return s + ".";
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const double budget = quick ? 0.02 : 0.2;

  Claims claims;
  fill(claims);
  std::shared_ptr<const Table> table = claims.build();
  if (table->size() != kTcpRoutes + kExactRoutes + kWildcardRoutes) {
    std::fprintf(stderr, "route_bench: table has %zu routes\n", table->size());
    return 1;
  }

  Rng rng;
  std::vector<std::uint16_t> ports(kQueries);
  std::vector<std::string> exact(kQueries), exact_folded(kQueries), wildcard(kQueries), miss(kQueries);
  for (std::size_t i = 0; i < kQueries; ++i) {
    ports[i] = static_cast<std::uint16_t>(kFirstPort + rng.below(kTcpRoutes));
    exact[i] = exact_host(rng.below(kExactRoutes));
    exact_folded[i] = mixed_case_dotted(exact_host(rng.below(kExactRoutes)));
    wildcard[i] = (i % 2 == 0 ? "a." : "b.a.") + wildcard_suffix(rng.below(kWildcardRoutes));
    miss[i] = "miss" + std::to_string(rng.below(1000000)) + ".example.com";
  }
  // Every query must find what its row claims to measure.
  for (std::size_t i = 0; i < kQueries; ++i) {
    bool ok = table->find_tcp(ports[i]) != nullptr && table->find_host(Kind::kHttp, exact[i]) != nullptr &&
              table->find_host(Kind::kHttp, exact_folded[i]) != nullptr &&
              table->find_host(Kind::kHttp, wildcard[i]) != nullptr &&
              table->find_host(Kind::kHttp, wildcard[i])->key.host[0] == '*' &&
              table->find_host(Kind::kHttp, miss[i]) == nullptr;
    if (!ok) {
      std::fprintf(stderr, "route_bench: query %zu does not behave as its case says\n", i);
      return 1;
    }
  }

  Claims hosts_claims;
  fill_hosts_only(hosts_claims);
  std::shared_ptr<const Table> hosts_table = hosts_claims.build();
  if (hosts_table->size() != kHostsOnlyExact + kHostsOnlyWildcards) {
    std::fprintf(stderr, "route_bench: hosts-only table has %zu routes\n", hosts_table->size());
    return 1;
  }
  std::vector<std::string> h_exact(kQueries), h_wild(kQueries), h_miss(kQueries);
  for (std::size_t i = 0; i < kQueries; ++i) {
    h_exact[i] = bench_host(rng.below(kHostsOnlyExact));
    h_wild[i] = "a." + bench_wildcard_suffix(rng.below(kHostsOnlyWildcards));
    h_miss[i] = "miss" + std::to_string(rng.below(1000000)) + ".bench.test";
  }
  for (std::size_t i = 0; i < kQueries; ++i) {
    const Route* w = hosts_table->find_host(Kind::kHttp, h_wild[i]);
    bool ok = hosts_table->find_host(Kind::kHttp, h_exact[i]) != nullptr && w != nullptr && w->key.host[0] == '*' &&
              hosts_table->find_host(Kind::kHttp, h_miss[i]) == nullptr;
    if (!ok) {
      std::fprintf(stderr, "route_bench: hosts-only query %zu does not behave as its case says\n", i);
      return 1;
    }
  }

  const Table& t = *table;
  const Table& h = *hosts_table;
  std::vector<double> h_exact_ns, h_wild_ns, h_miss_ns;
  std::vector<double> tcp_ns, exact_ns, folded_ns, wild_ns, miss_ns, build_us, claim_us, release_us;
  for (int r = 0; r < kRuns; ++r) {
    tcp_ns.push_back(time_lookups([&](std::size_t i) { return t.find_tcp(ports[i]); }, budget));
    exact_ns.push_back(time_lookups([&](std::size_t i) { return t.find_host(Kind::kHttp, exact[i]); }, budget));
    folded_ns.push_back(time_lookups([&](std::size_t i) { return t.find_host(Kind::kHttp, exact_folded[i]); }, budget));
    wild_ns.push_back(time_lookups([&](std::size_t i) { return t.find_host(Kind::kHttp, wildcard[i]); }, budget));
    miss_ns.push_back(time_lookups([&](std::size_t i) { return t.find_host(Kind::kHttp, miss[i]); }, budget));
    h_exact_ns.push_back(time_lookups([&](std::size_t i) { return h.find_host(Kind::kHttp, h_exact[i]); }, budget));
    h_wild_ns.push_back(time_lookups([&](std::size_t i) { return h.find_host(Kind::kHttp, h_wild[i]); }, budget));
    h_miss_ns.push_back(time_lookups([&](std::size_t i) { return h.find_host(Kind::kHttp, h_miss[i]); }, budget));

    auto t0 = Clock::now();
    std::shared_ptr<const Table> built = claims.build();
    build_us.push_back(seconds_since(t0) * 1e6);
    g_sink = g_sink + built->size();

    // Keys and names made before the clock starts: the figure is the claims' own cost.
    std::vector<RouteKey> keys;
    keys.reserve(1000);
    for (int i = 0; i < 1000; ++i) keys.push_back(RouteKey{Kind::kHttp, 0, exact_host(i)});
    const Owner owner{1, "bulk-agent"};
    const SessionRef session{4242, 7};
    Claims fresh;
    t0 = Clock::now();
    for (const RouteKey& key : keys) g_sink = g_sink + fresh.claim(owner, session, key, "bulk").ok();
    claim_us.push_back(seconds_since(t0) * 1e6);
    t0 = Clock::now();
    g_sink = g_sink + fresh.release_session(session).size();
    release_us.push_back(seconds_since(t0) * 1e6);
  }

  std::printf(
      "route_bench: %d routes (%d tcp, %d exact http, %d wildcard http), single core, median of %d runs "
      "[min..max]\n\n",
      kTcpRoutes + kExactRoutes + kWildcardRoutes, kTcpRoutes, kExactRoutes, kWildcardRoutes, kRuns);
  std::printf("%-46s %12s %20s\n", "case", "median", "range");
  auto row = [](const char* name, const std::vector<double>& v, const char* unit) {
    Stats s = summarize(v);
    std::printf("%-46s %9.1f %-2s %9.1f..%-9.1f %s\n", name, s.median, unit, s.min, s.max, unit);
  };
  row("find_tcp hit", tcp_ns, "ns");
  row("find_host exact hit", exact_ns, "ns");
  row("find_host exact hit, MiXeD case + trailing dot", folded_ns, "ns");
  row("find_host wildcard hit (2-3 probes)", wild_ns, "ns");
  row("find_host miss (3 probes)", miss_ns, "ns");
  row("build snapshot of 10,000 routes", build_us, "us");
  row("claim 1,000 routes for one owner", claim_us, "us");
  row("release_session of those 1,000 routes", release_us, "us");
  std::printf("\nhosts-only table: %d exact http hosts + %d wildcards\n", kHostsOnlyExact, kHostsOnlyWildcards);
  row("find_host exact hit (10,000 names)", h_exact_ns, "ns");
  row("find_host wildcard hit (2 probes)", h_wild_ns, "ns");
  row("find_host miss (3 probes)", h_miss_ns, "ns");
  return 0;
}
