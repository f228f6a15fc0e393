#!/usr/bin/env python3
"""What the access policy costs public traffic, through two gateways side by side: one without a policy and one
whose token has every check on (allow and deny lists of 1,000 networks each, --conn-rate, --max-conns,
--max-conns-per-client, all set never to refuse). Two figures, interleaved for several rounds in the same run:

  new connections/s   ringtun-bench connect-rate (connect, 64 B echo, close) to a tcp: route: the policy is checked
                      once per connection, so this is where it shows most
  HTTP requests/s     wrk -t1 -c32, keep-alive, "Host: bench.test" to the gateway's --http-listen, routed to an
                      http: service (nginx, a 1,024-byte file): the route is chosen per request (by Host), so
                      every request passes the policy's checks (the rate counts requests, the caps requests in
                      flight); a request costs a tunnel stream either way

Prints medians, min-max, the ratios and the load average seen during the run (min-max of the 1-minute figure,
sampled before every measurement).

  python3 perf/policy_cost.py [--build build-release] [--rounds 5] [--seconds 3]

Needs the programs and ringtun-bench built in --build (meson compile -C BUILD), and wrk and nginx (Debian: wrk,
nginx-light; perf/run_loopback.sh installs them). Plaintext tunnels (the policy sits before the tunnel; TLS would
only add noise).
"""
import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import loopback  # noqa: E402
import systems  # noqa: E402
from http_bench import HOST, run_wrk  # noqa: E402  (wrk with "Host: bench.test", parsed)

ROOT = os.path.dirname(HERE)
# 1,000 networks in each list (the clients' 127.0.0.1 in the last allowed one, in none of the denied ones).
ALLOW = ",".join([f"10.{i // 256}.{i % 256}.0/24" for i in range(999)] + ["127.0.0.0/8"])
DENY = ",".join(f"2001:db8:{i:x}::/48" for i in range(1000))
POLICY = ["--allow-from", ALLOW, "--deny-from", DENY, "--conn-rate", "1000000", "--max-conns", "1000000",
          "--max-conns-per-client", "1000000"]
WRK_CONNECTIONS = 32
PAGE = "/1k.bin"  # loopback.start_services' nginx serves it


def http_ok(port):
    """One GET of PAGE through the shared HTTP port answers 200 (the agent's http: route is up)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(f"GET {PAGE} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            return c.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def spread(values):
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    cfg, bench_bin = loopback.ringtun_build(args.build)
    missing = [tool for tool in ("wrk", "nginx")
               if not shutil.which(tool) and not os.access(f"/usr/sbin/{tool}", os.X_OK)]
    if missing:
        sys.exit(f"not found: {', '.join(missing)} (Debian: apt-get install wrk nginx-light)")
    work = tempfile.mkdtemp(prefix="ringtun-policy-cost-")
    # echo (ringtun-bench serve) for connect-rate, nginx for HTTP; start_ringtun exposes each as a tcp: route.
    local, services = loopback.start_services(bench_bin, work)
    running, http_ports = {}, {}
    loads = []
    try:
        for name, extra in (("no policy", []), ("policy", POLICY)):
            d = os.path.join(work, name.replace(" ", "-"))
            os.makedirs(d)
            http_ports[name] = systems.free_port()
            shared = ["--http-listen", f"127.0.0.1:{http_ports[name]}", "--allow-hosts", HOST]
            running[name] = systems.start_ringtun(local, d, cfg, gateway_extra=shared + extra,
                                                  agent_extra=["--expose", f"http:{HOST}=127.0.0.1:{local['http']}"])
            systems.wait_for(lambda: http_ok(http_ports[name]), 15, f"{name}: the http: route to nginx")
        bench = loopback.Bench(bench_bin, work)
        rates = {name: [] for name in running}
        rps = {name: [] for name in running}
        for r in range(args.rounds):
            for name, system in running.items():
                loads.append(loopback.loadavg())
                out = bench.run("connect-rate", system.ports["echo"], "--seconds", args.seconds, "--concurrency",
                                args.concurrency, label=name)
                if out["errors"]:
                    sys.exit(f"{name}: {out['errors']} connection(s) failed (a policy that refuses? see {work})")
                rates[name].append(out["per_second"])
                loads.append(loopback.loadavg())
                url = f"http://127.0.0.1:{http_ports[name]}{PAGE}"
                w = run_wrk(url, "keepalive", max(1, round(args.seconds)), WRK_CONNECTIONS, work)
                if w["exit_code"] or w["errors"] or w["non2xx"] or not w["rps"]:
                    sys.exit(f"{name}: wrk failed or saw errors ({w}); see {work}/wrk.log")
                rps[name].append(w["rps"])
                system.check_alive()
        loads.append(loopback.loadavg())
    finally:
        for system in running.values():
            system.stop()
        for p in services:
            p.stop()
    print(f"| gateway | new connections/s, median (min-max) of {args.rounds} rounds "
          f"| HTTP requests/s (keep-alive, wrk -c{WRK_CONNECTIONS}), median (min-max) |")
    print("|---|---|---|")
    for name in running:
        print(f"| {name} | {spread(rates[name])} | {spread(rps[name])} |")
    conn_ratio = statistics.median(rates["policy"]) / statistics.median(rates["no policy"])
    http_ratio = statistics.median(rps["policy"]) / statistics.median(rps["no policy"])
    print(f"\npolicy / no policy: {conn_ratio:.3f} new connections/s, {http_ratio:.3f} HTTP requests/s")
    print(f"load average (1 min) during the run: {min(loads):.2f}-{max(loads):.2f}, median "
          f"{statistics.median(loads):.2f}; build {os.path.relpath(os.path.abspath(args.build), ROOT)}")


if __name__ == "__main__":
    main()
