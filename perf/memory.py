#!/usr/bin/env python3
"""Memory of the relays: RSS of gateway + agent (or of the two haproxy relays) idle after start, and per connection
while 1,000 verified connections are held open (ringtun-bench hold), side by side in one run.

  idle RSS       VmRSS summed over the system's processes --settle seconds (12) after it is ready, no connection
                 ever made: with TLS, a thread frees its ECC tables once it saw no handshake for 5 s (checked on the
                 tunnel heartbeat, every 5 s), so 12 s is what an idle process looks like
  KB per conn    (RSS while N connections are held - RSS before) / N, both sides together

Systems: ringtun (plaintext), ringtun-tls, haproxy2 and rathole when found (RATHOLE_BIN or PATH), and with
--ref-build ringtun-ref (the same from another build,
e.g. the commit before a change). Medians of --rounds fresh starts, interleaved.

  python3 perf/memory.py [--build build-release] [--ref-build DIR] [--rounds 3] [--connections 1000] [--settle 12]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import loopback  # noqa: E402
import systems  # noqa: E402

ROOT = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--ref-build", default="")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=12)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    cfg, bench_bin = loopback.ringtun_build(build)
    start = {"ringtun": lambda local, d: systems.start_ringtun(local, d, cfg),
             "ringtun-tls": lambda local, d: systems.start_ringtun(local, d, cfg, tls=True)}
    if args.ref_build:
        ref, problem = systems._ringtun_in(os.path.abspath(args.ref_build), "ringtun-ref")
        if problem:
            sys.exit(problem)
        cfg["bins"]["ringtun-ref"] = ref
        start["ringtun-ref"] = lambda local, d: systems.start_ringtun(local, d, cfg, name="ringtun-ref")
        start["ringtun-ref-tls"] = lambda local, d: systems.start_ringtun(local, d, cfg, name="ringtun-ref", tls=True)
    for name, finder, starter in (("haproxy2", systems.find_haproxy, systems.start_haproxy2),
                                  ("rathole", systems.find_rathole, systems.start_rathole)):
        found, why = finder(cfg)
        if found:
            cfg["bins"][name] = found
            start[name] = lambda local, d, starter=starter: starter(local, d, cfg)
        else:
            loopback.say(why)
    work = tempfile.mkdtemp(prefix="ringtun-memory-")
    local, services = loopback.start_services(bench_bin, work)
    bench = loopback.Bench(bench_bin, work)
    idle = {n: [] for n in start}
    per_conn = {n: [] for n in start}
    try:
        for r in range(args.rounds):
            for name, fn in start.items():
                d = os.path.join(work, f"{name}-{r}")
                os.makedirs(d)
                running = fn(local, d)
                try:
                    time.sleep(args.settle)
                    idle[name].append(sum(loopback.proc_status(p, "VmRSS") for p in running.pids) / 1024)
                    held = loopback.hold_memory(bench, running, args.connections, d)
                    if not held.get("ready"):
                        sys.exit(f"{name}: the {args.connections} connections were not all verified; see {d}")
                    per_conn[name].append(held["kb_per_conn"])
                    running.check_alive()
                finally:
                    running.stop()
                loopback.say(f"round {r + 1} {name}: idle {idle[name][-1]:.1f} MB, "
                             f"{per_conn[name][-1]:.1f} KB per held connection")
    finally:
        for p in services:
            p.stop()
    print(f"\n| system | idle RSS MB, median (min-max) | KB per held connection ({args.connections} held) |")
    print("|---|---|---|")
    for name in start:
        print(f"| {name} | {statistics.median(idle[name]):.1f} ({min(idle[name]):.1f}-{max(idle[name]):.1f}) | "
              f"{statistics.median(per_conn[name]):.1f} ({min(per_conn[name]):.1f}-{max(per_conn[name]):.1f}) |")
    print(f"\n{args.rounds} rounds; build {os.path.relpath(build, ROOT)}"
          + (f", ref {args.ref_build}" if args.ref_build else ""))


if __name__ == "__main__":
    main()
