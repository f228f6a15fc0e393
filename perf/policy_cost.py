#!/usr/bin/env python3
"""What the access policy costs a public connection: new connections/s (ringtun-bench connect-rate: connect, 64 B
echo, close) through two gateways side by side, one without a policy and one whose token has every check on (allow
and deny lists of 1,000 networks each, --conn-rate, --max-conns, --max-conns-per-client, all set never to refuse), interleaved
for several rounds on this machine; prints medians, min-max and the ratio.

  python3 perf/policy_cost.py [--build build-release] [--rounds 5] [--seconds 3]

Needs the programs and ringtun-bench built in --build (meson compile -C BUILD). Plaintext tunnels (the policy sits
before the tunnel; TLS would only add noise).
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import loopback  # noqa: E402
import systems  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 1,000 networks in each list (the clients' 127.0.0.1 in the last allowed one, in none of the denied ones).
ALLOW = ",".join([f"10.{i // 256}.{i % 256}.0/24" for i in range(999)] + ["127.0.0.0/8"])
DENY = ",".join(f"2001:db8:{i:x}::/48" for i in range(1000))
POLICY = ["--allow-from", ALLOW, "--deny-from", DENY, "--conn-rate", "1000000", "--max-conns", "1000000",
          "--max-conns-per-client", "1000000"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    bins, problem = systems._ringtun_in(os.path.abspath(args.build), "ringtun")
    bench_bin = os.path.join(os.path.abspath(args.build), "perf/load/ringtun-bench")
    if problem or not os.access(bench_bin, os.X_OK):
        sys.exit(f"build the programs and ringtun-bench first: {problem or bench_bin}")
    cfg = {"bins": {"ringtun": bins}, "ringtun_threads": os.cpu_count()}
    work = tempfile.mkdtemp(prefix="ringtun-policy-cost-")
    serve = systems.Process("bench-serve", [bench_bin, "serve", "--echo", "127.0.0.1:0", "--threads", "1",
                                            "--max-seconds", "3600"], work)
    line = systems.wait_for(lambda: "echo " in serve.text() and serve.text(), 10, "ringtun-bench serve")
    words = line.split()
    echo = int(words[words.index("echo") + 1].rsplit(":", 1)[1])
    # start_ringtun exposes every service of systems.SERVICES; only the echo one is measured.
    local = {s: echo for s in systems.SERVICES}
    services = [serve]
    running = {}
    try:
        for name, extra in (("no policy", []), ("policy", POLICY)):
            d = os.path.join(work, name.replace(" ", "-"))
            os.makedirs(d)
            running[name] = systems.start_ringtun(local, d, cfg, gateway_extra=extra)
        bench = loopback.Bench(bench_bin, work)
        rates = {name: [] for name in running}
        for r in range(args.rounds):
            for name, system in running.items():
                out = bench.run("connect-rate", system.ports["echo"], "--seconds", args.seconds, "--concurrency",
                                args.concurrency, label=name)
                if out["errors"]:
                    sys.exit(f"{name}: {out['errors']} connection(s) failed (a policy that refuses? see {work})")
                rates[name].append(out["per_second"])
                system.check_alive()
        load = loopback.loadavg()
    finally:
        for system in running.values():
            system.stop()
        for p in services:
            p.stop()
    print(f"| gateway | new connections/s, median (min-max) of {args.rounds} rounds |")
    print("|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f}) |")
    ratio = statistics.median(rates["policy"]) / statistics.median(rates["no policy"])
    print(f"\npolicy / no policy: {ratio:.3f} (load average after: {load:.2f}; build {os.path.relpath(args.build, ROOT)})")


if __name__ == "__main__":
    main()
