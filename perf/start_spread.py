#!/usr/bin/env python3
"""64-byte round trips through the tunnel, start after start: is the latency the same every time the gateway and the
agent start, and how does it compare with two haproxy relays and no relay at all, measured in the same run?

Each start launches the system afresh (gateway + agent, or the two haproxy relays), runs `ringtun-bench latency`
(64 B ping-pong, one connection) and stops it; the systems take turns, start after start, so the machine's noise
falls on all of them alike. Per system: the p50 of every start, their median and spread (slowest start / fastest:
issue 13 asks for at most 1.3), the medians of p99 and p99.9, and (with direct among the systems) the spread once
each start's p50 is divided by direct's in the same round, which takes out the drift of the machine itself.

Systems (ringtun plaintext, --threads of the CPUs, like perf/run_loopback.sh):
  direct           the client talks to the echo service itself
  haproxy2         two haproxy TCP relays in a row (the three hops of a tunnel, no framing)
  agent-pinned     the agent's loops pinned to CPUs (--cpus ALL), as every loop was before issue 13
  ringtun          the defaults: the gateway pinned, the agent not
  busy-poll-50     the defaults plus --busy-poll-us 50 on both

  python3 perf/start_spread.py [--build build-release] [--starts 10] [--requests 20000] [--systems a,b,...]

Needs the programs and ringtun-bench built in --build; haproxy from Debian for haproxy2 (skipped if missing).
"""
import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import loopback  # noqa: E402
import systems  # noqa: E402

ROOT = os.path.dirname(HERE)
CPUS = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))


def starters(cfg):
    """name -> function(local, workdir) that starts it (a systems.Running)."""
    def ringtun(**extra):
        return lambda local, d: systems.start_ringtun(local, d, cfg, **extra)
    return {
        "direct": lambda local, d: systems.start_direct(local, d, cfg),
        "haproxy2": lambda local, d: systems.start_haproxy2(local, d, cfg),
        "agent-pinned": ringtun(agent_extra=["--cpus", CPUS]),
        "ringtun": ringtun(),
        "busy-poll-50": ringtun(gateway_extra=["--busy-poll-us", "50"], agent_extra=["--busy-poll-us", "50"]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--systems", default="direct,haproxy2,agent-pinned,ringtun,busy-poll-50")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    cfg, bench_bin = loopback.ringtun_build(build)
    names = args.systems.split(",")
    if "haproxy2" in names:
        found, why = systems.find_haproxy(cfg)
        if found:
            cfg["bins"]["haproxy2"] = found
        else:
            loopback.say(why)
            names.remove("haproxy2")
    start = starters(cfg)
    unknown = [n for n in names if n not in start]
    if unknown:
        sys.exit(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(start)}")
    work = tempfile.mkdtemp(prefix="ringtun-start-spread-")
    local, services = loopback.start_services(bench_bin, work)
    bench = loopback.Bench(bench_bin, work)
    results = {n: [] for n in names}
    loads = []
    try:
        for i in range(args.starts):
            for name in names:
                d = os.path.join(work, f"{name}-{i}")
                os.makedirs(d)
                loads.append(loopback.loadavg())
                running = start[name](local, d)
                try:
                    out = bench.run("latency", running.ports["echo"], "--size", 64, "--requests", args.requests,
                                    "--warmup", 1000, label=name)
                    running.check_alive()
                finally:
                    running.stop()
                results[name].append(out)
                loopback.say(f"start {i + 1}/{args.starts} {name}: p50 {out['p50_us']:.0f} us, "
                             f"p99 {out['p99_us']:.0f}, p99.9 {out['p999_us']:.0f}")
    finally:
        for p in services:
            p.stop()
    # The machine's own drift moves every system of a round alike; a start's p50 over direct's in the same round
    # takes that out, leaving what the relay's start changed.
    direct = [r["p50_us"] for r in results["direct"]] if "direct" in names else None
    print(f"\n| system | p50 us of each start | p50 median | slowest / fastest start | p99 median | p99.9 median |"
          f"{' slowest / fastest start, each over direct in its round |' if direct else ''}")
    print("|---|---|---|---|---|---|" + ("---|" if direct else ""))
    for name in names:
        p50 = [r["p50_us"] for r in results[name]]
        row = (f"| {name} | {' '.join(f'{v:.0f}' for v in p50)} | {statistics.median(p50):.0f} | "
               f"{max(p50) / min(p50):.2f} | {statistics.median(r['p99_us'] for r in results[name]):.0f} | "
               f"{statistics.median(r['p999_us'] for r in results[name]):.0f} |")
        if direct:
            relative = [v / d for v, d in zip(p50, direct)]
            row += f" {max(relative) / min(relative):.2f} |"
        print(row)
    print(f"\n{args.starts} starts, {args.requests} round trips each; load average (1 min) "
          f"{min(loads):.2f}-{max(loads):.2f}, median {statistics.median(loads):.2f}; "
          f"build {os.path.relpath(build, ROOT)}; CPUs {CPUS}")


if __name__ == "__main__":
    main()
